"""Curation teaches the detector: descriptors, the refine and like heads, refined models."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree
from sklearn.metrics import f1_score

from napari_cryoet_particles.detect import DetectionConfig, detect_particles
from napari_cryoet_particles.detect.config import CANDIDATE_FLOOR
from napari_cryoet_particles.detect.describe import shape_columns
from napari_cryoet_particles.detect.head import (
    REFINE_COLUMNS,
    PickHead,
    apply_head,
    neighbour_features,
)
from napari_cryoet_particles.detect.refine import (
    NON_NEGATIVE_COLUMNS,
    REFINE_BAND_LOGIT,
    RefineConfig,
    descriptor_table,
    examples_described,
    fit_like_head,
    fit_refine_head,
    grown_like_head,
    like_columns,
    refine_job,
    refined_picks,
    save_refined_model,
    unlike_examples_warning,
)
from napari_cryoet_particles.io import CryoetInputError, Volume
from napari_cryoet_particles.io.picks import Picks
from napari_cryoet_particles.jobs import run_job
from napari_cryoet_particles.model import DenseEncoder, EncoderConfig, ModelConfig, save_checkpoint
from napari_cryoet_particles.model.checkpoint import load_checkpoint
from tests.detect.test_pipeline import BlobEncoder, blob_scene

#: The toy scenes are small: their misses to reject lie mostly near the faces, which are kept.
#: The score of the ``session8`` preset (blob strength + learned term, threshold 5.5) leaves
#: the toy scenes' borderline band to the marks; what refine does with marks does not depend
#: on which preset scored the candidates.
CONFIG = DetectionConfig(
    params="session8",
    diameter_nm=4.0,
    threads=1,
    threshold=CANDIDATE_FLOOR,
    min_diameter_nm=3,
    max_diameter_nm=8,
    keep_edges=True,
)


def _f1(zyx: np.ndarray, centres: np.ndarray, reach: float = 3.0) -> float:
    if not len(zyx):
        return 0.0
    distance, index = cKDTree(centres).query(zyx)
    found = len(set(index[distance <= reach].tolist()))
    return 2 * found / (len(zyx) + len(centres))


def _first_hits(zyx: np.ndarray, centres: np.ndarray, reach: float = 3.0) -> np.ndarray:
    """True for the first (highest-scored) pick on each blob, as a user would accept."""
    distance, index = cKDTree(centres).query(zyx)
    seen: set[int] = set()
    first = np.zeros(len(zyx), dtype=bool)
    for row, (d, i) in enumerate(zip(distance, index, strict=True)):
        if d <= reach and i not in seen:
            seen.add(int(i))
            first[row] = True
    return first


@pytest.fixture(scope="module")
def noisy():
    scene = blob_scene(seed=4, shape=(48, 96, 96), n=30, sigma=2.0, noise=0.8)
    result = detect_particles(Volume(scene.volume, 10.0), BlobEncoder(), CONFIG)
    return scene, result


def _oracle_marks(scene, result, n: int):
    scores = result.picks.scores
    nearest = np.argsort(np.abs(scores - 0.5))[:n]
    first = _first_hits(result.picks.zyx, scene.centres)
    marks = result.picks.subset(nearest)
    marks.features["status"] = np.where(first[nearest], "accepted", "rejected")
    return marks


def test_a_second_hit_two_radii_from_a_stronger_pick_knows_it() -> None:
    zyx = np.array([[10.0, 10, 10], [10, 10, 18], [40, 40, 40]])
    features = neighbour_features(zyx, np.array([0.9, 0.6, 0.7]), np.array([4.0, 2.0, 2.0]), 10.0)
    assert features[1, 0] == pytest.approx(np.log(8.0))
    assert features[1, 1] == pytest.approx(np.log(2.0))
    assert features[1, 2] == pytest.approx(4.0)
    assert features[0, 0] == pytest.approx(np.log(60.0))  # the strongest has no stronger one


def test_refine_from_a_few_oracle_marks_raises_f1_and_keeps_the_marks(noisy) -> None:
    scene, result = noisy
    before = _f1(result.picks.zyx[result.picks.scores >= 0.5], scene.centres)
    marks = _oracle_marks(scene, result, 12)
    outcome = refined_picks(result, marks, RefineConfig())
    status = outcome.picks.features["status"].to_numpy()
    kept = outcome.picks.zyx[status != "rejected"]
    assert _f1(kept, scene.centres) >= before + 0.05
    for kind in ("accepted", "rejected"):
        wanted = marks.zyx[marks.features["status"] == kind]
        got = outcome.picks.zyx[status == kind]
        assert len(got) == len(wanted)
        assert np.allclose(np.sort(got, axis=0), np.sort(wanted, axis=0))
    assert outcome.head.kind == "refine"


def test_refine_changes_only_borderline_candidates(noisy) -> None:
    """Confident picks stay picks and clear rejects stay out, whatever the marks taught."""
    scene, result = noisy
    outcome = refined_picks(result, _oracle_marks(scene, result, 12), RefineConfig())
    head = outcome.head
    scores = result.picks.scores
    table = descriptor_table(result)
    refined = apply_head(head, scores, table)
    outside = np.abs(np.log(scores / (1 - scores))) > REFINE_BAND_LOGIT + 1e-9
    assert outside.any() and (~outside).any()
    assert np.allclose(refined[outside], scores[outside])
    payload = head.to_payload()
    assert PickHead.from_payload(payload).band_half_width == REFINE_BAND_LOGIT
    payload.pop("band")  # a head saved before the band existed corrects every candidate
    assert np.isinf(PickHead.from_payload(payload).band_half_width)


def three_species(
    each: int, spread: float, seed: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Shape descriptors of three species of sizes 4, 7 and 10 (``each`` picks, noise
    ``spread``): the table, which picks are the middle species, three clicks on it."""
    rng = np.random.default_rng(seed)
    size = np.repeat([4.0, 7.0, 10.0], each)
    columns = shape_columns()
    values = size[:, None] * (1 + np.arange(len(columns)) / 20) + rng.normal(
        0, spread, (3 * each, len(columns))
    )
    middle = size == 7.0
    clicks = np.zeros(3 * each, dtype=bool)
    clicks[np.flatnonzero(middle)[:3]] = True
    return pd.DataFrame(values, columns=list(columns)), middle, clicks


def test_like_head_finds_a_middle_sized_species_and_survives_a_checkpoint() -> None:
    """Three clicks on the middle one of three sizes: no single hyperplane cuts it out, a
    distance from the clicked picks does."""
    table, middle, positive = three_species(80, 0.6, seed=3)
    columns = shape_columns()
    head = fit_like_head(table, positive, np.zeros(240, dtype=bool), np.ones(240, dtype=bool))
    like = head.like_probability(table) >= 0.5
    assert like[middle].mean() >= 0.9 and like[~middle].mean() <= 0.1
    again = PickHead.from_payload(head.to_payload())
    assert np.allclose(again.like_probability(table), head.like_probability(table))
    old = head.to_payload() | {"centre": None, "weights": [1.0] + [0.0] * (len(columns) - 1)}
    assert PickHead.from_payload(old).like_probability(table).shape == (240,)


def test_marks_cannot_teach_the_refine_head_to_favour_near_neighbours() -> None:
    """Accepted marks that happen to lie close to stronger picks must not make closeness a
    reason to pick: the neighbour-distance weights stay non-negative (repeat hits)."""
    rng = np.random.default_rng(0)
    n = 200
    table = pd.DataFrame(rng.normal(size=(n, len(REFINE_COLUMNS))), columns=list(REFINE_COLUMNS))
    marked = np.arange(40)
    labels = (table["neighbour_log_nm"].to_numpy()[marked] < 0).astype(float)  # near = accepted
    head = fit_refine_head(table, np.zeros(n), marked, labels, ridge=1.0)
    for column in NON_NEGATIVE_COLUMNS:
        assert head.weights[list(REFINE_COLUMNS).index(column)] >= 0
    assert np.any(head.weights != 0)


def test_the_like_head_reads_the_shape_and_the_strength() -> None:
    shape = list(shape_columns())
    table = pd.DataFrame(np.zeros((2, len(shape) + 2)), columns=[*shape, "strength", "radius_nm"])
    assert like_columns(table) == (*shape, "strength")
    profile = pd.DataFrame(np.zeros((2, 3)), columns=["strength", "radius_nm", "profile_0"])
    assert like_columns(profile) == ("radius_nm", "profile_0")


def test_growing_the_examples_finds_more_of_a_noisy_species() -> None:
    """Three clicks on a species whose descriptors scatter widely: refitted on the picks most
    like them, the head finds the species far better than from the three clicks alone."""
    table, middle, positive = three_species(200, 3.0, seed=0)
    none, pool, base = np.zeros(600, dtype=bool), np.ones(600, dtype=bool), np.ones(600)

    def class_f1(head: PickHead) -> float:
        like = apply_head(head, base, table) >= 0.5
        return f1_score(middle, like)

    alone = fit_like_head(table, positive, none, pool)
    grown = grown_like_head(table, positive, none, pool)
    assert class_f1(grown) >= class_f1(alone) + 0.15
    assert grown.n_positive == 3


@pytest.fixture(scope="module")
def two_kinds():
    """Small blobs and, at half of the centres, big ones; a detection run with its candidates."""
    small = blob_scene(seed=7, shape=(48, 96, 96), n=24, sigma=1.5, noise=0.2, spacing=14.0)
    big_kind = np.random.default_rng(1).random(len(small.centres)) < 0.5
    grid = np.indices(small.volume.shape, dtype=np.float32)
    volume = small.volume.copy()
    for c in small.centres[big_kind]:
        d2 = sum((grid[a] - c[a]) ** 2 for a in range(3))
        volume -= 1.5 * np.exp(-d2 / (2 * 3.0**2)).astype(np.float32)
    config = DetectionConfig(diameter_nm=8.0, threads=1, threshold=CANDIDATE_FLOOR, keep_edges=True)
    result = detect_particles(Volume(volume, 10.0), BlobEncoder(), config)
    return Volume(volume, 10.0), small.centres, big_kind, result


def _big_examples(two_kinds, count: int) -> Picks:
    _, centres, big_kind, result = two_kinds
    distance, index = cKDTree(centres).query(result.picks.zyx)
    on_big = (distance <= 3) & big_kind[index]
    seeds = np.flatnonzero(on_big & (result.picks.scores >= 0.5))[:count]
    marks = result.picks.subset(seeds)
    marks.features["status"] = "accepted"
    return marks


def test_like_accepted_returns_the_accepted_species(two_kinds) -> None:
    _, centres, big_kind, result = two_kinds
    outcome = refined_picks(result, _big_examples(two_kinds, 3), RefineConfig(like_accepted=True))
    distance, index = cKDTree(centres).query(outcome.picks.zyx)
    hit = distance <= 3
    assert hit.mean() >= 0.8
    assert big_kind[index[hit]].mean() >= 0.8
    assert len(set(index[hit & big_kind[index]].tolist())) >= 0.7 * big_kind.sum()
    assert unlike_examples_warning(outcome.info) is None  # examples of one kind look alike


def _run_like(two_kinds, marks: Picks):
    volume, _, _, result = two_kinds
    config = RefineConfig(like_accepted=True)
    config.detection.max_diameter_nm = 8.0
    return run_job(refine_job(volume, marks, None, config, result=result))


def test_an_added_point_beside_accepted_picks_keeps_the_like_head(two_kinds) -> None:
    """A missed particle added beside accepted ones: the like head still compares shapes (a
    reference search would lose the species); the added point stays as a mark."""
    marks = _big_examples(two_kinds, 4)
    marks.features["status"] = ["accepted", "accepted", "accepted", "added"]
    assert examples_described(two_kinds[3], marks)
    outcome = _run_like(two_kinds, marks)
    assert outcome.info["kind"] == "like" and outcome.head is not None
    assert (outcome.picks.features["status"] == "added").sum() == 1


def test_most_examples_on_no_candidate_search_by_reference(two_kinds) -> None:
    _, centres, _, result = two_kinds
    between = 0.5 * (centres[0] + centres[1])  # no object, no candidate
    marks = _big_examples(two_kinds, 1)
    zyx = np.r_[marks.zyx, [between, between + 1.0]]
    features = pd.DataFrame({"score": 1.0, "status": ["accepted", "added", "added"]})
    examples = Picks(zyx, 10.0, features, "toy")
    assert not examples_described(result, examples)
    assert _run_like(two_kinds, examples).info["kind"] == "reference"
    no_volume = refine_job(None, examples, None, RefineConfig(like_accepted=True), result=result)
    with pytest.raises(CryoetInputError, match="open"):
        run_job(no_volume)


def test_examples_of_several_kinds_are_warned_about() -> None:
    assert unlike_examples_warning({"n_positive": 3, "examples_alike": 3}) is None
    assert unlike_examples_warning({"n_positive": 3, "examples_alike": 2}) is None
    assert "one kind" in unlike_examples_warning({"n_positive": 3, "examples_alike": 1})
    assert unlike_examples_warning({"n_positive": 1, "examples_alike": 0}) is None
    assert unlike_examples_warning({"n_positive": 4}) is None  # a refine, not a like


@pytest.mark.parametrize(
    ("status", "zyx", "message"),
    [
        (["auto", "auto"], [[5, 5, 5], [6, 6, 6]], "no pick is marked"),
        (["accepted", "maybe"], [[5, 5, 5], [6, 6, 6]], "unknown status"),
        (["accepted", "rejected"], [[5, 5, 5], [500, 6, 6]], "outside the tomogram"),
    ],
)
def test_bad_marks_are_clear_errors(noisy, status, zyx, message) -> None:
    _, result = noisy
    marks = result.picks.subset(np.arange(2))
    marks.zyx = np.asarray(zyx, dtype=float)
    marks.features["status"] = status
    with pytest.raises(CryoetInputError, match=message):
        refined_picks(result, marks, RefineConfig())


def test_like_without_accepted_picks_is_a_clear_error(noisy) -> None:
    _, result = noisy
    marks = result.picks.subset(np.arange(2))
    marks.features["status"] = "rejected"
    with pytest.raises(CryoetInputError, match="no pick is accepted"):
        refined_picks(result, marks, RefineConfig(like_accepted=True))


def test_only_confident_picks_are_described_and_grouped(noisy) -> None:
    _, result = noisy
    confident = result.picks.scores >= 0.5
    assert confident.any() and (~confident).any()
    groups = result.picks.features["group"].to_numpy()
    assert (groups[confident] >= 0).all() and (groups[~confident] == -1).all()
    assert np.isfinite(result.shapes[confident]).all()
    assert np.isnan(result.shapes[~confident]).all()


def test_like_from_picks_below_the_automatic_threshold_is_a_clear_error(noisy) -> None:
    _, result = noisy
    low = np.flatnonzero(result.picks.scores < 0.5)[:3]
    marks = result.picks.subset(low)
    marks.features["status"] = "accepted"
    with pytest.raises(CryoetInputError, match="shape descriptor"):
        refined_picks(result, marks, RefineConfig(like_accepted=True))


def test_refined_model_file_carries_its_head_into_detection(noisy, tmp_path: Path) -> None:
    scene, result = noisy
    marks = _oracle_marks(scene, result, 12)
    volume = Volume(scene.volume, 10.0)
    encoder = DenseEncoder(EncoderConfig(width=4, depth=1, dilations=(1,), embedding_dim=4))
    base = tmp_path / "base.pt"
    save_checkpoint(base, encoder, ModelConfig(encoder=encoder.config, working_voxel_size=10.0))
    config = RefineConfig(detection=DetectionConfig(diameter_nm=4.0, threads=1, keep_edges=True))
    outcome = run_job(refine_job(volume, marks, base, config))
    refined = save_refined_model(tmp_path / "refined.pt", outcome.head, base)
    loaded = load_checkpoint(refined)
    assert PickHead.from_payload(loaded.pick_head).kind == "refine"
    plain = detect_particles(
        volume, base, DetectionConfig(diameter_nm=4.0, threads=1, keep_edges=True)
    )
    taught = detect_particles(
        volume, refined, DetectionConfig(diameter_nm=4.0, threads=1, keep_edges=True)
    )
    assert len(taught.picks) != len(plain.picks) or not np.allclose(
        taught.picks.scores, plain.picks.scores
    )
    auto = outcome.picks.subset((outcome.picks.features["status"] == "auto").to_numpy())
    distance, _ = cKDTree(taught.picks.zyx).query(auto.zyx)
    assert np.all(distance < 0.5)  # what refine found, the refined model finds again
    with pytest.raises(CryoetInputError, match="exists"):
        save_refined_model(refined, outcome.head, base)

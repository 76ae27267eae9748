"""More like these from added points: a reference searched over the volume (detect/examples.py)."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from napari_cryoet_particles.detect.examples import (
    example_search_job,
    normalised_correlation,
    profile_extent,
    reference,
)
from napari_cryoet_particles.detect.refine import (
    RefineConfig,
    example_refine_job,
    refine_job,
    uses_examples,
)
from napari_cryoet_particles.io import CryoetInputError, Volume
from napari_cryoet_particles.io.picks import Picks
from napari_cryoet_particles.io.tomogram import read_tomogram
from napari_cryoet_particles.jobs import CancelToken, JobCancelled, run_job

SHELLS = np.array([[16, 16, 16], [16, 16, 46], [16, 46, 16], [16, 46, 46], [30, 31, 31.0]])
BLOBS = np.array([[30, 12, 50], [30, 50, 12], [8, 31, 31.0]])


def _shell_scene(seed: int = 0) -> np.ndarray:
    """Hollow shells (radius 6, dark) and solid blobs (radius 3) in noise: the blob filter of
    the detector answers on the blobs and the shells' walls, never at a shell's empty centre."""
    rng = np.random.default_rng(seed)
    grid = np.indices((40, 62, 62)).reshape(3, -1).T.astype(float)
    volume = np.zeros(len(grid))
    for centre in SHELLS:
        distance = np.linalg.norm(grid - centre, axis=1)
        volume -= np.exp(-0.5 * ((distance - 6.0) / 0.8) ** 2)
    for centre in BLOBS:
        distance = np.linalg.norm(grid - centre, axis=1)
        volume -= np.exp(-0.5 * (distance / 2.0) ** 2)
    volume = volume.reshape(40, 62, 62) + rng.normal(0, 0.3, (40, 62, 62))
    return volume.astype(np.float32)


@pytest.fixture(scope="module")
def shells() -> Volume:
    return Volume(_shell_scene(), 10.0)


def _marks(zyx: np.ndarray, status: list[str]) -> Picks:
    features = pd.DataFrame({"score": np.ones(len(zyx)), "status": status})
    return Picks(np.asarray(zyx, dtype=float), 10.0, features, "toy")


def _like(volume: Volume, marks: Picks) -> Picks:
    config = RefineConfig(like_accepted=True)
    config.detection.max_diameter_nm = 16.0
    return run_job(example_refine_job(volume, marks, config)).picks


def test_a_profile_ends_where_the_shell_does() -> None:
    profile = np.r_[np.full(5, -0.5), 1.0, 1.0, np.zeros(9)]
    assert profile_extent(profile) == 7.0
    template, mask = reference(profile, 7.0)
    assert template.shape == mask.shape and template.shape[0] % 2 == 1


def test_correlation_of_the_template_with_itself_is_one() -> None:
    template, mask = reference(np.r_[np.full(4, -1.0), 1.0, 1.0, np.zeros(6)], 6.0)
    data = np.zeros((41, 41, 41), dtype=np.float32)
    half = template.shape[0] // 2
    data[20 - half : 21 + half, 20 - half : 21 + half, 20 - half : 21 + half] = template
    ncc = normalised_correlation(data, template, mask)
    assert ncc[20, 20, 20] == pytest.approx(1.0, abs=1e-3)
    assert np.unravel_index(np.argmax(ncc), ncc.shape) == (20, 20, 20)


def test_three_added_centres_find_every_hollow_shell_and_no_blob(shells: Volume) -> None:
    marks = _marks(SHELLS[:3] + [1.0, -1.0, 0.5], ["added"] * 3)  # clicks a little off-centre
    assert uses_examples(marks, True)
    picks = _like(shells, marks)
    distance = cKDTree(picks.zyx).query(SHELLS)[0]
    assert np.all(distance <= 3.0)
    assert np.all(cKDTree(picks.zyx).query(BLOBS)[0] > 4.0)
    assert len(picks) == len(SHELLS)


def test_marks_survive_and_a_second_round_learns_from_all_marks(shells: Volume) -> None:
    marks = _marks(
        np.r_[SHELLS[:3], SHELLS[3:4]], ["added", "added", "added", "rejected"]
    )  # the user wants three of the shells, not the fourth
    picks = _like(shells, marks)
    status = picks.features["status"].to_numpy()
    assert (status == "added").sum() == 3 and (status == "rejected").sum() == 1
    rejected = picks.zyx[status == "rejected"]
    auto = picks.zyx[status == "auto"]
    assert np.all(cKDTree(auto).query(rejected)[0] > 4.0)  # rejected stays out
    np.testing.assert_allclose(picks.zyx[status == "added"], SHELLS[:3])  # positions kept
    # second round on the new picks: reject the fifth shell's pick too
    second = picks.subset(np.arange(len(picks)))
    fifth = int(np.argmin(np.linalg.norm(second.zyx - SHELLS[4], axis=1)))
    second.features.loc[second.features.index[fifth], "status"] = "rejected"
    again = _like(shells, second)
    status = again.features["status"].to_numpy()
    assert (status == "rejected").sum() == 2 and (status == "added").sum() == 3
    assert (status == "auto").sum() == 0


@pytest.mark.parametrize(
    ("zyx", "status", "message"),
    [
        (SHELLS[:2] + [0, 0, 100], ["added", "added"], "outside"),
        (SHELLS[:2], ["added", "maybe"], "unknown status"),
        (SHELLS[:2], ["auto", "auto"], "no pick is marked"),
    ],
)
def test_bad_marks_are_refused_before_any_work(shells, zyx, status, message) -> None:
    cancel = CancelToken()
    job = refine_job(shells, _marks(zyx, status), None, RefineConfig(like_accepted=True), cancel)
    with pytest.raises(CryoetInputError, match=message):
        next(job)


def test_the_search_can_be_cancelled(shells: Volume) -> None:
    cancel = CancelToken()
    job = example_search_job(shells, SHELLS[:3], 16.0, cancel=cancel)
    next(job)
    cancel.cancel()
    with pytest.raises(JobCancelled):
        for _ in job:
            pass


def test_three_vlp_centres_find_the_real_hiv_vlps(real_tomograms) -> None:
    """Real HIV-1 VLPs (40 Å): three annotated centres as added points find at least 8 of the 9
    annotated centres within half a VLP radius, with at most 30 picks (two choices of three)."""
    volume = read_tomogram(real_tomograms["hiv"])
    table = pd.read_csv(real_tomograms["hiv_centres"])
    centres = table[["z_px40", "y_px40", "x_px40"]].to_numpy()
    radius = table["radius_px40"].to_numpy()
    config = RefineConfig(like_accepted=True)
    config.detection.min_diameter_nm, config.detection.max_diameter_nm = 80.0, 120.0
    for chosen in ([0, 4, 8], [1, 5, 7]):
        marks = Picks(centres[chosen], 40.0, pd.DataFrame({"status": ["added"] * 3}), "tomo_40A")
        picks = run_job(refine_job(volume, marks, None, config)).picks
        distance = cKDTree(picks.zyx).query(centres)[0]
        assert np.sum(distance <= radius / 2) >= 8
        assert len(picks) <= 30

"""Scoring: SHREC rule, distance rule, crop metrics, groups, curves (small hand-made cases)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from skimage.morphology import dilation
from sklearn.metrics import adjusted_rand_score, f1_score, roc_auc_score

from napari_cryoet_particles.evaluate import (
    SHREC2021_SKIP,
    crop_labels_by_centre,
    crop_labels_by_occupancy,
    crop_metrics,
    dilate_ids,
    evaluate_picks,
    format_result,
    group_class_agreement,
    match_pairs,
    plot_ranking_curves,
    ranking_curves,
    save_figure_png,
    score_distance,
    score_shrec,
)
from napari_cryoet_particles.io import CryoetInputError, Picks, read_csv


def picks(zyx, classes=None, scores=None, clusters=None, voxel_size=10.0) -> Picks:
    zyx = np.asarray(zyx, dtype=float).reshape(-1, 3)
    features = pd.DataFrame(index=range(len(zyx)))
    if classes is not None:
        features["class"] = classes
    if scores is not None:
        features["score"] = scores
    if clusters is not None:
        features["cluster"] = clusters
    return Picks(zyx, voxel_size, features)


def cube_map(shape, cubes) -> np.ndarray:
    """An id map with cube ``k`` (1-based) covering ``[lo, hi)`` on every axis."""
    ids = np.zeros(shape, dtype=np.int16)
    for k, (lo, hi) in enumerate(cubes, start=1):
        ids[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = k
    return ids


# ---------------------------------------------------------------------------------------------
# dilation of the id map


def test_dilate_ids_grows_only_into_background() -> None:
    ids = cube_map(
        (6, 6, 10), [((1, 1, 1), (4, 4, 4)), ((1, 1, 4), (4, 4, 7))]
    )  # touching at x=3|4
    grown = dilate_ids(ids)
    # touching particles keep every voxel (skimage's grey dilation lets id 2 eat a layer of id 1)
    assert np.array_equal(grown[ids > 0], ids[ids > 0])
    assert np.count_nonzero(dilation(ids)[1:4, 1:4, 3] == 2) == 9
    # background next to a particle (6-connected) takes its id, diagonal neighbours do not
    assert grown[0, 2, 2] == 1 and grown[2, 2, 7] == 2 and grown[2, 2, 0] == 1
    assert grown[0, 0, 2] == 0
    # an isolated particle grows exactly as SHREC 2021's skimage dilation
    single = cube_map((7, 7, 7), [((2, 2, 2), (5, 5, 5))])
    assert np.array_equal(dilate_ids(single), dilation(single))


# ---------------------------------------------------------------------------------------------
# SHREC rule


@pytest.fixture
def shrec_case():
    ids = cube_map(
        (10, 10, 30),
        [((1, 1, 1), (6, 6, 6)), ((1, 1, 10), (6, 6, 15)), ((1, 1, 20), (6, 6, 25))],
    )
    truth = picks([[3, 3, 3], [3, 3, 12], [3, 3, 22]], ["1bxn", "3qm1", "4V94_fixed"])
    pred = picks(
        [
            [3.4, 2.6, 3.0],  # on particle 1 (rounds to 3,3,3)
            [3.0, 3.0, 12.0],  # on particle 2, at its centre
            [2.0, 2.0, 11.0],  # on particle 2 again: duplicate
            [8.0, 8.0, 17.0],  # background: FP
            [3.0, 3.0, 22.0],  # on particle 3, a skipped class
            [3.0, 3.0, 40.0],  # outside the volume: FP
            [3.0, 3.0, 6.0],  # in the one-voxel dilation of particle 1: a second hit on it
        ],
        scores=[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3],
    )
    return truth, pred, ids


def test_shrec_rule_counts(shrec_case) -> None:
    truth, pred, ids = shrec_case
    result = score_shrec(truth, pred, ids, skip=["4v94"])
    assert list(result.pred_status) == [
        "tp",
        "tp",
        "duplicate",
        "fp",
        "skipped",
        "outside",
        "duplicate",
    ]
    assert list(result.pred_truth_id) == [1, 2, 2, 0, 3, 0, 1]
    assert (result.tp, result.fp, result.fn, result.n_truth) == (2, 2, 0, 2)
    assert result.n_pred == 6  # the pick on the skipped particle is left out
    assert (result.n_duplicate, result.n_outside, result.n_on_skipped) == (2, 1, 1)
    assert result.precision == pytest.approx(2 / 6)
    assert result.recall == 1.0
    assert result.f1 == pytest.approx(2 * (1 / 3) / (1 / 3 + 1))
    assert result.confusion.tolist() == [[2, 0], [2, 0]]
    assert list(result.truth_pred_index) == [0, 1, -1]
    assert any("1 predictions lie outside" in w for w in result.warnings)
    # the SHREC 2021 script's way: picks on skipped particles stay in the denominator
    counted = score_shrec(truth, pred, ids, skip=["4V94"], count_skipped_picks=True)
    assert counted.n_pred == 7 and counted.precision == pytest.approx(2 / 7)


def test_shrec_rule_without_skip_and_without_dilation(shrec_case) -> None:
    truth, pred, ids = shrec_case
    result = score_shrec(truth, pred, ids, dilate=0)
    assert result.pred_status[6] == "fp"  # (3,3,6) is outside the undilated cube 1
    assert (result.tp, result.fn, result.n_truth, result.n_pred) == (3, 0, 3, 7)
    table = result.per_class.set_index("class")
    assert table.loc["4V94_fixed", "tp"] == 1 and table.loc["3qm1", "recall"] == 1.0


def test_shrec_rule_nearest_hit_is_the_tp() -> None:
    ids = cube_map((8, 8, 8), [((1, 1, 1), (7, 7, 7))])
    truth = picks([[4, 4, 4]], ["a"])
    result = score_shrec(truth, picks([[1, 1, 1], [4, 4, 5], [2, 2, 2]]), ids)
    assert list(result.pred_status) == ["duplicate", "tp", "duplicate"]
    assert result.mean_distance == pytest.approx(1.0)


def test_shrec_rule_rejects_a_map_with_ids_beyond_the_truth() -> None:
    ids = cube_map((8, 8, 8), [((1, 1, 1), (3, 3, 3)), ((4, 4, 4), (6, 6, 6))])
    with pytest.raises(CryoetInputError, match="id 2 but the truth lists only 1"):
        score_shrec(picks([[2, 2, 2]], ["a"]), picks([[2, 2, 2]]), ids)


def test_truth_without_particles_is_a_clear_error(shrec_case) -> None:
    truth, pred, ids = shrec_case
    with pytest.raises(CryoetInputError, match="all 3 truth particles belong to skipped classes"):
        score_shrec(truth, pred, ids, skip=["1bxn", "3qm1", "4v94"])
    with pytest.raises(CryoetInputError, match="no particles"):
        score_distance(picks(np.zeros((0, 3)), []), pred, radius=3)


# ---------------------------------------------------------------------------------------------
# distance rule


def test_distance_rule_matching_is_optimal_not_greedy() -> None:
    # greedy-by-distance would pair p0 with A (0.9) and leave p1 and B unmatched
    truth = picks([[0, 0, 10], [0, 0, 12]], ["x", "x"])
    pred = picks([[0, 0, 10.9], [0, 0, 8.8]])
    result = score_distance(truth, pred, radius=1.5)
    assert result.tp == 2 and result.fp == 0
    assert list(result.pred_truth_id) == [2, 1]
    assert match_pairs(
        2, 2, np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([0.9, 1.1, 1.2])
    ).tolist() == [1, 0]


def test_distance_rule_statuses_radii_and_skip() -> None:
    truth = picks(
        [[10, 10, 10], [10, 10, 30], [10, 10, 50], [10, 10, 70]],
        ["1s3x", "4cr2", "4V94_fixed", "vesicle"],
    )
    pred = picks(
        [
            [10, 10, 15],  # 5 from a 1s3x (radius 5.48): TP
            [10, 10, 43],  # 13 from a 4cr2 (radius 16.43): a duplicate, as the next is nearer
            [10, 10, 27],  # 3 from the same 4cr2: TP
            [10, 10, 52],  # on the skipped 4v94
            [10, 10, 70],  # on the skipped vesicle: no radius known, so FP
            [30, 30, 30],  # nowhere: FP
        ]
    )
    result = score_distance(truth, pred, skip=SHREC2021_SKIP)
    assert list(result.pred_status) == ["tp", "duplicate", "tp", "skipped", "fp", "fp"]
    assert list(result.pred_truth_id) == [1, 2, 2, 3, 0, 0]
    assert (result.tp, result.fp, result.fn, result.n_pred, result.n_truth) == (2, 2, 0, 5, 2)
    assert result.radii == {"1s3x": 5.48, "4cr2": 16.43, "4v94": 19.72}
    assert any("vesicle" in w and "no hit radius" in w for w in result.warnings)
    # the tighter 1s3x radius of a fixed 4-voxel rule misses the first pick, and 4 catches no duplicate
    fixed = score_distance(truth, pred, radius=4.0, skip=SHREC2021_SKIP)
    assert list(fixed.pred_status) == ["fp", "fp", "tp", "skipped", "skipped", "fp"]


def test_distance_rule_needs_a_radius_for_every_kept_class() -> None:
    truth = picks([[1, 1, 1], [5, 5, 5]], ["1s3x", "mystery"])
    with pytest.raises(CryoetInputError, match="no hit radius for class mystery"):
        score_distance(truth, picks([[1, 1, 1]]))
    result = score_distance(
        truth, picks([[1, 1, 1], [5, 5, 7]]), class_radii="shrec2021", radius=2.5
    )
    assert result.tp == 2 and result.radii == {"1s3x": 5.48, "mystery": 2.5}


def test_distance_rule_outside_the_volume_is_fp() -> None:
    truth = picks([[1, 1, 1]], ["a"])
    result = score_distance(truth, picks([[1, 1, -0.6], [1, 1, 1.5]]), radius=3, shape=(4, 4, 4))
    assert list(result.pred_status) == ["outside", "tp"]
    assert result.fp == 1 and result.n_outside == 1


def test_no_predictions_give_zero_scores_not_nan(tmp_path: Path) -> None:
    csv = tmp_path / "empty.csv"
    csv.write_text("x,y,z,score\n")
    result = score_distance(picks([[1, 1, 1]], ["a"]), read_csv(csv), radius=3)
    assert (result.n_pred, result.tp, result.fp, result.fn) == (0, 0, 0, 1)
    assert (result.precision, result.recall, result.f1) == (0.0, 0.0, 0.0)
    assert np.isnan(result.mean_distance)
    json.dumps(result.to_dict(), allow_nan=False)  # JSON-ready even so
    assert "precision                  0.0000" in format_result(result)


def test_evaluate_picks_rescales_picks_of_another_voxel_size() -> None:
    truth = picks([[10, 10, 10]], ["a"], voxel_size=10.0)
    binned = picks([[5, 5, 5]], voxel_size=20.0)
    result = evaluate_picks(truth, binned, radius=1.0)
    assert result.tp == 1 and "rescaled" in result.warnings[0]
    assert (
        evaluate_picks(truth, picks([[10, 10, 10]], voxel_size=None), radius=1.0).tp == 1
    )  # unknown voxel size: the truth's voxels
    with pytest.raises(CryoetInputError, match="needs a particle-id map"):
        evaluate_picks(truth, binned, rule="shrec")


def test_result_to_dict_is_json(shrec_case) -> None:
    truth, pred, ids = shrec_case
    document = json.loads(json.dumps(score_shrec(truth, pred, ids, skip=["4v94"]).to_dict()))
    assert document["tp"] == 2 and document["skip"] == ["4v94"]
    assert document["confusion"]["matrix"] == [[2, 0], [2, 0]]
    assert {row["class"] for row in document["per_class"]} == {"1bxn", "3qm1"}


# ---------------------------------------------------------------------------------------------
# crop level


def test_crop_metrics_match_scikit_learn() -> None:
    labels = np.array([1, 1, 0, 0, 1, 0, 1, 0], dtype=bool)
    scores = np.array([0.9, 0.4, 0.35, 0.8, 0.7, 0.1, 0.6, 0.2])
    assignment = np.array([1, 0, 0, 1, 1, 0, 1, 1])
    metrics = crop_metrics(labels, scores, assignment)
    assert metrics.auc == pytest.approx(roc_auc_score(labels, scores)) == pytest.approx(0.8125)
    assert metrics.f1 == pytest.approx(f1_score(labels, assignment)) == pytest.approx(2 / 3)
    assert (metrics.n_crops, metrics.n_particle) == (8, 4)
    assert np.isnan(crop_metrics(np.ones(3, bool), np.arange(3.0)).auc)  # one class only: undefined


def test_crop_labels_by_centre_and_by_occupancy() -> None:
    centres = np.array([[4.0, 4.0, 4.0], [4.0, 4.0, 12.0], [4.0, 4.0, 20.0]])
    truth = np.array([[4.0, 4.0, 7.4], [4.0, 4.0, 24.0]])  # inside crop 0; on crop 2's open edge
    assert crop_labels_by_centre(centres, 8, truth).tolist() == [True, False, False]
    assert crop_labels_by_centre(centres, (8, 8, 9), truth).tolist() == [True, False, True]
    occupancy = np.zeros((8, 8, 24), dtype=np.int16)
    occupancy[:, :, 10:12] = 5  # 2 of crop 1's 8 x-columns
    assert crop_labels_by_occupancy(centres, 8, occupancy, 0.25).tolist() == [False, True, False]
    assert crop_labels_by_occupancy(centres, 8, occupancy, 0.3).tolist() == [False, False, False]


# ---------------------------------------------------------------------------------------------
# groups and curves


def test_group_class_agreement() -> None:
    truth = picks([[0, 0, 0], [0, 0, 20], [0, 0, 40], [0, 0, 60]], ["a", "a", "b", "b"])
    pred = picks(
        [[0, 0, 1], [0, 0, 21], [0, 0, 41], [0, 0, 61], [0, 0, 90]], clusters=[0, 0, 1, 0, 1]
    )
    result = score_distance(truth, pred, radius=2)
    agreement = group_class_agreement(result, truth.features["class"], pred.features["cluster"])
    assert agreement.n_matched == 4
    assert agreement.table.loc["a", 0] == 2 and agreement.table.loc["b", 1] == 1
    assert agreement.ari == pytest.approx(adjusted_rand_score(["a", "a", "b", "b"], [0, 0, 1, 0]))


def test_ranking_curves_by_hand(tmp_path: Path) -> None:
    truth = picks([[0, 0, 0], [0, 0, 20], [0, 0, 40]], ["a", "a", "a"])
    pred = picks(
        [[0, 0, 1], [0, 0, 80], [0, 0, 0.5], [0, 0, 21], [0, 0, 90]],
        scores=[0.9, 0.8, 0.7, 0.6, 0.5],
    )
    result = score_distance(truth, pred, radius=2)
    assert list(result.pred_status) == ["duplicate", "fp", "tp", "tp", "fp"]
    curves = ranking_curves(result, pred.scores)
    # a particle counts at the highest-scored pick on it, whichever pick the matching credited
    assert curves.precision.tolist() == pytest.approx([1.0, 0.5, 1 / 3, 0.5, 0.4])
    assert curves.recall.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert curves.precision[-1] == pytest.approx(result.precision)
    assert curves.average_precision == pytest.approx(1 / 3 * 1.0 + 1 / 3 * 0.5)
    assert result.f1 == pytest.approx(
        0.5
    )  # P 0.4, R 2/3 over all picks; stopping at 0.6 does better
    assert curves.best_f1 == pytest.approx(4 / 7) and curves.best_threshold == 0.6
    hits = np.isin(result.pred_status, ["tp", "duplicate"])
    assert curves.roc_auc == pytest.approx(roc_auc_score(hits, pred.scores))
    figure = plot_ranking_curves(curves, title="hand-made")
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    png = save_figure_png(figure, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(CryoetInputError, match="exists"):
        save_figure_png(figure, png)

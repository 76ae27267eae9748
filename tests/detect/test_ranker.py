"""The pick ranker (detect/ranker.py): its features, the count it keeps and the shipped model."""

import numpy as np
import pytest
from scipy import ndimage

from napari_cryoet_particles.detect import ranker
from napari_cryoet_particles.detect.ranker import (
    BANDS_NM,
    RANKER_FEATURES,
    adapted_posteriors,
    band_responses,
    expected_f1,
    neighbourhood_max,
    rank_picks,
    ranker_applies,
    ranker_table,
    stronger_neighbours,
)
from napari_cryoet_particles.detect.volume import make_working_volume
from napari_cryoet_particles.io.volume import Volume


def test_stronger_neighbours_look_only_at_stronger_picks() -> None:
    zyx_nm = np.array([[0.0, 0, 0], [0, 0, 5], [0, 0, 200], [0, 0, 6]])
    radius = np.array([4.0, 2.5, 4.0, 2.0])
    excess = np.array([3.0, 2.0, 1.5, 1.0])
    out = stronger_neighbours(zyx_nm, radius, excess)
    assert out[0, 0] == ranker.FAR_NM and out[0, 2] == 0  # the strongest has none
    np.testing.assert_allclose(out[1], [5.0, 2.0, 1.0])
    assert out[2, 0] == ranker.FAR_NM  # 195 nm to the nearest stronger: capped at FAR_NM
    np.testing.assert_allclose(out[3], [1.0, 0.5, 1.0])  # pick 1 is nearer than pick 0


def test_neighbourhood_max_matches_a_maximum_filter_at_the_points() -> None:
    rng = np.random.default_rng(0)
    volume = rng.normal(size=(6, 7, 8))
    points = np.array([[0, 0, 0], [5, 6, 7], [3, 3, 3], [0, 6, 2]])
    expected = ndimage.maximum_filter(volume, size=3)[tuple(points.T)]
    np.testing.assert_array_equal(neighbourhood_max(volume, points), expected)


def _work(data: np.ndarray):
    return make_working_volume(Volume(data, 10.0), 10.0, 10.0)


def test_band_responses_are_the_same_slab_by_slab(monkeypatch) -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(48, 40, 40)).astype(np.float32)
    data[20:26, 15:21, 15:21] -= 3.0  # a dark particle: bright after the sign flip
    work = _work(data)
    points = np.array([[23.0, 18, 18], [5, 5, 5], [47, 39, 39]])
    whole = band_responses(work, points, threads=2)
    assert whole.shape == (3, len(BANDS_NM))
    assert whole[0, 1] > 5 and abs(whole[1, 1]) < 3  # the particle stands out of the noise
    monkeypatch.setattr(ranker, "SLAB_VOXELS", 20 * 20 * 3)  # three binned planes per slab
    np.testing.assert_allclose(band_responses(work, points, threads=1), whole, atol=1e-3)


def test_ranker_table_has_one_column_per_feature() -> None:
    rng = np.random.default_rng(2)
    work = _work(rng.normal(size=(32, 32, 32)).astype(np.float32))
    zyx = rng.uniform(0, 31, size=(5, 3))
    profiles = rng.normal(size=(5, ranker.PROFILE_SHELLS + 1))
    table = ranker_table(work, zyx, np.linspace(6, 3, 5), np.full(5, 4.0), profiles, 4.0)
    assert table.shape == (5, len(RANKER_FEATURES)) and np.isfinite(table).all()
    np.testing.assert_allclose(table[:, 0], np.linspace(2, -1, 5))  # excess over the threshold


class _Fixed:
    def __init__(self, probability):
        self.probability = np.asarray(probability, float)

    def predict_proba(self, table):
        return np.column_stack([1 - self.probability, self.probability])


def test_rank_picks_keeps_the_count_and_puts_the_most_probable_above_one_half() -> None:
    model = _Fixed([0.2, 0.9, 0.5, 0.7])
    ranked = rank_picks(np.zeros((4, 1)), 2, model)
    assert ranked.count == 2
    np.testing.assert_array_equal(ranked.score >= 0.5, [False, True, False, True])
    assert not (rank_picks(np.zeros((4, 1)), 0, model).score >= 0.5).any()
    assert (rank_picks(np.zeros((4, 1)), 9, model).score >= 0.5).all()
    assert rank_picks(np.zeros((0, 1)), 3, _Fixed([])).count == 0


def test_the_ranker_applies_only_to_the_sizes_it_was_trained_on() -> None:
    assert ranker_applies(7.0, 27.0)
    assert not ranker_applies(80.0, 120.0)
    assert not ranker_applies(2.0, 10.0)


def test_the_shipped_ranker_is_fitted_once_and_cached(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    ranker.shipped_ranker.cache_clear()
    try:
        model = ranker.shipped_ranker()
        cached = list((tmp_path / "napari-cryoet-particles").glob("pick_ranker-*.pkl"))
        assert len(cached) == 1
        ranker.shipped_ranker.cache_clear()
        again = ranker.shipped_ranker()  # read from the cache
        table = np.zeros((3, len(RANKER_FEATURES)))
        table[:, 0] = [-2.0, 0.0, 3.0]
        np.testing.assert_allclose(model.predict_proba(table), again.predict_proba(table))
        assert model.predict_proba(table)[2, 1] > model.predict_proba(table)[0, 1]
        cached[0].write_bytes(b"damaged")
        ranker.shipped_ranker.cache_clear()
        assert ranker.shipped_ranker().predict_proba(table).shape == (3, 2)  # refitted
    finally:
        ranker.shipped_ranker.cache_clear()


def test_a_training_table_of_other_features_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(ranker, "RANKER_FEATURES", ("excess",))
    ranker.shipped_ranker.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="train_pick_ranker"):
            ranker.shipped_ranker()
    finally:
        ranker.shipped_ranker.cache_clear()


def test_adapted_posteriors_find_a_rarer_share_of_particles() -> None:
    rng = np.random.default_rng(3)
    # A classifier calibrated where a third of the picks are particles, on a tomogram where a
    # tenth are: the particles' posteriors near 0.8, the background's near 0.2.
    is_particle = rng.random(4000) < 0.1
    likelihood_ratio = np.where(is_particle, 8.0, 0.5) * rng.lognormal(0, 0.3, 4000)
    training_odds = 0.5  # one particle per two background picks
    probability = likelihood_ratio * training_odds / (1 + likelihood_ratio * training_odds)
    adapted, share = adapted_posteriors(probability, 1 / 3)
    assert abs(share - 0.1) < 0.03
    assert (adapted <= probability + 1e-12).all()  # rarer particles: every posterior lower
    np.testing.assert_allclose(adapted_posteriors(probability, 1 / 3, iterations=0)[0], probability)
    assert adapted_posteriors(np.zeros(0), 0.3)[1] == 0.3


def test_with_the_share_read_a_weak_pick_replaces_a_strong_one_only_if_likely() -> None:
    model = _Fixed([0.30, 0.35, 0.95, 0.05, 0.05, 0.05, 0.05, 0.05])
    model.training_prior_ = 0.5
    table = np.zeros((8, 1))
    table[:, 0] = [1.0, 0.5, -0.5, -1.0, -1.0, -1.0, -1.0, -1.0]  # excess over the threshold
    plain = rank_picks(table, 2, model)
    np.testing.assert_array_equal(plain.score >= 0.5, [False, True, True] + [False] * 5)
    adapted = rank_picks(table, 2, model, adapt_share=True)
    assert adapted.count == 2  # the count is kept
    # the pick below the threshold is a particle even among this rare share: it still joins
    np.testing.assert_array_equal(adapted.score >= 0.5, [False, True, True] + [False] * 5)
    model.probability[2] = 0.6  # likely only where particles are as common as in training
    adapted = rank_picks(table, 2, model, adapt_share=True)
    np.testing.assert_array_equal(adapted.score >= 0.5, [True, True] + [False] * 6)
    assert 0.45 < adapted.score[2] < 0.5  # first back in when the threshold is lowered


def test_expected_f1_counts_expected_hits_against_picks_and_particles() -> None:
    posterior = np.array([0.9, 0.8, 0.3, 0.0])
    chosen = np.array([True, True, False, False])
    assert expected_f1(posterior, chosen) == pytest.approx(2 * 1.7 / (2 + 2.0))
    assert expected_f1(np.zeros(3), np.zeros(3, bool)) == 0.0


def test_the_f1_cut_lets_in_a_pick_likely_enough_for_f1() -> None:
    """A weak pick whose adapted posterior is under one half but over half the expected F1
    is refused by the one-half cut and let in by the F1 cut; the count stays."""
    model = _Fixed([0.45, 0.95, 0.95, 0.95, 0.45, 0.05, 0.05, 0.05])
    model.training_prior_ = 0.5
    table = np.zeros((8, 1))
    table[:, 0] = [1.0, 0.8, 0.6, 0.4, -0.5, -1.0, -1.0, -1.0]
    half = rank_picks(table, 4, model, adapt_share=True)
    f1 = rank_picks(table, 4, model, adapt_share=True, f1_cut=True)
    assert half.particle_share == pytest.approx(f1.particle_share)
    adapted, _ = adapted_posteriors(model.probability, 0.5)
    most_probable = np.array([True, True, True, True, False, False, False, False])
    assert adapted[4] < 0.5 and adapted[4] >= expected_f1(adapted, most_probable) / 2
    assert half.score[4] < 0.5 and f1.score[4] >= 0.5
    assert half.count == f1.count == 4

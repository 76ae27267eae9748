"""One pick per object: picks joined by dense material merge, separate particles stay apart."""

import numpy as np
import pytest
from scipy import ndimage

from napari_cryoet_particles.detect import joined
from napari_cryoet_particles.detect.joined import keep_unjoined, suppress_joined
from napari_cryoet_particles.detect.params import PRESETS
from napari_cryoet_particles.model.normalize import normalize, robust_stats

SHAPE = (40, 48, 96)


def _tomogram(objects: np.ndarray, seed: int = 0) -> np.ndarray:
    """Dark objects (-1) in Gaussian noise, normalised like the working volume (particles dark)."""
    volume = ndimage.gaussian_filter(np.where(objects, -1.0, 0.0).astype(np.float32), 0.7)
    volume += np.random.default_rng(seed).normal(0, 0.15, SHAPE).astype(np.float32)
    return normalize(volume, robust_stats(volume))


def _balls(centres, radius: float) -> np.ndarray:
    zz, yy, xx = np.indices(SHAPE)
    inside = np.zeros(SHAPE, dtype=bool)
    for z, y, x in centres:
        inside |= (zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
    return inside


def _kept(volume: np.ndarray, zyx, radius) -> list[int]:
    return suppress_joined(
        lambda box: volume[box].copy(),
        SHAPE,
        np.array(zyx, float),
        np.array(radius),
        10.0,
        PRESETS["default"].peaks,
    ).tolist()


def test_two_picks_on_one_elongated_particle_become_one() -> None:
    zz, yy, xx = np.indices(SHAPE)
    rod = ((zz - 20) ** 2 + (yy - 24) ** 2 <= 16) & (xx >= 30) & (xx <= 60)
    volume = _tomogram(rod)
    assert _kept(volume, [(20, 24, 35), (20, 24, 53)], [3.5, 3.5]) == [0]


@pytest.mark.parametrize("gap", [0.5, 2.5])
def test_touching_or_nearly_touching_small_particles_stay_two(gap: float) -> None:
    """Two 3-voxel balls (5-6 nm proteins at 10 Å) with ``gap`` voxels between their surfaces."""
    centres = [(20, 24, 40), (20, 24, 46 + gap)]
    volume = _tomogram(_balls(centres, 3.0))
    assert _kept(volume, centres, [3.5, 3.5]) == [0, 1]


def test_separate_particles_with_solvent_between_stay_two() -> None:
    centres = [(20, 24, 30), (20, 24, 44)]
    volume = _tomogram(_balls(centres, 4.0))
    assert _kept(volume, centres, [2.5, 2.5]) == [0, 1]


def test_a_pick_dropped_by_a_stronger_one_drops_nothing_itself() -> None:
    pairs = np.array([[0, 1], [1, 2]])
    assert keep_unjoined(3, pairs, np.array([True, True])).tolist() == [0, 2]
    assert keep_unjoined(3, pairs, np.array([False, True])).tolist() == [0, 1]


def test_the_result_does_not_depend_on_the_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    zz, yy, xx = np.indices(SHAPE)
    rods = ((zz - 12) ** 2 + (yy - 24) ** 2 <= 16) & (xx >= 10) & (xx <= 40)
    rods |= ((zz - 30) ** 2 + (yy - 24) ** 2 <= 16) & (xx >= 50) & (xx <= 80)
    volume = _tomogram(rods | _balls([(30, 10, 20), (30, 10, 34)], 4.0))
    zyx = [(12, 24, 14), (12, 24, 30), (30, 24, 55), (30, 24, 72), (30, 10, 20), (30, 10, 34)]
    radius = [3.5] * 4 + [2.5, 2.5]
    whole = _kept(volume, zyx, radius)
    monkeypatch.setattr(joined, "SLAB", 8)
    monkeypatch.setattr(joined, "SIDE", 16)
    assert _kept(volume, zyx, radius) == whole == [0, 2, 4, 5]


def test_no_pairs_keeps_every_pick() -> None:
    volume = _tomogram(np.zeros(SHAPE, dtype=bool))
    assert _kept(volume, [(5, 5, 5)], [3.0]) == [0]
    assert _kept(volume, np.zeros((0, 3)), np.zeros(0)) == []

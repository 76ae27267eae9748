"""What a pick sits on: compact blobs are kept; tubes, sheets, gold and the faces are not."""

import numpy as np
import pytest

from napari_cryoet_particles.detect.config import DetectionConfig
from napari_cryoet_particles.detect.params import PRESETS
from napari_cryoet_particles.detect.pipeline import detect_particles, working_voxel_size
from napari_cryoet_particles.detect.structure import (
    ON_GOLD,
    ON_STRUCTURE,
    antipodal_directions,
    at_faces,
    structure_bin,
    structure_labels,
    structure_volume,
)
from napari_cryoet_particles.io.volume import Volume

SHAPE = (48, 96, 96)
BLOBS = np.array([[24, 20, 20], [24, 20, 76], [24, 76, 76], [12, 76, 22], [36, 50, 50]])
BEAD = np.array([24, 46, 86])


def _ball(shape: tuple[int, ...], centre: np.ndarray, radius: float) -> np.ndarray:
    grid = np.indices(shape, dtype=float)
    return np.sum((grid - centre.reshape(3, 1, 1, 1)) ** 2, axis=0) <= radius**2


def toy_scene(seed: int = 0, noise: float = 0.3) -> np.ndarray:
    """Protein-positive density: five blobs (radius 4), a tube along y (radius 3), a sheet
    (4 voxels thick, normal along x) and a bead ten times denser, plus a little noise."""
    density = np.zeros(SHAPE, dtype=np.float32)
    for centre in BLOBS:
        density[_ball(SHAPE, centre, 4.0)] = 1.0
    z, y, x = np.indices(SHAPE)
    density[(z - 24) ** 2 + (x - 48) ** 2 <= 9] = 1.0  # tube along y at x = 48
    density[(np.abs(x - 6) <= 2) & (y >= 30) & (y <= 66)] = 1.0  # sheet at x = 6
    density[_ball(SHAPE, BEAD, 4.0)] = 10.0
    rng = np.random.default_rng(seed)
    return density + rng.normal(0, noise, SHAPE).astype(np.float32)


def test_directions_cover_the_half_sphere():
    units = antipodal_directions(32)
    assert np.allclose(np.linalg.norm(units, axis=1), 1.0)
    probes = np.random.default_rng(0).normal(size=(500, 3))
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    nearest = np.degrees(np.arccos(np.abs(probes @ units.T).max(axis=1)))
    assert nearest.max() < 25.0


def test_labels_tell_blobs_from_tube_sheet_and_gold():
    density = toy_scene()
    structure = structure_volume(-density, 10.0, sigma_nm=1.0)  # the function takes dark particles
    tube = np.array([[24, 10, 48], [24, 48, 48], [24, 85, 48]])
    sheet = np.array([[24, 40, 6], [24, 55, 6]])
    points = np.concatenate([BLOBS, tube, sheet, BEAD[None]]).astype(float)
    labels = structure_labels(
        structure, points, np.full(len(points), 3.0), PRESETS["default"].structure
    )
    assert list(labels[: len(BLOBS)]) == [""] * len(BLOBS)
    assert set(labels[len(BLOBS) : -1]) == {ON_STRUCTURE}
    assert labels[-1] == ON_GOLD


def test_blobs_in_a_crowd_are_not_a_tube():
    """Touching neighbours on both sides fill some reach distances, not all of them."""
    density = np.zeros((32, 32, 64), dtype=np.float32)
    centres = [np.array([16, 16, x]) for x in (16, 25, 34, 43)]
    for centre in centres:
        density[_ball(density.shape, centre, 3.5)] = 1.0
    structure = structure_volume(-density, 10.0, sigma_nm=1.0)
    labels = structure_labels(
        structure, np.array(centres[1:3], float), np.array([3.0, 3.0]), PRESETS["default"].structure
    )
    assert list(labels) == ["", ""]


def test_faces():
    inside = at_faces(
        np.array([[5.0, 5.0, 5.0], [3.0, 10.0, 10.0], [10.0, 10.0, 18.5]]),
        np.array([4.0, 4.0, 2.0]),
        (20, 20, 20),
    )
    assert list(inside) == [False, True, True]


def test_the_structure_volume_stays_small_on_huge_tomograms():
    assert structure_bin((200, 512, 512), 2) == 2
    assert structure_bin((512, 512, 512), 2) == 2
    assert structure_bin((500, 1024, 1024), 2) == 4


def test_coarse_tomograms_are_not_upsampled():
    assert working_voxel_size(10.0, 40.0) == 40.0
    assert working_voxel_size(10.0, 7.0) == 10.0
    assert working_voxel_size(None, 7.0) == 7.0


@pytest.mark.slow
def test_detection_picks_the_blobs_only():
    """The toy scene end to end: blobs are picked; the tube, the sheet, the bead and the faces not."""
    volume = Volume(-toy_scene(noise=0.2), 10.0)  # particles dark, as in a raw tomogram
    config = DetectionConfig(keep_score_map=False, threads=1, groups=0, polarity="dark")
    picks = detect_particles(volume, config=config).picks
    near_blob = np.linalg.norm(picks.zyx[:, None] - BLOBS[None], axis=2).min(axis=1) <= 3
    found = np.linalg.norm(picks.zyx[:, None] - BLOBS[None], axis=2).min(axis=0) <= 3
    assert found.all(), picks.zyx
    assert near_blob.all(), picks.zyx[~near_blob]
    kept = detect_particles(
        volume, config=DetectionConfig(**{**config.__dict__, "keep_structures": True})
    ).picks
    assert len(kept) > len(picks)

"""Reject a structure: picks on the extended bodies of density a rejected pick lies on."""

import numpy as np
import pandas as pd
import pytest

from napari_cryoet_particles.detect.bodies import (
    BODY_PARAMS,
    bodies_at,
    body_spans,
    density_bodies,
    picks_on_rejected_structures,
)
from napari_cryoet_particles.detect.config import DetectionResult
from napari_cryoet_particles.detect.refine import RefineConfig, rejected_structures
from napari_cryoet_particles.io import Volume
from napari_cryoet_particles.io.picks import Picks

SHAPE = (56, 64, 64)
SIZE = 10.0  # Å: 1 nm voxels
#: Largest particle diameter searched (nm): bodies of 30 nm (2.5×) are extended.
DIAMETER = 12.0
TUBE = [np.array([14.0, 20, x]) for x in range(8, 57, 8)]  # along x, 2 voxels in radius
SHEET = [np.array([42.0, y, x]) for y in (16, 28, 40) for x in (12, 24, 36)]  # z 41-43
BLOBS = [np.array(c, dtype=float) for c in ((14, 44, 12), (14, 44, 32), (28, 52, 50), (28, 8, 50))]


def _scene(seed: int = 0) -> np.ndarray:
    """Particles dark on noise: a tube 52 voxels long, a sheet 44 × 44, four separate blobs."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(SHAPE, dtype=np.float32)
    density = np.zeros(SHAPE, dtype=np.float32)
    density[((z - 14) ** 2 + (y - 20) ** 2 <= 4) & (x >= 6) & (x <= 58)] = 1.0
    density[(np.abs(z - 42) <= 1) & (y >= 6) & (y <= 50) & (x >= 4) & (x <= 48)] = 1.0
    for c in BLOBS:
        density[(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= 16] = 1.0
    return rng.normal(0.0, 0.3, SHAPE).astype(np.float32) - density


PICKS = np.array(TUBE + SHEET + BLOBS)
ON_TUBE = np.arange(len(PICKS)) < len(TUBE)
ON_SHEET = (np.arange(len(PICKS)) >= len(TUBE)) & (np.arange(len(PICKS)) < len(TUBE) + len(SHEET))
ON_BLOB = ~(ON_TUBE | ON_SHEET)
NONE = np.zeros((0, 3))


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return _scene()


def _dropped(volume, rejected, kept=NONE, dark=True) -> np.ndarray:
    return picks_on_rejected_structures(
        volume, SIZE, PICKS, np.reshape(rejected, (-1, 3)), kept, DIAMETER, particles_dark=dark
    )


def test_rejecting_a_pick_on_the_tube_drops_the_structures_and_keeps_the_blobs(scene) -> None:
    dropped = _dropped(scene, TUBE[3])
    assert dropped[ON_TUBE].all() and dropped[ON_SHEET].all()
    assert not dropped[ON_BLOB].any()


def test_rejecting_a_pick_on_a_blob_drops_nothing(scene) -> None:
    assert not _dropped(scene, BLOBS[1]).any()
    assert not _dropped(scene, BLOBS[1] + [1.5, 0, 0]).any()  # a repeat hit beside its centre


def test_nothing_is_dropped_without_rejections(scene) -> None:
    assert not _dropped(scene, NONE).any()


def test_an_accepted_pick_keeps_its_body_and_a_rejection_on_it_spreads_nothing(scene) -> None:
    dropped = _dropped(scene, TUBE[0], kept=np.array([SHEET[4]]))
    assert dropped[ON_TUBE].all()
    assert not dropped[ON_SHEET].any() and not dropped[ON_BLOB].any()
    assert not _dropped(scene, TUBE[0], kept=np.array([TUBE[5]])).any()


def test_bright_particles_give_the_same_bodies(scene) -> None:
    assert np.array_equal(_dropped(-scene, TUBE[2], dark=False), _dropped(scene, TUBE[2]))


def test_bodies_are_separate_and_their_spans_tell_a_tube_from_a_blob(scene) -> None:
    bodies = density_bodies(scene, SIZE, True)
    assert bodies.factor == 2
    labels = bodies_at(bodies, PICKS, 1)
    assert len(set(labels[ON_TUBE])) == 1 and len(set(labels[ON_SHEET])) == 1
    assert len(set(labels[ON_BLOB])) == len(BLOBS) and 0 not in labels
    assert bodies.span_nm[labels[0]] >= BODY_PARAMS.extended_diameters * DIAMETER
    assert (bodies.span_nm[labels[ON_BLOB]] < BODY_PARAMS.rejected_diameters * DIAMETER).all()


def test_span_of_a_rod_is_its_length() -> None:
    labels = np.zeros((5, 5, 40), dtype=int)
    labels[2, 2, 5:35] = 1
    assert body_spans(labels, 1)[1] == pytest.approx(np.sqrt(30**2 - 1), rel=1e-6)


def _result(picks: Picks, inverted: bool = False) -> DetectionResult:
    return DetectionResult(
        picks, None, SIZE, np.zeros(3), np.ones(3), SHAPE, info={"inverted": inverted}
    )


def test_refine_drops_candidates_on_a_rejected_structure_and_never_a_mark(scene) -> None:
    candidates = Picks(PICKS, SIZE, pd.DataFrame({"score": np.full(len(PICKS), 0.9)}))
    marks = candidates.subset(np.array([2, len(TUBE) + 1, len(PICKS) - 1]))
    marks.features["status"] = ["rejected", "accepted", "accepted"]
    config = RefineConfig()
    config.detection.max_diameter_nm = DIAMETER
    dropped = rejected_structures(_result(candidates), marks, Volume(scene, SIZE), config)
    assert dropped[ON_TUBE].all() and not dropped[~ON_TUBE].any()
    assert not rejected_structures(_result(candidates), marks, None, config).any()
    smaller = Volume(scene[:-2], SIZE)  # not the tomogram the candidates were found in
    assert not rejected_structures(_result(candidates), marks, smaller, config).any()

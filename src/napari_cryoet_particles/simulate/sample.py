"""The small sample tomogram behind napari's File > Open Sample: a real, small simulation.

64 x 128 x 128 voxels of 10 Å with the default (realistic, hard) imaging: SHREC 2021 proteins
at SHREC crowding, one vesicle and two gold fiducials, tilt series ±60° every 2°, CTF, noise
and weighted back-projection. A few seconds on one core.
"""

from dataclasses import dataclass

import numpy as np

from napari_cryoet_particles.io.picks import Picks
from napari_cryoet_particles.jobs import CancelToken, Job, run_job
from napari_cryoet_particles.simulate.simulator import SimulationConfig, simulate_job

SAMPLE_SHAPE = (64, 128, 128)


@dataclass
class SimulatedTomogram:
    """A simulated tomogram (zyx, float32) with its voxel size (Å) and exact truth.

    ``truth`` lists every object with ``features["class"]`` (PDB id, ``vesicle`` or
    ``fiducial``); ``occupancy`` holds 1 + the object's row in ``truth``; ``class_mask`` the
    SHREC 2021 class numbers; ``grandmodel`` the noise-free phantom (protein positive).
    """

    volume: np.ndarray
    voxel_size: float
    truth: Picks
    occupancy: np.ndarray | None = None
    class_mask: np.ndarray | None = None
    grandmodel: np.ndarray | None = None


def make_sample_dataset(
    seed: int = 0, shape: tuple[int, int, int] = SAMPLE_SHAPE
) -> SimulatedTomogram:
    """Simulate the sample tomogram (deterministic for a seed)."""
    return run_job(sample_dataset_job(seed, shape))


def sample_dataset_job(
    seed: int = 0, shape: tuple[int, int, int] = SAMPLE_SHAPE, cancel: CancelToken | None = None
) -> Job[SimulatedTomogram]:
    """:func:`make_sample_dataset` as a job (progress, cancel), for a GUI's worker thread."""
    config = SimulationConfig(shape=tuple(shape), seed=seed, n_vesicles=1, n_fiducials=2)
    result = yield from simulate_job(config, cancel=cancel)
    truth = result.truth
    truth.tomogram = "sample"
    return SimulatedTomogram(
        result.reconstruction,
        result.voxel_size,
        truth,
        result.phantom.occupancy,
        result.phantom.class_mask,
        result.grandmodel,
    )

"""The small sample tomogram behind napari's File > Open Sample (placeholder generator).

Dark Gaussian blobs on a noisy background; the simulator replaces this with a real simulation.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from napari_cryoet_particles.io.picks import Picks


@dataclass
class SimulatedTomogram:
    """A simulated tomogram (zyx, float32) with its voxel size (Å) and exact truth."""

    volume: np.ndarray
    voxel_size: float
    truth: Picks
    occupancy: np.ndarray | None = None
    class_mask: np.ndarray | None = None


def make_sample_dataset(seed: int = 0, shape: tuple[int, int, int] = (48, 96, 96)) -> SimulatedTomogram:
    rng = np.random.default_rng(seed)
    n = 20
    margin = 6
    zyx = np.column_stack([rng.uniform(margin, s - margin, n) for s in shape])
    grid = np.indices(shape, dtype=np.float32)
    volume = rng.normal(0.0, 0.5, shape).astype(np.float32)
    occupancy = np.zeros(shape, dtype=np.int16)
    for i, centre in enumerate(zyx):
        d2 = sum((grid[a] - centre[a]) ** 2 for a in range(3))
        volume -= np.exp(-d2 / (2 * 2.0**2)).astype(np.float32)
        occupancy[(d2 <= 9) & (occupancy == 0)] = i + 1
    features = pd.DataFrame({"class": ["blob"] * n, "score": 1.0})
    return SimulatedTomogram(volume, 10.0, Picks(zyx, 10.0, features, "sample"), occupancy)

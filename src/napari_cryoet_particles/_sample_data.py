"""npe2 sample data: a small simulated tomogram and its ground-truth particles."""

from typing import Any

import numpy as np

from napari_cryoet_particles._widgets._layers import tomogram_layer_data, truth_layer_data
from napari_cryoet_particles.simulate import make_sample_dataset

SAMPLE_NAME = "sample tomogram"


def sample_diameter_angstrom(occupancy: np.ndarray | None, voxel_size: float) -> float | None:
    """Equivalent-sphere diameter of the median particle of the occupancy mask (Å)."""
    if occupancy is None:
        return None
    counts = np.bincount(np.asarray(occupancy).ravel().astype(np.int64))[1:]
    counts = counts[counts > 0]
    if counts.size == 0:
        return None
    return float(2 * (3 * np.median(counts) / (4 * np.pi)) ** (1 / 3)) * voxel_size


def make_sample_data() -> list[tuple[Any, dict[str, Any], str]]:
    """The simulated sample as an image layer plus a "truth" points layer."""
    sample = make_sample_dataset()
    image = tomogram_layer_data(sample.volume, sample.voxel_size, SAMPLE_NAME)
    image[1]["metadata"]["sample"] = True
    truth = sample.truth
    truth.tomogram = truth.tomogram or SAMPLE_NAME
    points = truth_layer_data(
        truth,
        "truth",
        diameter_angstrom=sample_diameter_angstrom(sample.occupancy, sample.voxel_size),
        tomogram_shape=tuple(sample.volume.shape),
    )
    points[1]["metadata"]["occupancy"] = sample.occupancy
    return [image, points]

"""npe2 sample data: a small simulated tomogram and its ground-truth particles."""

from typing import Any

from napari_cryoet_particles._widgets._layers import (
    tomogram_layer_data,
    truth_diameter_angstrom,
    truth_layer_data,
)
from napari_cryoet_particles.jobs import CancelToken, Job
from napari_cryoet_particles.simulate import (
    SimulatedTomogram,
    make_sample_dataset,
    sample_dataset_job,
)

SAMPLE_NAME = "sample tomogram"


LayerData = tuple[Any, dict[str, Any], str]


def make_sample_data() -> list[LayerData]:
    """The simulated sample as an image layer plus a "truth" points layer (napari's File > Open
    Sample calls this in the GUI thread; the Tomogram dock runs :func:`sample_data_job` instead)."""
    return sample_layer_data(make_sample_dataset())


def sample_data_job(cancel: CancelToken | None = None) -> Job[list[LayerData]]:
    """:func:`make_sample_data` as a job: simulate (progress, cancel), then build the layers."""
    sample = yield from sample_dataset_job(cancel=cancel)
    return sample_layer_data(sample)


def sample_layer_data(sample: SimulatedTomogram) -> list[LayerData]:
    """A simulated tomogram as an image layer plus a "truth" points layer."""
    image = tomogram_layer_data(sample.volume, sample.voxel_size, SAMPLE_NAME)
    image[1]["metadata"]["sample"] = True
    truth = sample.truth
    truth.tomogram = truth.tomogram or SAMPLE_NAME
    points = truth_layer_data(
        truth,
        "truth",
        diameter_angstrom=truth_diameter_angstrom(truth, sample.occupancy, sample.voxel_size),
        tomogram_shape=tuple(sample.volume.shape),
    )
    points[1]["metadata"]["occupancy"] = sample.occupancy
    return [image, points]

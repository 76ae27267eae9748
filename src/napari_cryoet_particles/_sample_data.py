"""npe2 sample data: a small simulated tomogram and its ground-truth particles, and a real
tomogram of immature HIV-1 virus-like particles with their (derived) centres."""

from importlib.resources import files
from typing import Any

import numpy as np
import pandas as pd

from napari_cryoet_particles._layers import (
    tomogram_layer_data,
    truth_diameter_angstrom,
    truth_layer_data,
)
from napari_cryoet_particles.io import Picks, Volume
from napari_cryoet_particles.jobs import CancelToken, Job
from napari_cryoet_particles.simulate import (
    SimulatedTomogram,
    make_sample_dataset,
    sample_dataset_job,
)

SAMPLE_NAME = "sample tomogram"
#: The real sample (data/hiv_vlp_empiar10164/, origin and licence in data/README.md).
REAL_SAMPLE_FOLDER = "hiv_vlp_empiar10164"
REAL_SAMPLE_NAME = "HIV-1 VLPs (EMPIAR-10164)"
REAL_SAMPLE_CLASS = "hiv_vlp"


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


def make_real_sample_data() -> list[LayerData]:
    """The real sample as an image layer (40 Å voxels, protein bright) plus its 9 VLP centres as
    a "truth" points layer (derived from the published Gag lattice, not published themselves)."""
    volume, centres = real_sample()
    image = tomogram_layer_data(volume.data, volume.voxel_size, REAL_SAMPLE_NAME)
    image[1]["metadata"]["sample"] = True
    centres.tomogram = REAL_SAMPLE_NAME
    radii = centres.features["radius"].to_numpy(dtype=float)
    points = truth_layer_data(
        centres,
        f"{REAL_SAMPLE_NAME} centres",
        diameter_angstrom=2 * float(np.median(radii)) * volume.voxel_size,
        tomogram_shape=volume.shape,
    )
    return [image, points]


def real_sample() -> tuple[Volume, Picks]:
    """The immature HIV-1 VLP tomogram (float32 in memory, stored float16) and the 9 VLP centres
    (zyx voxels, ``radius`` feature in voxels, class ``hiv_vlp``)."""
    folder = files("napari_cryoet_particles") / "data" / REAL_SAMPLE_FOLDER
    with folder.joinpath("tomo_40A.npz").open("rb") as handle, np.load(handle) as archive:
        data = archive["volume"].astype(np.float32)
        voxel_size = float(archive["voxel_size"])
    with folder.joinpath("vlp_centers_derived.csv").open("r") as handle:
        table = pd.read_csv(handle)
    features = pd.DataFrame(
        {"class": REAL_SAMPLE_CLASS, "radius": table["radius_px40"].to_numpy(dtype=float)}
    )
    zyx = table[["z_px40", "y_px40", "x_px40"]].to_numpy(dtype=float)
    return Volume(data, voxel_size), Picks(zyx, voxel_size, features)

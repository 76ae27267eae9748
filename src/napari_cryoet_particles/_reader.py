"""npe2 reader: MRC-family tomograms, OME-Zarr tomograms and SHREC dataset folders.

``get_reader`` never raises: a file the core reader refuses gives a napari warning with the
core's one-line reason and ``None`` (so napari can try another reader).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_cryoet_particles._widgets._layers import (
    DEFAULT_PARTICLE_DIAMETER,
    display_voxel_size,
    truth_layer_data,
    volume_layer_data,
)
from napari_cryoet_particles.io import (
    CryoetInputError,
    is_shrec_folder,
    read_shrec_folder,
    read_tomogram,
)
from napari_cryoet_particles.io.omezarr import is_ome_zarr
from napari_cryoet_particles.io.shrec import ShrecDataset

READABLE_SUFFIXES = (".mrc", ".rec", ".map")
LayerData = tuple[Any, dict[str, Any], str]
ReaderFunction = Callable[[str | list[str]], list[LayerData]]


def _warn(message: str) -> None:
    from napari.utils.notifications import show_warning

    show_warning(message)


def _single_path(path: str | list[str]) -> Path | None:
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None
        path = path[0]
    return Path(path)


def get_reader(path: str | list[str]) -> ReaderFunction | None:
    """Return a reader for a tomogram file, an OME-Zarr tomogram or a SHREC folder, or ``None``."""
    target = _single_path(path)
    if target is None:
        return None
    try:
        if is_ome_zarr(target):
            volume = read_tomogram(target)
            return lambda _path: [volume_layer_data(volume)]
        if target.is_dir():
            if not is_shrec_folder(target):
                return None
            dataset = read_shrec_folder(target)
            return lambda _path: shrec_layers(dataset)
        if target.suffix.lower() not in READABLE_SUFFIXES:
            return None
        volume = read_tomogram(target)
    except CryoetInputError as error:
        _warn(str(error))
        return None
    except OSError as error:
        _warn(f"{target}: cannot be opened ({error})")
        return None
    return lambda _path: [volume_layer_data(volume)]


def particle_diameter_angstrom(dataset: ShrecDataset) -> float:
    """Marker size for the truth: a ``diameter`` feature if the truth has one, else the
    equivalent-sphere diameter of the median particle in the occupancy mask."""
    truth = dataset.truth
    voxel_size = display_voxel_size(dataset.tomogram.voxel_size)
    if truth is not None and "diameter" in truth.features:
        diameters = truth.features["diameter"].to_numpy(dtype=float)
        if np.isfinite(diameters).any():
            return float(np.nanmedian(diameters)) * voxel_size
    if dataset.occupancy is not None:
        counts = _label_sizes(dataset.occupancy)
        if counts.size:
            return float(2 * (3 * np.median(counts) / (4 * np.pi)) ** (1 / 3)) * voxel_size
    return DEFAULT_PARTICLE_DIAMETER


def _label_sizes(labels: np.ndarray, slab_voxels: int = 16_000_000) -> np.ndarray:
    """Voxel count of every non-zero label, read a slab at a time."""
    step = max(1, slab_voxels // max(1, int(np.prod(labels.shape[1:]))))
    total = np.zeros(1, dtype=np.int64)
    for start in range(0, labels.shape[0], step):
        slab = np.asarray(labels[start : start + step]).ravel()
        slab = slab[slab > 0].astype(np.int64)
        if slab.size:
            counts = np.bincount(slab)
            if counts.size > total.size:
                counts[: total.size] += total
                total = counts
            else:
                total[: counts.size] += counts
    return total[1:][total[1:] > 0]


def shrec_layers(dataset: ShrecDataset) -> list[LayerData]:
    """The tomogram plus, when the folder has truth, one ground-truth point per truth line."""
    folder = dataset.folder
    image = volume_layer_data(dataset.tomogram, name=folder.name)
    image[1]["metadata"]["shrec_folder"] = str(folder)
    layers = [image]
    if dataset.truth is not None:
        truth = dataset.truth
        truth.tomogram = truth.tomogram or folder.name
        points = truth_layer_data(
            truth,
            f"{folder.name} truth",
            diameter_angstrom=particle_diameter_angstrom(dataset),
            tomogram_shape=dataset.tomogram.shape,
        )
        points[1]["metadata"]["shrec_folder"] = str(folder)
        points[1]["metadata"]["occupancy"] = dataset.occupancy
        layers.append(points)
    return layers

"""npe2 reader: MRC-family tomograms, OME-Zarr tomograms and SHREC dataset folders.

``get_reader`` never raises: a file the core reader refuses gives a napari warning with the
core's one-line reason and ``None`` (so napari can try another reader).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_cryoet_particles._layers import (
    truth_diameter_angstrom,
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
            diameter_angstrom=truth_diameter_angstrom(
                truth, dataset.occupancy, dataset.tomogram.voxel_size
            ),
            tomogram_shape=dataset.tomogram.shape,
        )
        points[1]["metadata"]["shrec_folder"] = str(folder)
        points[1]["metadata"]["occupancy"] = dataset.occupancy
        layers.append(points)
    return layers

"""SHREC-style dataset folders: ``reconstruction.mrc`` plus optional truth files."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks import SHREC_VOXEL_SIZE, Picks, read_shrec_locations
from napari_cryoet_particles.io.tomogram import read_tomogram
from napari_cryoet_particles.io.units import resolve_voxel_size
from napari_cryoet_particles.io.volume import Volume

RECONSTRUCTION = "reconstruction.mrc"
LOCATIONS = "particle_locations.txt"
OCCUPANCY = "occupancy_mask.mrc"
CLASS_MASK = "class_mask.mrc"
GRAND_MODEL = "grandmodel.mrc"
CLASS_NAMES = "class_names.txt"


@dataclass
class ShrecDataset:
    """A tomogram with its ground truth, as found in a SHREC 2021-style folder."""

    folder: Path
    tomogram: Volume
    truth: Picks | None = None
    occupancy: np.ndarray | None = None
    class_mask: np.ndarray | None = None
    class_names: dict[int, str] | None = None


def read_class_names(path: str | Path) -> dict[int, str]:
    """``class_names.txt`` (``index name`` per line, written beside ``class_mask.mrc``) as a dict."""
    names: dict[int, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        index, _, name = line.strip().partition(" ")
        if not index.isdigit() or not name.strip():
            raise CryoetInputError(path, f"line {number} is not 'index name': {line.strip()!r}")
        names[int(index)] = name.strip()
    return names


def is_shrec_folder(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / RECONSTRUCTION).is_file()


def read_shrec_folder(path: str | Path) -> ShrecDataset:
    """Open a SHREC folder; truth files (and ``class_names.txt``) are read when present."""
    folder = Path(path)
    if not is_shrec_folder(folder):
        raise CryoetInputError(folder, f"not a SHREC dataset folder (no {RECONSTRUCTION})")
    tomogram = read_tomogram(folder / RECONSTRUCTION)
    tomogram.voxel_size = resolve_voxel_size(
        tomogram.voxel_size, default=SHREC_VOXEL_SIZE, warn=False
    )
    truth = None
    if (folder / LOCATIONS).is_file():
        truth = read_shrec_locations(folder / LOCATIONS, voxel_size=tomogram.voxel_size)
        truth.tomogram = folder.name
    masks = {}
    for name in (OCCUPANCY, CLASS_MASK):
        if (folder / name).is_file():
            mask = read_tomogram(folder / name, check_finite=False).data
            if mask.shape != tomogram.shape:
                raise CryoetInputError(
                    folder / name,
                    f"shape {mask.shape} differs from the reconstruction's {tomogram.shape}",
                )
            masks[name] = mask
    names = read_class_names(folder / CLASS_NAMES) if (folder / CLASS_NAMES).is_file() else None
    return ShrecDataset(folder, tomogram, truth, masks.get(OCCUPANCY), masks.get(CLASS_MASK), names)

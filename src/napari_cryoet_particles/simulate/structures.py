"""The 13 SHREC 2021 protein density maps shipped with the package, and the class numbering.

The maps (PolNet project, Apache-2.0, see ``data/LICENSE-polnet-Apache-2.0.txt``) are stored at
the SHREC 2021 voxel size of 10 Å, scaled so that densely packed protein is about 1 (the unit of
every density in the simulator: excess scattering potential over vitreous ice, relative to
protein), cropped to their support, as float16. ``scripts/make_structures_npz.py`` rebuilds them.
A particle's coordinates refer to its map's centre of mass, which is also its centre of rotation.
"""

from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from napari_cryoet_particles.io.errors import CryoetInputError

#: Voxel size (Å) of the shipped maps, hence of every simulated volume.
VOXEL_SIZE = 10.0
#: SHREC 2021 ``class_mask`` numbering (0 = background), largest complex first.
SHREC_CLASSES = (
    "4V94",
    "4CR2",
    "1QVR",
    "1BXN",
    "3CF3",
    "1U6G",
    "3D2F",
    "2CG9",
    "3H84",
    "3GL1",
    "3QM1",
    "1S3X",
    "5MRC",
    "vesicle",
    "fiducial",
)
PROTEIN_CLASSES = SHREC_CLASSES[:13]
VESICLE = "vesicle"
FIDUCIAL = "fiducial"
MEMBRANE = "membrane"
ACTIN = "actin"
MICROTUBULE = "microtubule"
ICE = "ice"
CARBON = "carbon"
#: Cellular clutter (see ``phantom.py``): numbered after SHREC 2021's classes (16-20).
CLUTTER_CLASSES = (MEMBRANE, ACTIN, MICROTUBULE, ICE, CARBON)
#: Every ``class_mask`` class, in order (value = position + 1).
ALL_CLASSES = SHREC_CLASSES + CLUTTER_CLASSES
#: Objects that are not proteins: a pick on one of them is a false pick of a particle picker.
NON_PROTEIN_CLASSES = (VESICLE, FIDUCIAL, *CLUTTER_CLASSES)
#: A voxel belongs to a particle's footprint (occupancy / class mask) above this density.
FOOTPRINT_LEVEL = 0.1
ARCHIVE = "structures_10A.npz"


@dataclass(frozen=True)
class Structure:
    """One protein class: its density map (zyx, float32) and the centre its coordinates mean."""

    name: str
    density: np.ndarray
    centre: np.ndarray

    @property
    def radius(self) -> float:
        """Distance from the centre to the farthest voxel above :data:`FOOTPRINT_LEVEL`."""
        inside = np.argwhere(self.density > FOOTPRINT_LEVEL)
        return float(np.sqrt(((inside - self.centre) ** 2).sum(axis=1).max())) + 0.5

    @property
    def mass(self) -> float:
        return float(self.density.sum())


def class_index(name: str) -> int:
    """The ``class_mask`` value of a class name (1-based; SHREC 2021's, then the clutter's)."""
    return ALL_CLASSES.index(canonical_class(name)) + 1


def canonical_class(name: str, source: object = None) -> str:
    """Normalise a class name from a layout file (``4v94``, ``4V94_fixed`` -> ``4V94``).

    Raises :class:`CryoetInputError` naming ``source`` for a class the simulator cannot draw.
    """
    text = str(name).strip()
    lowered = text.lower()
    if lowered in NON_PROTEIN_CLASSES:
        return lowered
    key = lowered.removesuffix("_fixed").upper()
    if key not in PROTEIN_CLASSES:
        known = ", ".join(ALL_CLASSES)
        raise CryoetInputError(source, f"unknown particle class {text!r} (known: {known})")
    return key


def class_names_text() -> str:
    """The ``class_names.txt`` written beside ``class_mask.mrc``: ``index name`` per line."""
    lines = ["0 background"] + [f"{i} {name}" for i, name in enumerate(ALL_CLASSES, start=1)]
    return "\n".join(lines) + "\n"


@cache
def load_structures() -> dict[str, Structure]:
    """The shipped maps by class name (``1BXN`` ... ``5MRC``), read once."""
    with resources.files("napari_cryoet_particles").joinpath("data", ARCHIVE).open("rb") as handle:
        archive = np.load(handle)
        names = [str(n) for n in archive["names"]]
        structures = {
            name: Structure(
                name,
                np.ascontiguousarray(archive[name], dtype=np.float32),
                np.asarray(archive[f"{name}_centre"], dtype=float),
            )
            for name in names
        }
    missing = set(PROTEIN_CLASSES) - set(structures)
    if missing:
        raise RuntimeError(f"{ARCHIVE} lacks the classes {sorted(missing)}; reinstall the package")
    return structures

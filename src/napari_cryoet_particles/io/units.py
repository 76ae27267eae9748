"""Lengths and voxel sizes: nm, Å and voxels, and what a voxel size is when nothing states one.

Settings speak nm (particle diameters, distances), files and the voxel size speak Å, arrays speak
voxels; every conversion between them is one function here, so no module multiplies by 10 or 5.

A voxel size is a ``float`` in Å, or ``None`` when nothing states it (an MRC header of 0, a CSV
without Å columns, a napari layer without a scale). It stays ``None`` until a step needs a
number; :func:`resolve_voxel_size` is the one rule for that step: the user's value wins, then
the stated one, then the step's default. Detection and training assume
:data:`DEFAULT_VOXEL_SIZE` with one warning, in the CLI and in napari alike; the SHREC formats
define it (their voxels are 1 nm), so reading them assumes it silently.
"""

import warnings
from pathlib import Path

import numpy as np

from napari_cryoet_particles.io.errors import CryoetInputError

ANGSTROM_PER_NM = 10.0
#: The voxel size (Å) assumed when nothing states one: SHREC's and the CZII challenge's 1 nm,
#: and the shipped model's working voxel size.
DEFAULT_VOXEL_SIZE = 10.0
#: Voxel sizes outside this range (Å) are taken for a broken header, not a real tomogram.
PLAUSIBLE_VOXEL_SIZE = (0.1, 1000.0)


def nm_to_angstrom(nm: float) -> float:
    return nm * ANGSTROM_PER_NM


def angstrom_to_nm(angstrom: float) -> float:
    return angstrom / ANGSTROM_PER_NM


def nm_to_voxels(nm: float, voxel_size: float) -> float:
    """A length in nm as a number of voxels of ``voxel_size`` Å."""
    return nm_to_angstrom(nm) / voxel_size


def voxels_to_nm(voxels: float, voxel_size: float) -> float:
    """A number of voxels of ``voxel_size`` Å as a length in nm."""
    return angstrom_to_nm(voxels * voxel_size)


def radius_voxels(diameter_nm: float, voxel_size: float) -> float:
    """The radius, in voxels of ``voxel_size`` Å, of a particle ``diameter_nm`` across."""
    return nm_to_voxels(diameter_nm, voxel_size) / 2.0


def voxel_size_text(voxel_size: float | None) -> str:
    """``"7.84 Å voxels"``, or ``"voxels of unknown size"``: for messages."""
    return "voxels of unknown size" if voxel_size is None else f"{voxel_size:g} Å voxels"


def check_plausible(voxel_size: float, what: str | Path | None = None) -> float:
    """``voxel_size`` as a float, or a :class:`CryoetInputError` (about ``what``) when it is not
    a plausible voxel size (:data:`PLAUSIBLE_VOXEL_SIZE`)."""
    low, high = PLAUSIBLE_VOXEL_SIZE
    if not np.isfinite(voxel_size) or not low <= float(voxel_size) <= high:
        raise CryoetInputError(
            what, f"voxel size {voxel_size:g} Å is implausible (expected {low:g}-{high:g} Å)"
        )
    return float(voxel_size)


def resolve_voxel_size(
    stated: float | None,
    override: float | None = None,
    *,
    default: float | None = None,
    what: str | Path | None = None,
    warn: bool = True,
) -> float | None:
    """The voxel size (Å) to use: the user's ``override`` (checked to be plausible), else the
    ``stated`` one (a header, a file, a layer), else ``default`` (``None``: stays unknown).

    Falling back on ``default`` warns once, naming ``what``, unless ``warn`` is false (a format
    that defines its voxel size, as SHREC's).
    """
    if override is not None:
        return check_plausible(override, what)
    if stated is not None:
        return float(stated)
    if default is not None and warn:
        warnings.warn(
            f"{what or 'volume'}: no voxel size in the header; assuming {default:g} Å",
            stacklevel=2,
        )
    return default


def rescale_voxels(voxels: float | np.ndarray, voxel_size: float, new_voxel_size: float):
    """A length of ``voxels`` voxels of ``voxel_size`` Å as a number of voxels of
    ``new_voxel_size`` Å (resampling a volume)."""
    return voxels * (voxel_size / new_voxel_size)

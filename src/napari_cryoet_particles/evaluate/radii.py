"""Hit radii of the SHREC particle classes, for the distance rule.

The radius of a class is the radius of the sphere, centred on the particle's position, that
encloses the class's shape mask **dilated by one voxel** (6-connected, as SHREC 2021 dilates its
particle-id map by one voxel before looking predictions up in it). With these radii the distance
rule reproduces the official SHREC 2019 evaluation of DeepFinder on model 9 (TP 1914 against the
official 1916, FP 278 against 270; see tests/evaluate/test_validation.py).

The tables below are derived (by :func:`derive_radius_table`) from the reference data in
``tests/data`` (see its README for origins and licences):

- SHREC 2019: the binary 40³ shape masks ``structures_shrec2019_masks/*.mrc`` (DeepFinder examples),
  mask = value > 0.5.
- SHREC 2021: the 10 Å density maps ``structures_10A/*.mrc`` (PolNet, Apache-2.0), mask = density >
  :data:`SHREC2021_MASK_FRACTION` × the map's maximum. That fraction is calibrated so the masks of the
  ten classes both challenges share have the volume of the SHREC 2019 masks (median ratio 1; the
  ratios of all ten lie within 0.92-1.07 of it).

The particle centre is the box centre, voxel ``N // 2`` on each axis. Radii are in voxels of 1 nm
(the voxel of both challenges). Class names are compared case-insensitively and ``4V94_fixed``
means ``4v94`` (:func:`class_key`).
"""

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from scipy import ndimage

#: Shape mask of a SHREC 2021 density map: voxels above this fraction of the map's maximum.
SHREC2021_MASK_FRACTION = 0.0255

#: Hit radius (voxels of 1 nm) of the 12 SHREC 2019 classes.
SHREC2019_RADII: dict[str, float] = {
    "1bxn": 8.60,
    "1qvr": 11.83,
    "1s3x": 5.39,
    "1u6g": 10.05,
    "2cg9": 8.77,
    "3cf3": 9.90,
    "3d2f": 12.25,
    "3gl1": 6.71,
    "3h84": 6.78,
    "3qm1": 5.10,
    "4b4t": 17.58,
    "4d8q": 11.22,
}

#: Hit radius (voxels of 1 nm) of the 13 SHREC 2021 protein classes (no vesicles or fiducials).
SHREC2021_RADII: dict[str, float] = {
    "1bxn": 8.66,
    "1qvr": 11.75,
    "1s3x": 5.48,
    "1u6g": 9.90,
    "2cg9": 8.60,
    "3cf3": 9.49,
    "3d2f": 12.81,
    "3gl1": 6.56,
    "3h84": 6.40,
    "3qm1": 5.10,
    "4cr2": 16.43,
    "4v94": 19.72,
    "5mrc": 19.65,
}

RADIUS_TABLES: dict[str, dict[str, float]] = {
    "shrec2021": SHREC2021_RADII,
    "shrec2019": SHREC2019_RADII,
}


def class_key(name: object) -> str:
    """The key a class name is compared by: lower case, without SHREC 2021's ``_fixed`` suffix."""
    key = str(name).strip().lower()
    return key.removesuffix("_fixed")


def radius_from_mask(mask: np.ndarray, dilation: int = 1) -> float:
    """Radius of the sphere about the box centre (``N // 2``) enclosing ``mask`` dilated ``dilation`` times."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("the mask is empty")
    if dilation > 0:
        cross = ndimage.generate_binary_structure(mask.ndim, 1)
        mask = ndimage.binary_dilation(mask, cross, iterations=dilation)
    centre = np.asarray(mask.shape) // 2
    return float(np.sqrt(((np.argwhere(mask) - centre) ** 2).sum(axis=1)).max())


def derive_radius_table(
    paths: Iterable[str | Path], fraction: float | None = None, dilation: int = 1
) -> dict[str, float]:
    """Radius per class (file stem) from shape masks or density maps.

    ``fraction=None`` reads the files as binary masks (> 0.5); otherwise a voxel belongs to the
    shape when its density exceeds ``fraction`` × the map's maximum.
    """
    import mrcfile

    table = {}
    for path in sorted(Path(p) for p in paths):
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", RuntimeWarning
            )  # "Unrecognised machine stamp" of old files
            with mrcfile.open(path, permissive=True) as mrc:
                data = np.asarray(mrc.data, dtype=np.float32)
        mask = data > 0.5 if fraction is None else data > fraction * data.max()
        table[class_key(path.stem)] = round(radius_from_mask(mask, dilation), 2)
    return table


def choose_radius_table(classes: Iterable[str]) -> str:
    """The name of the first table (SHREC 2021, then 2019) that knows every class, else SHREC 2021."""
    keys = {class_key(c) for c in classes}
    for name, table in RADIUS_TABLES.items():
        if keys <= set(table):
            return name
    return "shrec2021"


def radii_for_classes(
    classes: Iterable[str],
    table: Mapping[str, float] | None = None,
    default: float | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Radius of each particle from its class, and the sorted class names found in neither.

    Unknown classes get ``default`` when given, else NaN (the caller decides whether that is an error).
    """
    keyed = {class_key(k): float(v) for k, v in (table or {}).items()}
    radii, unknown = [], set()
    for name in classes:
        key = class_key(name)
        if key in keyed:
            radii.append(keyed[key])
        else:
            radii.append(np.nan if default is None else float(default))
            if default is None:
                unknown.add(str(name))
    return np.asarray(radii, dtype=float), sorted(unknown)

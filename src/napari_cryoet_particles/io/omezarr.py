"""OME-Zarr tomograms: read lazily at the scale level of the wanted voxel size, write a pyramid.

The CZ cryo-ET Data Portal and copick keep tomograms as OME-Zarr (NGFF 0.4, zarr v2): a group
whose ``multiscales`` metadata lists one array per scale level with its voxel size. Reading picks
one level and hands out the ``zarr.Array`` itself, so nothing is loaded until sliced. Writing uses
``ome-zarr``'s writer with levels binned 2× each by a local mean (as copick does).
"""

import math
from pathlib import Path
from typing import Any

import numpy as np

from napari_cryoet_particles.io.atomic import atomic_directory
from napari_cryoet_particles.io.errors import CryoetInputError, reader
from napari_cryoet_particles.io.tomogram import Volume, count_non_finite
from napari_cryoet_particles.io.units import check_plausible

OME_ZARR_SUFFIX = ".zarr"
#: A scale level matches a wanted voxel size when they differ by less than this fraction.
LEVEL_TOLERANCE = 0.02
#: Å per unit of the OME-NGFF space units tomograms use.
UNIT_ANGSTROM = {"angstrom": 1.0, "nanometer": 10.0, "micrometer": 1e4, "": 1.0}


def is_ome_zarr(path: str | Path) -> bool:
    """A folder holding a zarr group with OME ``multiscales`` metadata."""
    path = Path(path)
    attrs = path / ".zattrs"
    if not path.is_dir() or not attrs.is_file():
        return False
    import json

    try:
        return "multiscales" in json.loads(attrs.read_text())
    except (OSError, ValueError):
        return False


def scale_levels(group: Any, path: str | Path | None = None) -> list[tuple[str, float]]:
    """``(array path, voxel size in Å)`` of every scale level of an OME-Zarr group, finest first."""
    try:
        multiscale = group.attrs["multiscales"][0]
        unit = ""
        for axis in multiscale.get("axes", []):
            if isinstance(axis, dict) and axis.get("type") == "space":
                unit = str(axis.get("unit", ""))
                break
        levels = []
        for dataset in multiscale["datasets"]:
            scale = next(
                t["scale"] for t in dataset["coordinateTransformations"] if t["type"] == "scale"
            )
            levels.append((str(dataset["path"]), float(scale[-1]) * UNIT_ANGSTROM.get(unit, 1.0)))
    except (KeyError, IndexError, StopIteration, TypeError, ValueError) as error:
        raise CryoetInputError(
            path, f"OME-Zarr multiscales metadata is incomplete ({error})"
        ) from None
    if not levels:
        raise CryoetInputError(path, "OME-Zarr holds no scale levels")
    return sorted(levels, key=lambda level: level[1])


def choose_level(
    levels: list[tuple[str, float]], voxel_size: float | None, path: str | Path | None = None
) -> tuple[str, float]:
    """The finest level, or the one whose voxel size is ``voxel_size`` (within 2 %)."""
    if voxel_size is None:
        return levels[0]
    path_, size = min(levels, key=lambda level: abs(math.log(level[1] / voxel_size)))
    if abs(size - voxel_size) > LEVEL_TOLERANCE * voxel_size:
        sizes = ", ".join(f"{s:g}" for _, s in levels)
        raise CryoetInputError(path, f"no scale level of {voxel_size:g} Å (levels: {sizes} Å)")
    return path_, size


def volume_from_group(
    group: Any,
    voxel_size: float | None = None,
    path: str | Path | None = None,
    check_finite: bool = True,
) -> Volume:
    """A :class:`Volume` on one level of an open OME-Zarr group (the data stay lazy)."""
    from zarr.errors import MetadataError

    level, size = choose_level(scale_levels(group, path), voxel_size, path)
    try:
        data = group[level]
    except KeyError:
        raise CryoetInputError(path, f"OME-Zarr lacks its scale level {level!r}") from None
    except MetadataError as error:
        raise CryoetInputError(
            path,
            f"OME-Zarr scale level {level!r} has damaged metadata ({error.__cause__ or error})",
        ) from None
    if data.ndim != 3:
        raise CryoetInputError(
            path, f"expected a 3D tomogram, got a {data.ndim}D array of shape {data.shape}"
        )
    if min(data.shape) < 1:
        raise CryoetInputError(path, f"empty volume of shape {data.shape}")
    check_plausible(size, path)
    if check_finite:
        try:
            bad = count_non_finite(data)
        # codecs raise RuntimeError on bad chunks, numcodecs' blosc even SystemError on some
        except (RuntimeError, SystemError, ArithmeticError) as error:
            raise CryoetInputError(
                path, f"OME-Zarr chunks of level {level!r} cannot be decoded ({error})"
            ) from None
        if bad:
            raise CryoetInputError(
                path,
                f"holds {bad} NaN/Inf value{'s' if bad != 1 else ''} out of {data.size} voxels",
            )
    return Volume(data=data, voxel_size=size, path=None if path is None else Path(path))


@reader("an OME-Zarr tomogram")
def read_ome_zarr(
    path: str | Path, voxel_size: float | None = None, check_finite: bool = True
) -> Volume:
    """Open an OME-Zarr tomogram read-only at the level of ``voxel_size`` (default: the finest)."""
    import zarr

    path = Path(path)
    if not path.exists():
        raise CryoetInputError(path, "no such file or folder")
    if not is_ome_zarr(path):
        raise CryoetInputError(path, "not an OME-Zarr image (no multiscales metadata)")
    try:
        group = zarr.open_group(str(path), mode="r")
    except (OSError, ValueError, KeyError) as error:
        raise CryoetInputError(path, f"cannot be opened as zarr ({error})") from None
    return volume_from_group(group, voxel_size, path, check_finite)


def pyramid(data: np.ndarray, levels: int) -> list[np.ndarray]:
    """``levels`` arrays, each the previous binned 2× by a local mean (float32)."""
    from skimage.transform import downscale_local_mean

    arrays = [np.asarray(data, dtype=np.float32)]
    for _ in range(1, levels):
        if min(arrays[-1].shape) < 2:
            break
        arrays.append(downscale_local_mean(arrays[-1], (2, 2, 2)).astype(np.float32))
    return arrays


def write_ome_zarr_group(
    group: Any, data: np.ndarray, voxel_size: float, levels: int = 3, chunks: int = 64
) -> None:
    """Write a tomogram pyramid into an open zarr group (OME-NGFF 0.4, axes z, y, x in Å)."""
    from ome_zarr.writer import write_multiscale

    arrays = pyramid(data, levels)
    axes = [{"name": axis, "type": "space", "unit": "angstrom"} for axis in "zyx"]
    transforms = [
        [{"type": "scale", "scale": [float(voxel_size) * 2**i] * 3}] for i in range(len(arrays))
    ]
    write_multiscale(
        arrays,
        group=group,
        axes=axes,
        coordinate_transformations=transforms,
        storage_options={"chunks": (chunks,) * 3},
    )


def write_ome_zarr(
    path: str | Path,
    data: np.ndarray,
    voxel_size: float,
    levels: int = 3,
    overwrite: bool = False,
    chunks: int = 64,
) -> Path:
    """Write a (z, y, x) tomogram as an OME-Zarr pyramid, atomically (a folder renamed in place)."""
    import zarr

    data = np.asarray(data)
    if data.ndim != 3:
        raise CryoetInputError(path, f"a tomogram must be 3D, got shape {data.shape}")
    with atomic_directory(path, overwrite=overwrite) as tmp:
        write_ome_zarr_group(zarr.open_group(str(tmp), mode="w"), data, voxel_size, levels, chunks)
    return Path(path)

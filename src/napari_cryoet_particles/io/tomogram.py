"""Tomogram files: MRC / REC / MAP through mrcfile, memory-mapped; OME-Zarr folders (lazy) through
:mod:`napari_cryoet_particles.io.omezarr`. :func:`read_tomogram` and :func:`write_tomogram` choose
between them by the path; both fill a :class:`~napari_cryoet_particles.io.volume.Volume`."""

import warnings
from pathlib import Path

import mrcfile
import numpy as np

from napari_cryoet_particles.io.atomic import atomic_write
from napari_cryoet_particles.io.errors import CryoetInputError, reader
from napari_cryoet_particles.io.omezarr import (
    OME_ZARR_SUFFIX,
    is_ome_zarr,
    read_ome_zarr,
    write_ome_zarr,
)
from napari_cryoet_particles.io.units import PLAUSIBLE_VOXEL_SIZE, resolve_voxel_size
from napari_cryoet_particles.io.volume import Volume, count_non_finite

TOMOGRAM_SUFFIXES = (".mrc", ".rec", ".map", ".mrcs", ".st")


def _header_voxel_size(mrc: mrcfile.mrcfile.MrcFile, path: Path) -> float | None:
    sizes = np.array([mrc.voxel_size.x, mrc.voxel_size.y, mrc.voxel_size.z], dtype=float)
    if np.all(sizes == 0):
        return None
    size = float(sizes[0])
    low, high = PLAUSIBLE_VOXEL_SIZE
    if not np.isfinite(size) or not low <= size <= high:
        raise CryoetInputError(
            path,
            f"header voxel size {size:g} Å is implausible (expected {low:g}-{high:g} Å); "
            "fix the header (e.g. with `alterheader`) or give the voxel size explicitly",
        )
    if not np.allclose(sizes, size, rtol=1e-3):
        warnings.warn(
            f"{path}: anisotropic voxel size {sizes.tolist()} Å; using x ({size:g} Å)", stacklevel=4
        )
    return size


@reader("an MRC tomogram")
def read_tomogram(
    path: str | Path, voxel_size: float | None = None, check_finite: bool = True
) -> Volume:
    """Open a 3D MRC-family file memory-mapped (read-only), or an OME-Zarr folder lazily.

    ``voxel_size`` (Å) overrides the MRC header; for OME-Zarr it chooses the scale level.
    Raises :class:`CryoetInputError` with a one-line reason for files that are not MRC, are
    truncated, are not 3D or hold NaN/Inf values.
    """
    path = Path(path)
    if not path.exists():
        raise CryoetInputError(path, "no such file")
    if is_ome_zarr(path) or path.suffix.lower() == OME_ZARR_SUFFIX:
        return read_ome_zarr(path, voxel_size, check_finite)
    if path.is_dir():
        raise CryoetInputError(path, "is a folder, not a tomogram file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            mrc = mrcfile.mmap(path, mode="r", permissive=False)
    except ValueError as error:
        text = str(error)
        if any(
            word in text.lower()
            for word in ("too small", "smaller than", "truncated", "greater than file size")
        ):
            raise CryoetInputError(path, f"MRC file is truncated ({text})") from None
        raise CryoetInputError(path, f"not a valid MRC file ({text})") from None
    except (RuntimeWarning, OSError, EOFError) as error:
        raise CryoetInputError(path, f"not a valid MRC file ({error})") from None
    data = mrc.data
    if data is None or data.ndim != 3:
        ndim = 0 if data is None else data.ndim
        shape = () if data is None else data.shape
        mrc.close()
        raise CryoetInputError(
            path, f"expected a 3D tomogram, got a {ndim}D array of shape {shape}"
        )
    if min(data.shape) < 1:
        mrc.close()
        raise CryoetInputError(path, f"empty volume of shape {data.shape}")
    try:  # the user's value replaces the header, which is then not even looked at
        header = None if voxel_size is not None else _header_voxel_size(mrc, path)
        size = resolve_voxel_size(header, voxel_size, what=path)
    except CryoetInputError:
        mrc.close()
        raise
    if check_finite:
        bad = count_non_finite(data)
        if bad:
            mrc.close()
            raise CryoetInputError(
                path,
                f"holds {bad} NaN/Inf value{'s' if bad != 1 else ''} out of {data.size} voxels",
            )
    # The memory map stays open as long as ``data`` is referenced (numpy keeps the mmap alive).
    return Volume(data=data, voxel_size=size, path=path)


def write_tomogram(
    path: str | Path,
    data: np.ndarray,
    voxel_size: float,
    overwrite: bool = False,
    label: str = "napari-cryoet-particles",
) -> Path:
    """Write a (z, y, x) array as MRC with the voxel size in the header, atomically; a ``.zarr``
    path gets an OME-Zarr pyramid instead.

    The header gets the fixed ``label`` instead of mrcfile's dated one, so the same data gives
    byte-identical files.
    """
    if Path(path).suffix.lower() == OME_ZARR_SUFFIX:
        return write_ome_zarr(path, data, voxel_size, overwrite=overwrite)
    data = np.asarray(data)
    if data.ndim != 3:
        raise CryoetInputError(path, f"a tomogram must be 3D, got shape {data.shape}")
    if data.dtype not in (np.float32, np.int8, np.int16, np.uint8, np.uint16):
        data = data.astype(np.float32)
    with atomic_write(path, overwrite=overwrite) as tmp, warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", RuntimeWarning
        )  # mrcfile warns about NaN; readers refuse them
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(data)
            mrc.voxel_size = float(voxel_size)
            mrc.header.label[0] = label.encode("ascii", "replace")[:80]
            mrc.header.nlabl = 1
    return Path(path)

"""Tomogram files: MRC / REC / MAP through mrcfile, memory-mapped; OME-Zarr folders (lazy) through
:mod:`napari_cryoet_particles.io.omezarr`."""

import mmap
import warnings
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np

from napari_cryoet_particles.io.atomic import atomic_write
from napari_cryoet_particles.io.errors import CryoetInputError, reader
from napari_cryoet_particles.io.units import PLAUSIBLE_VOXEL_SIZE, resolve_voxel_size

TOMOGRAM_SUFFIXES = (".mrc", ".rec", ".map", ".mrcs", ".st")
#: Voxels scanned for NaN/Inf at a time when a tomogram is opened (the whole volume is scanned).
SCAN_VOXELS = 16 * 1024 * 1024


@dataclass
class Volume:
    """A tomogram: a (z, y, x) array, possibly memory-mapped, and its voxel size in Å.

    ``voxel_size`` is ``None`` when the file's header gives none (0 in the header); the step
    that needs a number decides what to assume (see :mod:`napari_cryoet_particles.io.units`).
    """

    data: np.ndarray
    voxel_size: float | None
    path: Path | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]


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


def release_pages(data: np.ndarray) -> None:
    """Let the kernel drop the pages of a memory-mapped file that were read so far.

    Pages of a read-only file mapping count in the process's resident memory until the kernel
    needs them back; dropping them after a pass keeps the resident size of a detection run to
    what it really holds (the file stays in the page cache, so reading it again is cheap).
    Does nothing for arrays that are not memory-mapped.
    """
    base = data
    while base is not None:
        handle = getattr(base, "_mmap", None)
        if isinstance(handle, mmap.mmap):
            if hasattr(handle, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
                handle.madvise(mmap.MADV_DONTNEED)
            return
        base = getattr(base, "base", None)


def count_non_finite(data: np.ndarray) -> int:
    """Count NaN/Inf voxels, a slab at a time so a memory map is never loaded whole."""
    if not np.issubdtype(data.dtype, np.floating):
        return 0
    step = max(1, SCAN_VOXELS // max(1, int(np.prod(data.shape[1:]))))
    bad = 0
    for i in range(0, data.shape[0], step):
        bad += int(np.count_nonzero(~np.isfinite(data[i : i + step])))
        release_pages(data)
    return bad


@reader("an MRC tomogram")
def read_tomogram(
    path: str | Path, voxel_size: float | None = None, check_finite: bool = True
) -> Volume:
    """Open a 3D MRC-family file memory-mapped (read-only), or an OME-Zarr folder lazily.

    ``voxel_size`` (Å) overrides the MRC header; for OME-Zarr it chooses the scale level.
    Raises :class:`CryoetInputError` with a one-line reason for files that are not MRC, are
    truncated, are not 3D or hold NaN/Inf values.
    """
    from napari_cryoet_particles.io.omezarr import OME_ZARR_SUFFIX, is_ome_zarr, read_ome_zarr

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
    from napari_cryoet_particles.io.omezarr import OME_ZARR_SUFFIX, write_ome_zarr

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

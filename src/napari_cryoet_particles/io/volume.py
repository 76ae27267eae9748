"""The tomogram in memory (:class:`Volume`) and what every reader of one does to its array.

The readers that fill a :class:`Volume` are :mod:`.tomogram` (MRC, and the choice by path) and
:mod:`.omezarr`.
"""

import mmap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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

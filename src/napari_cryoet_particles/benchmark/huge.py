"""The huge-tomogram row of the benchmark: time and peak memory on a 2 GB tomogram.

A 1024×1024×500 float32 tomogram is made cheaply from a simulated one (simulating at that size
would take longer than the detections it measures): the source is mirrored along each axis as
often as needed (mirroring leaves no seam for a filter to find), written a slab at a time into a
memory-mapped MRC, so making it never holds the 2 GB.
"""

from pathlib import Path

import numpy as np

#: The huge tomogram's shape (z, y, x): 500 × 1024 × 1024 float32 voxels, 2 GB.
HUGE_SIZE = (500, 1024, 1024)
#: Output z-planes written at a time.
WRITE_SLAB = 16


def mirrored_index(n_out: int, n_in: int) -> np.ndarray:
    """Indices ``0 … n_in-1, n_in-1 … 0, 0 …`` of length ``n_out``: a source axis mirrored."""
    period = np.arange(n_out) % (2 * n_in)
    return np.where(period < n_in, period, 2 * n_in - 1 - period)


def mirror_tile(
    source: str | Path, out: str | Path, shape: tuple[int, int, int] = HUGE_SIZE
) -> Path:
    """Write ``out``: the tomogram ``source`` mirrored along each axis to ``shape`` (float32)."""
    import mrcfile

    from napari_cryoet_particles.io import read_tomogram
    from napari_cryoet_particles.io.atomic import atomic_write
    from napari_cryoet_particles.io.units import DEFAULT_VOXEL_SIZE, resolve_voxel_size
    from napari_cryoet_particles.io.volume import release_pages

    volume = read_tomogram(source)
    index = [mirrored_index(n, m) for n, m in zip(shape, volume.shape, strict=True)]
    out = Path(out)
    with (
        atomic_write(out, overwrite=True) as tmp,
        mrcfile.new_mmap(tmp, shape, mrc_mode=2, overwrite=True) as mrc,
    ):
        mrc.voxel_size = resolve_voxel_size(
            volume.voxel_size, default=DEFAULT_VOXEL_SIZE, warn=False
        )
        for z0 in range(0, shape[0], WRITE_SLAB):
            planes = index[0][z0 : z0 + WRITE_SLAB]
            block = np.asarray(volume.data[planes], dtype=np.float32)
            mrc.data[z0 : z0 + len(planes)] = block[:, index[1]][:, :, index[2]]
            mrc.flush()
            release_pages(mrc.data)
    return out

"""Where training crops come from: memory-mapped tomograms, sampled away from empty regions.

Each tomogram stays a memory map; a source block around each sampled centre is read, normalised
with the tomogram's robust statistics and handed to the augmentations, so no full copy is ever
made. Centres are drawn from a coarse *content map*: the local variance (over 3³ cells) of
4³-voxel block means. Block means average the reconstruction noise away, so the map
is high where there is structure (particles, membranes, the sample slab) and low in the empty
ice or vacuum above and below the slab. A fixed fraction of centres is drawn uniformly so that
background is still seen.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.units import DEFAULT_VOXEL_SIZE, resolve_voxel_size
from napari_cryoet_particles.io.volume import Volume
from napari_cryoet_particles.model.normalize import NormStats, normalize, robust_stats

#: Content-map cell size in working voxels.
CONTENT_CELL = 4
#: Cells (per axis) of the local-variance window of the content map.
CONTENT_WINDOW = 3
#: Slabs of this many MiB are read at a time when building the content map.
SLAB_BYTES = 64 * 2**20


def content_map(data: np.ndarray, cell: int) -> np.ndarray:
    """Local variance of ``cell``³ block means, one value per cell (coarse zyx grid)."""
    nz, ny, nx = data.shape
    cz, cy, cx = max(1, nz // cell), max(1, ny // cell), max(1, nx // cell)
    cell_z, cell_y, cell_x = (min(cell, n) for n in (nz, ny, nx))
    means = np.empty((cz, cy, cx), dtype=np.float64)
    slab_cells = max(1, SLAB_BYTES // max(1, cell_z * ny * nx * data.itemsize))
    for start in range(0, cz, slab_cells):
        stop = min(cz, start + slab_cells)
        slab = np.asarray(
            data[start * cell_z : stop * cell_z, : cy * cell_y, : cx * cell_x], dtype=np.float64
        )
        means[start:stop] = slab.reshape(stop - start, cell_z, cy, cell_y, cx, cell_x).mean(
            axis=(1, 3, 5)
        )
    mean = ndimage.uniform_filter(means, CONTENT_WINDOW, mode="nearest")
    mean_sq = ndimage.uniform_filter(means**2, CONTENT_WINDOW, mode="nearest")
    return np.clip(mean_sq - mean**2, 0, None)


@dataclass
class TomogramSource:
    """One training tomogram: its memory map, statistics and centre-sampling distribution."""

    data: np.ndarray
    stats: NormStats
    voxels_per_world: float
    """Tomogram voxels per working voxel (working voxel size / tomogram voxel size)."""
    bin_factor: int
    """Blocks are read ``bin_factor`` times larger and block-averaged down (finely sampled data)."""
    cell: int
    probabilities: np.ndarray
    """Flattened probabilities over the content-map cells."""
    grid_shape: tuple[int, int, int]
    name: str = ""


def make_source(
    volume: Volume, working_voxel_size: float, crop_size: int, uniform_fraction: float = 0.25
) -> TomogramSource:
    """Prepare a tomogram for sampling (statistics, content map, probabilities)."""
    name = str(volume.path) if volume.path is not None else "tomogram"
    try:
        stats = robust_stats(volume.data)
    except CryoetInputError as error:
        raise CryoetInputError(volume.path, error.problem) from None
    voxel_size = resolve_voxel_size(volume.voxel_size, default=DEFAULT_VOXEL_SIZE, what=name)
    ratio = working_voxel_size / voxel_size
    cell = max(1, round(CONTENT_CELL * ratio))
    content = content_map(volume.data, cell)
    margin_cells = [
        min(int(math.ceil(crop_size / 2 * ratio / cell)), (n - 1) // 2) for n in content.shape
    ]
    allowed = np.zeros_like(content, dtype=bool)
    allowed[tuple(slice(m, n - m) for m, n in zip(margin_cells, content.shape, strict=True))] = True
    weights = np.where(allowed, content, 0.0)
    total = weights.sum()
    uniform = allowed / allowed.sum()
    if total > 0 and np.isfinite(total):
        probabilities = (1 - uniform_fraction) * weights / total + uniform_fraction * uniform
    else:
        probabilities = uniform
    return TomogramSource(
        data=volume.data,
        stats=stats,
        voxels_per_world=float(ratio),
        bin_factor=max(1, int(ratio)),
        cell=cell,
        probabilities=probabilities.ravel(),
        grid_shape=content.shape,
        name=name,
    )


def read_block(source: TomogramSource, centre: np.ndarray, size: int) -> np.ndarray:
    """Normalised ``size``³ block centred on voxel ``centre``; 0 outside the data.

    The block covers ``size * bin_factor`` tomogram voxels per axis, averaged down by
    ``bin_factor``; its index ``(size-1)/2`` sits on ``centre`` (within half a tomogram voxel).
    """
    factor = source.bin_factor
    raw = size * factor
    low = centre.astype(int) - (raw - 1) // 2
    high = low + raw
    shape = np.array(source.data.shape)
    read_low = np.clip(low, 0, shape)
    read_high = np.clip(high, 0, shape)
    block = np.zeros((raw, raw, raw), dtype=np.float32)
    region = tuple(slice(a, b) for a, b in zip(read_low, read_high, strict=True))
    target = tuple(slice(a - lo, b - lo) for a, b, lo in zip(read_low, read_high, low, strict=True))
    block[target] = normalize(source.data[region], source.stats)
    if factor > 1:
        block = block.reshape(size, factor, size, factor, size, factor).mean(axis=(1, 3, 5))
    return block


class CropSampler:
    """Draws source blocks (centres of positive pairs) from one or more tomograms."""

    def __init__(self, sources: Sequence[TomogramSource], half_extent_world: float):
        if not sources:
            raise CryoetInputError(None, "training needs at least one tomogram")
        self.sources = list(sources)
        largest_ratio = max(s.voxels_per_world / s.bin_factor for s in self.sources)
        self.block_size = 2 * int(math.ceil(half_extent_world * largest_ratio)) + 1
        sizes = torch.tensor(
            [float(np.prod(s.data.shape)) / s.voxels_per_world**3 for s in self.sources]
        )
        self.source_probabilities = sizes / sizes.sum()
        self._cell_probabilities = [torch.from_numpy(s.probabilities) for s in self.sources]

    def sample_centre(self, gen: torch.Generator) -> tuple[int, np.ndarray]:
        index = int(torch.multinomial(self.source_probabilities, 1, generator=gen))
        source = self.sources[index]
        cell = int(torch.multinomial(self._cell_probabilities[index], 1, generator=gen))
        cell_zyx = np.array(np.unravel_index(cell, source.grid_shape))
        jitter = torch.randint(0, source.cell, (3,), generator=gen).numpy()
        centre = np.minimum(cell_zyx * source.cell + jitter, np.array(source.data.shape) - 1)
        return index, centre

    def sample(self, count: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` source blocks (count,1,S,S,S) and their source voxels per working voxel (count,)."""
        blocks = np.empty(
            (count, 1, self.block_size, self.block_size, self.block_size), dtype=np.float32
        )
        ratios = torch.empty(count, dtype=torch.float32)
        for i in range(count):
            index, centre = self.sample_centre(gen)
            blocks[i, 0] = read_block(self.sources[index], centre, self.block_size)
            ratios[i] = self.sources[index].voxels_per_world / self.sources[index].bin_factor
        return torch.from_numpy(blocks), ratios

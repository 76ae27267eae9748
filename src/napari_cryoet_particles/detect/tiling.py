"""Dense embedding of a whole tomogram in overlapping tiles, with no seams and bounded memory.

Each tile is read with a halo of at least the encoder's receptive-field radius and only its core
is kept. Tiles start on multiples of the encoder's stride and are clipped (not padded) at the
volume's edges, so every output voxel sees exactly the input a single pass over the whole
volume would give it: the tiled embedding equals the single-pass one up to float rounding.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from napari_cryoet_particles.jobs import CancelToken, Job, Progress


@dataclass(frozen=True)
class Tile:
    """One tile: the input box it reads and where its kept core lands in the output grid."""

    read: tuple[slice, slice, slice]
    keep: tuple[slice, slice, slice]
    out: tuple[slice, slice, slice]


def encoder_geometry(encoder: nn.Module) -> tuple[int, int]:
    """(stride, receptive field in input voxels) of an encoder, with checks."""
    stride = int(getattr(encoder, "stride", 1))
    field = int(getattr(encoder, "receptive_field", 0) or 0)
    if stride < 1:
        raise ValueError(f"encoder stride must be ≥ 1, got {stride}")
    if field <= 0:
        raise ValueError(
            "the encoder has no receptive_field attribute: tiles cannot be made seamless"
        )
    return stride, field


def halo_for(stride: int, receptive_field: int) -> int:
    """Halo (input voxels, a multiple of the stride) covering the receptive-field radius."""
    radius = receptive_field // 2 + stride
    return stride * math.ceil(radius / stride)


def _axis_boxes(
    n: int, count: int, stride: int, halo: int, unit: int
) -> list[tuple[slice, slice, slice]]:
    """(read, keep, out) slices of ``count`` tiles along an axis of length ``n``."""
    core = unit * math.ceil(n / count / unit)
    boxes = []
    for start in range(0, n, core):
        stop = min(n, start + core)
        lo, hi = max(0, start - halo), min(n, stop + halo)
        boxes.append(
            (
                slice(lo, hi),
                slice((start - lo) // stride, (stop - lo) // stride),
                slice(start // stride, stop // stride),
            )
        )
    return boxes


def _largest_read(n: int, count: int, stride: int, halo: int, unit: int) -> int:
    return max(b[0].stop - b[0].start for b in _axis_boxes(n, count, stride, halo, unit))


def plan_tiles(
    shape: tuple[int, int, int], stride: int, halo: int, max_voxels: int, unit: int | None = None
) -> list[Tile]:
    """Tiles covering a volume whose sides are multiples of ``unit`` (default: the stride).

    Starts from one tile and splits the axis whose tiles read the most voxels until a tile (with
    its halo) holds at most ``max_voxels`` input voxels, but never makes a core thinner than the
    halo (below that the halo would dominate the work): a tile then reads up to (3·halo)³ voxels.
    Cores are multiples of ``unit`` (itself a multiple of the stride), e.g. for pooling afterwards.
    """
    unit = unit or stride
    if unit % stride or any(n % unit for n in shape):
        raise ValueError(f"volume shape {shape} is not a multiple of {unit} (stride {stride})")
    counts = [1, 1, 1]
    while True:
        reads = [
            _largest_read(n, c, stride, halo, unit) for n, c in zip(shape, counts, strict=True)
        ]
        if math.prod(reads) <= max_voxels:
            break
        smallest = max(unit, unit * math.ceil(halo / unit))
        splittable = [a for a in range(3) if math.ceil(shape[a] / counts[a]) > smallest]
        if not splittable:
            break
        axis = max(splittable, key=lambda a: reads[a])
        counts[axis] += 1
    per_axis = [_axis_boxes(n, c, stride, halo, unit) for n, c in zip(shape, counts, strict=True)]
    tiles = []
    for bz in per_axis[0]:
        for by in per_axis[1]:
            for bx in per_axis[2]:
                tiles.append(
                    Tile((bz[0], by[0], bx[0]), (bz[1], by[1], bx[1]), (bz[2], by[2], bx[2]))
                )
    return tiles


def padded_shape(shape: tuple[int, ...], unit: int) -> tuple[int, int, int]:
    """``shape`` rounded up to multiples of ``unit``."""
    return tuple(int(unit * math.ceil(n / unit)) for n in shape)  # type: ignore[return-value]


def read_padded(
    read: Callable[[tuple[slice, slice, slice]], np.ndarray],
    shape: tuple[int, int, int],
    box: tuple[slice, slice, slice],
) -> np.ndarray:
    """Read ``box`` of a volume conceptually extended (by repeating its last voxels) to a padded shape."""
    inner = tuple(slice(s.start, min(s.stop, n)) for s, n in zip(box, shape, strict=True))
    tile = read(inner)
    extra = [(0, s.stop - i.stop) for s, i in zip(box, inner, strict=True)]
    if any(e[1] for e in extra):
        tile = np.pad(tile, extra, mode="edge")
    return tile


def tile_at(
    shape: tuple[int, int, int], stride: int, halo: int, start: tuple[int, ...], size: int
) -> Tile:
    """One tile whose core is the cube ``[start, start + size)`` (clipped to ``shape``)."""
    boxes = []
    for n, s0 in zip(shape, start, strict=True):
        s0 = stride * (min(max(0, s0), max(0, n - size)) // stride)
        s1 = min(n, s0 + size)
        lo, hi = max(0, s0 - halo), min(n, s1 + halo)
        boxes.append(
            (
                slice(lo, hi),
                slice((s0 - lo) // stride, (s1 - lo) // stride),
                slice(s0 // stride, s1 // stride),
            )
        )
    return Tile(*(tuple(b[i] for b in boxes) for i in range(3)))  # type: ignore[arg-type]


def embed_tile(
    encoder: nn.Module,
    read: Callable[[tuple[slice, slice, slice]], np.ndarray],
    shape: tuple[int, int, int],
    tile: Tile,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """The (C, core) float32 embedding of one tile's core."""
    data = read_padded(read, shape, tile.read)
    tensor = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))[None, None].to(device)
    with torch.inference_mode():
        embedding = encoder(tensor)[0]
        return embedding[(slice(None), *tile.keep)].float().cpu().numpy()


def embed_tiles_job(
    read: Callable[[tuple[slice, slice, slice]], np.ndarray],
    shape: tuple[int, int, int],
    encoder: nn.Module,
    tiles: list[Tile],
    on_tile: Callable[[Tile, np.ndarray], None],
    device: torch.device | str = "cpu",
    cancel: CancelToken | None = None,
    message: str = "embedding",
) -> Job[None]:
    """Embed ``tiles`` one at a time and hand each core embedding to ``on_tile`` (nothing is kept)."""
    encoder.eval()
    for i, tile in enumerate(tiles):
        if cancel is not None:
            cancel.check()
        on_tile(tile, embed_tile(encoder, read, shape, tile, device))
        yield Progress(i + 1, len(tiles), message)


def embed_volume_job(
    read: Callable[[tuple[slice, slice, slice]], np.ndarray],
    shape: tuple[int, int, int],
    encoder: nn.Module,
    tile_voxels: int = 8_000_000,
    device: torch.device | str = "cpu",
    cancel: CancelToken | None = None,
    dtype: np.dtype = np.float16,
) -> Job[np.ndarray]:
    """Embed a volume tile by tile; return a (C, Z/s, Y/s, X/s) array (float16 by default).

    A tile holds at most ``tile_voxels`` input voxels (halo included), which bounds memory.
    ``read(box)`` returns the float32 input in a box of a volume of ``shape`` (the volume is
    extended by repeating its last voxels to a multiple of the stride). Keeps the whole embedding:
    detection itself streams tiles through :func:`embed_tiles_job` instead.
    """
    stride, field = encoder_geometry(encoder)
    full = padded_shape(shape, stride)
    tiles = plan_tiles(full, stride, halo_for(stride, field), tile_voxels)
    grid = tuple(n // stride for n in full)
    holder: list[np.ndarray] = []

    def keep(tile: Tile, core: np.ndarray) -> None:
        if not holder:
            holder.append(np.zeros((core.shape[0], *grid), dtype=dtype))
        holder[0][(slice(None), *tile.out)] = core

    yield from embed_tiles_job(read, shape, encoder, tiles, keep, device, cancel)
    return holder[0]

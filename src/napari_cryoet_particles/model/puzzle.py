"""Block-shuffled ("puzzled") crops for the spatial-organisation objective.

A crop is cut into a 2×2×2 grid of blocks. A *puzzle permutation* moves whole blocks (their
content is not rotated, so the missing wedge keeps its orientation). The fixed set of
permutations is a group: the 16 symmetries of the block grid that keep z separate from y and x
(swap the two z halves or not, times the 8 symmetries of the 2×2 yx square). Class 0 is the
identity. Being a group makes "puzzle a crop that is already puzzled" another member of the set,
which is what the KL term below relies on.

Convention: ``apply_puzzle(x, p)`` gives ``blocks_out[i] = blocks_in[p[i]]`` (block index
``i = 4*gz + 2*gy + gx``). Applying ``k`` after ``a`` equals applying ``compose[k, a]``.
"""

import itertools

import torch

GRID = (2, 2, 2)


def _position(index: int) -> tuple[int, int, int]:
    return index // 4, (index // 2) % 2, index % 2


def _index(z: int, y: int, x: int) -> int:
    return 4 * z + 2 * y + x


def _generators() -> list[tuple[int, ...]]:
    maps = [
        lambda z, y, x: (1 - z, y, x),
        lambda z, y, x: (z, 1 - y, x),
        lambda z, y, x: (z, y, 1 - x),
        lambda z, y, x: (z, x, y),
    ]
    return [tuple(_index(*f(*_position(i))) for i in range(8)) for f in maps]


def _then(first: tuple[int, ...], second: tuple[int, ...]) -> tuple[int, ...]:
    """Permutation equal to applying ``first`` and then ``second`` (out[i] = in[first[second[i]]])."""
    return tuple(first[second[i]] for i in range(len(first)))


def puzzle_permutations() -> torch.Tensor:
    """The fixed permutation set (P, 8), P = 16, identity first, in a fixed order."""
    identity = tuple(range(8))
    found = [identity]
    frontier = [identity]
    generators = _generators()
    while frontier:
        new = []
        for perm, gen in itertools.product(frontier, generators):
            candidate = _then(perm, gen)
            if candidate not in found:
                found.append(candidate)
                new.append(candidate)
        frontier = new
    return torch.tensor(found, dtype=torch.long)


def composition_table(perms: torch.Tensor) -> torch.Tensor:
    """``table[k, a]`` = index of the permutation equal to applying ``a`` and then ``k``."""
    as_tuples = [tuple(p.tolist()) for p in perms]
    lookup = {p: i for i, p in enumerate(as_tuples)}
    size = len(as_tuples)
    table = torch.empty(size, size, dtype=torch.long)
    for k, a in itertools.product(range(size), range(size)):
        table[k, a] = lookup[_then(as_tuples[a], as_tuples[k])]
    return table


def apply_puzzle(views: torch.Tensor, perms: torch.Tensor) -> torch.Tensor:
    """Rearrange the 2×2×2 blocks of each view (B,C,Z,Y,X) by its permutation (B, 8)."""
    batch, channels, nz, ny, nx = views.shape
    if nz % 2 or ny % 2 or nx % 2:
        raise ValueError(f"puzzled crops need even sizes, got {(nz, ny, nx)}")
    bz, by, bx = nz // 2, ny // 2, nx // 2
    blocks = views.reshape(batch, channels, 2, bz, 2, by, 2, bx).permute(0, 2, 4, 6, 1, 3, 5, 7)
    blocks = blocks.reshape(batch, 8, channels, bz, by, bx)
    index = perms.to(views.device).reshape(batch, 8, 1, 1, 1, 1).expand_as(blocks)
    shuffled = torch.gather(blocks, 1, index)
    shuffled = shuffled.reshape(batch, 2, 2, 2, channels, bz, by, bx).permute(
        0, 4, 1, 5, 2, 6, 3, 7
    )
    return shuffled.reshape(batch, channels, nz, ny, nx)


def frame_blocks(views: torch.Tensor, gap: int) -> torch.Tensor:
    """Zero a frame of ``gap // 2`` voxels inside every face of each 2×2×2 block of (B,C,Z,Y,X).

    Every block then looks the same at its borders wherever it sits, so a puzzle cannot be
    solved from the broken continuity of noise across block borders (the classic jigsaw
    shortcut); the arrangement must be read from the blocks' content. Zero is the mean of
    normalised data.
    """
    half = gap // 2
    if half <= 0:
        return views
    out = views.clone()
    for axis in range(2, 5):
        size = views.shape[axis] // 2
        index = torch.arange(views.shape[axis], device=views.device) % size
        border = (index < half) | (index >= size - half)
        shape = [1] * views.ndim
        shape[axis] = -1
        out = out.masked_fill(border.reshape(shape), 0.0)
    return out

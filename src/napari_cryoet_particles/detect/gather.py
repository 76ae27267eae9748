"""Values of tile-by-tile maps at known points, gathered while the tiles stream past.

Detection finds its blob candidates before the embedding pass, so the embedding pass only needs
the learned maps at those points: the particle probability (linearly interpolated), the k-means
cluster of the nearest coarse voxel and the embedding pooled over the 2³ coarse voxels around
it. Gathering them tile by tile means no whole-tomogram map is ever held. Each point's voxels
are routed to the one tile whose core holds them (tile cores partition the grid), so a value is
the same as if it were read from the whole map (an interpolation sums the same corners, in
another order: equal up to float rounding).
"""

from dataclasses import dataclass

import numpy as np

from napari_cryoet_particles.detect.tiling import Tile


def trilinear_corners(coords: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(corner voxels (N, 8, 3), weights (N, 8)) of linear interpolation at ``coords`` (N, 3).

    Coordinates beyond the grid are clamped to its edge (``map_coordinates(mode="nearest")``).
    """
    coords = np.clip(np.asarray(coords, dtype=float).reshape(-1, 3), 0, np.asarray(shape) - 1)
    low = np.floor(coords).astype(int)
    frac = coords - low
    high = np.minimum(low + 1, np.asarray(shape) - 1)
    bits = np.array([[(k >> 2) & 1, (k >> 1) & 1, k & 1] for k in range(8)])  # (8, 3)
    corners = np.where(bits[None], high[:, None], low[:, None])
    weights = np.prod(np.where(bits[None], frac[:, None], 1.0 - frac[:, None]), axis=2)
    return corners, weights


@dataclass
class Routed:
    """Voxels (M, 3) of a grid, grouped by the tile whose core holds each of them.

    ``scale``: the voxels are on a grid ``scale``× coarser than the tiles' ``out`` boxes (e.g.
    pooled voxels); ``starts``: the tiles' core starts along each axis on that grid.
    """

    voxels: np.ndarray
    order: np.ndarray
    bounds: np.ndarray
    starts: list[np.ndarray]
    scale: int = 1

    def tile_ids(self, starts: np.ndarray) -> np.ndarray:
        """Index (in tile order: z, then y, then x) of the tile holding each of ``starts`` (M, 3)."""
        per_axis = [
            np.searchsorted(self.starts[a], starts[:, a], side="right") - 1 for a in range(3)
        ]
        return (per_axis[0] * len(self.starts[1]) + per_axis[1]) * len(self.starts[2]) + per_axis[2]

    def in_tile(self, tile: Tile) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """(rows of ``voxels`` in ``tile``'s core, their indices inside that core)."""
        start = np.array([[s.start // self.scale for s in tile.out]])
        index = int(self.tile_ids(start)[0])
        rows = self.order[self.bounds[index] : self.bounds[index + 1]]
        return rows, tuple((self.voxels[rows] - start).T)


def route(voxels: np.ndarray, tiles: list[Tile], scale: int = 1) -> Routed:
    """Group grid ``voxels`` (M, 3) by the tile (of a :func:`~.tiling.plan_tiles` grid) holding
    each; ``scale``: the voxels are on a grid ``scale``× coarser than the tiles' ``out``."""
    voxels = np.asarray(voxels, dtype=int).reshape(-1, 3)
    starts = [np.unique([t.out[a].start // scale for t in tiles]) for a in range(3)]
    routed = Routed(voxels, np.zeros(0, dtype=int), np.zeros(0, dtype=int), starts, scale)
    tile_id = routed.tile_ids(voxels)
    routed.order = np.argsort(tile_id, kind="stable")
    routed.bounds = np.searchsorted(tile_id[routed.order], np.arange(len(tiles) + 1))
    return routed


class PointGather:
    """The probability, cluster id and pooled embedding at points, filled tile by tile.

    ``coords`` are the points in coarse-grid coordinates (voxel ``i`` centred on ``i``);
    ``grid`` the coarse grid's shape, ``pool`` the pooling factor (tile cores are multiples of
    it). After every tile has been :meth:`add`-ed, ``probability`` (N,), ``cluster`` (N,) and
    ``embedding`` (N, C) hold the values.
    """

    def __init__(
        self, coords: np.ndarray, grid: tuple[int, int, int], tiles: list[Tile], pool: int
    ) -> None:
        coords = np.asarray(coords, dtype=float).reshape(-1, 3)
        n = len(coords)
        self.pool = pool
        corners, self._weights = trilinear_corners(coords, grid)
        self._corners = route(corners.reshape(-1, 3), tiles)
        nearest = np.clip(np.rint(coords), 0, np.asarray(grid) - 1).astype(int)
        self._nearest = route(nearest, tiles)
        pooled = np.minimum(nearest // pool, np.asarray(grid) // pool - 1)
        self._pooled = route(pooled, tiles, scale=pool)
        self.probability = np.zeros(n)
        self.cluster = np.zeros(n, dtype=int)
        self.embedding: np.ndarray = np.zeros((n, 0), dtype=np.float32)

    def add(
        self, tile: Tile, core: np.ndarray, probability: np.ndarray, cluster: np.ndarray
    ) -> None:
        """Take what falls in ``tile`` from its embedding ``core`` (C, z, y, x) and maps (z, y, x)."""
        rows, local = self._corners.in_tile(tile)
        point = rows // 8
        np.add.at(self.probability, point, self._weights.ravel()[rows] * probability[local])
        rows, local = self._nearest.in_tile(tile)
        self.cluster[rows] = cluster[local]
        if self.embedding.shape[1] != core.shape[0]:
            self.embedding = np.zeros((len(self.probability), core.shape[0]), dtype=np.float32)
        rows, local = self._pooled.in_tile(tile)
        if len(rows):
            base = np.column_stack(local) * self.pool
            offsets = np.indices((self.pool,) * 3).reshape(3, -1).T
            voxels = base[:, None, :] + offsets[None]  # (n, pool³, 3)
            values = core[:, voxels[..., 0], voxels[..., 1], voxels[..., 2]]  # (C, n, pool³)
            self.embedding[rows] = values.mean(axis=2, dtype=np.float32).T

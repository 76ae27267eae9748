"""Values of tile-by-tile maps at known points, gathered while the tiles stream past.

Detection finds its blob candidates before the embedding pass, so the embedding pass only needs
the learned maps at those points: the particle probability (linearly interpolated), the k-means
cluster of the nearest coarse voxel and the embedding pooled over the 2³ coarse voxels around
it. Gathering them tile by tile means no whole-tomogram map is ever held. Each of a point's
voxels is taken from the one tile whose core holds it (tile cores partition the grid), so a value is
the same as if it were read from the whole map (an interpolation sums the same corners: equal
up to float rounding).
"""

from collections.abc import Callable

import numpy as np

from napari_cryoet_particles.detect.tiling import Tile

#: ``score_at(local voxels (M, 3))`` -> (cluster ids (M,), probabilities (M,)) in a tile's core.
ScoreAt = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

#: The 8 corners of a linear-interpolation cell, as 0/1 offsets along z, y, x.
CORNERS = np.array([[(k >> 2) & 1, (k >> 1) & 1, k & 1] for k in range(8)], dtype=bool)


class PointGather:
    """The probability, cluster id and pooled embedding at points, filled tile by tile.

    ``coords`` are the points in coarse-grid coordinates (voxel ``i`` centred on ``i``); ``grid``
    the coarse grid's shape, ``pool`` the pooling factor (tile cores are multiples of it). Each
    tile fills what its core holds: the probability at the points' interpolation corners (their
    weighted sum is taken at the end, as ``map_coordinates(order=1, mode="nearest")`` would), the
    cluster of the nearest voxel and the mean embedding of the pooled voxel. Per point it holds
    three small index triples, eight corner values and the embedding (about 150 bytes with a
    24-channel embedding), whatever the tomogram's size.
    """

    def __init__(self, coords: np.ndarray, grid: tuple[int, int, int], pool: int) -> None:
        top = np.asarray(grid) - 1
        self._coords = np.clip(np.asarray(coords, dtype=float).reshape(-1, 3), 0, top)
        self._low = np.floor(self._coords).astype(np.int32)
        self._high = np.minimum(self._low + 1, top).astype(np.int32)
        self._nearest = np.rint(self._coords).astype(np.int32)
        self._pooled = np.minimum(self._nearest // pool, np.asarray(grid) // pool - 1).astype(
            np.int32
        )
        self.pool = pool
        self._corner_values = np.zeros((len(self._coords), 8), dtype=np.float32)
        self.cluster = np.zeros(len(self._coords), dtype=np.int8)
        self.embedding = np.zeros((len(self._coords), 0), dtype=np.float32)

    @property
    def probability(self) -> np.ndarray:
        """(N,) the probability interpolated at the points (float64), once every tile is in."""
        frac = self._coords - self._low
        weights = np.prod(np.where(CORNERS[None], frac[:, None], 1.0 - frac[:, None]), axis=2)
        return (weights * self._corner_values).sum(axis=1)

    def add(
        self, tile: Tile, core: np.ndarray, probability: np.ndarray, cluster: np.ndarray
    ) -> None:
        """Take what falls in ``tile`` from its embedding ``core`` (C, z, y, x) and maps (z, y, x)."""
        self.add_scored(
            tile, core, lambda local: (cluster[tuple(local.T)], probability[tuple(local.T)])
        )

    def add_scored(self, tile: Tile, core: np.ndarray, score_at: ScoreAt) -> None:
        """Like :meth:`add`, with the maps computed only where the points need them.

        ``score_at(local)`` returns the (cluster id, probability) at voxels ``local`` (M, 3) of the
        tile's core: scoring the few voxels around the points instead of the whole core is most
        of the embedding pass's saving when no whole map is kept.
        """
        start = np.array([s.start for s in tile.out], dtype=np.int32)
        stop = np.array([s.stop for s in tile.out], dtype=np.int32)
        near = np.flatnonzero(np.all((self._high >= start) & (self._low < stop), axis=1))
        corner_rows, corner_voxels = [], []
        for k, bits in enumerate(CORNERS):
            corner = np.where(bits, self._high[near], self._low[near])
            inside = np.all((corner >= start) & (corner < stop), axis=1)
            corner_rows.append((near[inside], k))
            corner_voxels.append(corner[inside] - start)
        rows = _inside(self._nearest, start, stop)
        nearest = self._nearest[rows] - start
        shape = core.shape[1:]
        flat = np.ravel_multi_index(np.vstack([*corner_voxels, nearest]).T, shape)
        unique, inverse = np.unique(flat, return_inverse=True)
        if unique.size:
            cluster, probability = score_at(np.column_stack(np.unravel_index(unique, shape)))
            *at_corners, at_nearest = np.split(inverse, np.cumsum([len(v) for v in corner_voxels]))
            for (corner_rows_k, k), where in zip(corner_rows, at_corners, strict=True):
                self._corner_values[corner_rows_k, k] = probability[where]
            self.cluster[rows] = cluster[at_nearest]
        if self.embedding.shape[1] != core.shape[0]:
            self.embedding = np.zeros((len(self._coords), core.shape[0]), dtype=np.float32)
        rows = _inside(self._pooled, start // self.pool, stop // self.pool)
        if len(rows):
            base = (self._pooled[rows] - start // self.pool) * self.pool
            offsets = np.indices((self.pool,) * 3).reshape(3, -1).T
            voxels = base[:, None, :] + offsets[None]  # (n, pool³, 3)
            values = core[:, voxels[..., 0], voxels[..., 1], voxels[..., 2]]  # (C, n, pool³)
            self.embedding[rows] = values.mean(axis=2, dtype=np.float32).T


def _inside(voxels: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Rows of ``voxels`` (N, 3) inside the box ``[start, stop)``."""
    return np.flatnonzero(np.all((voxels >= start) & (voxels < stop), axis=1))

"""One pick per object: merge picks joined by dense material.

Extent suppression (:func:`~.candidates.suppress_by_extent`) drops a weaker pick within a reach
of a stronger one, which fails on elongated or very large particles: a 26S proteasome or a
mitoribosome gets a second pick at its far end, beyond any reach that would keep two touching
small particles apart. Here two picks are one object when the density stays high on the straight
segment between them: along the segment, the low-passed density (Gaussian of
``joined_sigma_nm``) never drops below ``valley_ratio`` times the lower of its two ends, nor to
the tomogram's median (:class:`~.params.PeakParams`). Between two separate particles the
segment crosses solvent and the density falls to the median or below; inside one object it
does not. The weaker pick of a joined pair is dropped, strongest first, so a chain of patches
on one object keeps its best pick only.
Picks no farther apart than the sum of their blob radii plus a margin are never merged here:
they may be two touching (or nearly touching) particles of their own sizes, whose gap the
low-pass bridges. The margin is the low-pass's sigma when the weaker pick was found at a smaller
blob radius than the stronger one (a patch of a larger object), twice it otherwise.

The numbers were chosen on validation simulations; docs/detection.md ("Joined picks") has what
they and the looser settings measured.

The low-pass is taken on a 2× block mean of the volume (a 2-nm Gaussian is smooth on a 2-voxel
grid at 10 Å; 8× less filtering), block by block (each block with the halo its segments and the
filter need), so memory is bounded by one block, not the tomogram; a pair is measured in the
block that holds its midpoint.
"""

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from napari_cryoet_particles.detect.candidates import (
    Box,
    binned_reader,
    blocks,
    bright_reader,
    grow_box,
)
from napari_cryoet_particles.detect.params import PeakParams
from napari_cryoet_particles.io.units import voxels_to_nm

#: Segment samples per voxel of length.
SAMPLES_PER_VOXEL = 2
#: z-planes and y/x side of the blocks the volume is smoothed in (before halos; the halo is
#: about 20 voxels at 10 Å, so smaller blocks spend most of their time on it).
SLAB = 48
SIDE = 512
TRUNCATE = 3.0


def close_pairs(zyx: np.ndarray, reach: float) -> np.ndarray:
    """Pairs (i, j), i < j, of rows of ``zyx`` closer than ``reach``, as an (N, 2) int array."""
    if len(zyx) < 2:
        return np.zeros((0, 2), dtype=int)
    return cKDTree(zyx).query_pairs(reach, output_type="ndarray").reshape(-1, 2)


def segment_points(start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points of the segments from rows of ``start`` to rows of ``stop`` (N, 3), ends included,
    :data:`SAMPLES_PER_VOXEL` per voxel of length (at least 3): (all points (K, 3), index of
    each segment's first point)."""
    count = np.maximum(
        3, np.ceil(np.linalg.norm(stop - start, axis=1) * SAMPLES_PER_VOXEL).astype(int) + 1
    )
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    segment = np.repeat(np.arange(len(count)), count)
    t = (np.arange(count.sum()) - first[segment]) / (count[segment] - 1)
    points = start[segment] + t[:, None] * (stop - start)[segment]
    return points, first


def segment_profiles(
    read: Callable[[Box], np.ndarray],
    shape: tuple[int, int, int],
    zyx: np.ndarray,
    pairs: np.ndarray,
    sigma: float,
    reach: float,
    check: Callable[[], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(minimum along the segment, lower of its two ends) of the low-passed density, per pair.

    ``read(box)`` gives the volume with particles bright as a new float array; ``sigma`` and
    ``reach`` are in voxels.
    """
    valley = np.zeros(len(pairs))
    ends = np.zeros(len(pairs))
    if len(pairs) == 0:
        return valley, ends
    middle = (zyx[pairs[:, 0]] + zyx[pairs[:, 1]]) / 2.0
    cell = np.clip(np.floor(middle).astype(int), 0, np.asarray(shape) - 1)
    halo = int(np.ceil(reach / 2.0 + TRUNCATE * sigma)) + 2
    for core in blocks(shape, SLAB, SIDE):
        inside = np.all(
            [(cell[:, a] >= s.start) & (cell[:, a] < s.stop) for a, s in enumerate(core)], axis=0
        )
        todo = np.flatnonzero(inside)
        if todo.size == 0:
            continue
        if check is not None:
            check()
        box = grow_box(core, halo, shape)
        block = np.asarray(read(box), dtype=np.float32)
        smooth = ndimage.gaussian_filter(
            block, sigma, mode="nearest", truncate=TRUNCATE, output=block
        )
        origin = np.array([s.start for s in box], dtype=float)
        points, first = segment_points(zyx[pairs[todo, 0]] - origin, zyx[pairs[todo, 1]] - origin)
        values = ndimage.map_coordinates(smooth, points.T, order=1, mode="nearest")
        last = np.append(first[1:], len(values)) - 1
        valley[todo] = np.minimum.reduceat(values, first)
        ends[todo] = np.minimum(values[first], values[last])
    return valley, ends


def joined(valley: np.ndarray, ends: np.ndarray, ratio: float) -> np.ndarray:
    """Boolean per pair: the density never falls to the median nor below ``ratio`` × the lower end."""
    return (valley > 0) & (valley > ratio * np.maximum(ends, 0))


def keep_unjoined(count: int, pairs: np.ndarray, merged: np.ndarray) -> np.ndarray:
    """Indices of picks (ordered best first) kept when each kept pick drops the weaker picks
    it is joined to (a pick dropped by a stronger one drops nothing itself)."""
    stronger: dict[int, list[int]] = {}
    for i, j in pairs[merged]:
        stronger.setdefault(int(max(i, j)), []).append(int(min(i, j)))
    keep = np.ones(count, dtype=bool)
    for j in sorted(stronger):
        if any(keep[i] for i in stronger[j]):
            keep[j] = False
    return np.flatnonzero(keep)


def separated_pairs(zyx: np.ndarray, radius: np.ndarray, reach: float, sigma: float) -> np.ndarray:
    """:func:`close_pairs` (rows ordered best first) far enough apart to be one object's patches.

    A pair must lie farther apart than the sum of its blob ``radius`` plus a margin of the
    low-pass's ``sigma`` when the weaker pick was found at a smaller radius than the stronger one
    (a patch of a larger object), or of twice it when not (two picks of one size are two
    particles unless well apart: the low-pass bridges a gap of about 2 sigma).
    """
    pairs = close_pairs(zyx, reach)
    distance = np.linalg.norm(zyx[pairs[:, 0]] - zyx[pairs[:, 1]], axis=1)
    stronger, weaker = radius[pairs[:, 0]], radius[pairs[:, 1]]
    margin = np.where(stronger > weaker * 1.01, sigma, 2.0 * sigma)
    return pairs[distance > stronger + weaker + margin]


def suppress_joined(
    read: Callable[[Box], np.ndarray],
    shape: tuple[int, int, int],
    zyx: np.ndarray,
    radius: np.ndarray,
    voxel_size: float,
    params: PeakParams,
    check: Callable[[], None] | None = None,
) -> np.ndarray:
    """Indices of the picks ``zyx`` (working voxels, ordered best first; ``radius``: their blob
    radii in working voxels) to keep once picks joined by dense material to a stronger kept pick
    are dropped; ``read`` gives particles dark (the working volume's view), ``voxel_size`` in Å;
    ``params``: the low-pass, reach and valley ratio."""
    zyx = np.asarray(zyx, dtype=float).reshape(-1, 3)
    nm = voxels_to_nm(1.0, voxel_size)
    reach = params.joined_reach_nm / nm
    sigma = max(0.5, params.joined_sigma_nm / nm)
    pairs = separated_pairs(zyx, np.asarray(radius, dtype=float).reshape(-1), reach, sigma)
    if len(pairs) == 0:
        return np.arange(len(zyx))

    read_bright = bright_reader(read)
    if min(shape) >= 8:
        # binned voxel j is centred on full-resolution 2j + 0.5; its 2-voxel box adds 0.25 voxel²
        # of variance along each axis, which the Gaussian leaves out
        valley, ends = segment_profiles(
            binned_reader(read_bright),
            tuple(n // 2 for n in shape),  # type: ignore[arg-type]
            (zyx - 0.5) / 2.0,
            pairs,
            np.sqrt(max(sigma**2 - 0.25, 0.25)) / 2.0,
            reach / 2.0,
            check,
        )
    else:
        valley, ends = segment_profiles(read_bright, shape, zyx, pairs, sigma, reach, check)
    return keep_unjoined(len(zyx), pairs, joined(valley, ends, params.valley_ratio))

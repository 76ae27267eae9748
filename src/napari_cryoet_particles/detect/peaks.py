"""Peak picking with non-maximum suppression, and sub-voxel refinement on the density."""

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.feature import peak_local_max


def pick_peaks(
    score: np.ndarray,
    min_distance: int,
    threshold: float,
    mask: np.ndarray | None = None,
    max_peaks: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``score`` at least ``min_distance`` voxels apart (Chebyshev), above ``threshold``.

    Returns (N, 3) integer zyx positions and their scores, best first. Where two maxima are
    closer than ``min_distance`` only the higher one is kept (non-maximum suppression).
    """
    if mask is not None:
        score = np.where(mask, score, 0.0).astype(score.dtype, copy=False)
    peaks = peak_local_max(
        score,
        min_distance=max(1, int(min_distance)),
        threshold_abs=float(threshold),
        exclude_border=False,
        num_peaks=np.inf if max_peaks is None else int(max_peaks),
    )
    peaks = peaks.reshape(-1, 3)
    values = score[tuple(peaks.T)] if len(peaks) else np.zeros(0, dtype=score.dtype)
    order = np.argsort(-values, kind="stable")
    return peaks[order], values[order]


def suppress_close(zyx: np.ndarray, min_distance: float | np.ndarray) -> np.ndarray:
    """Indices of the points to keep so that none lies within the reach of a better kept one.

    Points are taken in the given order (best first); a point is dropped when it lies closer than
    ``min_distance`` (one number, or one per point: that point's reach) to an earlier kept point.
    Used after refinement, which can move two maxima of one large particle onto one centre, with
    a reach per pick as large as the particle it sits in (see :func:`particle_reach`).
    """
    zyx = np.asarray(zyx, dtype=float).reshape(-1, 3)
    reach = np.broadcast_to(np.asarray(min_distance, dtype=float), (len(zyx),))
    if len(zyx) < 2:
        return np.arange(len(zyx))
    tree = cKDTree(zyx)
    dropped = np.zeros(len(zyx), dtype=bool)
    for i in range(len(zyx)):
        if dropped[i]:
            continue
        for j in tree.query_ball_point(zyx[i], r=reach[i] - 1e-9):
            if j > i:
                dropped[j] = True
    return np.flatnonzero(~dropped)


def particle_reach(
    probability: np.ndarray, peaks: np.ndarray, level: float = 0.5, largest: int = 12
) -> np.ndarray:
    """Distance (grid voxels, at most ``largest``) from each peak to the nearest voxel below ``level``.

    Inside a particle the particle probability stays high up to its edge, so this is about the
    particle's radius at the peak: two maxima closer than that lie in one particle, while the
    centres of two touching particles are two radii apart and both stay. Computed in a small
    window around each peak, so memory does not grow with the volume.
    """
    peaks = np.asarray(peaks, dtype=int).reshape(-1, 3)
    reach = np.zeros(len(peaks))
    shape = np.asarray(probability.shape)
    for i, peak in enumerate(peaks):
        lo = np.maximum(peak - largest, 0)
        hi = np.minimum(peak + largest + 1, shape)
        window = probability[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] >= level
        if not window[tuple(peak - lo)]:
            continue
        if window.all():
            reach[i] = largest
            continue
        reach[i] = min(largest, float(ndimage.distance_transform_edt(window)[tuple(peak - lo)]))
    return reach


def refine_on_density(
    read: Callable[[tuple[slice, slice, slice]], np.ndarray],
    shape: tuple[int, int, int],
    zyx: np.ndarray,
    search: int,
    sigma: float,
) -> np.ndarray:
    """Move each position to the darkest point of the low-passed density within ``search`` voxels.

    ``read(box)`` gives the polarity-corrected volume (particles dark). The score map is coarser
    than the tomogram (the encoder's stride), so its peaks can sit a voxel or two off the particle
    centre; the centre of mass of the density is where the particle is. The minimum is located
    to sub-voxel precision by a parabola through it and its neighbours on each axis.
    """
    zyx = np.asarray(zyx, dtype=float).reshape(-1, 3)
    out = zyx.copy()
    margin = int(np.ceil(3 * sigma)) + 1
    bounds = np.asarray(shape)
    offsets = np.indices((2 * search + 1,) * 3).reshape(3, -1).T - search
    inside = (offsets**2).sum(1) <= search**2
    offsets = offsets[inside]
    for i, point in enumerate(np.rint(zyx).astype(int)):
        lo = np.maximum(point - search - margin, 0)
        hi = np.minimum(point + search + margin + 1, bounds)
        cube = ndimage.gaussian_filter(
            read(tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))), sigma, mode="nearest"
        )
        local = point - lo
        candidates = local + offsets
        ok = np.all((candidates >= 0) & (candidates < cube.shape), axis=1)
        candidates = candidates[ok]
        values = cube[tuple(candidates.T)]
        best = candidates[int(np.argmin(values))]
        shift = np.zeros(3)
        for axis in range(3):
            if 0 < best[axis] < cube.shape[axis] - 1:
                step = np.zeros(3, dtype=int)
                step[axis] = 1
                minus, centre, plus = (
                    cube[tuple(best - step)],
                    cube[tuple(best)],
                    cube[tuple(best + step)],
                )
                curvature = minus - 2 * centre + plus
                if curvature > 0:
                    shift[axis] = float(np.clip(0.5 * (minus - plus) / curvature, -0.5, 0.5))
        out[i] = best + lo + shift
    return out

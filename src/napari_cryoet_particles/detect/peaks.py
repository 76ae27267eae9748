"""Peak picking with non-maximum suppression."""

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree


def pick_peaks(
    score: np.ndarray,
    min_distance: int,
    threshold: float,
    mask: np.ndarray | None = None,
    max_peaks: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``score`` at least ``min_distance`` voxels apart, above ``threshold``.

    Returns (N, 3) integer zyx positions and their scores, best first. A voxel is a candidate
    when it equals the maximum of its ``(2·min_distance + 1)³`` neighbourhood; among candidates
    closer than ``min_distance`` (plateaus, ties) only the best is kept (non-maximum
    suppression). Same result as ``skimage.feature.peak_local_max`` with Euclidean spacing, but
    linear in the number of candidates (scikit-image's spacing step is slow for 10⁵ of them).
    """
    if mask is not None:
        score = np.where(mask, score, 0.0).astype(score.dtype, copy=False)
    distance = max(1, int(min_distance))
    peak = ndimage.maximum_filter(score, size=2 * distance + 1, mode="nearest") == score
    peak &= score >= threshold
    peaks = np.argwhere(peak)
    values = score[tuple(peaks.T)]
    order = np.argsort(-values, kind="stable")
    peaks, values = peaks[order], values[order]
    keep = suppress_close(peaks, float(distance))
    peaks, values = peaks[keep], values[keep]
    if max_peaks is not None:
        peaks, values = peaks[:max_peaks], values[:max_peaks]
    return peaks.reshape(-1, 3), values


def suppress_close(zyx: np.ndarray, min_distance: float | np.ndarray) -> np.ndarray:
    """Indices of the points to keep so that none lies within the reach of a better kept one.

    Points are taken in the given order (best first); a point is dropped when it lies closer than
    ``min_distance`` (one number, or one per point: that point's reach) to an earlier kept point.
    With one reach per point, a large object's pick suppresses the weaker ones inside it (see
    :func:`~.candidates.suppress_by_size`).
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

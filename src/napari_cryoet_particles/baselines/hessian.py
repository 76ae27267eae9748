"""Baseline: broadband-DoG maxima kept only where the density is blob-shaped (Hessian test).

Membranes (sheets) and filaments (tubes) also give DoG maxima. At a bright blob's centre the
Hessian of the smoothed density has three negative eigenvalues of similar size; on a tube two
are large and one is near zero, on a sheet one is large (Frangi's reading of the eigenvalues).
So each maximum of the broadband DoG (:mod:`.broadband`) above ``k`` is kept only when all three
eigenvalues of the Hessian of ``G(hessian_sigma_nm)`` * volume are negative and the smallest in
magnitude is at least ``min_ratio`` times the largest in magnitude; the kept ones then go
through greedy suppression (a rejected tube does not suppress a particle beside it). The score
stays the DoG's robust z; ``blobness`` (that ratio, 0 when not all eigenvalues are negative) is
a feature of each pick.

The Hessian is taken by central differences of the smoothed volume at the candidates only
(3×3×3 neighbourhoods, ``np.linalg.eigvalsh`` on N 3×3 matrices), never for every voxel.
The preset's values and how they were chosen: docs/detection.md, "Classical baselines".
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_cryoet_particles.baselines.broadband import dog_zscore, maxima_half_width
from napari_cryoet_particles.baselines.classical import (
    EDGE_MODE,
    ClassicalResult,
    Stopwatch,
    blob_radius,
    bright_volume,
    local_maxima,
    make_picks,
    result_info,
    suppressed_inside,
)
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.units import nm_to_voxels
from napari_cryoet_particles.io.volume import Volume


@dataclass(frozen=True)
class HessianParams:
    """The candidates' DoG σ pair (nm), threshold ``k`` (robust z), greedy suppression radius
    (nm), the Hessian's smoothing σ (nm), the least eigenvalue ratio of a blob, polarity."""

    sigma_small_nm: float = 2.5
    sigma_large_nm: float = 10.0
    k: float = 4.0
    suppression_nm: float = 16.0
    hessian_sigma_nm: float = 3.0
    min_ratio: float = 0.0
    polarity: str = "dark"
    keep_edges: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.sigma_small_nm < self.sigma_large_nm:
            raise CryoetInputError(
                None,
                f"DoG needs 0 < sigma_small < sigma_large, got {self.sigma_small_nm:g} and "
                f"{self.sigma_large_nm:g} nm",
            )
        if not self.hessian_sigma_nm > 0 or not 0 <= self.min_ratio <= 1:
            raise CryoetInputError(None, "the Hessian needs sigma > 0 and a ratio between 0 and 1")
        if not self.suppression_nm > 0:
            raise CryoetInputError(None, "the suppression radius must be positive")


def hessian_at(smooth: np.ndarray, zyx: np.ndarray) -> np.ndarray:
    """(N, 3, 3) Hessians of ``smooth`` at integer points ``zyx`` by central differences (a
    point on the volume's outer layer takes its neighbour's)."""
    points = np.clip(np.asarray(zyx, int).reshape(-1, 3), 1, np.array(smooth.shape) - 2)
    unit = np.eye(3, dtype=int)

    def at(offset: np.ndarray) -> np.ndarray:
        shifted = points + offset
        return smooth[shifted[:, 0], shifted[:, 1], shifted[:, 2]].astype(np.float64)

    centre = at(np.zeros(3, dtype=int))
    hessian = np.empty((len(points), 3, 3))
    for a in range(3):
        hessian[:, a, a] = at(unit[a]) - 2 * centre + at(-unit[a])
        for b in range(a + 1, 3):
            ea, eb = unit[a], unit[b]
            mixed = at(ea + eb) - at(ea - eb) - at(eb - ea) + at(-ea - eb)
            hessian[:, a, b] = hessian[:, b, a] = mixed / 4
    return hessian


def blobness(hessian: np.ndarray) -> np.ndarray:
    """|smallest eigenvalue| / |largest eigenvalue| (by magnitude) where all three are negative
    (a bright blob: about 1; a tube or a sheet: about 0), else 0."""
    eigenvalues = np.linalg.eigvalsh(hessian)  # ascending: the most negative first
    ratio = np.abs(eigenvalues[:, 2]) / np.maximum(np.abs(eigenvalues[:, 0]), 1e-30)
    return np.where(eigenvalues[:, 2] < 0, ratio, 0.0)


def blob_mask(ratio: np.ndarray, min_ratio: float) -> np.ndarray:
    """Candidates blob-like enough: all eigenvalues negative and the ratio at least ``min_ratio``."""
    return (ratio > 0) & (ratio >= min_ratio)


def detect_hessian(
    volume: Volume, params: HessianParams | None = None, voxel_size: float | None = None
) -> ClassicalResult:
    """Broadband-DoG picks that pass the Hessian blob test (score: the DoG's robust z)."""
    params = params or HessianParams()
    clock = Stopwatch()
    bright, size, skewness = bright_volume(volume, voxel_size, params.polarity)
    small = nm_to_voxels(params.sigma_small_nm, size)
    response = dog_zscore(bright, small, nm_to_voxels(params.sigma_large_nm, size))
    smooth = ndimage.gaussian_filter(
        bright, nm_to_voxels(params.hessian_sigma_nm, size), mode=EDGE_MODE, output=bright
    )
    clock.lap("filter")
    zyx, values = local_maxima(response, params.k, maxima_half_width(small))
    ratio = blobness(hessian_at(smooth, zyx))
    del smooth, bright
    blob = blob_mask(ratio, params.min_ratio)
    clock.lap("hessian")
    zyx, values, ratio = zyx[blob], values[blob], ratio[blob]
    keep = suppressed_inside(
        zyx,
        nm_to_voxels(params.suppression_nm, size),
        blob_radius(nm_to_voxels(params.sigma_small_nm, size)),
        volume.shape,
        params.keep_edges,
    )
    clock.lap("peaks")
    picks = make_picks(volume, zyx[keep], values[keep], size, blobness=ratio[keep])
    info = result_info(clock.laps, params.k, skewness, rejected=int(np.count_nonzero(~blob)))
    return ClassicalResult(picks, response, info)

"""Baseline: multi-scale Laplacian of Gaussian.

At each σ of a geometric series from ``sigma_min_nm`` to ``sigma_max_nm`` (ratio
:data:`SCALE_STEP`), the volume (protein-positive, normalised) is filtered by ``−∇²G(σ)``; the
response of a voxel is the largest over the scales, and the scale giving it is the pick's
``scale_nm`` (a blob of radius r responds most at σ = r/√3). The scales are made comparable in
one of two ways: Lindeberg's scale normalisation (``σ²·∇²G``, ``per_scale_z=False``), or each
scale's response as its own robust z-score (``per_scale_z=True``: equal noise at every scale, as
our detection's candidates do). The largest response, as a robust z, then goes through the
shared steps of :mod:`.classical`: local maxima above ``k``, greedy suppression within
``suppression_nm``. The preset's values and how they were chosen: docs/detection.md,
"Classical baselines".
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_cryoet_particles.baselines.broadband import maxima_half_width
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
    to_robust_z,
)
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.units import nm_to_voxels, voxels_to_nm
from napari_cryoet_particles.io.volume import Volume

#: Ratio between successive σ.
SCALE_STEP = float(np.sqrt(2.0))


@dataclass(frozen=True)
class LoGParams:
    """σ range (nm), how scales compare (see the module docstring), threshold ``k`` (robust z),
    greedy suppression radius (nm), particle polarity."""

    sigma_min_nm: float = 2.0
    sigma_max_nm: float = 4.0
    per_scale_z: bool = True
    k: float = 4.5
    suppression_nm: float = 16.0
    polarity: str = "dark"
    keep_edges: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min_nm <= self.sigma_max_nm:
            raise CryoetInputError(
                None,
                f"LoG needs 0 < sigma_min <= sigma_max, got {self.sigma_min_nm:g} and "
                f"{self.sigma_max_nm:g} nm",
            )
        if not self.suppression_nm > 0:
            raise CryoetInputError(None, "the suppression radius must be positive")


def log_sigmas(sigma_min: float, sigma_max: float, step: float = SCALE_STEP) -> np.ndarray:
    """``sigma_min · step^i`` up to ``sigma_max`` (with a little slack for rounding)."""
    count = 1 + int(np.floor(np.log(sigma_max / sigma_min) / np.log(step) + 1e-6))
    return sigma_min * step ** np.arange(count)


def scale_response(bright: np.ndarray, sigma: float, per_scale_z: bool) -> np.ndarray:
    """``−σ²·∇²G(σ)`` of ``bright`` (σ in voxels; high at bright blobs), or its robust z."""
    response = ndimage.gaussian_laplace(bright, sigma, mode=EDGE_MODE)
    response *= np.float32(-(sigma**2))
    return to_robust_z(response) if per_scale_z else response


def largest_over_scales(responses: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(robust z of the voxel-wise largest of ``responses``, index of the one giving it).

    The first response is overwritten (it becomes the result)."""
    scales = iter(responses)
    best = next(scales)
    which = np.zeros(best.shape, dtype=np.uint8)
    for index, response in enumerate(scales, start=1):
        better = response > best
        which[better] = index
        np.maximum(best, response, out=best)
        del response, better
    return to_robust_z(best), which


def detect_log(
    volume: Volume, params: LoGParams | None = None, voxel_size: float | None = None
) -> ClassicalResult:
    """Multi-scale LoG picks of ``volume`` (score: robust z; ``scale_nm``: the σ of the best scale)."""
    params = params or LoGParams()
    clock = Stopwatch()
    bright, size, skewness = bright_volume(volume, voxel_size, params.polarity)
    sigmas = log_sigmas(
        nm_to_voxels(params.sigma_min_nm, size), nm_to_voxels(params.sigma_max_nm, size)
    )
    response, which = largest_over_scales(
        scale_response(bright, float(s), params.per_scale_z) for s in sigmas
    )
    del bright
    clock.lap("filter")
    zyx, values = local_maxima(response, params.k, maxima_half_width(float(sigmas[0])))
    keep = suppressed_inside(
        zyx,
        nm_to_voxels(params.suppression_nm, size),
        blob_radius(sigmas[which[tuple(zyx.T)]]),
        volume.shape,
        params.keep_edges,
    )
    zyx, values = zyx[keep], values[keep]
    clock.lap("peaks")
    scale = np.array([voxels_to_nm(s, size) for s in sigmas])[which[tuple(zyx.T)]]
    picks = make_picks(volume, zyx, values, size, scale_nm=scale)
    return ClassicalResult(picks, response, result_info(clock.laps, params.k, skewness))

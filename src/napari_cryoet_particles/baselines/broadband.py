"""Baseline: broadband difference of Gaussians with greedy suppression.

``G(σ_small) − G(σ_large)`` on the protein-positive normalised volume, with a wide σ pair (a
band-pass covering small and large proteins at once, unlike a DoG matched to one diameter),
then the shared steps of :mod:`.classical`: robust z of the response, local maxima above ``k``,
greedy suppression within ``suppression_nm``. Lengths are in nm, so it runs at any voxel size.
The preset's values and how they were chosen: docs/detection.md, "Classical baselines".
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

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
from napari_cryoet_particles.detect.threshold import estimate_threshold
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.units import nm_to_voxels
from napari_cryoet_particles.io.volume import Volume

#: The adaptive threshold is read from the peaks above this robust z (our detection's floor) ...
ADAPTIVE_FLOOR = 3.0
#: ... and the response shifted so that it lies at this score, whatever ``k`` a run asks for
#: (the benchmark ranks a run at a lower ``k`` by the same scores).
ADAPTIVE_SCORE = 4.0


@dataclass(frozen=True)
class BroadbandParams:
    """σ pair of the DoG (nm), threshold ``k`` (robust z of the response), greedy suppression
    radius (nm), particle polarity (``dark``, ``bright`` or ``auto``)."""

    sigma_small_nm: float = 2.5
    sigma_large_nm: float = 10.0
    k: float = 4.0
    suppression_nm: float = 16.0
    polarity: str = "dark"
    keep_edges: bool = False
    #: Move the threshold per tomogram to the one its own peaks give
    #: (:func:`~napari_cryoet_particles.detect.threshold.estimate_threshold`, as our detection
    #: does): the response is shifted so that it falls at :data:`ADAPTIVE_SCORE` (the preset's
    #: ``k``); the ranking is unchanged.
    adaptive: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.sigma_small_nm < self.sigma_large_nm:
            raise CryoetInputError(
                None,
                f"DoG needs 0 < sigma_small < sigma_large, got {self.sigma_small_nm:g} and "
                f"{self.sigma_large_nm:g} nm",
            )
        if not self.suppression_nm > 0:
            raise CryoetInputError(None, "the suppression radius must be positive")


def maxima_half_width(sigma_voxels: float) -> int:
    """Half-width of the local-maximum window: about the narrow σ, so a blob's smooth response
    gives one maximum (greedy suppression does the rest)."""
    return max(1, int(round(sigma_voxels)))


def dog_zscore(bright: np.ndarray, sigma_small: float, sigma_large: float) -> np.ndarray:
    """Robust z of ``G(sigma_small) − G(sigma_large)`` (voxels) of ``bright``."""
    response = ndimage.gaussian_filter(bright, sigma_small, mode=EDGE_MODE)
    response -= ndimage.gaussian_filter(bright, sigma_large, mode=EDGE_MODE)
    return to_robust_z(response)


def suppressed_maxima(
    response: np.ndarray,
    floor: float,
    sigma_small: float,
    voxel_size: float,
    params: BroadbandParams,
) -> tuple[np.ndarray, np.ndarray]:
    """(zyx, values) of the response's local maxima of at least ``floor``, strongest first,
    after greedy suppression and, unless ``params.keep_edges``, the face rule."""
    zyx, values = local_maxima(response, floor, maxima_half_width(sigma_small))
    keep = suppressed_inside(
        zyx,
        nm_to_voxels(params.suppression_nm, voxel_size),
        blob_radius(sigma_small),
        response.shape,
        params.keep_edges,
    )
    return zyx[keep], values[keep]


def adaptive_shift(
    response: np.ndarray, sigma_small: float, voxel_size: float, params: BroadbandParams
) -> float:
    """How far the threshold read from the response's own peaks (one per object, down to
    :data:`ADAPTIVE_FLOOR`) lies above :data:`ADAPTIVE_SCORE`; 0 when too few peaks tell."""
    _, values = suppressed_maxima(response, ADAPTIVE_FLOOR, sigma_small, voxel_size, params)
    estimate = estimate_threshold(values, ADAPTIVE_FLOOR)
    return 0.0 if estimate is None else estimate.threshold - ADAPTIVE_SCORE


def detect_broadband(
    volume: Volume, params: BroadbandParams | None = None, voxel_size: float | None = None
) -> ClassicalResult:
    """Broadband-DoG picks of ``volume`` (score: robust z of the response; threshold ``k``)."""
    params = params or BroadbandParams()
    clock = Stopwatch()
    bright, size, skewness = bright_volume(volume, voxel_size, params.polarity)
    small = nm_to_voxels(params.sigma_small_nm, size)
    response = dog_zscore(bright, small, nm_to_voxels(params.sigma_large_nm, size))
    del bright
    if params.adaptive:
        response -= adaptive_shift(response, small, size, params)
    clock.lap("filter")
    zyx, values = suppressed_maxima(response, params.k, small, size, params)
    clock.lap("peaks")
    picks = make_picks(volume, zyx, values, size)
    return ClassicalResult(picks, response, result_info(clock.laps, params.k, skewness))

"""Baseline (a): difference-of-Gaussians blob detection, one honest default, no training.

Dark blobs of the given diameter: the tomogram is normalised (the model's robust z-score) and
negated, filtered by ``G(σ) - G(1.6σ)`` with ``σ = r / √3`` (the scale at which a 3D Gaussian
blob of radius ``r`` responds most), and maxima at least ``r`` apart whose response exceeds
``median + k·1.4826·MAD`` of the response (``k`` = :data:`DEFAULT_K`) are picked. The response
is the pick's score. Same inputs and output type as :func:`~.pipeline.detect_particles`.
"""

import time

import numpy as np
import pandas as pd
from scipy import ndimage

from napari_cryoet_particles.detect.config import DEFAULT_DIAMETER_NM
from napari_cryoet_particles.detect.peaks import pick_peaks
from napari_cryoet_particles.detect.volume import check_volume
from napari_cryoet_particles.io.picks import Picks
from napari_cryoet_particles.io.tomogram import Volume
from napari_cryoet_particles.model.normalize import normalize, robust_stats

#: Threshold in robust standard deviations of the DoG response above its median.
DEFAULT_K = 3.0
SIGMA_RATIO = 1.6


def dog_response(data: np.ndarray, radius_voxels: float, dark: bool = True) -> np.ndarray:
    """DoG response of a normalised volume: high at blobs of ``radius_voxels`` (dark ones if ``dark``)."""
    volume = normalize(data, robust_stats(data))
    if dark:
        np.negative(volume, out=volume)
    sigma = max(0.5, radius_voxels / np.sqrt(3.0))
    response = ndimage.gaussian_filter(volume, sigma, mode="nearest")
    response -= ndimage.gaussian_filter(volume, SIGMA_RATIO * sigma, mode="nearest")
    return response


def dog_threshold(response: np.ndarray, k: float = DEFAULT_K) -> float:
    sample = response.ravel()[:: max(1, response.size // 2_000_000)]
    median = float(np.median(sample))
    return median + k * 1.4826 * float(np.median(np.abs(sample - median)))


def detect_dog(
    volume: Volume,
    diameter_nm: float = DEFAULT_DIAMETER_NM,
    threshold: float | None = None,
    voxel_size: float | None = None,
    dark: bool = True,
) -> tuple[Picks, np.ndarray, dict[str, float]]:
    """(picks in input voxels, the DoG response at input resolution, {stage: seconds, "threshold": level})."""
    clock = time.perf_counter()
    size = check_volume(volume, voxel_size)
    radius = diameter_nm * 5.0 / size
    response = dog_response(np.asarray(volume.data), radius, dark)
    level = dog_threshold(response) if threshold is None else float(threshold)
    filtered = time.perf_counter()
    peaks, values = pick_peaks(response, max(1, int(round(radius))), level)
    done = time.perf_counter()
    features = pd.DataFrame(
        {"score": values.astype(float), "cluster": 0, "status": "auto", "class": ""}
    )
    picks = Picks(peaks.astype(float), size, features, volume.path.stem if volume.path else "")
    return (
        picks,
        response,
        {"filter": filtered - clock, "peaks": done - filtered, "threshold": level},
    )

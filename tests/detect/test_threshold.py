"""The automatic threshold read from a tomogram's own peaks (detect/threshold.py)."""

import numpy as np
import pytest

from napari_cryoet_particles.detect.threshold import (
    MIN_PEAKS,
    counts_above,
    estimate_threshold,
    euler_characteristic_density,
)

FLOOR = 3.0


def noise_peaks(scale: float, rng: np.random.Generator) -> np.ndarray:
    """Peak heights above FLOOR whose counts above t follow scale·EC(t) (inverse transform)."""
    n = rng.poisson(scale * euler_characteristic_density(FLOOR))
    grid = np.linspace(FLOOR, 9.0, 4000)
    survival = euler_characteristic_density(grid) / euler_characteristic_density(FLOOR)
    return np.interp(rng.uniform(size=n), survival[::-1], grid[::-1])


def scene(
    n_particles: int, seed: int = 0, scale: float = 10_000.0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    particles = rng.normal(6.5, 1.5, n_particles)
    particles = particles[particles >= FLOOR]
    return np.concatenate([noise_peaks(scale, rng), particles]), particles


def true_best_threshold(noise: np.ndarray, particles: np.ndarray) -> float:
    grid = np.arange(3.5, 7.0, 0.05)
    tp = counts_above(particles, grid)
    f1 = 2 * tp / (tp + counts_above(noise, grid) + len(particles))
    return float(grid[np.argmax(f1)])


def test_counts_above_counts_ties_in():
    assert counts_above(np.array([3.0, 4.0, 4.0, 5.0]), np.array([4.0, 4.5, 6.0])).tolist() == [
        3,
        1,
        0,
    ]


@pytest.mark.parametrize("n_particles", [150, 600, 2000])
def test_threshold_lands_near_the_best_one_and_counts_the_particles(n_particles):
    peaks, particles = scene(n_particles)
    noise = peaks[: len(peaks) - len(particles)]
    estimate = estimate_threshold(peaks, FLOOR)
    assert estimate is not None
    assert abs(estimate.threshold - true_best_threshold(noise, particles)) <= 0.35
    assert estimate.particles == pytest.approx(len(particles), rel=0.15)
    assert 0.5 < estimate.precision <= 1.0


def test_fewer_particles_among_the_same_noise_raise_the_threshold():
    sparse = estimate_threshold(scene(150)[0], FLOOR)
    crowded = estimate_threshold(scene(2000)[0], FLOOR)
    assert sparse.threshold > crowded.threshold + 0.3


def test_too_few_peaks_leave_the_threshold_to_the_preset():
    assert estimate_threshold(np.full(MIN_PEAKS - 1, 5.0), FLOOR) is None
    assert estimate_threshold(np.array([np.nan] * 100), FLOOR) is None


def test_info_is_plain_numbers():
    info = estimate_threshold(scene(600)[0], FLOOR).to_info()
    assert set(info) == {"threshold", "noise_scale", "particles", "precision"}
    assert all(isinstance(value, float) for value in info.values())


def test_estimate_text_says_where_the_threshold_came_from():
    from napari_cryoet_particles.detect.threshold import estimate_text

    text = estimate_text({"threshold": 4.05, "particles": 830.4, "precision": 0.951})
    assert text == (
        "threshold z 4.05 read from this tomogram's peaks (about 830 objects stand out of its noise)"
    )
    assert estimate_text(None) == "" and estimate_text({}) == ""
    ranker = {"picks": 512, "ranked": 3000, "particle_share": 0.213}
    ranked = estimate_text({"threshold": 4.05, "particles": 830.4, "ranker": ranker})
    assert (
        ranked
        == text
        + "; 512 picks chosen by the pick ranker (particles about 21 % of the peaks it ranked)"
    )
    unshared = estimate_text(
        {"threshold": 4.05, "particles": 830.4, "ranker": ranker | {"particle_share": None}}
    )
    assert unshared == text + "; 512 picks chosen by the pick ranker"

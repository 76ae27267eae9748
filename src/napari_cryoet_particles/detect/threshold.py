"""The automatic threshold of one tomogram, from how many of its peaks noise explains.

A fixed threshold on the blob strength (a robust z) suits the tomograms it was chosen on: where
particles are few among many noise peaks (a sparse scene) it lets too many noise peaks in, where
they are many or faint (crowded, coloured noise, dose-limited) it cuts too many particles. What
changes between those tomograms is the mix, and the mix can be read from the picks themselves.

The peaks of a smooth Gaussian noise field above a height ``t`` are, for large ``t``, as many as
the field's expected Euler characteristic above ``t``; in 3D that count goes as
``(t² − 1)·exp(−t²/2)`` (Adler & Taylor, *Random fields and geometry*; the same expression is the
peak count of SPM's random-field inference). Particles' peaks fall off much more slowly. So the
counts of peaks above thresholds just over the candidate floor are fitted as ``A·EC(t) + B``
(noise scale ``A``, the particles there ``B``; non-negative least squares), which gives, at every
threshold, the noise peaks expected above it, hence the particles above it and how many particles
there are in all. The threshold is the one that maximises the F1 those estimates give.

Measured offline on the floor picks of every family (docs/detection.md, "The automatic
threshold"): the chosen thresholds range 3.9-4.85 where the fixed one is 4.25, with the same F1 on
the validation tomograms the fixed value was chosen on, and higher F1 on the sparse, crowded and
coloured-noise families. The model holds for blob strengths (robust z of one filter); the
multi-scale LoG's maximum over scales does not follow it.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

#: The fit reads peak counts above thresholds from the floor to this far (z) above it, ...
FIT_SPAN = 0.75
#: ... every this many z.
FIT_STEP = 0.125
#: The threshold is chosen between this far above the floor ...
LOWEST_ABOVE_FLOOR = 0.5
#: ... and this far above it (a z that noise peaks essentially never reach) ...
HIGHEST_ABOVE_FLOOR = 4.0
#: ... every this many z.
THRESHOLD_STEP = 0.05
#: Fewer peaks above the floor than this: too few to fit; the fixed threshold stays.
MIN_PEAKS = 50


@dataclass(frozen=True)
class ThresholdEstimate:
    """The chosen threshold and what the fit says about the tomogram's peaks.

    ``noise_scale`` is ``A`` in ``A·EC(t)``; ``particles`` the particles estimated above the
    floor; ``precision`` the estimated share of particles among the peaks above ``threshold``.
    """

    threshold: float
    noise_scale: float
    particles: float
    precision: float

    def to_info(self) -> dict[str, float]:
        return {
            "threshold": round(self.threshold, 3),
            "noise_scale": round(self.noise_scale, 3),
            "particles": round(self.particles, 1),
            "precision": round(self.precision, 3),
        }


def euler_characteristic_density(t: np.ndarray) -> np.ndarray:
    """The 3D Gaussian field's expected Euler characteristic above ``t``, up to a constant."""
    t = np.asarray(t, dtype=float)
    return (t * t - 1.0) * np.exp(-0.5 * t * t)


def counts_above(strength: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many of ``strength`` are at least each of ``thresholds``."""
    ordered = np.sort(np.asarray(strength, dtype=float))
    return (len(ordered) - np.searchsorted(ordered, thresholds, side="left")).astype(float)


def estimate_threshold(strength: np.ndarray, floor: float) -> ThresholdEstimate | None:
    """The F1-optimal threshold of peaks with blob strengths ``strength`` (every peak at least
    ``floor``, one per object), or None when too few peaks lie above the floor to fit."""
    strength = np.asarray(strength, dtype=float)
    strength = strength[np.isfinite(strength) & (strength >= floor)]
    if len(strength) < MIN_PEAKS:
        return None
    fit_at = floor + np.arange(0.0, FIT_SPAN + 1e-9, FIT_STEP)
    design = np.stack([euler_characteristic_density(fit_at), np.ones_like(fit_at)], axis=1)
    (noise_scale, _), _ = nnls(design, counts_above(strength, fit_at))
    candidates = floor + np.arange(LOWEST_ABOVE_FLOOR, HIGHEST_ABOVE_FLOOR + 1e-9, THRESHOLD_STEP)
    above = counts_above(strength, candidates)
    noise = noise_scale * euler_characteristic_density(candidates)
    particles_above = np.clip(above - noise, 0.0, None)
    particles = max(float(len(strength) - noise_scale * euler_characteristic_density(floor)), 0.0)
    f1 = 2.0 * particles_above / np.maximum(above + particles, 1.0)
    best = int(np.argmax(f1))
    precision = float(particles_above[best] / above[best]) if above[best] else 0.0
    return ThresholdEstimate(float(candidates[best]), float(noise_scale), particles, precision)


def estimate_text(estimate: dict | None) -> str:
    """One line for the CLI and the Detect dock on the threshold read from the tomogram
    (``info["threshold_estimate"]``, with ``ranker`` when the pick ranker chose the picks,
    :mod:`.ranker`), or "" when the preset's fixed threshold was used.

    It says "objects", not particles, and leaves the estimated precision out: what is not noise
    also holds repeat hits and structures (on the families' test tomograms the estimated precision
    was 0.90-0.99 where the true one was 0.64-0.82; the particles estimated were 0.53-1.04 × the
    particles there)."""
    if not estimate:
        return ""
    text = (
        f"threshold z {estimate['threshold']:.2f} read from this tomogram's peaks "
        f"(about {estimate['particles']:.0f} objects stand out of its noise)"
    )
    ranker = estimate.get("ranker")
    if ranker:
        text += f"; {ranker['picks']} picks chosen by the pick ranker"
        if ranker.get("particle_share") is not None:
            text += (
                f" (particles about {100 * ranker['particle_share']:.0f} % of the peaks it ranked)"
            )
    return text

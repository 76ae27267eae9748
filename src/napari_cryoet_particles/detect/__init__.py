"""Detection: dense embedding in tiles, k-means particle clusters, peak picking, baselines.

- :func:`detect_particles_job` / :func:`detect_particles`: the method (see :mod:`.pipeline`);
- :func:`detect_dog`: difference-of-Gaussians baseline (:mod:`.dog`);
- :mod:`.slices2d`: the original 2D method (slices, 2D ResNet + NT-Xent, k-means on crops);
- :mod:`.benchmark`: the benchmark behind ``cryoet-particles benchmark``.
"""

from napari_cryoet_particles.detect.config import (
    DEFAULT_DIAMETER_NM,
    DetectionConfig,
    DetectionResult,
)
from napari_cryoet_particles.detect.dog import detect_dog
from napari_cryoet_particles.detect.pipeline import (
    detect_particles,
    detect_particles_job,
    resolve_model,
    score_map_at_input,
)

__all__ = [
    "DEFAULT_DIAMETER_NM",
    "DetectionConfig",
    "DetectionResult",
    "detect_dog",
    "detect_particles",
    "detect_particles_job",
    "resolve_model",
    "score_map_at_input",
]

"""Detection: dense embedding in tiles, k-means particle clusters, peak picking.

:func:`detect_particles_job` / :func:`detect_particles` run the method (see :mod:`.pipeline`).
The baselines live in :mod:`napari_cryoet_particles.baselines`, the benchmark in
:mod:`napari_cryoet_particles.benchmark`.
"""

from napari_cryoet_particles.detect.config import (
    DEFAULT_DIAMETER_NM,
    DetectionConfig,
    DetectionResult,
)
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
    "detect_particles",
    "detect_particles_job",
    "resolve_model",
    "score_map_at_input",
]

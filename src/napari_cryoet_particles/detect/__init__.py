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

#: Names imported from :mod:`.pipeline` on first use: it imports torch and scikit-learn, which
#: a dock or a command that only needs the settings should not pay for.
_PIPELINE = ("detect_particles", "detect_particles_job", "resolve_model", "score_map_at_input")


def __getattr__(name: str):
    if name in _PIPELINE:
        from napari_cryoet_particles.detect import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_DIAMETER_NM",
    "DetectionConfig",
    "DetectionResult",
    "detect_particles",
    "detect_particles_job",
    "resolve_model",
    "score_map_at_input",
]

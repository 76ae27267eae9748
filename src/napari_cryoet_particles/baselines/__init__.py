"""Classical and original-method baselines the benchmark compares our detection with.

- :data:`BASELINES`: the classical pickers, each with its preset tuned on validation
  simulations (``scripts/tune_baselines.py``): broadband DoG (:mod:`.broadband`), multi-scale
  LoG (:mod:`.log`), broadband DoG with a Hessian blob test (:mod:`.hessian`); their shared
  steps are in :mod:`.classical`;
- :func:`detect_dog`: the single-diameter DoG of the previous tuning (:mod:`.dog`);
- :mod:`.slices2d`: the original 2D method (slices, 2D ResNet + NT-Xent, k-means on crops).
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from napari_cryoet_particles.baselines.broadband import BroadbandParams, detect_broadband
from napari_cryoet_particles.baselines.classical import ClassicalResult
from napari_cryoet_particles.baselines.dog import detect_dog
from napari_cryoet_particles.baselines.hessian import HessianParams, detect_hessian
from napari_cryoet_particles.baselines.log import LoGParams, detect_log
from napari_cryoet_particles.io.volume import Volume


@dataclass(frozen=True)
class Baseline:
    """A classical picker: ``detect(volume, params)`` → :class:`ClassicalResult` (picks scored by
    the robust z of the response), and ``params``, its preset (a frozen dataclass whose ``k`` is
    the automatic threshold in score units)."""

    name: str
    label: str
    description: str
    detect: Callable[[Volume, Any], ClassicalResult]
    params: Any

    def run(self, volume: Volume, **changes: Any) -> ClassicalResult:
        """Detect with the preset, or with some of its fields changed (e.g. ``k``)."""
        return self.detect(volume, replace(self.params, **changes))


BASELINES: dict[str, Baseline] = {
    entry.name: entry
    for entry in (
        Baseline(
            "broadband",
            "broadband DoG, tuned on validation seeds",
            "`baselines.broadband`: G(σ1) − G(σ2) with a wide σ pair, robust-z threshold, greedy "
            "suppression; preset chosen on validation seeds",
            detect_broadband,
            BroadbandParams(),
        ),
        Baseline(
            "broadband-adaptive",
            "broadband DoG, threshold read per tomogram",
            "`baselines.broadband` with the threshold our detection reads from each tomogram's "
            "own peaks (`detect.threshold`) instead of a fixed k",
            detect_broadband,
            BroadbandParams(adaptive=True),
        ),
        Baseline(
            "log",
            "multi-scale LoG, tuned on validation seeds",
            "`baselines.log`: largest −∇²G over a σ range, robust-z threshold, greedy "
            "suppression; preset chosen on validation seeds",
            detect_log,
            LoGParams(),
        ),
        Baseline(
            "hessian",
            "DoG + Hessian blob test, tuned on validation seeds",
            "`baselines.hessian`: broadband-DoG maxima kept where the Hessian's eigenvalues "
            "say blob (not tube or sheet), greedy suppression; preset chosen on validation seeds",
            detect_hessian,
            HessianParams(),
        ),
    )
}

__all__ = [
    "BASELINES",
    "Baseline",
    "BroadbandParams",
    "ClassicalResult",
    "HessianParams",
    "LoGParams",
    "detect_broadband",
    "detect_dog",
    "detect_hessian",
    "detect_log",
]

"""When not to trust a detection's picks: a model that never finished training, a volume like noise.

Detection always returns the maxima of the particle score, even on a volume that holds no
particles. What tells the cases apart is the density itself: particles are dense objects among
mostly empty ice, so the low-passed overview has a long tail on the particles' side (skewness
-2.6 to -7.3 on simulated tomograms), while the low-passed overview of noise of any data type is
nearly Gaussian (|skewness| <= 0.1 measured on float32, float16, int8, uint16 and exponential
noise). When the skewness is within the spread pure noise gives at that size (or below
:data:`MIN_SKEWNESS`), the particle / background split is not significant.
"""

import math
from pathlib import Path

import numpy as np

#: Voxels of the overview that one independent value spans after the Gaussian low-pass
#: (sigma 1 overview voxel): the volume of the smoothing kernel, (2 sqrt(pi) sigma)^3.
CORRELATED_VOXELS = (2.0 * math.sqrt(math.pi)) ** 3
#: Noise skewness standard errors within which the density counts as noise.
NOISE_Z = 3.0
#: Below this |skewness| the density counts as noise whatever the volume's size (large volumes
#: have a tiny standard error, but noise that is not Gaussian keeps a small skewness).
MIN_SKEWNESS = 0.25
#: Warn when at least this many times as many blobs lie on structures as are picked ...
STRUCTURE_MAJORITY = 1.0
#: ... and at least this many do.
MIN_STRUCTURE_PICKS = 5


def noise_skewness_spread(n_values: float) -> float:
    """Standard error of the sample skewness of ``n_values`` independent Gaussian values."""
    return math.sqrt(6.0 / max(n_values, 1.0))


def picks_warning(info: dict, input_shape: tuple[int, int, int]) -> str | None:
    """Why the picks of a detection (its ``info`` and input shape) are not to be trusted, or None."""
    skewness = float(info.get("skewness", 0.0))
    ratio = float(info.get("ratio", 1.0))
    stride = int(info.get("stride", 1))
    cells = np.prod([math.ceil(n / ratio / stride) for n in input_shape])
    searched = cells * (1.0 - float(info.get("masked_fraction", 0.0)))
    spread = noise_skewness_spread(searched / CORRELATED_VOXELS)
    limit = max(NOISE_Z * spread, MIN_SKEWNESS)
    if abs(skewness) >= limit:
        return None
    return (
        "the picks are not to be trusted: the low-passed density is as symmetric as noise "
        f"(skewness {skewness:+.2f}, noise gives up to ±{limit:.2f} here), so the particle / "
        "background split is not significant; is this a tomogram with particles?"
    )


def model_warning(model: object) -> str | None:
    """A warning when ``model`` is a checkpoint of a training run that did not finish, or None."""
    from napari_cryoet_particles.model.checkpoint import LoadedModel, load_checkpoint

    if isinstance(model, str | Path):
        model = load_checkpoint(model)
    if not isinstance(model, LoadedModel) or model.complete:
        return None
    done = model.steps_done
    progress = f" at step {done[0]} of {done[1]}" if done else ""
    where = f" {model.path}" if model.path is not None else ""
    return (
        f"the model{where} is an unfinished training run (stopped{progress}); picks may be poor. "
        "Finish it with `cryoet-particles train ... --out MODEL --resume`"
    )


def structure_warning(info: dict, n_picks: int) -> str | None:
    """A warning when most of what stood out lies on tubes, sheets or gold (a volume of filaments,
    membranes or beads rather than particles), or None."""
    dropped = info.get("dropped", {})
    on_structures = sum(count for name, count in dropped.items() if name != "faces")
    if on_structures < max(STRUCTURE_MAJORITY * n_picks, 1) or on_structures < MIN_STRUCTURE_PICKS:
        return None
    return (
        f"{on_structures} of {on_structures + n_picks} blobs lie on filaments, tubes, membranes "
        f"or gold and were not picked ({n_picks} picks left): this volume holds mostly such "
        "structures; if they are what you want, detect with --keep-structures"
    )


def detection_warnings(
    info: dict, input_shape: tuple[int, int, int], model: object = None
) -> list[str]:
    """Every reason to doubt a detection's picks, as one-line messages (empty: none)."""
    found = [
        model_warning(model),
        picks_warning(info, input_shape),
        structure_warning(info, int(info.get("n_picks", 0))),
    ]
    return [message for message in found if message]

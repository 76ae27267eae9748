"""The methods the benchmark compares: one registry that the child process, the report and the CLI
iterate over.

A method runs on one tomogram inside the benchmark's child process. It hands its picks at its own
*automatic* threshold (what a user gets) to ``done`` as soon as they exist: the child takes the
user's time and peak memory there. Whatever it does after ``done`` is for scoring only and is left
out of both: the picks down to a low floor (to rank them: best F1 over thresholds) and the maps
for the crop-level metric.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from napari_cryoet_particles.baselines import BASELINES
from napari_cryoet_particles.detect.params import DEFAULT_PRESET
from napari_cryoet_particles.io.picks import Picks
from napari_cryoet_particles.io.units import nm_to_voxels
from napari_cryoet_particles.io.volume import Volume

#: Our pick scores are 0-1 with the automatic threshold at 0.5; the ranking set goes down to this.
OURS_FLOOR = 0.05
#: The DoG ranking set goes down to ``median + k·1.4826·MAD`` of the response with this ``k``
#: (or to the automatic level, if that is lower).
DOG_FLOOR_K = 2.0
#: Radius (nm) of the ball drawn around a DoG pick for its binary crop call.
DOG_BALL_NM = 5.0


@dataclass
class MethodOptions:
    """What the child process was told: checkpoint, CPU threads, training steps (2D method),
    the slices on which to build the crop-level maps (none: no maps) and our detection's preset
    (``detect/params.py``)."""

    model: str | None = None
    threads: int | None = None
    steps: int | None = None
    slices: tuple[int, ...] = ()
    preset: str = DEFAULT_PRESET


@dataclass
class MethodOutput:
    """What a method gives besides its automatic picks.

    ``floor``: picks down to a low floor, best first by ``score`` (the automatic picks are the
    ones above the automatic threshold). ``report``: ``stages`` (seconds), ``info`` (scalars),
    ``threshold`` (the automatic one, in the method's score units). ``maps``: slice z →
    (continuous map, binary call) on the shared crop grid's slices. ``crops``: a method's own
    crops (``centres``, ``score``, ``assignment``) when it scores crops itself.
    """

    floor: Picks
    report: dict[str, object]
    maps: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    crops: dict[str, np.ndarray] | None = None


Done = Callable[[Picks], None]


@dataclass(frozen=True)
class Method:
    """A registry entry: ``run(volume, options, done)`` → :class:`MethodOutput`."""

    name: str
    label: str
    description: str
    run: Callable[[Volume, MethodOptions, Done], MethodOutput]


def _scalars(info: dict) -> dict[str, object]:
    return {k: v for k, v in info.items() if isinstance(v, int | float | str | bool)}


def score_slice(result, z: int) -> np.ndarray:
    """The score map of a detection result resampled onto input slice ``z`` (linear)."""
    from scipy import ndimage

    shape = result.input_shape
    coords = [
        (np.arange(n) - o) / s
        for n, o, s in zip(shape, result.score_map_origin, result.score_map_step, strict=True)
    ]
    grid = np.meshgrid([coords[0][z]], coords[1], coords[2], indexing="ij")
    return ndimage.map_coordinates(result.score_map, grid, order=1, mode="nearest")[0]


def balls_on_slice(zyx: np.ndarray, z: int, shape: tuple[int, int], radius: float) -> np.ndarray:
    """Slice ``z`` of the union of balls of ``radius`` voxels around ``zyx``."""
    image = np.zeros(shape, dtype=bool)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    for pz, py, px in zyx:
        dz = pz - z
        if abs(dz) >= radius:
            continue
        image |= (yy - py) ** 2 + (xx - px) ** 2 <= radius**2 - dz**2
    return image


def run_ours(volume: Volume, options: MethodOptions, done: Done) -> MethodOutput:
    """Detection as ``cryoet-particles detect`` runs it by default (automatic threshold, no score
    map): the timed picks. The ranking set (down to :data:`OURS_FLOOR`) and the crop maps come
    from a second run after the picks are written, as the DoG's floor run does; lowering the
    threshold changes no pick above it (suppression goes strongest first), so the automatic picks
    are the floor run's picks scoring at least ``info["auto_threshold"]``."""
    from napari_cryoet_particles.detect.pipeline import DetectionConfig, detect_particles

    config = DetectionConfig(
        params=options.preset,
        threads=options.threads,
        keep_score_map=False,
        learned_features=False,
    )
    result = detect_particles(volume, options.model, config)
    done(result.picks)
    floor = detect_particles(
        volume,
        options.model,
        replace(config, threshold=OURS_FLOOR, keep_score_map=bool(options.slices)),
    )
    maps = {}
    for z in options.slices:
        image = score_slice(floor, int(z))
        maps[int(z)] = (image, image >= 0.5)
    auto = float(result.info["auto_threshold"])
    report = {"stages": result.timings, "info": _scalars(result.info), "threshold": auto}
    return MethodOutput(floor.picks, report, maps)


def run_dog(volume: Volume, options: MethodOptions, done: Done) -> MethodOutput:
    """``detect_dog`` with its defaults (tuned on validation seeds); the ranking set is a second
    ``detect_dog`` run whose only change is a lower threshold (:data:`DOG_FLOOR_K`)."""
    from napari_cryoet_particles.baselines import dog

    picks, response, info = dog.detect_dog(volume)
    done(picks)
    radius = nm_to_voxels(DOG_BALL_NM, picks.voxel_size)  # picks: in the volume's voxels
    maps = {
        int(z): (response[int(z)], balls_on_slice(picks.zyx, int(z), response.shape[1:], radius))
        for z in options.slices
    }
    level = float(info["threshold"])
    floor_level = min(dog.dog_threshold(response, DOG_FLOOR_K), level)
    del response
    floor, _, _ = dog.detect_dog(volume, threshold=floor_level)
    stages = {k: float(v) for k, v in info.items() if k in ("filter", "peaks")}
    report = {
        "stages": stages,
        "info": _scalars(info) | {"floor_threshold": floor_level},
        "threshold": level,
    }
    return MethodOutput(floor, report, maps)


def run_classical(name: str) -> Callable[[Volume, MethodOptions, Done], MethodOutput]:
    """The run of ``BASELINES[name]`` as :func:`run_dog` runs the DoG: its preset's automatic
    picks handed to ``done``, then the ranking set from a second run whose only change is a lower
    ``k`` (:data:`DOG_FLOOR_K`, scores being robust z here too)."""

    def run(volume: Volume, options: MethodOptions, done: Done) -> MethodOutput:
        entry = BASELINES[name]
        result = entry.run(volume)
        picks, response, info = result.picks, result.response, result.info
        del result
        done(picks)
        radius = nm_to_voxels(DOG_BALL_NM, picks.voxel_size)
        shape = response.shape[1:]
        maps = {
            int(z): (response[int(z)], balls_on_slice(picks.zyx, int(z), shape, radius))
            for z in options.slices
        }
        del response
        floor_k = min(DOG_FLOOR_K, float(entry.params.k))
        floor = entry.run(volume, k=floor_k).picks
        stages = {k: float(v) for k, v in info.items() if k in ("filter", "hessian", "peaks")}
        report = {
            "stages": stages,
            "info": _scalars(info) | {"floor_threshold": floor_k},
            "threshold": float(entry.params.k),
        }
        return MethodOutput(floor, report, maps)

    return run


def run_slices2d(volume: Volume, options: MethodOptions, done: Done) -> MethodOutput:
    """The shrunk original 2D method; its threshold is fixed inside (k-means score 0.5), so its
    ranking set is its automatic one. It scores its own crops."""
    from napari_cryoet_particles.baselines.slices2d import Slices2DConfig, detect_slices2d

    config = Slices2DConfig(threads=options.threads)
    if options.steps:
        config.steps = options.steps
    result = detect_slices2d(volume, config)
    done(result.picks)
    crops = {"score": result.score, "assignment": result.assignment, "centres": result.centres}
    report = {"stages": result.timings, "info": {"slices": str(result.slices.tolist())}}
    return MethodOutput(result.picks, report | {"threshold": 0.5}, crops=crops)


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method(
            "ours",
            "ours",
            "our detection with the given model (default: the shipped one), default settings",
            run_ours,
        ),
        Method(
            "dog",
            "DoG (previous tuning)",
            "`baselines.dog.detect_dog` with its defaults (one 8-nm diameter, σ ratio 1.6), "
            "chosen on validation seeds",
            run_dog,
        ),
        *(
            Method(name, entry.label, entry.description, run_classical(name))
            for name, entry in BASELINES.items()
        ),
        Method(
            "slices2d",
            "original 2D (shrunk)",
            "the original method (2D contrastive crops of three slices + k-means), shrunk for CPU",
            run_slices2d,
        ),
    )
}

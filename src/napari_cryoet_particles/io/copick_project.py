"""copick projects: a run's tomogram and its picks, through the ``copick`` package.

A copick project is a JSON config (pickable objects, where the data live) over runs; a run has
tomograms (OME-Zarr, per voxel spacing and type) and picks sets (one JSON per object, user and
session, in Å). Everything here goes through copick's API; tomograms are read lazily at the run's
voxel spacing through :mod:`napari_cryoet_particles.io.omezarr`. Picks this package writes carry
``user_id`` :data:`USER_ID`.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from napari_cryoet_particles.io.atomic import check_output_folder
from napari_cryoet_particles.io.errors import CryoetInputError, one_line, reader
from napari_cryoet_particles.io.picks import (
    Picks,
    copick_points,
    default_features,
    picks_from_copick_points,
)
from napari_cryoet_particles.io.units import DEFAULT_VOXEL_SIZE
from napari_cryoet_particles.io.volume import Volume

#: The copick ``user_id`` of picks written by this package.
USER_ID = "cryoet-particles"
#: copick's session id of picks made by a tool rather than a person.
TOOL_SESSION = "0"
#: Two voxel spacings are the same when they differ by less than this fraction.
SPACING_TOLERANCE = 0.02


def is_copick_config(path: str | Path) -> bool:
    """Whether ``path`` is a copick project config, judged by its content (a JSON object with
    ``pickable_objects`` and a storage description), not its name."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size > 10_000_000:
        return False
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return (
        isinstance(document, dict)
        and "pickable_objects" in document
        and any(key in document for key in ("config_type", "overlay_root", "static_root"))
    )


@reader("a copick project config")
def open_project(path: str | Path) -> Any:
    """The copick root of a project config (refused with a one-line reason)."""
    import copick

    path = Path(path)
    if not path.exists():
        raise CryoetInputError(path, "no such file")
    if not is_copick_config(path):
        raise CryoetInputError(path, "not a copick project config (no pickable_objects)")
    try:
        return copick.from_file(str(path))
    except Exception as error:  # noqa: BLE001 - copick raises pydantic, OS and value errors alike
        raise CryoetInputError(
            path, f"copick cannot open the project ({one_line(error)})"
        ) from None


def run_names(root: Any) -> list[str]:
    return [run.name for run in root.runs]


def get_run(root: Any, name: str, path: str | Path | None = None) -> Any:
    run = root.get_run(name)
    if run is None:
        names = run_names(root)
        raise CryoetInputError(
            path,
            f"no run {name!r} in the copick project (runs: {', '.join(names[:8]) or 'none'}"
            f"{', ...' if len(names) > 8 else ''})",
        )
    return run


@dataclass(frozen=True)
class TomogramChoice:
    """One tomogram of a run: its voxel spacing (Å) and type (``wbp``, ``denoised``...)."""

    voxel_size: float
    tomo_type: str

    @property
    def label(self) -> str:
        return f"{self.tomo_type} @ {self.voxel_size:g} Å"


def tomogram_choices(run: Any) -> list[TomogramChoice]:
    """Every tomogram of a run, finest voxel spacing first."""
    choices = [
        TomogramChoice(float(spacing.voxel_size), tomogram.tomo_type)
        for spacing in run.voxel_spacings
        for tomogram in spacing.tomograms
    ]
    return sorted(choices, key=lambda c: (c.voxel_size, c.tomo_type))


def choose_tomogram(
    run: Any,
    tomo_type: str | None = None,
    voxel_size: float | None = None,
    path: str | Path | None = None,
) -> TomogramChoice:
    """The run's tomogram of this type and voxel spacing; either may be left out when the run
    leaves no doubt (the finest spacing is taken when ``voxel_size`` is not given)."""
    choices = tomogram_choices(run)
    listing = ", ".join(c.label for c in choices) or "none"
    if not choices:
        raise CryoetInputError(path, f"run {run.name!r} has no tomograms")
    if voxel_size is not None:
        choices = [
            c for c in choices if abs(c.voxel_size - voxel_size) <= SPACING_TOLERANCE * voxel_size
        ]
    else:
        choices = [c for c in choices if c.voxel_size == choices[0].voxel_size]
    if tomo_type is not None:
        choices = [c for c in choices if c.tomo_type == tomo_type]
    if not choices:
        wanted = " ".join(
            part
            for part in (
                tomo_type and f"of type {tomo_type!r}",
                voxel_size and f"at {voxel_size:g} Å",
            )
            if part
        )
        raise CryoetInputError(path, f"run {run.name!r} has no tomogram {wanted} (has: {listing})")
    if len(choices) > 1:
        raise CryoetInputError(
            path,
            f"run {run.name!r} has {len(choices)} tomograms ({listing}); say which "
            "(CLI: --tomo-type T)",
        )
    return choices[0]


def _copick_tomogram(run: Any, choice: TomogramChoice) -> Any:
    spacing = run.get_voxel_spacing(choice.voxel_size)
    return spacing.get_tomograms(choice.tomo_type)[0]


def tomogram_local_path(run: Any, choice: TomogramChoice) -> Path | None:
    """The folder of a tomogram's OME-Zarr when the project keeps it on this machine."""
    tomogram = _copick_tomogram(run, choice)
    for fs_name, path_name in (("fs_overlay", "overlay_path"), ("fs_static", "static_path")):
        fs = getattr(tomogram, fs_name, None)
        path = getattr(tomogram, path_name, None)
        if fs is None or path is None:
            continue
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        if protocol in ("file", "local") and fs.exists(path):
            return Path(path)
    return None


def read_run_tomogram(
    root: Any,
    run_name: str,
    tomo_type: str | None = None,
    voxel_size: float | None = None,
    config_path: str | Path | None = None,
    check_finite: bool = True,
) -> Volume:
    """A run's tomogram as a lazy :class:`Volume` (its OME-Zarr level at the run's spacing)."""
    import zarr

    from napari_cryoet_particles.io.omezarr import volume_from_group

    run = get_run(root, run_name, config_path)
    choice = choose_tomogram(run, tomo_type, voxel_size, config_path)
    tomogram = _copick_tomogram(run, choice)
    where = tomogram_local_path(run, choice) or Path(f"{run.name}/{choice.tomo_type}.zarr")
    try:
        group = zarr.open_group(tomogram.zarr(), mode="r")
    except Exception as error:  # noqa: BLE001 - zarr and fsspec raise many kinds
        raise CryoetInputError(where, f"cannot open the tomogram ({one_line(error)})") from None
    volume = volume_from_group(group, choice.voxel_size, where, check_finite)
    return Volume(volume.data, volume.voxel_size, where)


@dataclass(frozen=True)
class PicksSet:
    """One copick picks set of a run: object, user, session and number of points."""

    object_name: str
    user_id: str
    session_id: str
    n_points: int

    @property
    def label(self) -> str:
        return f"{self.object_name} ({self.user_id}/{self.session_id}, {self.n_points})"


def picks_sets(root: Any, run_name: str) -> list[PicksSet]:
    run = get_run(root, run_name)
    return sorted(
        (
            PicksSet(p.pickable_object_name, p.user_id, p.session_id, len(p.points or []))
            for p in run.picks
        ),
        key=lambda s: (s.object_name, s.user_id, s.session_id),
    )


def read_run_picks(
    root: Any,
    run_name: str,
    voxel_size: float,
    object_name: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
) -> Picks:
    """The run's picks matching the filters, merged, in voxels of ``voxel_size``; the object name
    of each set becomes the ``class`` of its picks."""
    run = get_run(root, run_name)
    parts = []
    for picks_set in run.get_picks(object_name=object_name, user_id=user_id, session_id=session_id):
        points = [point.model_dump() for point in picks_set.points or []]
        if points:
            parts.append(
                picks_from_copick_points(
                    points, voxel_size, picks_set.pickable_object_name, run.name, None
                )
            )
    if not parts:
        return Picks(np.zeros((0, 3)), voxel_size, default_features(0), run.name)
    features = pd.concat([p.features for p in parts], ignore_index=True)
    return Picks(np.concatenate([p.zyx for p in parts]), voxel_size, features, run.name)


def check_can_write_run_picks(
    root: Any,
    run_name: str,
    object_name: str,
    session_id: str = TOOL_SESSION,
    user_id: str = USER_ID,
    overwrite: bool = False,
) -> Any:
    """Refuse an object the project does not know, an existing picks set unless ``overwrite``,
    or (a local project) a run whose picks folder cannot be written; returns the run."""
    run = get_run(root, run_name)
    objects = [o.name for o in root.pickable_objects]
    if object_name not in objects:
        raise CryoetInputError(
            None,
            f"{object_name!r} is not a pickable object of the copick project "
            f"(objects: {', '.join(objects) or 'none'})",
        )
    existing = run.get_picks(object_name=object_name, user_id=user_id, session_id=session_id)
    if existing and not overwrite:
        raise CryoetInputError(
            None,
            f"run {run_name!r} has {object_name} picks of {user_id}/{session_id} already; "
            "pass overwrite=True (CLI: --overwrite) to replace them",
        )
    _check_local_overlay(run)
    return run


def _check_local_overlay(run: Any) -> None:
    """A local run's ``Picks`` folder must be writable (or creatable); remote ones are not
    checked here (copick reports their failures)."""
    fs = getattr(run, "fs_overlay", None)
    path = getattr(run, "overlay_path", None)
    if fs is None or path is None:
        return
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        check_output_folder(Path(path) / "Picks")


def run_voxel_size(root: Any, run_name: str, default: float = DEFAULT_VOXEL_SIZE) -> float:
    """The finest voxel spacing of a run that has a tomogram (``default`` when none has)."""
    choices = tomogram_choices(get_run(root, run_name))
    return choices[0].voxel_size if choices else default


def write_run_picks(
    root: Any,
    run_name: str,
    picks: Picks,
    object_name: str,
    session_id: str = TOOL_SESSION,
    user_id: str = USER_ID,
    overwrite: bool = False,
) -> str:
    """Store picks in the run as the copick picks set (object, user, session); returns a short
    description of where. An existing set is replaced only with ``overwrite``."""
    run = check_can_write_run_picks(root, run_name, object_name, session_id, user_id, overwrite)
    points = copick_points(picks)
    positions = np.array([[p["location"][a] for a in "xyz"] for p in points]).reshape(-1, 3)
    target = run.new_picks(object_name, session_id, user_id, exist_ok=overwrite)
    target.meta.voxel_spacing = picks.known_voxel_size()
    target.meta.trust_orientation = any(
        not np.allclose(np.asarray(p["transformation_"]), np.eye(4)) for p in points
    )
    target.from_numpy(
        positions,
        np.array([p["transformation_"] for p in points]).reshape(-1, 4, 4),
        np.array([p["instance_id"] for p in points], dtype=np.int64),
        np.array([p["score"] for p in points], dtype=float),
    )
    return f"copick run {run_name!r}: {object_name} by {user_id}, session {session_id}"

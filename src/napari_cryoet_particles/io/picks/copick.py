"""copick picks JSON: locations in Å with orientation, score and instance id (one object per file)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from napari_cryoet_particles.io.atomic import atomic_write
from napari_cryoet_particles.io.coords import (
    angstrom_to_voxels,
    matrices_to_relion_angles,
    voxels_to_angstrom,
    xyz_to_zyx,
    zyx_to_xyz,
)
from napari_cryoet_particles.io.errors import CryoetInputError, reader
from napari_cryoet_particles.io.picks.model import RELION_ANGLE_COLUMNS, Picks, orientations
from napari_cryoet_particles.io.picks.tables import finite_coordinates, read_table


def copick_object_name(picks: Picks, default: str = "particle") -> str:
    """The one object name a copick picks set of these picks has: their class, when they all
    share one, else ``default``; picks of several classes are refused (one set per object)."""
    names = sorted({str(c) for c in picks.features["class"] if str(c)})
    if len(names) > 1:
        raise CryoetInputError(
            None,
            f"the picks have {len(names)} classes ({', '.join(names[:5])}); a copick picks set "
            "holds one object: write one class at a time",
        )
    return names[0] if names else default


def copick_points(picks: Picks) -> list[dict]:
    """copick ``points`` of the picks: location in Å, the orientation as ``transformation_``
    (identity when unknown), ``instance_id`` (cluster + 1: copick's 0 means none) and score."""
    xyz_angstrom = voxels_to_angstrom(zyx_to_xyz(picks.zyx), picks.known_voxel_size())
    matrices = orientations(picks)
    scores = picks.features["score"].to_numpy(dtype=float)
    clusters = picks.features["cluster"].to_numpy(dtype=int)
    points = []
    for i, (x, y, z) in enumerate(xyz_angstrom):
        transform = np.eye(4)
        if matrices is not None and np.all(np.isfinite(matrices[i])):
            transform[:3, :3] = matrices[i]
        points.append(
            {
                "location": {"x": float(x), "y": float(y), "z": float(z)},
                "transformation_": transform.tolist(),
                "instance_id": max(int(clusters[i]) + 1, 0),
                "score": float(scores[i]) if np.isfinite(scores[i]) else 1.0,
            }
        )
    return points


def picks_from_copick_points(
    points: list[dict], voxel_size: float, object_name: str, run_name: str, path: Path | None
) -> Picks:
    """Picks from copick ``points`` (Å): the centre is ``location`` plus the translation of
    ``transformation_`` (copick's rule); orientations become RELION angles when any is not the
    identity."""
    try:
        xyz_angstrom = np.array(
            [[p["location"]["x"], p["location"]["y"], p["location"]["z"]] for p in points],
            dtype=float,
        ).reshape(-1, 3)
        transforms = np.array(
            [p.get("transformation_") or np.eye(4).tolist() for p in points], dtype=float
        ).reshape(-1, 4, 4)
    except (KeyError, TypeError, ValueError) as error:
        raise CryoetInputError(path, f"a point lacks location x/y/z ({error})") from None
    xyz_angstrom = finite_coordinates(path or Path("copick"), xyz_angstrom + transforms[:, :3, 3])
    features = pd.DataFrame(
        {
            "score": [
                float(p.get("score") if p.get("score") is not None else np.nan) for p in points
            ],
            "cluster": [int(p.get("instance_id") or 0) - 1 for p in points],
            "class": [object_name] * len(points),
        }
    )
    rotations = transforms[:, :3, :3]
    if len(points) and not np.allclose(rotations, np.eye(3)):
        angles = matrices_to_relion_angles(rotations)
        for i, column in enumerate(RELION_ANGLE_COLUMNS):
            features[column] = angles[:, i]
    zyx = xyz_to_zyx(angstrom_to_voxels(xyz_angstrom, voxel_size))
    return Picks(zyx, float(voxel_size), features, run_name)


def write_copick_json(
    path: str | Path,
    picks: Picks,
    object_name: str | None = None,
    user_id: str = "cryoet-particles",
    session_id: str = "0",
    overwrite: bool = False,
) -> Path:
    """A copick picks JSON file: ``points[].location{x,y,z}`` in Å with orientation, score and
    instance id (cluster + 1, 0 = none); ``object_name`` defaults to the picks' one class (see :func:`copick_object_name`)."""
    try:
        name = object_name or copick_object_name(picks)
        voxel_size = picks.known_voxel_size()
    except CryoetInputError as error:
        raise CryoetInputError(path, error.problem) from None
    document = {
        "pickable_object_name": name,
        "user_id": user_id,
        "session_id": session_id,
        "run_name": picks.tomogram or None,
        "voxel_spacing": voxel_size,
        "unit": "angstrom",
        "trust_orientation": orientations(picks) is not None,
        "points": copick_points(picks),
    }
    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(document, indent=1))
    return Path(path)


@reader("copick JSON")
def read_copick_json(path: str | Path, voxel_size: float | None = None) -> Picks:
    """Read copick picks JSON (Å) into voxels of ``voxel_size`` (default: the file's spacing)."""
    path = Path(path)

    def reader(p: Path) -> dict:
        try:
            return json.loads(p.read_text())
        except json.JSONDecodeError as error:
            raise CryoetInputError(p, f"not valid JSON ({error})") from None

    document = read_table(path, reader, "copick JSON")
    if not isinstance(document, dict) or "points" not in document:
        raise CryoetInputError(path, "copick JSON lacks a 'points' list")
    voxel_size = voxel_size or document.get("voxel_spacing")
    if not voxel_size:
        raise CryoetInputError(
            path, "the copick file does not say its voxel spacing; give it (CLI: --voxel-size Å)"
        )
    return picks_from_copick_points(
        document["points"] or [],
        float(voxel_size),
        str(document.get("pickable_object_name", "")),
        str(document.get("run_name") or ""),
        path,
    )

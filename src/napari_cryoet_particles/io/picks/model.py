"""The picks model: :class:`Picks` (zyx voxels, a voxel size in Å, per-pick features), the one
schema of pick features (:data:`FEATURE_DEFAULTS`), orientations, and choosing one tomogram's
picks from a file that holds several.

The file formats are the package's other modules; :mod:`.formats` is their registry.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from napari_cryoet_particles.io.coords import (
    angstrom_to_voxels,
    matrices_to_relion_angles,
    matrices_to_shrec_angles,
    relion_angles_to_matrices,
    shrec_angles_to_matrices,
    voxels_to_angstrom,
)
from napari_cryoet_particles.io.errors import CryoetInputError

PICK_STATUSES = ("auto", "accepted", "rejected", "added")
#: The per-pick features every :class:`Picks` has, and their values when unknown: the one schema
#: of pick features (readers, detection, the napari layers and the docks all fill from it).
FEATURE_DEFAULTS: dict[str, object] = {
    "score": np.nan,
    "cluster": -1,
    "status": "auto",
    "class": "",
}
#: The features of a pick the user added by hand.
ADDED_FEATURES: dict[str, object] = {**FEATURE_DEFAULTS, "status": "added"}
SHREC_ANGLE_COLUMNS = ("rot_z1", "rot_x", "rot_z2")
RELION_ANGLE_COLUMNS = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")


def default_features(n: int) -> pd.DataFrame:
    """A features table of ``n`` rows with the standard columns at their defaults."""
    return standard_features(None, n)


def standard_features(features: pd.DataFrame | None, n: int) -> pd.DataFrame:
    """A copy of ``features`` (or an empty table of ``n`` rows) with every column of
    :data:`FEATURE_DEFAULTS`, missing ones at their default, typed: ``score`` float, ``cluster``
    int, ``status`` and ``class`` str. Other columns are kept as they are."""
    table = (
        pd.DataFrame(index=range(n)) if features is None else features.reset_index(drop=True).copy()
    )
    if len(table) != n:
        raise ValueError(f"{n} coordinates but {len(table)} feature rows")
    for column, default in FEATURE_DEFAULTS.items():
        if column not in table:
            table[column] = default
    table["score"] = pd.to_numeric(table["score"], errors="coerce").astype(float)
    table["cluster"] = pd.to_numeric(table["cluster"], errors="coerce").fillna(-1).astype(int)
    for column in ("status", "class"):
        default = FEATURE_DEFAULTS[column]
        table[column] = table[column].astype(object).fillna(default).astype(str)
    return table


@dataclass
class Picks:
    """Particle positions in zyx voxel indices with a voxel size in Å and a per-pick features table.

    ``voxel_size`` is ``None`` when nothing states it (e.g. a CSV of bare voxel coordinates):
    the picks are then in the voxels of whatever tomogram they are put on
    (:meth:`in_voxels_of`), and formats that need Å refuse them.
    ``features`` always has the columns of :data:`FEATURE_DEFAULTS`: ``score`` (higher = more
    particle-like), ``cluster``, ``status`` (one of :data:`PICK_STATUSES`) and ``class``; other
    columns may follow. ``tomogram`` names the tomogram the picks belong to (RELION
    ``rlnTomoName``), if known.
    """

    zyx: np.ndarray
    voxel_size: float | None = None
    features: pd.DataFrame = field(default=None)  # type: ignore[assignment]
    tomogram: str = ""

    def __post_init__(self) -> None:
        self.zyx = np.asarray(self.zyx, dtype=float).reshape(-1, 3)
        self.features = standard_features(self.features, len(self.zyx))
        if self.voxel_size is not None:
            if not np.isfinite(self.voxel_size) or self.voxel_size <= 0:
                raise ValueError(f"voxel size must be positive, got {self.voxel_size}")
            self.voxel_size = float(self.voxel_size)

    def __len__(self) -> int:
        return len(self.zyx)

    @property
    def scores(self) -> np.ndarray:
        return self.features["score"].to_numpy(dtype=float)

    def subset(self, mask: np.ndarray) -> "Picks":
        """The picks where ``mask`` (boolean or index array) selects."""
        return Picks(self.zyx[mask], self.voxel_size, self.features.iloc[mask], self.tomogram)

    def rescaled(self, voxel_size: float) -> "Picks":
        """The same physical positions expressed in voxels of another size (e.g. a binned tomogram)."""
        zyx = angstrom_to_voxels(voxels_to_angstrom(self.zyx, self.known_voxel_size()), voxel_size)
        return Picks(zyx, voxel_size, self.features, self.tomogram)

    def in_voxels_of(self, voxel_size: float | None) -> "Picks":
        """The picks in voxels of ``voxel_size`` Å: rescaled when their own voxel size is known
        and differs (by more than 0.01 %), taken to be in them already when it is unknown."""
        if voxel_size is None:
            return self
        if self.voxel_size is None:
            return Picks(self.zyx, voxel_size, self.features, self.tomogram)
        if np.isclose(self.voxel_size, voxel_size, rtol=1e-4, atol=0.0):
            return self
        return self.rescaled(voxel_size)

    def known_voxel_size(self, path: str | Path | None = None) -> float:
        """The voxel size, or a :class:`CryoetInputError` (about ``path``) when it is unknown:
        for what needs Å."""
        if self.voxel_size is None:
            raise CryoetInputError(
                path,
                "the voxel size of the picks is unknown and this needs it in Å: read them for a "
                "tomogram of known voxel size (CLI: --voxel-size Å)",
            )
        return self.voxel_size

    def outside(self, shape_zyx: tuple[int, int, int]) -> np.ndarray:
        """Boolean mask of picks whose rounded position falls outside a volume of this shape."""
        index = np.rint(self.zyx)
        return np.any((index < 0) | (index >= np.asarray(shape_zyx)), axis=1)


def orientations(picks: Picks) -> np.ndarray | None:
    """(N, 3, 3) rotations (particle frame to tomogram, acting on x, y, z) from the angle columns
    the picks carry, RELION's first, then SHREC's; ``None`` when they carry none. A pick whose
    angles are missing (NaN) gets a NaN matrix."""
    for columns, to_matrices in (
        (RELION_ANGLE_COLUMNS, relion_angles_to_matrices),
        (SHREC_ANGLE_COLUMNS, shrec_angles_to_matrices),
    ):
        if set(columns) <= set(picks.features.columns):
            angles = picks.features[list(columns)].to_numpy(dtype=float)
            known = np.all(np.isfinite(angles), axis=1)
            if not known.any():
                continue
            matrices = np.full((len(picks), 3, 3), np.nan)
            matrices[known] = to_matrices(angles[known])
            return matrices
    return None


def carried_features(picks: Picks) -> list[str]:
    """Which per-pick information the picks carry, in the terms of
    :attr:`napari_cryoet_particles.io.picks.formats.PicksFormat.keeps`."""
    features = picks.features
    carried = {
        "score": bool(np.isfinite(picks.scores).any()),
        "angles": orientations(picks) is not None,
        "class": bool((features["class"].astype(str) != "").any()),
        "status": bool((features["status"].astype(str) != "auto").any()),
        "cluster": bool((pd.to_numeric(features["cluster"], errors="coerce") >= 0).any()),
    }
    return [name for name, present in carried.items() if present]


def angles_in(picks: Picks, columns: tuple[str, str, str]) -> np.ndarray | None:
    """The picks' orientations as angles of a format (:data:`RELION_ANGLE_COLUMNS` or
    :data:`SHREC_ANGLE_COLUMNS`), converted when they came in the other; NaN where unknown."""
    if set(columns) <= set(picks.features.columns):
        return picks.features[list(columns)].to_numpy(dtype=float)
    matrices = orientations(picks)
    if matrices is None:
        return None
    to_angles = (
        matrices_to_relion_angles if columns == RELION_ANGLE_COLUMNS else matrices_to_shrec_angles
    )
    angles = np.full((len(picks), 3), np.nan)
    known = np.all(np.isfinite(matrices.reshape(len(picks), -1)), axis=1)
    angles[known] = to_angles(matrices[known])
    return angles


def wanted_tomogram(
    by_tomogram: dict[str, Picks], wanted: str | None, path: str | Path | None = None
) -> str | None:
    """Which of a file's picks by tomogram name are those of tomogram ``wanted``: its name, or
    ``None`` when no tomogram is wanted or the file names none (its picks are for whichever
    tomogram); a :class:`CryoetInputError` when the file names only other tomograms."""
    if wanted is None or set(by_tomogram) == {""}:
        return None
    if wanted not in by_tomogram:
        raise CryoetInputError(
            path, f"no picks for tomogram {wanted!r} (has: {', '.join(by_tomogram)})"
        )
    return wanted


def one_tomogram(
    by_tomogram: dict[str, Picks], wanted: str | None = None, path: str | Path | None = None
) -> Picks:
    """The picks of tomogram ``wanted`` (see :func:`wanted_tomogram`), or of the file's only
    tomogram; a file holding several needs ``wanted``."""
    name = wanted_tomogram(by_tomogram, wanted, path)
    if name is not None:
        return by_tomogram[name]
    names = list(by_tomogram)
    if len(names) > 1:
        raise CryoetInputError(
            path,
            f"holds picks of {len(names)} tomograms ({', '.join(names[:5])}"
            f"{', ...' if len(names) > 5 else ''}); say which one (CLI: --tomogram NAME)",
        )
    return by_tomogram[names[0]]

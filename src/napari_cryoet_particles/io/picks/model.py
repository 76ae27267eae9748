"""Picked coordinates (:class:`Picks`) and the file formats they travel in.

Formats: CSV (voxel and Å columns), RELION STAR (RELION 4 voxel coordinates, RELION 5 centred Å)
through ``starfile``, copick picks JSON (Å), SHREC ``particle_locations.txt`` (voxels).
Every conversion of coordinates goes through :mod:`napari_cryoet_particles.io.coords`.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import starfile

from napari_cryoet_particles.io.atomic import atomic_write
from napari_cryoet_particles.io.coords import (
    angstrom_to_voxels,
    matrices_to_relion_angles,
    matrices_to_shrec_angles,
    relion_angles_to_matrices,
    relion_centered_angstrom_to_zyx,
    shrec_angles_to_matrices,
    voxels_to_angstrom,
    xyz_to_zyx,
    zyx_to_relion_centered_angstrom,
    zyx_to_xyz,
)
from napari_cryoet_particles.io.errors import CryoetInputError, reader
from napari_cryoet_particles.io.units import DEFAULT_VOXEL_SIZE, resolve_voxel_size

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
    :attr:`napari_cryoet_particles.io.formats.PicksFormat.keeps`."""
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


# ---------------------------------------------------------------------------------------------
# CSV


CSV_COORDINATE_COLUMNS = ("x", "y", "z")


def write_csv(path: str | Path, picks: Picks, overwrite: bool = False) -> Path:
    """CSV with ``x,y,z`` voxel indices (x = last MRC axis), ``score``, Å columns and features.

    Picks of unknown voxel size get no Å columns (and read back as of unknown voxel size).
    """
    xyz = zyx_to_xyz(picks.zyx)
    table = pd.DataFrame(
        {
            "x": xyz[:, 0],
            "y": xyz[:, 1],
            "z": xyz[:, 2],
            "score": picks.features["score"].to_numpy(),
        }
    )
    if picks.voxel_size is not None:
        xyz_angstrom = voxels_to_angstrom(xyz, picks.voxel_size)
        for i, axis in enumerate("xyz"):
            table[f"{axis}_angstrom"] = xyz_angstrom[:, i]
        table["voxel_size_angstrom"] = picks.voxel_size
    for column in picks.features.columns:
        if column != "score":
            table[column] = picks.features[column].to_numpy()
    if picks.tomogram:
        table["tomogram"] = picks.tomogram
    with atomic_write(path, overwrite=overwrite) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return Path(path)


def _read_table(path: Path, reader, what: str) -> pd.DataFrame:
    if not path.exists():
        raise CryoetInputError(path, "no such file")
    if path.stat().st_size == 0:
        raise CryoetInputError(path, f"{what} file is empty")
    try:
        return reader(path)
    except CryoetInputError:
        raise
    except pd.errors.EmptyDataError:
        raise CryoetInputError(path, f"{what} file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise CryoetInputError(path, f"cannot be read as {what}: {error}") from None


def _require_columns(path: Path, table: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise CryoetInputError(
            path,
            f"{what} lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(found: {', '.join(map(str, table.columns)) or 'none'})",
        )


def _finite_coordinates(path: Path, xyz: np.ndarray) -> np.ndarray:
    try:
        xyz = np.asarray(xyz, dtype=float)
    except ValueError as error:
        raise CryoetInputError(path, f"coordinates are not numbers ({error})") from None
    bad = ~np.all(np.isfinite(xyz), axis=1)
    if bad.any():
        raise CryoetInputError(
            path, f"{int(bad.sum())} picks have missing or non-finite coordinates"
        )
    return xyz


@reader("picks CSV")
def read_csv(path: str | Path, voxel_size: float | None = None) -> Picks:
    """Read a picks CSV with at least ``x,y,z`` voxel columns (``score`` and features optional).

    The voxel size comes from ``voxel_size``, else the file's ``voxel_size_angstrom`` column,
    else the ratio of ``x_angstrom`` to ``x``; else it is unknown (``None``).
    """
    path = Path(path)
    table = _read_table(path, lambda p: pd.read_csv(p, comment="#"), "picks CSV")
    table.columns = [str(c).strip() for c in table.columns]
    _require_columns(path, table, CSV_COORDINATE_COLUMNS, "picks CSV")
    xyz = _finite_coordinates(path, table[list(CSV_COORDINATE_COLUMNS)].to_numpy())
    if voxel_size is None and "voxel_size_angstrom" in table and len(table):
        voxel_size = float(table["voxel_size_angstrom"].iloc[0])
    if voxel_size is None and "x_angstrom" in table and len(table) and np.any(xyz[:, 0] != 0):
        nonzero = xyz[:, 0] != 0
        voxel_size = float(
            np.median(table["x_angstrom"].to_numpy(dtype=float)[nonzero] / xyz[nonzero, 0])
        )
    derived = {
        "x",
        "y",
        "z",
        "x_angstrom",
        "y_angstrom",
        "z_angstrom",
        "voxel_size_angstrom",
        "tomogram",
    }
    features = table[[c for c in table.columns if c not in derived]].copy()
    for column in ("status", "class"):
        if column in features:
            features[column] = (
                features[column].astype(object).fillna(FEATURE_DEFAULTS[column]).astype(str)
            )
    tomogram = str(table["tomogram"].iloc[0]) if "tomogram" in table and len(table) else ""
    return Picks(xyz_to_zyx(xyz), voxel_size, features, tomogram)


# ---------------------------------------------------------------------------------------------
# RELION STAR

#: Where a STAR file states the size of the pixels its ``rlnCoordinateX/Y/Z`` count, in order of
#: preference (RELION 4/5 tomography: the tilt-series pixel; else the image pixel), in the
#: particles table or in its ``optics`` block.
STAR_PIXEL_SIZE_COLUMNS = (
    "rlnTomoTiltSeriesPixelSize",
    "rlnImagePixelSize",
    "rlnDetectorPixelSize",
)
RELION4_COLUMNS = ("rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ")
RELION5_COLUMNS = (
    "rlnCenteredCoordinateXAngst",
    "rlnCenteredCoordinateYAngst",
    "rlnCenteredCoordinateZAngst",
)


def write_star(
    path: str | Path,
    picks: Picks,
    relion_version: int = 4,
    shape_zyx: tuple[int, int, int] | None = None,
    overwrite: bool = False,
) -> Path:
    """RELION particle STAR.

    RELION 4: ``rlnCoordinateX/Y/Z`` in voxels of this tomogram (``rlnImagePixelSize`` says their
    size in Å). RELION 5: ``rlnCenteredCoordinateX/Y/ZAngst``, Å from the tomogram centre, which
    needs the tomogram's shape.
    """
    if relion_version not in (4, 5):
        raise ValueError(f"relion_version must be 4 or 5, got {relion_version}")
    voxel_size = picks.known_voxel_size(path)
    table = pd.DataFrame()
    if relion_version == 4:
        xyz = zyx_to_xyz(picks.zyx)
        for i, column in enumerate(RELION4_COLUMNS):
            table[column] = xyz[:, i]
    else:
        if shape_zyx is None:
            raise ValueError("RELION 5 centred coordinates need the tomogram shape")
        xyz_angstrom = zyx_to_relion_centered_angstrom(picks.zyx, shape_zyx, voxel_size)
        for i, column in enumerate(RELION5_COLUMNS):
            table[column] = xyz_angstrom[:, i]
    table["rlnTomoName"] = picks.tomogram or "tomogram"
    table["rlnImagePixelSize"] = voxel_size
    scores = picks.features["score"].to_numpy(dtype=float)
    if np.isfinite(scores).any():
        table["rlnAutopickFigureOfMerit"] = np.nan_to_num(scores, nan=0.0)
    table["rlnClassNumber"] = picks.features["cluster"].to_numpy(dtype=int) + 1
    table["rlnCryoetStatus"] = picks.features["status"].astype(str).to_numpy()
    names = picks.features["class"].astype(str).to_numpy()
    if any(names):
        table["rlnParticleName"] = [name or "particle" for name in names]
    angles = angles_in(picks, RELION_ANGLE_COLUMNS)
    if angles is not None:
        for i, column in enumerate(RELION_ANGLE_COLUMNS):
            table[column] = np.nan_to_num(angles[:, i], nan=0.0)
    with atomic_write(path, overwrite=overwrite) as tmp:
        starfile.write({"particles": table}, tmp, overwrite=True)
    return Path(path)


def _with_optics(particles: pd.DataFrame, optics: object) -> pd.DataFrame:
    """The particles table with the pixel-size columns of its ``optics`` block joined in."""
    if not isinstance(optics, pd.DataFrame) or not len(optics):
        return particles
    columns = [c for c in STAR_PIXEL_SIZE_COLUMNS if c in optics and c not in particles]
    if not columns:
        return particles
    if "rlnOpticsGroup" in particles and "rlnOpticsGroup" in optics:
        lookup = optics.set_index("rlnOpticsGroup")[columns]
        joined = lookup.reindex(particles["rlnOpticsGroup"].to_numpy())
        return pd.concat([particles, joined.reset_index(drop=True)], axis=1)
    particles = particles.copy()
    for column in columns:
        particles[column] = optics[column].iloc[0]
    return particles


def _star_particles_table(path: Path) -> pd.DataFrame:
    def reader(p: Path) -> pd.DataFrame:
        blocks = starfile.read(p, always_dict=True)
        for name in ("particles", "", *blocks.keys()):
            block = blocks.get(name)
            if isinstance(block, pd.DataFrame) and (
                set(RELION4_COLUMNS) <= set(block.columns)
                or set(RELION5_COLUMNS) <= set(block.columns)
            ):
                return _with_optics(block.reset_index(drop=True), blocks.get("optics"))
        found = {
            name: list(block.columns)
            for name, block in blocks.items()
            if isinstance(block, pd.DataFrame)
        }
        raise CryoetInputError(
            p,
            f"STAR file has no rlnCoordinateX/Y/Z or rlnCenteredCoordinateX/Y/ZAngst columns (blocks: {found or 'none'})",
        )

    return _read_table(path, reader, "RELION STAR")


def _star_picks(
    path: Path,
    table: pd.DataFrame,
    star_pixel_size: float | None,
    voxel_size: float | None,
    shape_zyx: tuple[int, int, int] | None,
    tomogram: str,
) -> Picks:
    if star_pixel_size is None:
        star_pixel_size = _file_pixel_size(path, table)
    centred = set(RELION5_COLUMNS) <= set(table.columns) and not set(RELION4_COLUMNS) <= set(
        table.columns
    )
    if star_pixel_size is None and (voxel_size is None or not centred):
        raise CryoetInputError(
            path,
            "the STAR file does not say its pixel size (no rlnImagePixelSize or optics block); "
            "give it (CLI: --star-pixel-size Å)",
        )
    target = voxel_size or star_pixel_size
    if centred:
        if shape_zyx is None:
            raise CryoetInputError(
                path, "RELION 5 centred coordinates need the tomogram shape to place them"
            )
        xyz_angstrom = _finite_coordinates(path, table[list(RELION5_COLUMNS)].to_numpy())
        zyx = relion_centered_angstrom_to_zyx(xyz_angstrom, shape_zyx, target)
    else:
        xyz = _finite_coordinates(path, table[list(RELION4_COLUMNS)].to_numpy())
        zyx = xyz_to_zyx(angstrom_to_voxels(voxels_to_angstrom(xyz, star_pixel_size), target))
    features = pd.DataFrame(index=range(len(table)))
    if "rlnAutopickFigureOfMerit" in table:
        features["score"] = table["rlnAutopickFigureOfMerit"].to_numpy(dtype=float)
    if "rlnClassNumber" in table:
        features["cluster"] = table["rlnClassNumber"].to_numpy(dtype=int) - 1
    if "rlnCryoetStatus" in table:
        features["status"] = table["rlnCryoetStatus"].astype(str).to_numpy()
    if "rlnParticleName" in table:
        features["class"] = table["rlnParticleName"].astype(str).to_numpy()
    for column in ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"):
        if column in table:
            features[column] = table[column].to_numpy(dtype=float)
    return Picks(zyx, target, features, tomogram)


def _file_pixel_size(path: Path, table: pd.DataFrame) -> float | None:
    """The one pixel size (Å) a STAR table states, ``None`` if it states none."""
    for column in STAR_PIXEL_SIZE_COLUMNS:
        if column in table:
            sizes = pd.to_numeric(table[column], errors="coerce").dropna().unique()
            if len(sizes) > 1:
                raise CryoetInputError(
                    path,
                    f"{column} differs between picks ({', '.join(f'{s:g}' for s in sizes[:4])}); "
                    "give the pixel size of the coordinates (CLI: --star-pixel-size Å)",
                )
            if len(sizes) == 1 and sizes[0] > 0:
                return float(sizes[0])
    return None


@reader("RELION STAR")
def star_tomogram_names(path: str | Path) -> list[str]:
    """The ``rlnTomoName`` values of a particle STAR in file order (empty list when it has none)."""
    path = Path(path)
    table = _star_particles_table(path)
    if "rlnTomoName" not in table:
        return []
    return [str(name) for name in pd.unique(table["rlnTomoName"].astype(str))]


@reader("RELION STAR")
def read_star_by_tomogram(
    path: str | Path,
    star_pixel_size: float | None = None,
    voxel_size: float | None = None,
    shape_zyx: tuple[int, int, int] | None = None,
) -> dict[str, Picks]:
    """Read a RELION particle STAR into one :class:`Picks` per ``rlnTomoName``.

    ``star_pixel_size`` is the size in Å of the pixels the file's ``rlnCoordinateX/Y/Z`` count
    (RELION: usually the unbinned tilt-series pixel); when not given it is taken from the file
    (``rlnImagePixelSize`` and kin). ``voxel_size`` is the voxel size of the tomogram the picks are
    for (e.g. a bin-4 reconstruction): coordinates are rescaled to its voxels. This is where the
    common binning mix-up is settled: give both and the picks land right.
    """
    path = Path(path)
    table = _star_particles_table(path)
    if "rlnTomoName" not in table:
        return {"": _star_picks(path, table, star_pixel_size, voxel_size, shape_zyx, "")}
    return {
        str(name): _star_picks(
            path, group.reset_index(drop=True), star_pixel_size, voxel_size, shape_zyx, str(name)
        )
        for name, group in table.groupby("rlnTomoName", sort=False)
    }


def read_star(
    path: str | Path,
    star_pixel_size: float | None = None,
    voxel_size: float | None = None,
    shape_zyx: tuple[int, int, int] | None = None,
    tomogram: str | None = None,
) -> Picks:
    """Read the picks of one tomogram from a RELION STAR (see :func:`read_star_by_tomogram`).

    A file with several tomograms needs ``tomogram`` to say which one.
    """
    by_tomogram = read_star_by_tomogram(path, star_pixel_size, voxel_size, shape_zyx)
    return one_tomogram(by_tomogram, tomogram, path)


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


# ---------------------------------------------------------------------------------------------
# copick


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
    xyz_angstrom = _finite_coordinates(path or Path("copick"), xyz_angstrom + transforms[:, :3, 3])
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

    document = _read_table(path, reader, "copick JSON")
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


# ---------------------------------------------------------------------------------------------
# SHREC particle_locations.txt

#: SHREC's voxels are 1 nm: the voxel size of its ``particle_locations.txt`` (which states no
#: unit) and of a SHREC reconstruction whose header has none.
SHREC_VOXEL_SIZE = DEFAULT_VOXEL_SIZE


@reader("SHREC particle_locations")
def read_shrec_locations(
    path: str | Path, voxel_size: float | None = None, order: str = "xyz"
) -> Picks:
    """Read a SHREC ``particle_locations.txt``: ``CLASS X Y Z rotZ1 rotX rotZ2`` per line.

    The file states no unit: its voxels are ``voxel_size`` Å, by default SHREC's
    (:data:`SHREC_VOXEL_SIZE`).

    ``order="zyx"`` reads SHREC 2019 files, whose columns are ``CLASS Z Y X ...``. Angles may be
    NaN (vesicles, fiducials) or absent. The class goes to the ``class`` feature, angles to
    ``rot_z1, rot_x, rot_z2``.
    """
    path = Path(path)
    if order not in ("xyz", "zyx"):
        raise ValueError(f"order must be 'xyz' or 'zyx', got {order!r}")
    voxel_size = resolve_voxel_size(
        None, voxel_size, default=SHREC_VOXEL_SIZE, what=path, warn=False
    )

    def reader(p: Path) -> pd.DataFrame:
        return pd.read_csv(p, sep=r"\s+", header=None, comment="#", dtype={0: str})

    if path.is_file() and not path.read_text().strip():
        return Picks(
            np.zeros((0, 3)), voxel_size, pd.DataFrame({"class": pd.Series([], dtype=object)})
        )
    table = _read_table(path, reader, "SHREC particle_locations")
    if table.shape[1] < 4:
        raise CryoetInputError(
            path, f"expected lines 'CLASS X Y Z [rot rot rot]', found {table.shape[1]} columns"
        )
    coordinates = _finite_coordinates(path, table.iloc[:, 1:4].to_numpy())
    zyx = coordinates if order == "zyx" else xyz_to_zyx(coordinates)
    features = pd.DataFrame({"class": table.iloc[:, 0].astype(str).to_numpy(), "score": 1.0})
    for i, column in enumerate(SHREC_ANGLE_COLUMNS):
        features[column] = (
            table.iloc[:, 4 + i].to_numpy(dtype=float) if table.shape[1] > 4 + i else np.nan
        )
    return Picks(zyx, voxel_size, features)


def write_shrec_locations(path: str | Path, picks: Picks, overwrite: bool = False) -> Path:
    """Write SHREC 2021 ``particle_locations.txt`` (``CLASS X Y Z rotZ1 rotX rotZ2``, voxels)."""
    xyz = zyx_to_xyz(picks.zyx)
    angles = angles_in(picks, SHREC_ANGLE_COLUMNS)
    if angles is None:
        angles = np.full((len(picks), 3), np.nan)
    classes = [c if c else "particle" for c in picks.features["class"].astype(str)]
    lines = []
    for name, (x, y, z), rotations in zip(classes, xyz, angles, strict=True):
        numbers = " ".join("NaN" if not np.isfinite(a) else f"{a:.6g}" for a in rotations)
        lines.append(f"{name} {x:.6g} {y:.6g} {z:.6g} {numbers}")
    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_text("\n".join(lines) + ("\n" if lines else ""))
    return Path(path)


# ---------------------------------------------------------------------------------------------
# By file name: see napari_cryoet_particles.io.formats, the registry of formats


def read_picks(path: str | Path, voxel_size: float | None = None, **options: object) -> Picks:
    """Read picks from any supported format, chosen by the file name (see
    :func:`napari_cryoet_particles.io.formats.read_picks_file` for ``options``)."""
    from napari_cryoet_particles.io.picks.formats import read_picks_file

    return read_picks_file(path, voxel_size=voxel_size, **options)


def write_picks(
    path: str | Path,
    picks: Picks,
    overwrite: bool = False,
    shape_zyx: tuple[int, int, int] | None = None,
    relion_version: int = 4,
) -> Path:
    """Write picks in the format the file name says (see :mod:`napari_cryoet_particles.io.formats`)."""
    from napari_cryoet_particles.io.picks.formats import write_picks_file

    fmt = "star5" if relion_version == 5 and Path(path).suffix.lower() == ".star" else None
    return write_picks_file(path, picks, fmt, overwrite=overwrite, shape_zyx=shape_zyx)

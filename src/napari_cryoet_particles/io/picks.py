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
    relion_centered_angstrom_to_zyx,
    voxels_to_angstrom,
    xyz_to_zyx,
    zyx_to_relion_centered_angstrom,
    zyx_to_xyz,
)
from napari_cryoet_particles.io.errors import CryoetInputError, reader

PICK_STATUSES = ("auto", "accepted", "rejected", "added")
FEATURE_DEFAULTS: dict[str, object] = {
    "score": np.nan,
    "cluster": -1,
    "status": "auto",
    "class": "",
}
SHREC_ANGLE_COLUMNS = ("rot_z1", "rot_x", "rot_z2")


def default_features(n: int) -> pd.DataFrame:
    """A features table of ``n`` rows with the standard columns at their defaults."""
    return pd.DataFrame(
        {
            "score": np.full(n, np.nan, dtype=float),
            "cluster": np.full(n, -1, dtype=int),
            "status": pd.Series(["auto"] * n, dtype=object),
            "class": pd.Series([""] * n, dtype=object),
        }
    )


@dataclass
class Picks:
    """Particle positions in zyx voxel indices with a voxel size in Å and a per-pick features table.

    ``features`` always has the columns ``score`` (higher = more particle-like), ``cluster``,
    ``status`` (one of :data:`PICK_STATUSES`) and ``class``; other columns may follow.
    ``tomogram`` names the tomogram the picks belong to (RELION ``rlnTomoName``), if known.
    """

    zyx: np.ndarray
    voxel_size: float = 1.0
    features: pd.DataFrame = field(default=None)  # type: ignore[assignment]
    tomogram: str = ""

    def __post_init__(self) -> None:
        self.zyx = np.asarray(self.zyx, dtype=float).reshape(-1, 3)
        n = len(self.zyx)
        if self.features is None:
            self.features = default_features(n)
        else:
            features = self.features.reset_index(drop=True).copy()
            if len(features) != n:
                raise ValueError(f"{n} coordinates but {len(features)} feature rows")
            for column, default in FEATURE_DEFAULTS.items():
                if column not in features:
                    features[column] = default
            self.features = features
        if not np.isfinite(self.voxel_size) or self.voxel_size <= 0:
            raise ValueError(f"voxel size must be positive, got {self.voxel_size}")

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
        zyx = angstrom_to_voxels(voxels_to_angstrom(self.zyx, self.voxel_size), voxel_size)
        return Picks(zyx, voxel_size, self.features, self.tomogram)

    def outside(self, shape_zyx: tuple[int, int, int]) -> np.ndarray:
        """Boolean mask of picks whose rounded position falls outside a volume of this shape."""
        index = np.rint(self.zyx)
        return np.any((index < 0) | (index >= np.asarray(shape_zyx)), axis=1)


# ---------------------------------------------------------------------------------------------
# CSV


CSV_COORDINATE_COLUMNS = ("x", "y", "z")


def write_csv(path: str | Path, picks: Picks, overwrite: bool = False) -> Path:
    """CSV with ``x,y,z`` voxel indices (x = last MRC axis), ``score``, Å columns and features."""
    xyz = zyx_to_xyz(picks.zyx)
    xyz_angstrom = voxels_to_angstrom(xyz, picks.voxel_size)
    table = pd.DataFrame(
        {
            "x": xyz[:, 0],
            "y": xyz[:, 1],
            "z": xyz[:, 2],
            "score": picks.features["score"].to_numpy(),
            "x_angstrom": xyz_angstrom[:, 0],
            "y_angstrom": xyz_angstrom[:, 1],
            "z_angstrom": xyz_angstrom[:, 2],
            "voxel_size_angstrom": picks.voxel_size,
        }
    )
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
    else the ratio of ``x_angstrom`` to ``x``, else 1 Å.
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
            features[column] = features[column].astype(object).fillna("").astype(str)
    tomogram = str(table["tomogram"].iloc[0]) if "tomogram" in table and len(table) else ""
    return Picks(xyz_to_zyx(xyz), voxel_size or 1.0, features, tomogram)


# ---------------------------------------------------------------------------------------------
# RELION STAR

STAR_PIXEL_SIZE_COLUMNS = (
    "rlnImagePixelSize",
    "rlnTomoTiltSeriesPixelSize",
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
    table = pd.DataFrame()
    if relion_version == 4:
        xyz = zyx_to_xyz(picks.zyx)
        for i, column in enumerate(RELION4_COLUMNS):
            table[column] = xyz[:, i]
    else:
        if shape_zyx is None:
            raise ValueError("RELION 5 centred coordinates need the tomogram shape")
        xyz_angstrom = zyx_to_relion_centered_angstrom(picks.zyx, shape_zyx, picks.voxel_size)
        for i, column in enumerate(RELION5_COLUMNS):
            table[column] = xyz_angstrom[:, i]
    table["rlnTomoName"] = picks.tomogram or "tomogram"
    table["rlnImagePixelSize"] = float(picks.voxel_size)
    scores = picks.features["score"].to_numpy(dtype=float)
    if np.isfinite(scores).any():
        table["rlnAutopickFigureOfMerit"] = np.nan_to_num(scores, nan=0.0)
    table["rlnClassNumber"] = picks.features["cluster"].to_numpy(dtype=int) + 1
    table["rlnCryoetStatus"] = picks.features["status"].astype(str).to_numpy()
    with atomic_write(path, overwrite=overwrite) as tmp:
        starfile.write({"particles": table}, tmp, overwrite=True)
    return Path(path)


def _star_particles_table(path: Path) -> pd.DataFrame:
    def reader(p: Path) -> pd.DataFrame:
        blocks = starfile.read(p, always_dict=True)
        for name in ("particles", "", *blocks.keys()):
            block = blocks.get(name)
            if isinstance(block, pd.DataFrame) and (
                set(RELION4_COLUMNS) <= set(block.columns)
                or set(RELION5_COLUMNS) <= set(block.columns)
            ):
                return block
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
        for column in STAR_PIXEL_SIZE_COLUMNS:
            if column in table:
                star_pixel_size = float(table[column].iloc[0])
                break
    target = voxel_size or star_pixel_size or 1.0
    if set(RELION5_COLUMNS) <= set(table.columns) and not set(RELION4_COLUMNS) <= set(
        table.columns
    ):
        if shape_zyx is None:
            raise CryoetInputError(
                path, "RELION 5 centred coordinates need the tomogram shape to place them"
            )
        xyz_angstrom = _finite_coordinates(path, table[list(RELION5_COLUMNS)].to_numpy())
        zyx = relion_centered_angstrom_to_zyx(xyz_angstrom, shape_zyx, target)
    else:
        xyz = _finite_coordinates(path, table[list(RELION4_COLUMNS)].to_numpy())
        zyx = xyz_to_zyx(
            angstrom_to_voxels(voxels_to_angstrom(xyz, star_pixel_size or target), target)
        )
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
    if tomogram is not None:
        if tomogram not in by_tomogram:
            raise CryoetInputError(
                path, f"no picks for tomogram {tomogram!r} (has: {', '.join(by_tomogram)})"
            )
        return by_tomogram[tomogram]
    if len(by_tomogram) > 1:
        raise CryoetInputError(
            path,
            f"holds picks of {len(by_tomogram)} tomograms ({', '.join(list(by_tomogram)[:5])}, ...); say which one",
        )
    return next(iter(by_tomogram.values()))


# ---------------------------------------------------------------------------------------------
# copick


def write_copick_json(
    path: str | Path,
    picks: Picks,
    object_name: str = "particle",
    user_id: str = "napari-cryoet-particles",
    session_id: str = "0",
    overwrite: bool = False,
) -> Path:
    """copick picks JSON: ``points[].location{x,y,z}`` in Å, score and status per point."""
    xyz_angstrom = voxels_to_angstrom(zyx_to_xyz(picks.zyx), picks.voxel_size)
    identity = np.eye(4).tolist()
    points = [
        {
            "location": {"x": float(x), "y": float(y), "z": float(z)},
            "transformation_": identity,
            "instance_id": int(cluster),
            "score": float(score) if np.isfinite(score) else 1.0,
        }
        for (x, y, z), score, cluster in zip(
            xyz_angstrom,
            picks.features["score"].to_numpy(dtype=float),
            picks.features["cluster"],
            strict=True,
        )
    ]
    document = {
        "pickable_object_name": object_name,
        "user_id": user_id,
        "session_id": session_id,
        "run_name": picks.tomogram or None,
        "voxel_spacing": float(picks.voxel_size),
        "unit": "angstrom",
        "trust_orientation": False,
        "points": points,
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
    points = document["points"] or []
    try:
        xyz_angstrom = np.array(
            [[p["location"]["x"], p["location"]["y"], p["location"]["z"]] for p in points],
            dtype=float,
        ).reshape(-1, 3)
    except (KeyError, TypeError) as error:
        raise CryoetInputError(path, f"a point lacks location x/y/z ({error})") from None
    xyz_angstrom = _finite_coordinates(path, xyz_angstrom)
    voxel_size = voxel_size or document.get("voxel_spacing") or 1.0
    features = pd.DataFrame(
        {
            "score": [float(p.get("score", np.nan)) for p in points],
            "cluster": [int(p.get("instance_id", -1)) for p in points],
            "class": [str(document.get("pickable_object_name", ""))] * len(points),
        }
    )
    zyx = xyz_to_zyx(angstrom_to_voxels(xyz_angstrom, voxel_size))
    return Picks(zyx, float(voxel_size), features, str(document.get("run_name") or ""))


# ---------------------------------------------------------------------------------------------
# SHREC particle_locations.txt


@reader("SHREC particle_locations")
def read_shrec_locations(path: str | Path, voxel_size: float = 10.0, order: str = "xyz") -> Picks:
    """Read a SHREC ``particle_locations.txt``: ``CLASS X Y Z rotZ1 rotX rotZ2`` per line.

    ``order="zyx"`` reads SHREC 2019 files, whose columns are ``CLASS Z Y X ...``. Angles may be
    NaN (vesicles, fiducials) or absent. The class goes to the ``class`` feature, angles to
    ``rot_z1, rot_x, rot_z2``.
    """
    path = Path(path)
    if order not in ("xyz", "zyx"):
        raise ValueError(f"order must be 'xyz' or 'zyx', got {order!r}")

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
    angles = (
        np.column_stack(
            [
                picks.features[c].to_numpy(dtype=float)
                if c in picks.features
                else np.full(len(picks), np.nan)
                for c in SHREC_ANGLE_COLUMNS
            ]
        )
        if len(picks)
        else np.zeros((0, 3))
    )
    classes = [c if c else "particle" for c in picks.features["class"].astype(str)]
    lines = []
    for name, (x, y, z), rotations in zip(classes, xyz, angles, strict=True):
        numbers = " ".join("NaN" if not np.isfinite(a) else f"{a:.6g}" for a in rotations)
        lines.append(f"{name} {x:.6g} {y:.6g} {z:.6g} {numbers}")
    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_text("\n".join(lines) + ("\n" if lines else ""))
    return Path(path)


# ---------------------------------------------------------------------------------------------
# By file name


def read_picks(path: str | Path, voxel_size: float | None = None) -> Picks:
    """Read picks from any supported format, chosen by the file name."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path, voxel_size)
    if suffix == ".star":
        return read_star(path, voxel_size=voxel_size)
    if suffix == ".json":
        return read_copick_json(path, voxel_size)
    if suffix == ".txt":
        return read_shrec_locations(path, voxel_size or 10.0)
    raise CryoetInputError(
        path, f"unknown picks format {suffix!r} (use .csv, .star, .json or .txt)"
    )


def write_picks(
    path: str | Path,
    picks: Picks,
    overwrite: bool = False,
    shape_zyx: tuple[int, int, int] | None = None,
    relion_version: int = 4,
) -> Path:
    """Write picks in the format the file name says (.csv, .star, .json copick, .txt SHREC)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return write_csv(path, picks, overwrite)
    if suffix == ".star":
        return write_star(path, picks, relion_version, shape_zyx, overwrite)
    if suffix == ".json":
        return write_copick_json(path, picks, overwrite=overwrite)
    if suffix == ".txt":
        return write_shrec_locations(path, picks, overwrite)
    raise CryoetInputError(
        path, f"unknown picks format {suffix!r} (use .csv, .star, .json or .txt)"
    )

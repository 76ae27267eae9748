"""RELION particle STAR through ``starfile``: RELION 4 voxel coordinates, RELION 5 centred Å, one
:class:`Picks` per ``rlnTomoName``."""

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
from napari_cryoet_particles.io.picks.model import (
    RELION_ANGLE_COLUMNS,
    Picks,
    angles_in,
    one_tomogram,
)
from napari_cryoet_particles.io.picks.tables import finite_coordinates, read_table

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

    return read_table(path, reader, "RELION STAR")


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
        xyz_angstrom = finite_coordinates(path, table[list(RELION5_COLUMNS)].to_numpy())
        zyx = relion_centered_angstrom_to_zyx(xyz_angstrom, shape_zyx, target)
    else:
        xyz = finite_coordinates(path, table[list(RELION4_COLUMNS)].to_numpy())
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

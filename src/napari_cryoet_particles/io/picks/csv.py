"""Picks CSV: ``x,y,z`` voxel indices (x the last MRC axis), ``score``, Å columns and the features."""

from pathlib import Path

import numpy as np
import pandas as pd

from napari_cryoet_particles.io.atomic import atomic_write
from napari_cryoet_particles.io.coords import voxels_to_angstrom, xyz_to_zyx, zyx_to_xyz
from napari_cryoet_particles.io.errors import reader
from napari_cryoet_particles.io.picks.model import FEATURE_DEFAULTS, Picks
from napari_cryoet_particles.io.picks.tables import finite_coordinates, read_table, require_columns

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


@reader("picks CSV")
def read_csv(path: str | Path, voxel_size: float | None = None) -> Picks:
    """Read a picks CSV with at least ``x,y,z`` voxel columns (``score`` and features optional).

    The voxel size comes from ``voxel_size``, else the file's ``voxel_size_angstrom`` column,
    else the ratio of ``x_angstrom`` to ``x``; else it is unknown (``None``).
    """
    path = Path(path)
    table = read_table(path, lambda p: pd.read_csv(p, comment="#"), "picks CSV")
    table.columns = [str(c).strip() for c in table.columns]
    require_columns(path, table, CSV_COORDINATE_COLUMNS, "picks CSV")
    xyz = finite_coordinates(path, table[list(CSV_COORDINATE_COLUMNS)].to_numpy())
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


def csv_states_unit(path: Path) -> bool:
    """Whether a CSV's header has a column that says the unit of its voxels (a missing file or a
    folder says nothing: :func:`read_csv` names the problem)."""
    if not path.is_file():
        return False
    with path.open(encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    columns = {c.strip() for c in header.split(",")}
    return "voxel_size_angstrom" in columns or "x_angstrom" in columns

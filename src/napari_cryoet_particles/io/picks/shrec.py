"""SHREC ``particle_locations.txt``: ``CLASS X Y Z rotZ1 rotX rotZ2`` per line, in voxels."""

from pathlib import Path

import numpy as np
import pandas as pd

from napari_cryoet_particles.io.atomic import atomic_write
from napari_cryoet_particles.io.coords import xyz_to_zyx, zyx_to_xyz
from napari_cryoet_particles.io.errors import CryoetInputError, reader
from napari_cryoet_particles.io.picks.model import SHREC_ANGLE_COLUMNS, Picks, angles_in
from napari_cryoet_particles.io.picks.tables import finite_coordinates, read_table
from napari_cryoet_particles.io.units import DEFAULT_VOXEL_SIZE, resolve_voxel_size

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
    table = read_table(path, reader, "SHREC particle_locations")
    if table.shape[1] < 4:
        raise CryoetInputError(
            path, f"expected lines 'CLASS X Y Z [rot rot rot]', found {table.shape[1]} columns"
        )
    coordinates = finite_coordinates(path, table.iloc[:, 1:4].to_numpy())
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

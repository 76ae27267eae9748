"""Checks on real tomograms, whose truth is partial: annotated centres, faces, a negative control.

The real volumes (``tests/data/real_tomograms/``, see its README) have no particle-id map:

- the HIV-1 virus-like particles (EMPIAR-10164) have 9 annotated centres with radii
  (``vlp_centers_derived.csv``); a VLP is found when a pick lies within half its radius of the
  centre (the CZII rule's 0.5 × radius), :func:`vlp_centre_hits`;
- the microtubule volumes (cylindra) hold no particle at all: every pick is false,
  :func:`negative_control_summary` counts them;
- in both, picks crowding the volume's faces are an artefact, :func:`face_picks`.

Positions are zyx voxels of the volume (a :class:`~napari_cryoet_particles.io.Picks` or an
(N, 3) array).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from napari_cryoet_particles.evaluate.landing import FACE_MARGIN, near_faces
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks import Picks
from napari_cryoet_particles.io.units import voxels_to_nm

#: Columns of ``vlp_centers_derived.csv`` (zyx voxels of the 40 Å volume) and of the lattice file.
CENTRE_COLUMNS = ("z_px40", "y_px40", "x_px40")
RADIUS_COLUMN = "radius_px40"
#: A centre is hit by a pick within this fraction of its radius (as the CZII challenge).
HIT_FRACTION = 0.5


def _zyx(picks: Picks | np.ndarray) -> np.ndarray:
    zyx = picks.zyx if isinstance(picks, Picks) else np.asarray(picks, dtype=float)
    return zyx.reshape(-1, 3)


def _read_columns(path: str | Path, columns: tuple[str, ...]) -> pd.DataFrame:
    table = pd.read_csv(path)
    missing = [c for c in columns if c not in table]
    if missing:
        raise CryoetInputError(path, f"lacks the column{'s' if len(missing) > 1 else ''} {missing}")
    return table


def read_vlp_centres(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``vlp_centers_derived.csv``: the VLP centres (N, 3) in zyx voxels and their radii (voxels)."""
    table = _read_columns(path, (*CENTRE_COLUMNS, RADIUS_COLUMN))
    return table[list(CENTRE_COLUMNS)].to_numpy(float), table[RADIUS_COLUMN].to_numpy(float)


def read_lattice_points(path: str | Path, voxel_size: float = 40.0) -> Picks:
    """``gag_lattice_points.csv``: the published Gag lattice positions as picks (zyx voxels of
    ``voxel_size`` Å, the 40 Å volume's)."""
    table = _read_columns(path, CENTRE_COLUMNS)
    return Picks(table[list(CENTRE_COLUMNS)].to_numpy(float), voxel_size)


@dataclass
class CentreHits:
    """Annotated centres against picks: which centres have a pick within ``HIT_FRACTION`` of their
    radius, and which picks lie that near some centre."""

    centre_hit: np.ndarray
    pick_near_centre: np.ndarray

    @property
    def n_centres(self) -> int:
        return len(self.centre_hit)

    @property
    def n_centres_hit(self) -> int:
        return int(np.count_nonzero(self.centre_hit))

    @property
    def n_picks(self) -> int:
        return len(self.pick_near_centre)

    @property
    def n_picks_near_centre(self) -> int:
        return int(np.count_nonzero(self.pick_near_centre))

    def to_dict(self) -> dict[str, int]:
        return {
            "n_centres": self.n_centres,
            "n_centres_hit": self.n_centres_hit,
            "n_picks": self.n_picks,
            "n_picks_near_centre": self.n_picks_near_centre,
        }


def vlp_centre_hits(
    picks: Picks | np.ndarray,
    centres_zyx: np.ndarray,
    radii_vox: np.ndarray | float,
    fraction: float = HIT_FRACTION,
) -> CentreHits:
    """How many centres have a pick within ``fraction`` × their radius, and how many picks lie
    within that reach of some centre (a pick near two centres counts once)."""
    zyx = _zyx(picks)
    centres = np.asarray(centres_zyx, dtype=float).reshape(-1, 3)
    reach = fraction * np.broadcast_to(np.asarray(radii_vox, dtype=float), (len(centres),))
    centre_hit = np.zeros(len(centres), dtype=bool)
    pick_near = np.zeros(len(zyx), dtype=bool)
    if len(zyx) and len(centres):
        tree = cKDTree(zyx)
        for k, (centre, r) in enumerate(zip(centres, reach, strict=True)):
            near = tree.query_ball_point(centre, r)
            centre_hit[k] = bool(near)
            pick_near[near] = True
    return CentreHits(centre_hit, pick_near)


def face_picks(
    picks: Picks | np.ndarray, shape: tuple[int, ...], margin: float = FACE_MARGIN
) -> int:
    """How many picks lie inside the volume nearer one of its faces than ``margin`` voxels."""
    return int(np.count_nonzero(near_faces(_zyx(picks), shape, margin)))


def negative_control_summary(
    picks: Picks | np.ndarray,
    shape: tuple[int, ...],
    voxel_size: float | None = None,
    margin: float = FACE_MARGIN,
) -> dict[str, float | int | None]:
    """Plain counts for a volume without particles (every pick is false): picks, those near a face
    and the others, picks per million voxels, and the volume in nm³ when the voxel size is known."""
    n_picks = len(_zyx(picks))
    n_faces = face_picks(picks, shape, margin)
    n_voxels = int(np.prod(shape[:3]))
    return {
        "n_picks": n_picks,
        "n_near_faces": n_faces,
        "n_interior": n_picks - n_faces,
        "face_margin_voxels": float(margin),
        "n_voxels": n_voxels,
        "picks_per_million_voxels": n_picks / n_voxels * 1e6 if n_voxels else 0.0,
        "volume_nm3": (
            None
            if voxel_size is None
            else float(np.prod([voxels_to_nm(n, voxel_size) for n in shape[:3]]))
        ),
    }

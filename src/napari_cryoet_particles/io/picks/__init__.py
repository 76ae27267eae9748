"""Picked coordinates and the files they travel in.

* :mod:`.model`: :class:`Picks` (zyx voxels, a voxel size in Å, per-pick features) and the one
  schema of pick features;
* one module per file format: :mod:`.csv`, :mod:`.star` (RELION 4/5 through ``starfile``),
  :mod:`.copick` (copick picks JSON), :mod:`.shrec` (SHREC ``particle_locations.txt``);
* :mod:`.formats`: the registry of those formats and the one way to read and write picks by file
  name, :func:`read_picks` / :func:`write_picks`.

Every conversion of coordinates goes through :mod:`napari_cryoet_particles.io.coords`.
"""

from napari_cryoet_particles.io.picks.copick import (
    copick_object_name,
    copick_points,
    picks_from_copick_points,
    read_copick_json,
    write_copick_json,
)
from napari_cryoet_particles.io.picks.csv import read_csv, write_csv
from napari_cryoet_particles.io.picks.formats import (
    PICKS_FORMATS,
    PicksFormat,
    ReadOptions,
    WriteOptions,
    format_for,
    format_named,
    picks_suffixes,
    read_picks,
    read_picks_by_tomogram,
    write_picks,
)
from napari_cryoet_particles.io.picks.model import (
    ADDED_FEATURES,
    FEATURE_DEFAULTS,
    PICK_STATUSES,
    RELION_ANGLE_COLUMNS,
    SHREC_ANGLE_COLUMNS,
    Picks,
    angles_in,
    carried_features,
    default_features,
    one_tomogram,
    orientations,
    standard_features,
    wanted_tomogram,
)
from napari_cryoet_particles.io.picks.shrec import (
    SHREC_VOXEL_SIZE,
    read_shrec_locations,
    write_shrec_locations,
)
from napari_cryoet_particles.io.picks.star import (
    read_star,
    read_star_by_tomogram,
    star_tomogram_names,
    write_star,
)

__all__ = [
    "ADDED_FEATURES",
    "FEATURE_DEFAULTS",
    "PICKS_FORMATS",
    "PICK_STATUSES",
    "RELION_ANGLE_COLUMNS",
    "SHREC_ANGLE_COLUMNS",
    "SHREC_VOXEL_SIZE",
    "Picks",
    "PicksFormat",
    "ReadOptions",
    "WriteOptions",
    "angles_in",
    "carried_features",
    "copick_object_name",
    "copick_points",
    "default_features",
    "format_for",
    "format_named",
    "one_tomogram",
    "orientations",
    "picks_from_copick_points",
    "picks_suffixes",
    "read_copick_json",
    "read_csv",
    "read_picks",
    "read_picks_by_tomogram",
    "read_shrec_locations",
    "read_star",
    "read_star_by_tomogram",
    "standard_features",
    "star_tomogram_names",
    "wanted_tomogram",
    "write_copick_json",
    "write_csv",
    "write_picks",
    "write_shrec_locations",
    "write_star",
]

"""Picked coordinates (:class:`Picks`) and the file formats they travel in."""
# ruff: noqa: F401

from napari_cryoet_particles.io.picks.formats import (
    PICKS_FORMATS,
    PicksFormat,
    ReadOptions,
    WriteOptions,
    format_for,
    format_named,
    picks_suffixes,
    read_picks_by_tomogram,
    read_picks_file,
    write_picks_file,
)
from napari_cryoet_particles.io.picks.model import *  # noqa: F403
from napari_cryoet_particles.io.picks.model import (
    ADDED_FEATURES,
    FEATURE_DEFAULTS,
    SHREC_VOXEL_SIZE,
    read_picks,
    write_picks,
)

"""Reading and writing tomograms, picks and SHREC dataset folders.

Everything that converts between the internal convention (zyx voxel indices plus a voxel size
in Å) and the conventions of file formats lives in this package.
"""

from napari_cryoet_particles.io.atomic import atomic_write
from napari_cryoet_particles.io.coords import (
    angstrom_to_voxels,
    relion_centered_angstrom_to_zyx,
    voxels_to_angstrom,
    xyz_to_zyx,
    zyx_to_relion_centered_angstrom,
    zyx_to_xyz,
)
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks import (
    PICK_STATUSES,
    Picks,
    read_copick_json,
    read_csv,
    read_picks,
    read_shrec_locations,
    read_star,
    read_star_by_tomogram,
    write_copick_json,
    write_csv,
    write_picks,
    write_shrec_locations,
    write_star,
)
from napari_cryoet_particles.io.shrec import ShrecDataset, is_shrec_folder, read_shrec_folder
from napari_cryoet_particles.io.tomogram import read_tomogram, write_tomogram
from napari_cryoet_particles.io.volume import Volume

__all__ = [
    "PICK_STATUSES",
    "CryoetInputError",
    "Picks",
    "ShrecDataset",
    "Volume",
    "angstrom_to_voxels",
    "atomic_write",
    "is_shrec_folder",
    "read_copick_json",
    "read_csv",
    "read_picks",
    "read_shrec_folder",
    "read_shrec_locations",
    "read_star",
    "read_star_by_tomogram",
    "read_tomogram",
    "relion_centered_angstrom_to_zyx",
    "voxels_to_angstrom",
    "write_copick_json",
    "write_csv",
    "write_picks",
    "write_shrec_locations",
    "write_star",
    "write_tomogram",
    "xyz_to_zyx",
    "zyx_to_relion_centered_angstrom",
    "zyx_to_xyz",
]

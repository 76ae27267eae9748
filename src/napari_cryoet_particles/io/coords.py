"""The one place where coordinate conventions are converted.

Inside the package, positions are float arrays of shape (N, 3) in **zyx voxel index** order
(napari's order, and the order of a numpy array read from an MRC file) together with a voxel size
in Å. File formats want xyz order, Å units or RELION 5's centred Å; each conversion is one function
here, with its inverse.
"""

import numpy as np


def _as_points(points: np.ndarray) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.ndim == 1 and array.size == 0:
        return array.reshape(0, 3)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"expected an (N, 3) array of coordinates, got shape {array.shape}")
    return array


def zyx_to_xyz(points: np.ndarray) -> np.ndarray:
    """Reverse the axis order: (z, y, x) rows become (x, y, z) rows."""
    return _as_points(points)[:, ::-1].copy()


def xyz_to_zyx(points: np.ndarray) -> np.ndarray:
    """Reverse the axis order: (x, y, z) rows become (z, y, x) rows."""
    return _as_points(points)[:, ::-1].copy()


def voxels_to_angstrom(points: np.ndarray, voxel_size: float) -> np.ndarray:
    """Voxel index coordinates (any axis order) to Å, with voxel index 0 at 0 Å."""
    return _as_points(points) * float(voxel_size)


def angstrom_to_voxels(points: np.ndarray, voxel_size: float) -> np.ndarray:
    """Å coordinates (any axis order) to voxel index coordinates."""
    return _as_points(points) / float(voxel_size)


def zyx_to_relion_centered_angstrom(
    zyx: np.ndarray, shape_zyx: tuple[int, int, int], voxel_size: float
) -> np.ndarray:
    """zyx voxel indices to RELION 5 centred xyz Å (0 Å at the volume centre, ``size / 2``)."""
    centre_zyx = np.asarray(shape_zyx, dtype=float) / 2.0
    return zyx_to_xyz((_as_points(zyx) - centre_zyx) * float(voxel_size))


def relion_centered_angstrom_to_zyx(
    xyz_angstrom: np.ndarray, shape_zyx: tuple[int, int, int], voxel_size: float
) -> np.ndarray:
    """RELION 5 centred xyz Å to zyx voxel indices (inverse of the function above)."""
    centre_zyx = np.asarray(shape_zyx, dtype=float) / 2.0
    return xyz_to_zyx(_as_points(xyz_angstrom)) / float(voxel_size) + centre_zyx


# ---------------------------------------------------------------------------------------------
# Orientations. Inside the package an orientation is a (3, 3) rotation matrix acting on (x, y, z)
# column vectors, taking the particle's frame to the tomogram's (copick's ``transformation``).


def _as_angles(angles: np.ndarray) -> np.ndarray:
    return _as_points(angles)


def relion_angles_to_matrices(angles: np.ndarray) -> np.ndarray:
    """RELION ``rlnAngleRot, rlnAngleTilt, rlnAnglePsi`` (degrees, ZYZ) to (N, 3, 3) rotations.

    RELION's Euler matrix is scipy's ``Rotation.from_euler("ZYZ", angles).inv()``, the convention
    copick uses for its ``transformation`` as well.
    """
    from scipy.spatial.transform import Rotation

    angles = _as_angles(angles)
    if len(angles) == 0:
        return np.zeros((0, 3, 3))
    return Rotation.from_euler("ZYZ", angles, degrees=True).inv().as_matrix().reshape(-1, 3, 3)


def matrices_to_relion_angles(matrices: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations to RELION ``rot, tilt, psi`` in degrees (inverse of the above)."""
    from scipy.spatial.transform import Rotation

    matrices = np.asarray(matrices, dtype=float).reshape(-1, 3, 3)
    if len(matrices) == 0:
        return np.zeros((0, 3))
    return Rotation.from_matrix(matrices).inv().as_euler("ZYZ", degrees=True)


def shrec_angles_to_matrices(angles: np.ndarray) -> np.ndarray:
    """SHREC ``rotZ1, rotX, rotZ2`` (degrees) to (N, 3, 3) rotations: scipy's intrinsic ZXZ, the
    way the simulator turns its maps (see :mod:`napari_cryoet_particles.simulate.phantom`)."""
    from scipy.spatial.transform import Rotation

    angles = _as_angles(angles)
    if len(angles) == 0:
        return np.zeros((0, 3, 3))
    return Rotation.from_euler("ZXZ", angles, degrees=True).as_matrix().reshape(-1, 3, 3)


def matrices_to_shrec_angles(matrices: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations to SHREC ``rotZ1, rotX, rotZ2`` in degrees (inverse of the above)."""
    from scipy.spatial.transform import Rotation

    matrices = np.asarray(matrices, dtype=float).reshape(-1, 3, 3)
    if len(matrices) == 0:
        return np.zeros((0, 3))
    return Rotation.from_matrix(matrices).as_euler("ZXZ", degrees=True)


def face_distance(zyx: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Per position (zyx voxels), the distance in voxels to the nearest face voxel plane (index 0
    or n - 1) of a volume of ``shape``: the one rule detection, the baselines and the scorer
    share for what lies at the faces."""
    zyx = np.asarray(zyx, dtype=float).reshape(-1, 3)
    last = np.asarray(shape[:3], dtype=float) - 1
    return np.minimum(zyx, last - zyx).min(axis=1) if len(zyx) else np.zeros(0)

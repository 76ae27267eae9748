"""What a candidate looks like, in numbers a small classifier can learn from.

A pick's descriptor is its learned embedding (the encoder's vector at the pick) plus its
**radial profile**: the mean intensity of the normalised, polarity-corrected tomogram in
spherical shells 1 nm thick around the pick, out to :data:`PROFILE_RADIUS_NM`, minus the mean of
the outermost shell (the local background). The profile says how large and how dense the object
is, in nanometres, whatever the voxel size; the embedding says what its texture is like. Curation
(:mod:`.refine`) learns which descriptors the user's particles have.
"""

from collections.abc import Callable

import numpy as np

#: Shells reach this far from the pick (nm): past the radius of a ribosome (~13 nm).
PROFILE_RADIUS_NM = 15.0
#: Shell thickness (nm).
PROFILE_STEP_NM = 1.0
#: A particle's extent ends at the first shell whose profile falls below this fraction of the
#: centre's (validation simulations: 0, 0.05, 0.1, 0.15, 0.25 tried; docs/detection.md).
EXTENT_FRACTION = 0.05
#: Crops gathered per matrix product (memory: ``BATCH`` × the crop's voxels × 4 bytes).
BATCH = 256
#: Positions are taken slab by slab, this many planes at a time: each plane is read (and
#: normalised) about ``1 + 2·half / SLAB_PLANES`` times instead of once per batch of crops.
SLAB_PLANES = 32


def shell_matrix(voxel_size: float, radius_nm: float, step_nm: float) -> tuple[int, np.ndarray]:
    """(crop half-width in voxels, matrix (crop voxels, shells) averaging each shell).

    Shell ``k`` holds the voxels whose centre lies ``k·step`` to ``(k+1)·step`` nm from the crop's
    centre voxel.
    """
    step_voxels = step_nm * 10.0 / voxel_size
    shells = max(2, int(round(radius_nm / step_nm)))
    half = max(1, int(np.ceil(shells * step_voxels)))
    axis = np.arange(-half, half + 1, dtype=float)
    distance = np.sqrt(
        axis[:, None, None] ** 2 + axis[None, :, None] ** 2 + axis[None, None, :] ** 2
    ).ravel()
    index = np.floor(distance / step_voxels).astype(int)
    inside = index < shells
    matrix = np.zeros((distance.size, shells), dtype=np.float32)
    matrix[np.flatnonzero(inside), index[inside]] = 1.0
    counts = matrix.sum(0)
    matrix[:, counts > 0] /= counts[counts > 0]
    return half, matrix


def radial_profiles(
    read: Callable[[tuple[slice, slice, slice]], np.ndarray],
    shape: tuple[int, int, int],
    zyx: np.ndarray,
    voxel_size: float,
    radius_nm: float = PROFILE_RADIUS_NM,
    step_nm: float = PROFILE_STEP_NM,
    check: Callable[[], None] | None = None,
) -> np.ndarray:
    """Radial profiles (N, shells) at working-voxel positions ``zyx`` (N, 3) of ``read``'s volume.

    ``read(box)`` gives the normalised volume with particles dark; profiles are sign-flipped so a
    particle's centre is positive, and the outermost shell (local background) is subtracted.
    Crops are cut from z-slabs of :data:`SLAB_PLANES` planes (with a halo), edge-padded at the
    borders, :data:`BATCH` at a time.
    """
    half, matrix = shell_matrix(voxel_size, radius_nm, step_nm)
    points = np.rint(np.asarray(zyx, dtype=float).reshape(-1, 3)).astype(int)
    points = np.clip(points, 0, np.asarray(shape) - 1)
    profiles = np.zeros((len(points), matrix.shape[1]), dtype=np.float32)
    order = np.argsort(points[:, 0], kind="stable")
    planes = points[order, 0]
    side = 2 * half + 1
    for z0 in range(0, shape[0], SLAB_PLANES):
        first, stop = np.searchsorted(planes, [z0, z0 + SLAB_PLANES])
        if first == stop:
            continue
        rows = order[first:stop]
        low_z, high_z = int(planes[first]), int(planes[stop - 1])
        lo, hi = max(0, low_z - half), min(shape[0], high_z + half + 1)
        slab = read((slice(lo, hi), slice(None), slice(None)))
        pad_lo, pad_hi = half - (low_z - lo), half - (hi - 1 - high_z)
        padded = np.pad(slab, ((pad_lo, pad_hi), (half, half), (half, half)), mode="edge")
        del slab
        windows = np.lib.stride_tricks.sliding_window_view(padded, (side, side, side))
        for start in range(0, len(rows), BATCH):
            if check is not None:
                check()
            batch = rows[start : start + BATCH]
            z, y, x = points[batch].T
            crops = windows[z - low_z, y, x]  # (batch, side, side, side), a copy
            profiles[batch] = -(crops.reshape(len(batch), -1) @ matrix)
    return profiles - profiles[:, -1:]


def profile_extent_nm(
    profiles: np.ndarray, step_nm: float = PROFILE_STEP_NM, fraction: float = EXTENT_FRACTION
) -> np.ndarray:
    """Radius (nm) of each object from its radial profile: the middle of the first shell whose
    value falls below ``fraction`` of the centre's (the last shell if none does).

    The blob radius of a large particle picked at a small scale (a dense patch inside a
    ribosome) says little about the particle; where its density ends does.
    """
    profiles = np.asarray(profiles, dtype=float)
    if not len(profiles):
        return np.zeros(0)
    centre = np.maximum(profiles[:, :1], 1e-6)
    below = profiles < fraction * centre
    below[:, -1] = True
    return (below.argmax(axis=1) + 0.5) * step_nm


def descriptor_matrix(embeddings: np.ndarray, profiles: np.ndarray) -> np.ndarray:
    """One row per pick: the embedding, then the radial profile (float32)."""
    return np.concatenate(
        [np.asarray(embeddings, dtype=np.float32), np.asarray(profiles, dtype=np.float32)], axis=1
    )

"""What a candidate looks like, in numbers a small classifier can learn from.

A pick's descriptor is its learned embedding (the encoder's vector at the pick) plus its
**radial profile**: the mean intensity of the normalised, polarity-corrected tomogram in
spherical shells 1 nm thick around the pick, out to :data:`PROFILE_RADIUS_NM`, minus the mean of
the outermost shell (the local background). The profile says how large and how dense the object
is, in nanometres, whatever the voxel size; the embedding says what its texture is like. Curation
(:mod:`.refine`) learns which descriptors the user's particles have.
"""

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from napari_cryoet_particles.io.units import nm_to_voxels, voxels_to_nm

#: Shells reach this far from the pick (nm): past the radius of a ribosome (~13 nm).
PROFILE_RADIUS_NM = 15.0
#: Shell thickness (nm).
PROFILE_STEP_NM = 1.0
#: Crops gathered per matrix product (memory: ``BATCH`` × the crop's voxels × 4 bytes).
BATCH = 256
#: Positions are taken slab by slab, this many planes at a time: each plane is read (and
#: normalised) about ``1 + 2·half / SLAB_PLANES`` times instead of once per batch of crops.
SLAB_PLANES = 32
#: ... and at most this many rows (y) at a time, so a block of a wide tomogram (1024² planes)
#: stays about as large as one of a 512² one (~70 M voxels with halo and padding, ~280 MB).
SLAB_ROWS = 512
#: Shape moments are taken in balls of these radii (nm) around a pick: a small protein, a middle
#: one, a ribosome's reach. With the low-pass below, chosen on validation simulations
#: (docs/detection.md, groups); not in DetectionParams: they name the descriptor's columns,
#: which a like head refined from curation stores.
SHAPE_RADII_NM = (5.0, 9.0, 14.0)
#: Crops are low-passed by a Gaussian of this sigma (nm) before the density is clipped at the
#: local background.
SHAPE_SIGMA_NM = 1.5
SHAPE_FEATURES = ("axis_long", "axis_mid", "axis_short", "elongation", "log_density", "offset")


def shell_matrix(voxel_size: float, radius_nm: float, step_nm: float) -> tuple[int, np.ndarray]:
    """(crop half-width in voxels, matrix (crop voxels, shells) averaging each shell).

    Shell ``k`` holds the voxels whose centre lies ``k·step`` to ``(k+1)·step`` nm from the crop's
    centre voxel.
    """
    step_voxels = nm_to_voxels(step_nm, voxel_size)
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
    Crops are cut from blocks of :data:`SLAB_PLANES` planes by :data:`SLAB_ROWS` rows (with a
    halo), edge-padded at the borders, :data:`BATCH` at a time.
    """
    half, matrix = shell_matrix(voxel_size, radius_nm, step_nm)
    points = _voxel_points(zyx, shape)
    profiles = np.zeros((len(points), matrix.shape[1]), dtype=np.float32)
    for rows, crops in _crop_batches(read, shape, points, half, check):
        profiles[rows] = -(crops.reshape(len(rows), -1) @ matrix)
    return profiles - profiles[:, -1:]


def _voxel_points(zyx: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    points = np.rint(np.asarray(zyx, dtype=float).reshape(-1, 3)).astype(int)
    return np.clip(points, 0, np.asarray(shape) - 1)


def _crop_batches(
    read: Callable[[tuple[slice, slice, slice]], np.ndarray],
    shape: tuple[int, int, int],
    points: np.ndarray,
    half: int,
    check: Callable[[], None] | None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(rows of ``points``, their crops (n, side, side, side)) of half-width ``half``, :data:`BATCH`
    at a time, cut from blocks of :data:`SLAB_PLANES` planes by :data:`SLAB_ROWS` rows (whole
    rows along x), each read with a halo of ``half`` and edge-padded at the volume's borders."""
    for rows in _point_blocks(points, shape):
        low, high = points[rows, :2].min(0), points[rows, :2].max(0)
        box = tuple(
            slice(max(0, int(lo) - half), min(n, int(hi) + half + 1))
            for lo, hi, n in zip(low, high, shape[:2], strict=True)
        )
        data = read((*box, slice(None)))
        pads = [
            (half - (lo - b.start), half - (b.stop - 1 - hi))
            for b, lo, hi in zip(box, low, high, strict=True)
        ]
        padded = np.pad(data, (*pads, (half, half)), mode="edge")
        del data
        # the padded block starts half a crop before the lowest point: a crop starts at its point
        windows = np.lib.stride_tricks.sliding_window_view(padded, (2 * half + 1,) * 3)
        for start in range(0, len(rows), BATCH):
            if check is not None:
                check()
            batch = rows[start : start + BATCH]
            z, y, x = points[batch].T
            yield batch, windows[z - low[0], y - low[1], x]  # a copy


def _point_blocks(points: np.ndarray, shape: tuple[int, int, int]) -> Iterator[np.ndarray]:
    """Rows of ``points`` block by block (:data:`SLAB_PLANES` planes by :data:`SLAB_ROWS` rows)."""
    for z0 in range(0, shape[0], SLAB_PLANES):
        in_slab = np.flatnonzero((points[:, 0] >= z0) & (points[:, 0] < z0 + SLAB_PLANES))
        ys = points[in_slab, 1]
        for y0 in range(0, shape[1], SLAB_ROWS):
            rows = in_slab[(ys >= y0) & (ys < y0 + SLAB_ROWS)]
            if len(rows):
                yield rows


def moment_matrix(half: int, radii: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(matrix (crop voxels, 10 per radius), outer-shell mask (crop voxels,)).

    Per radius, the columns sum a crop over the ball of that radius (in voxels) weighted by
    1, z, y, x, z², y², x², zy, zx, yx (offsets from the centre voxel): a crop times the matrix
    gives each ball's mass, first and second moments at once.
    """
    axis = np.arange(-half, half + 1, dtype=np.float32)
    z, y, x = (a.ravel() for a in np.meshgrid(axis, axis, axis, indexing="ij"))
    distance = np.sqrt(z**2 + y**2 + x**2)
    columns = []
    for radius in radii:
        ball = (distance <= radius).astype(np.float32)
        columns += [ball, ball * z, ball * y, ball * x]
        columns += [ball * z * z, ball * y * y, ball * x * x, ball * z * y, ball * z * x]
        columns += [ball * y * x]
    return np.stack(columns, axis=1), (distance >= half - 1) & (distance <= half)


def shape_columns(radii_nm: Sequence[float] = SHAPE_RADII_NM) -> tuple[str, ...]:
    """Names of :func:`shape_descriptors`' columns."""
    return tuple(f"shape_{name}_{r:g}nm" for r in radii_nm for name in SHAPE_FEATURES)


def shape_descriptors(
    read: Callable[[tuple[slice, slice, slice]], np.ndarray],
    shape: tuple[int, int, int],
    zyx: np.ndarray,
    voxel_size: float,
    check: Callable[[], None] | None = None,
) -> np.ndarray:
    """Rotation-invariant shape (N, 6 per radius of :data:`SHAPE_RADII_NM`) at working-voxel ``zyx``.

    Each crop is low-passed (:data:`SHAPE_SIGMA_NM`), made particle-positive, its outer shell's
    mean subtracted and clipped at zero, so only density above the local background counts (the
    linear radial profile keeps the noise's negative half, which hides the shape at SNR 0.1).
    In each ball: the square roots of the density's covariance eigenvalues (nm, long to short:
    size and elongation), their ratio long / short, the log mean density above background and
    the distance of its centre of mass from the pick (nm). On validation simulations these tell
    species apart far better than the radial profile or the embedding (docs/detection.md,
    groups and "more like these"). A crop holding NaN or Inf voxels gets NaN descriptors (the
    detection pipeline refuses such volumes before; the like head leaves NaN rows undescribed).
    """
    voxel_nm = voxels_to_nm(1.0, voxel_size)
    radii = [r / voxel_nm for r in SHAPE_RADII_NM]
    half = max(2, int(np.ceil(max(radii))))
    sigma = SHAPE_SIGMA_NM / voxel_nm
    matrix, outer = moment_matrix(half, radii)
    points = _voxel_points(zyx, shape)
    sums = np.zeros((len(points), matrix.shape[1]), dtype=np.float64)
    blur = gaussian_matrix(2 * half + 1, sigma)
    for rows, crops in _crop_batches(read, shape, points, half, check):
        above = -_low_passed(crops, blur).reshape(len(rows), -1)  # particles dark in the volume
        above -= above[:, outer].mean(axis=1, keepdims=True)
        np.maximum(above, 0.0, out=above)
        sums[rows] = above @ matrix
    counts = matrix[:, 0::10].sum(axis=0)
    return np.concatenate(
        [
            _moment_features(sums[:, 10 * k : 10 * k + 10], counts[k], voxel_nm)
            for k in range(len(radii))
        ],
        axis=1,
    ).astype(np.float32)


def gaussian_matrix(n: int, sigma: float, truncate: float = 3.0) -> np.ndarray:
    """(n, n) matrix of a 1-D Gaussian low-pass of length-``n`` lines: ``matrix @ line`` equals
    ``ndimage.gaussian_filter1d(line, sigma, mode="nearest", truncate=truncate)``."""
    reach = int(truncate * sigma + 0.5)
    offsets = np.arange(-reach, reach + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    matrix = np.zeros((n, n))
    rows = np.repeat(np.arange(n), len(offsets))
    columns = np.clip(rows + np.tile(offsets, n), 0, n - 1)
    np.add.at(matrix, (rows, columns), np.tile(kernel, n))
    return matrix.astype(np.float32)


def _low_passed(crops: np.ndarray, blur: np.ndarray) -> np.ndarray:
    """Cubic crops (b, n, n, n) low-passed along x, y and z by ``blur`` (:func:`gaussian_matrix`):
    three matrix products, about 4x faster than ``ndimage.gaussian_filter`` on 29³ crops."""
    b, n = crops.shape[:2]
    out = crops @ blur.T
    out = np.matmul(blur, out)
    return np.matmul(blur, out.reshape(b, n, n * n)).reshape(b, n, n, n)


def _moment_features(sums: np.ndarray, count: float, voxel_nm: float) -> np.ndarray:
    """The 6 features of :data:`SHAPE_FEATURES` from one ball's (mass, 3 first, 6 second) sums."""
    mass = sums[:, 0] + 1e-9
    centre = sums[:, 1:4] / mass[:, None]
    second = np.empty((len(sums), 3, 3))
    for (i, j), column in zip(
        ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)), range(4, 10), strict=True
    ):
        second[:, i, j] = second[:, j, i] = sums[:, column]
    covariance = second / mass[:, None, None] - centre[:, :, None] * centre[:, None, :]
    finite = np.isfinite(covariance).all(axis=(1, 2))  # a crop with NaN voxels: NaN, not a crash
    eigenvalues = np.full((len(sums), 3), np.nan)
    eigenvalues[finite] = np.linalg.eigvalsh(covariance[finite])[:, ::-1]
    axes = np.sqrt(np.maximum(eigenvalues, 0.0))
    return np.column_stack(
        [
            axes * voxel_nm,
            axes[:, 0] / (axes[:, 2] + 1e-6),
            np.log(mass / count),
            np.linalg.norm(centre, axis=1) * voxel_nm,
        ]
    )


def profile_extent_nm(
    profiles: np.ndarray, fraction: float, step_nm: float = PROFILE_STEP_NM
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

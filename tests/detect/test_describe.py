"""What a pick looks like (detect/describe.py), on its own: radial profiles and their extent,
shape descriptors, on tiny synthetic volumes (dark objects on a flat background)."""

import numpy as np
import pytest
from scipy import ndimage

from napari_cryoet_particles.detect import describe
from napari_cryoet_particles.detect.describe import (
    _low_passed,
    descriptor_matrix,
    gaussian_matrix,
    profile_extent_nm,
    radial_profiles,
    shape_columns,
    shape_descriptors,
    shell_matrix,
)
from napari_cryoet_particles.detect.params import PRESETS

FRACTION = PRESETS["default"].peaks.extent_fraction


def dark_ball(shape, centre, radius, inner=0.0, stretch=(1.0, 1.0, 1.0)) -> np.ndarray:
    """-1 inside a ball (voxels) of ``radius``, hollow inside ``inner``, stretched along the axes
    by ``stretch``; 0 elsewhere (particles are dark in a tomogram)."""
    grid = np.indices(shape, dtype=float)
    offsets = (grid - np.reshape(centre, (3, 1, 1, 1))) / np.reshape(stretch, (3, 1, 1, 1))
    distance = np.sqrt((offsets**2).sum(0))
    return -((distance <= radius) & (distance >= inner)).astype(np.float32)


def reader(volume: np.ndarray):
    return lambda box: volume[box].copy()


def profile_at(volume, zyx, voxel_size=10.0, radius_nm=8.0) -> np.ndarray:
    return radial_profiles(reader(volume), volume.shape, np.asarray(zyx), voxel_size, radius_nm)


def shapes_at(volume, zyx, voxel_size=10.0) -> dict[str, np.ndarray]:
    shapes = shape_descriptors(reader(volume), volume.shape, np.asarray(zyx), voxel_size)
    return dict(zip(shape_columns(), shapes.T, strict=True))


def test_radial_profile_of_a_dark_sphere_peaks_at_its_centre() -> None:
    half, matrix = shell_matrix(10.0, 6.0, 1.0)
    assert half == 6 and matrix.shape == (13**3, 6)
    assert np.allclose(matrix.sum(0), 1.0)
    volume = np.zeros((32, 32, 32), dtype=np.float32)
    grid = np.indices(volume.shape)
    volume[((grid - 16) ** 2).sum(0) <= 9] = -1.0  # dark, radius 3 voxels = 3 nm

    def read(box):
        return volume[box].copy()

    profile = radial_profiles(read, volume.shape, np.array([[16, 16, 16], [2, 2, 2]]), 10.0, 6.0)
    assert profile.shape == (2, 6)
    assert profile[0, 0] == pytest.approx(1.0) and profile[0, 1] == pytest.approx(1.0)
    assert profile[0, 4] == pytest.approx(0.0)
    assert np.allclose(profile[1], 0.0)  # background everywhere (edge-padded corner)


def test_radial_profiles_cut_slab_by_slab_equal_whole_volume_crops(monkeypatch) -> None:
    """Points in many slabs, at every border: each profile is its crop of the edge-padded whole
    volume times the shell matrix, minus the outermost shell."""

    rng = np.random.default_rng(5)
    monkeypatch.setattr(describe, "SLAB_ROWS", 8)  # blocks along y too
    volume = rng.normal(size=(2 * describe.SLAB_PLANES + 9, 21, 17)).astype(np.float32)
    points = np.vstack(
        [rng.integers(0, volume.shape, size=(40, 3)), [[0, 0, 0], np.array(volume.shape) - 1]]
    )
    profiles = radial_profiles(lambda box: volume[box].copy(), volume.shape, points, 10.0, 5.0)
    half, matrix = shell_matrix(10.0, 5.0, 1.0)
    padded = np.pad(volume, half, mode="edge")
    side = 2 * half + 1
    crops = np.stack([padded[z : z + side, y : y + side, x : x + side] for z, y, x in points])
    expected = -(crops.reshape(len(points), -1) @ matrix)
    np.testing.assert_allclose(profiles, expected - expected[:, -1:], atol=1e-5)


def test_shape_descriptors_tell_size_and_elongation_whatever_the_orientation() -> None:
    """Dark objects on a flat background: a rod along z and the same rod along x get the same
    descriptor; the rod is more elongated than a ball; a larger ball has longer axes."""
    grid = np.indices((64, 64, 160), dtype=np.float32)

    def blob(centre, sigmas):
        d2 = sum(((grid[a] - centre[a]) / sigmas[a]) ** 2 for a in range(3))
        return np.exp(-d2 / 2)

    volume = -(
        blob((32, 32, 20), (6, 2, 2))  # rod along z
        + blob((32, 32, 60), (2, 2, 6))  # rod along x
        + blob((32, 32, 100), (2, 2, 2))  # small ball
        + blob((32, 32, 140), (4, 4, 4))  # large ball
    ).astype(np.float32)
    points = np.array([[32, 32, 20], [32, 32, 60], [32, 32, 100], [32, 32, 140]])
    shapes = shape_descriptors(lambda box: volume[box], volume.shape, points, 10.0)
    columns = list(shape_columns())
    assert shapes.shape == (4, len(columns)) and np.isfinite(shapes).all()
    np.testing.assert_allclose(shapes[0], shapes[1], rtol=1e-3, atol=1e-3)
    elongation = shapes[:, columns.index("shape_elongation_9nm")]
    assert elongation[0] > 1.5 and elongation[2] < 1.1
    long_axis = shapes[:, columns.index("shape_axis_long_9nm")]
    assert long_axis[3] > 1.3 * long_axis[2]


def test_crops_low_passed_by_matrices_equal_scipy_gaussian() -> None:
    crops = np.random.default_rng(2).normal(size=(3, 11, 11, 11)).astype(np.float32)
    expected = ndimage.gaussian_filter(crops, (0, 1.5, 1.5, 1.5), mode="nearest", truncate=3.0)
    np.testing.assert_allclose(_low_passed(crops, gaussian_matrix(11, 1.5)), expected, atol=1e-5)


def test_solid_and_hollow_balls_differ_at_the_centre_not_at_the_wall() -> None:
    """A solid ball's profile is flat out to its radius; a hollow one of the same size (a shell
    like a VLP's) is empty at the centre and dense at the wall; both are background beyond."""
    shape, centre = (24, 24, 24), [[12, 12, 12]]
    solid = profile_at(dark_ball(shape, centre[0], 5), centre)[0]
    hollow = profile_at(dark_ball(shape, centre[0], 5, inner=3.5), centre)[0]
    assert solid.shape == hollow.shape == (8,)
    np.testing.assert_allclose(solid[:5], 1.0, atol=1e-5)
    np.testing.assert_allclose(hollow[:3], 0.0, atol=1e-5)
    assert hollow[4] == pytest.approx(1.0, abs=1e-5) and 0 < hollow[3] < 1
    np.testing.assert_allclose([solid[6:], hollow[6:]], 0.0, atol=1e-5)
    assert profile_extent_nm(solid[None], FRACTION)[0] == pytest.approx(
        6.5
    )  # shell 5 holds the rim


def test_profile_and_extent_are_in_nanometres_whatever_the_voxel_size() -> None:
    """The same 4 nm ball at 10 Å and at 5 Å per voxel: the same profile, the same extent."""
    coarse = dark_ball((24, 24, 24), (12, 12, 12), 4)
    fine = dark_ball((40, 40, 40), (20, 20, 20), 8)
    at_10 = profile_at(coarse, [[12, 12, 12]], voxel_size=10.0)
    at_5 = profile_at(fine, [[20, 20, 20]], voxel_size=5.0)
    np.testing.assert_allclose(at_10, at_5, atol=0.05)
    assert (
        profile_extent_nm(at_10, FRACTION)[0]
        == profile_extent_nm(at_5, FRACTION)[0]
        == pytest.approx(4.5)
    )


def test_extent_of_empty_flat_and_nan_profiles() -> None:
    """No profiles: none; a profile that never falls (or is NaN): the last shell's middle."""
    assert profile_extent_nm(np.zeros((0, 8)), FRACTION).shape == (0,)
    never_falls = np.ones((1, 8))
    np.testing.assert_allclose(profile_extent_nm(never_falls, FRACTION), 7.5)
    np.testing.assert_allclose(profile_extent_nm(np.full((1, 8), np.nan), FRACTION), 7.5)
    np.testing.assert_allclose(profile_extent_nm(never_falls, FRACTION, step_nm=2.0), 15.0)


def test_shape_tells_a_ball_from_an_elongated_blob_of_the_same_width() -> None:
    """A ball of radius 3 voxels and the same ball stretched threefold along x: the blob's long
    axis is longer, its short axes alike, its elongation well above the ball's 1."""
    shape, centre = (24, 24, 40), (12, 12, 20)
    ball = shapes_at(dark_ball(shape, centre, 3), [centre])
    blob = shapes_at(dark_ball(shape, centre, 3, stretch=(1, 1, 3)), [centre])
    assert ball["shape_elongation_9nm"][0] == pytest.approx(1.0, abs=0.01)
    assert blob["shape_elongation_9nm"][0] > 2.0
    assert blob["shape_axis_long_9nm"][0] > 2 * ball["shape_axis_long_9nm"][0]
    assert blob["shape_axis_short_9nm"][0] == pytest.approx(
        ball["shape_axis_short_9nm"][0], rel=0.1
    )
    assert blob["shape_log_density_9nm"][0] > ball["shape_log_density_9nm"][0]  # more mass


def test_shape_is_in_nanometres_and_says_how_far_the_pick_is_off_centre() -> None:
    """The same 4 nm ball at 10 Å and 5 Å: the same axes; a pick 2 nm beside its centre: an
    offset of 2 nm in the balls that hold the whole particle."""
    coarse = dark_ball((24, 24, 24), (12, 12, 12), 4)
    fine = dark_ball((40, 40, 40), (20, 20, 20), 8)
    at_10 = shapes_at(coarse, [[12, 12, 12], [12, 12, 14]], voxel_size=10.0)
    at_5 = shapes_at(fine, [[20, 20, 20], [20, 20, 24]], voxel_size=5.0)
    for name in ("shape_axis_long_9nm", "shape_axis_short_14nm", "shape_offset_9nm"):
        np.testing.assert_allclose(at_10[name], at_5[name], atol=0.05)
    np.testing.assert_allclose(at_10["shape_offset_9nm"], [0.0, 2.0], atol=0.05)
    np.testing.assert_allclose(at_10["shape_offset_14nm"], [0.0, 2.0], atol=0.05)


def test_a_flat_volume_has_a_finite_shape_of_no_size() -> None:
    flat = np.zeros((24, 24, 24), dtype=np.float32)
    shapes = shape_descriptors(reader(flat), flat.shape, np.array([[12, 12, 12]]), 10.0)
    assert np.isfinite(shapes).all()
    named = dict(zip(shape_columns(), shapes[0], strict=True))
    assert named["shape_axis_long_9nm"] == 0.0 and named["shape_offset_9nm"] == 0.0


def test_points_outside_the_volume_are_clamped_and_borders_edge_padded() -> None:
    """A point beyond a face is described at the nearest voxel; a crop reaching past a face sees
    the face's voxels repeated (a ball touching it looks cut, not mirrored)."""
    volume = dark_ball((24, 24, 24), (2, 12, 12), 3)
    outside = profile_at(volume, [[-4, 12, 30.6]])
    np.testing.assert_allclose(outside, profile_at(volume, [[0, 12, 23]]))
    padded = np.pad(volume, 8, mode="edge")
    inside = profile_at(padded, [[10, 20, 20]])
    np.testing.assert_allclose(profile_at(volume, [[2, 12, 12]]), inside, atol=1e-6)


def test_non_finite_voxels_spoil_only_the_crops_that_hold_them() -> None:
    """A NaN voxel gives NaN descriptors to the picks whose crop holds it (not an error), and
    leaves the others as they were without it."""
    clean = dark_ball((24, 24, 48), (12, 12, 8), 3) + dark_ball((24, 24, 48), (12, 12, 40), 3)
    spoilt = clean.copy()
    spoilt[12, 12, 4] = np.nan
    points = np.array([[12, 12, 8], [12, 12, 40]])
    profiles = profile_at(spoilt, points, radius_nm=5.0)
    assert np.isnan(profiles[0]).all()
    np.testing.assert_array_equal(profiles[1], profile_at(clean, points, radius_nm=5.0)[1])
    shapes = shape_descriptors(reader(spoilt), spoilt.shape, points, 10.0)
    assert np.isnan(shapes[0]).all()
    expected = shape_descriptors(reader(clean), clean.shape, points, 10.0)[1]
    np.testing.assert_array_equal(shapes[1], expected)


def test_no_points_no_rows() -> None:
    volume = dark_ball((16, 16, 16), (8, 8, 8), 3)
    none = np.zeros((0, 3))
    assert profile_at(volume, none).shape == (0, 8)
    shapes = shape_descriptors(reader(volume), volume.shape, none, 10.0)
    assert shapes.shape == (0, len(shape_columns()))


def test_columns_and_descriptor_matrix() -> None:
    columns = shape_columns()
    assert len(columns) == len(describe.SHAPE_FEATURES) * len(describe.SHAPE_RADII_NM)
    assert columns[0] == "shape_axis_long_5nm" and len(set(columns)) == len(columns)
    rows = descriptor_matrix(np.ones((3, 4), dtype=np.float64), np.zeros((3, 2)))
    assert rows.dtype == np.float32 and rows.shape == (3, 6)
    np.testing.assert_array_equal(rows[:, :4], 1.0)

"""The simulator: phantom truth, determinism, missing wedge, noise level, contrast, files, CLI."""

from pathlib import Path

import mrcfile
import numpy as np
import pytest
from scipy import ndimage

from napari_cryoet_particles.cli import main
from napari_cryoet_particles.io import CryoetInputError, read_shrec_folder, read_shrec_locations
from napari_cryoet_particles.jobs import CancelToken, JobCancelled, run_job
from napari_cryoet_particles.simulate import (
    SHREC2021_LAYOUT,
    SHREC_CLASSES,
    LayoutOptions,
    SimulationConfig,
    class_index,
    load_structures,
    make_sample_dataset,
    read_layout,
    simulate,
    simulate_dataset,
    simulate_job,
)
from napari_cryoet_particles.simulate.imaging import (
    backprojection_matrix,
    ctf,
    dose_symmetric_exposure,
    projection_matrix,
    tilt_angles,
)
from napari_cryoet_particles.simulate.phantom import phantom_job, protein_stamp
from tests.conftest import DATA

TINY = (32, 64, 64)


@pytest.fixture(scope="module")
def tiny_default() -> object:
    """One default (noisy) simulation of a 48x96x96 volume, shared by the cheap checks."""
    return simulate(SimulationConfig(shape=(48, 96, 96), seed=5, n_vesicles=1, n_fiducials=1))


def _touching_border(occupancy: np.ndarray) -> set[int]:
    faces = [
        occupancy[0],
        occupancy[-1],
        occupancy[:, 0],
        occupancy[:, -1],
        occupancy[:, :, 0],
        occupancy[:, :, -1],
    ]
    return set(np.unique(np.concatenate([f.ravel() for f in faces])).tolist())


def _xz_power(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean power over y of the (z, x) Fourier transform, with radius and angle from the kx axis."""
    nz, _, nx = volume.shape
    window = np.hanning(nz)[:, None, None] * np.hanning(nx)[None, None, :]
    power = (np.abs(np.fft.fft2((volume - volume.mean()) * window, axes=(0, 2))) ** 2).mean(axis=1)
    kz, kx = np.fft.fftfreq(nz)[:, None], np.fft.fftfreq(nx)[None, :]
    return power, np.hypot(kz, kx), np.degrees(np.arctan2(np.abs(kz), np.abs(kx)))


def _band_power(volume: np.ndarray, low_deg: float, high_deg: float) -> float:
    power, radius, angle = _xz_power(volume)
    band = (radius > 0.06) & (radius < 0.3) & (angle >= low_deg) & (angle < high_deg)
    return float(power[band].mean())


# --- structures and phantom -------------------------------------------------------------------


def test_shipped_maps_are_faithful_to_the_source_maps() -> None:
    structures = load_structures()
    assert sorted(structures) == sorted(SHREC_CLASSES[:13])
    for name, structure in structures.items():
        original = (
            mrcfile.read(DATA / "structures_10A" / f"{name.lower()}.mrc").astype(float) / 200.0
        )
        assert structure.mass == pytest.approx(original.sum(), rel=0.01)
        assert structure.density.max() == pytest.approx(original.max(), rel=0.01)
    assert structures["5MRC"].radius > 3 * structures["3QM1"].radius


def test_euler_rotation_convention_z_turns_x_towards_y() -> None:
    structure = load_structures()["1QVR"]
    still = protein_stamp(structure, np.zeros(3), np.zeros(3)).density
    turned = protein_stamp(structure, np.array([90.0, 0.0, 0.0]), np.zeros(3)).density
    # an active +90° turn about z takes the +x side of the map to +y: new[y, x] = old[-x, y]
    np.testing.assert_allclose(turned, np.rot90(still, k=-1, axes=(1, 2)), atol=1e-4)
    assert not np.allclose(turned, still, atol=1e-2)


def test_occupancy_ids_match_particle_locations_lines(tmp_path: Path) -> None:
    folder = simulate_dataset(
        tmp_path / "run", size=(48, 96, 96), seed=3, n_particles=30, n_vesicles=1, n_fiducials=2
    )
    data = read_shrec_folder(folder)
    occupancy = np.asarray(data.occupancy)
    truth = data.truth
    ids = np.arange(1, len(truth) + 1)
    assert set(np.unique(occupancy)) <= {0, *ids.tolist()}
    assert np.isin(ids, occupancy).all(), "every line has voxels"
    centroids = np.asarray(ndimage.center_of_mass(np.ones(occupancy.shape), occupancy, ids))
    inside = np.array([i not in _touching_border(occupancy) for i in ids])
    assert inside.sum() >= 8
    distance = np.linalg.norm(centroids - truth.zyx, axis=1)
    assert distance[inside].max() < 1.0
    # class mask agrees with the class of each id's line
    class_mask = np.asarray(data.class_mask)
    for i, name in zip(ids, truth.features["class"], strict=True):
        assert np.all(class_mask[occupancy == i] == class_index(name))
    assert {"vesicle", "fiducial"} <= set(truth.features["class"])
    names = (folder / "class_names.txt").read_text().splitlines()
    assert names[1] == "1 4V94" and names[14] == "14 vesicle"


def test_random_layout_keeps_objects_apart_and_is_balanced() -> None:
    options = LayoutOptions(n_particles=26, n_vesicles=0, n_fiducials=0)
    phantom = run_job(phantom_job((48, 96, 96), np.random.default_rng(0), options=options))
    counts = phantom.truth.features["class"].value_counts()
    assert len(phantom.truth) + phantom.info["n_left_out"] == 26
    assert counts.max() - counts.min() <= 1 if phantom.info["n_left_out"] == 0 else True
    grown = ndimage.grey_dilation(phantom.occupancy, size=(3, 3, 3))
    for i in range(1, len(phantom.truth) + 1):
        neighbours = np.unique(grown[phantom.occupancy == i])
        assert set(neighbours.tolist()) <= {0, i}, "footprints are at least one voxel apart"


def test_layout_file_places_objects_exactly(tmp_path: Path) -> None:
    path = tmp_path / "particle_locations.txt"
    path.write_text(
        "vesicle 40 40 20 NaN NaN NaN\n"
        "fiducial 12 50 10 NaN NaN NaN\n"
        "4V94_fixed 20.5 15 30 10 20 30\n"
        "1s3x 50 12 8 NaN NaN NaN\n"
    )
    layout = read_layout(path, (40, 64, 64))
    assert list(layout.features["class"]) == ["vesicle", "fiducial", "4V94", "1S3X"]
    phantom = run_job(phantom_job((40, 64, 64), np.random.default_rng(1), layout=layout))
    np.testing.assert_allclose(phantom.truth.zyx, layout.zyx)
    features = phantom.truth.features
    assert np.isfinite(features.loc[3, ["rot_z1", "rot_x", "rot_z2"]].to_numpy(float)).all()
    assert features.loc[2, ["rot_z1", "rot_x", "rot_z2"]].tolist() == [10.0, 20.0, 30.0]
    for i, name in enumerate(["vesicle", "fiducial", "4V94", "1S3X"], start=1):
        assert np.all(phantom.class_mask[phantom.occupancy == i] == class_index(name))
    assert phantom.density.max() > 5, "gold is much denser than protein"


def test_real_shrec_layout_reads_and_bad_layouts_are_refused(tmp_path: Path) -> None:
    layout = read_layout(SHREC2021_LAYOUT)
    assert len(layout) == 1466
    assert {"4V94", "vesicle", "fiducial"} <= set(layout.features["class"])
    with pytest.raises(CryoetInputError, match="outside"):
        read_layout(SHREC2021_LAYOUT, (100, 512, 512))
    bad = tmp_path / "bad.txt"
    bad.write_text("ZZZZ 1 2 3 0 0 0\n")
    with pytest.raises(CryoetInputError, match="unknown particle class 'ZZZZ'"):
        read_layout(bad, TINY)


# --- imaging ------------------------------------------------------------------------------------


def test_projector_and_backprojector_are_consistent() -> None:
    angles = tilt_angles((-60, 60), 30)
    np.testing.assert_allclose(angles, [-60, -30, 0, 30, 60])
    forward = projection_matrix(20, 60, 60, angles)
    backward = backprojection_matrix(20, 60, 60, angles)
    # line integrals: through the middle of a uniform slab, thickness / cos(angle)
    slab = forward @ np.ones(20 * 60)
    centre = slab.reshape(5, 60)[:, 30]
    np.testing.assert_allclose(centre, 20 / np.cos(np.deg2rad(angles)), rtol=0.02)
    # for smooth functions the voxel-driven back-projector acts as the projector's transpose
    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.normal(size=(20, 60)), 3).ravel()
    rays = ndimage.gaussian_filter1d(rng.normal(size=(5, 60)), 3, axis=1).ravel()
    assert (forward @ image) @ rays == pytest.approx(image @ (backward @ rays), rel=0.05)


def test_ctf_darkens_protein_and_damage_order_is_dose_symmetric() -> None:
    frequency_sq = np.array([0.0, (1 / 200) ** 2])
    assert np.all(ctf(frequency_sq, 30000.0) < 0)
    exposure = dose_symmetric_exposure(np.array([-4.0, -2.0, 0.0, 2.0, 4.0]), 100.0)
    np.testing.assert_allclose(exposure, [90, 50, 10, 30, 70])


def test_missing_wedge_is_measured_in_the_fourier_transform() -> None:
    wide = simulate(SimulationConfig(shape=TINY, seed=0, tilt_range=(-60, 60))).reconstruction
    narrow = simulate(SimulationConfig(shape=TINY, seed=0, tilt_range=(-30, 30))).reconstruction
    measured = _band_power(wide, 0, 20)
    # directions within 15° of the beam axis were never measured with ±60° tilts
    assert _band_power(wide, 75, 90) < 0.05 * measured
    # 40-50° from the x axis is measured at ±60° but inside the wedge at ±30°
    assert _band_power(wide, 40, 50) > 0.3 * measured
    assert _band_power(narrow, 40, 50) < 0.1 * _band_power(wide, 40, 50)


def test_snr_sets_the_noise_level() -> None:
    config = SimulationConfig(shape=TINY, seed=4)
    clean = simulate(SimulationConfig(**{**config.to_dict(), "snr": None}))
    low = simulate(SimulationConfig(**{**config.to_dict(), "snr": 0.1}))
    high = simulate(SimulationConfig(**{**config.to_dict(), "snr": 1.0}))
    assert low.info["snr_at_zero_tilt"] == pytest.approx(0.1, rel=0.1)
    assert high.info["snr_at_zero_tilt"] == pytest.approx(1.0, rel=0.1)
    assert "snr_at_zero_tilt" not in clean.info
    np.testing.assert_array_equal(clean.grandmodel, low.grandmodel)
    noise_low = (low.reconstruction - clean.reconstruction).var()
    noise_high = (high.reconstruction - clean.reconstruction).var()
    assert noise_low / noise_high == pytest.approx(10.0, rel=0.2)
    # shot noise grows with tilt as fewer electrons cross the longer path through the ice
    variance = (low.tilt_series - clean.tilt_series).var(axis=(1, 2))
    path = 1 / np.cos(np.deg2rad(low.true_angles))
    expected = np.exp(TINY[0] * 10.0 / (config.ice_free_path * 10.0) * (path - path.min()))
    order = np.argsort(path)
    measured_ratio = variance[order[-10:]].mean() / variance[order[:10]].mean()
    assert measured_ratio == pytest.approx(
        expected[order[-10:]].mean() / expected[order[:10]].mean(), rel=0.03
    )
    assert measured_ratio > 1.05


def test_particles_are_darker_than_solvent(tiny_default) -> None:
    occupancy = tiny_default.phantom.occupancy
    proteins = np.isin(tiny_default.phantom.class_mask, np.arange(1, 14))
    reconstruction = tiny_default.reconstruction
    assert proteins.sum() > 1000
    assert reconstruction[proteins].mean() < reconstruction[occupancy == 0].mean()
    assert tiny_default.info["snr_at_zero_tilt"] == pytest.approx(0.1, rel=0.1)


# --- jobs, files, CLI, sample ---------------------------------------------------------------------


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    first = simulate_dataset(tmp_path / "a", size=TINY, seed=11)
    second = simulate_dataset(tmp_path / "b", size=TINY, seed=11)
    other = simulate_dataset(tmp_path / "c", size=TINY, seed=12)
    names = sorted(p.name for p in first.iterdir())
    assert {"reconstruction.mrc", "grandmodel.mrc", "occupancy_mask.mrc", "class_mask.mrc"} <= set(
        names
    )
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "reconstruction.mrc").read_bytes() != (
        other / "reconstruction.mrc"
    ).read_bytes()
    with mrcfile.open(first / "reconstruction.mrc") as mrc:
        assert float(mrc.voxel_size.x) == pytest.approx(10.0)
        assert mrc.data.shape == TINY


def test_job_reports_phases_in_order_and_can_be_cancelled() -> None:
    messages = []
    job = simulate_job(SimulationConfig(shape=TINY, seed=0))
    while True:
        try:
            messages.append(next(job).message)
        except StopIteration:
            break
    phases = list(dict.fromkeys(messages))
    assert phases == ["phantom", "projections", "reconstruction"]
    cancel = CancelToken()
    job = simulate_job(SimulationConfig(shape=TINY, seed=0), cancel=cancel)
    next(job)
    cancel.cancel()
    with pytest.raises(JobCancelled):
        run_job(job)


def test_bad_parameters_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CryoetInputError, match="tilt range"):
        SimulationConfig(tilt_range=(30, -30))
    with pytest.raises(CryoetInputError, match="snr must be positive"):
        SimulationConfig(snr=-1)
    with pytest.raises(CryoetInputError, match="unknown simulation option"):
        simulate_dataset(tmp_path / "x", size=TINY, wobble=3)


def test_cli_simulate_writes_a_folder_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "sim"
    arguments = ["simulate", "--out", str(out), "--size", *map(str, TINY), "--seed", "2", "--quiet"]
    assert main([*arguments, "--tilt-range", "-50", "50", "--tilt-step", "5", "--snr", "0.5"]) == 0
    data = read_shrec_folder(out)
    assert data.tomogram.shape == TINY
    assert len((out / "tilt_angles.tlt").read_text().split()) == 21
    assert main(arguments) == 2
    assert "not empty" in capsys.readouterr().err
    assert main([*arguments, "--overwrite", "--no-projections", "--snr", "inf"]) == 0
    assert len(read_shrec_locations(out / "particle_locations.txt")) == len(data.truth)


def test_sample_dataset_is_a_small_real_simulation() -> None:
    sample = make_sample_dataset()
    assert sample.volume.shape == (64, 128, 128)
    assert sample.volume.dtype == np.float32
    assert sample.voxel_size == 10.0
    classes = set(sample.truth.features["class"])
    assert "vesicle" in classes and len(classes & set(SHREC_CLASSES[:13])) >= 5
    assert sample.occupancy.max() == len(sample.truth)
    np.testing.assert_array_equal(make_sample_dataset().volume, sample.volume)

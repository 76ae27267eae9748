"""Cellular clutter, held-out condition knobs and the registry of simulation families."""

import hashlib
import json
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from scipy import ndimage

from napari_cryoet_particles.cli import main
from napari_cryoet_particles.io import CryoetInputError, read_shrec_folder
from napari_cryoet_particles.jobs import run_job
from napari_cryoet_particles.simulate import (
    CLUTTER_CLASSES,
    FAMILIES,
    NON_PROTEIN_CLASSES,
    LayoutOptions,
    SimulationConfig,
    class_index,
    clutter,
    family_config,
    simulate,
    write_dataset,
)
from napari_cryoet_particles.simulate.imaging import RECONSTRUCTION_FILTERS, colour_noise
from napari_cryoet_particles.simulate.phantom import phantom_job
from napari_cryoet_particles.simulate.structures import FOOTPRINT_LEVEL, PROTEIN_CLASSES

TINY = (32, 64, 64)
CLUTTERED = LayoutOptions(
    n_particles=10,
    n_vesicles=1,
    n_fiducials=1,
    n_membranes=1,
    n_actin=1,
    n_microtubules=1,
    n_ice=1,
    carbon_edge=True,
)


@pytest.fixture(scope="module")
def cluttered():
    return run_job(
        phantom_job(
            (48, 128, 128),
            np.random.default_rng(0),
            options=CLUTTERED,
            clutter_rng=np.random.default_rng(3),
        )
    )


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def test_defaults_are_unchanged() -> None:
    """Fingerprints of a small default simulation, computed with the code before clutter."""
    result = simulate(SimulationConfig(shape=TINY, seed=3, n_vesicles=1, n_fiducials=1, threads=1))
    phantom = result.phantom
    assert _digest(phantom.occupancy) == "16e8df586a94c7d3"
    assert _digest(phantom.class_mask) == "117c588a14f0f234"
    assert list(phantom.truth.features["class"]) == [
        "vesicle",
        "fiducial",
        "3CF3",
        "1U6G",
        "4CR2",
        "3D2F",
    ]
    assert np.allclose(
        phantom.truth.zyx[:2], [[19.881, 26.7976, 43.0144], [26.4076, 9.7132, 15.1446]], atol=1e-4
    )
    assert phantom.reference is None
    probe = np.random.default_rng(0).standard_normal(result.reconstruction.size)
    assert float(phantom.density.astype(np.float64).sum()) == pytest.approx(
        18647.62873443068, rel=1e-6
    )
    assert float(result.reconstruction.ravel().astype(np.float64) @ probe) == pytest.approx(
        -0.93222190047066, rel=1e-5
    )
    assert float((result.reconstruction.astype(np.float64) ** 2).sum()) == pytest.approx(
        2.423066888677099, rel=1e-5
    )


def test_each_clutter_kind_is_in_the_class_mask_and_apart_from_proteins(cluttered) -> None:
    classes = cluttered.truth.features["class"].to_numpy()
    assert set(CLUTTER_CLASSES) <= set(classes)
    for i, name in enumerate(classes, start=1):
        voxels = cluttered.occupancy == i
        assert voxels.any(), name
        assert np.all(cluttered.class_mask[voxels] == class_index(name))
    assert [class_index(c) for c in CLUTTER_CLASSES] == [16, 17, 18, 19, 20]
    protein = np.isin(cluttered.class_mask, [class_index(c) for c in PROTEIN_CLASSES])
    assert protein.any()
    others = (cluttered.class_mask > 0) & ~protein
    assert not np.any(ndimage.binary_dilation(protein, np.ones((3, 3, 3), bool)) & others)
    # truth lists the non-proteins first, clutter before vesicles and fiducials
    first = classes[: len(classes) - int(np.isin(classes, PROTEIN_CLASSES).sum())]
    assert set(first) == set(NON_PROTEIN_CLASSES) and list(first[:2]) == ["carbon", "ice"]
    # clutter is not in the density the noise level refers to
    clutter_voxels = np.isin(cluttered.class_mask, [class_index(c) for c in CLUTTER_CLASSES])
    assert cluttered.reference[clutter_voxels].max() < FOOTPRINT_LEVEL
    assert np.allclose(cluttered.reference[protein], cluttered.density[protein], atol=0.2)


def test_microtubule_is_hollow_with_a_4_nm_repeat() -> None:
    vertices = np.stack([np.zeros(51), np.zeros(51), np.linspace(-50, 50, 51)], axis=1)
    box, index = clutter.tube(
        vertices,
        clutter.MICROTUBULE_OUTER_RADIUS,
        clutter.MICROTUBULE_INNER_RADIUS,
        clutter.MICROTUBULE_DENSITY,
        np.zeros(3),
        1,
        clutter.MICROTUBULE_REPEAT,
        clutter.MICROTUBULE_REPEAT_DEPTH,
    )
    z, y = index[0], index[1]
    axis = box[z, y, index[2] - 40 : index[2] + 40]
    wall = box[z, y + 10, index[2] - 40 : index[2] + 40]
    assert axis.max() == 0.0
    assert wall.min() > 0.5
    middle = slice(index[2] - 40, index[2] + 40)
    assert box[z, y + 14, middle].max() == 0.0 and box[z, y + 8, middle].max() == 0.0
    power = np.abs(np.fft.rfft(wall - wall.mean())) ** 2
    assert np.argmax(power) == round(len(wall) / clutter.MICROTUBULE_REPEAT)


def test_actin_is_thin_and_long() -> None:
    rng = np.random.default_rng(2)
    for _ in range(3):
        piece = clutter.actin(rng, 1)
        footprint = piece.density > FOOTPRINT_LEVEL
        assert ndimage.distance_transform_edt(footprint).max() <= clutter.ACTIN_RADIUS + 1
        extent = np.ptp(np.argwhere(footprint), axis=0)
        assert np.hypot(extent[1], extent[2]) >= 0.9 * clutter.ACTIN_LENGTH[0]
        # about π r² voxels per nm of length: a filament, not a sheet
        assert footprint.sum() < 1.5 * np.pi * clutter.ACTIN_RADIUS**2 * clutter.ACTIN_LENGTH[1]


def test_membrane_is_a_bilayer_sheet() -> None:
    piece = clutter.membrane_patch(np.random.default_rng(4), 1)
    footprint = piece.density > FOOTPRINT_LEVEL
    # a sheet about 7 nm thick (two head-group layers 3.8 nm apart)
    assert ndimage.distance_transform_edt(footprint).max() <= 4.5
    assert np.ptp(np.argwhere(footprint), axis=0).max() >= clutter.MEMBRANE_DIAMETER[0] * 0.8
    assert piece.density.max() == pytest.approx(clutter.HEAD_GROUP_DENSITY, abs=0.15)


def test_protein_free_control_matches_the_scene_with_proteins() -> None:
    cellular = simulate(family_config("cellular", 1, TINY, threads=1))
    control = simulate(family_config("cellular-no-protein", 1, TINY, threads=1))
    classes = control.truth.features["class"]
    assert len(classes) and set(classes) <= set(NON_PROTEIN_CLASSES)
    assert not np.isin(control.phantom.class_mask, [class_index(c) for c in PROTEIN_CLASSES]).any()
    assert control.info["n_proteins_removed"] > 0
    assert (
        control.info["electrons_per_pixel_at_zero_tilt"]
        == cellular.info["electrons_per_pixel_at_zero_tilt"]
    )
    kept = cellular.truth.features["class"].isin(NON_PROTEIN_CLASSES).to_numpy()
    assert np.allclose(cellular.truth.zyx[kept], control.truth.zyx)


def test_voxel_size_resamples_reconstruction_truth_and_masks(tmp_path: Path) -> None:
    base = dict(shape=TINY, seed=2, snr=None, n_vesicles=1, n_fiducials=0, n_particles=6, threads=1)
    at_10 = simulate(SimulationConfig(**base))
    at_7 = simulate(SimulationConfig(**base, voxel_size=7.0))
    assert at_7.reconstruction.shape == at_7.phantom.occupancy.shape == (45, 91, 91)
    assert at_7.voxel_size == 7.0 and at_7.truth.voxel_size == 7.0
    assert np.allclose(at_7.truth.zyx, at_10.truth.zyx * 10 / 7)
    assert np.allclose(at_7.truth.features["radius"], at_10.truth.features["radius"] * 10 / 7)
    assert set(np.unique(at_7.phantom.class_mask)) == set(np.unique(at_10.phantom.class_mask))
    # the same voxel, in both grids, is the same place
    assert np.allclose(
        at_7.reconstruction[::10, ::10, ::10], at_10.reconstruction[::7, ::7, ::7], atol=1e-6
    )
    write_dataset(at_7, tmp_path / "d", projections=True)
    with mrcfile.open(tmp_path / "d" / "reconstruction.mrc") as mrc:
        assert float(mrc.voxel_size.x) == pytest.approx(7.0)
    with mrcfile.open(tmp_path / "d" / "projections.mrc") as mrc:
        assert float(mrc.voxel_size.x) == pytest.approx(10.0)
    back = read_shrec_folder(tmp_path / "d")
    assert back.truth.voxel_size == pytest.approx(7.0)
    assert np.allclose(back.truth.zyx, at_7.truth.zyx, atol=1e-3)


def test_invert_flips_the_sign_and_filters_change_the_weighting() -> None:
    base = dict(shape=TINY, seed=1, n_particles=4, threads=1)
    dark = simulate(SimulationConfig(**base)).reconstruction
    bright = simulate(SimulationConfig(**base, invert=True)).reconstruction
    assert np.array_equal(bright, -dark)
    ramp, padded = RECONSTRUCTION_FILTERS["wbp"](512, 0.35, 0.035, 1)
    frequency = np.fft.rfftfreq(padded)
    sirt, _ = RECONSTRUCTION_FILTERS["sirt-like"](512, 0.35, 0.035, 20)
    hamming, _ = RECONSTRUCTION_FILTERS["wbp-hamming"](512, 0.35, 0.035, 1)
    low, high = frequency < 0.005, (frequency > 0.2) & (frequency < 0.3)
    assert np.allclose(sirt[low], ramp[low], rtol=0.01)
    assert np.all(sirt[high] < 0.25 * ramp[high])
    assert hamming[-1] == pytest.approx(0.08 * 0.5, rel=0.05)


def test_coloured_noise_keeps_the_variance_and_moves_power_down() -> None:
    white = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    coloured = colour_noise(white)
    assert coloured.var() == pytest.approx(white.var(), rel=1e-4)
    power = np.abs(np.fft.rfft2(coloured)) ** 2
    assert power[:4, :4].mean() > 5 * power[24:32, 24:].mean()
    config = SimulationConfig(shape=TINY, seed=1, n_particles=4, noise_colour="coloured", threads=1)
    assert simulate(config).info["snr_at_zero_tilt"] == pytest.approx(0.1, rel=0.1)


def test_each_family_builds_a_valid_config() -> None:
    assert "tuning" in FAMILIES and FAMILIES["tuning"].overrides == {}
    assert family_config("tuning", 4, TINY) == SimulationConfig(shape=TINY, seed=4)
    for name, family in FAMILIES.items():
        config = family_config(name, 0, TINY)
        assert isinstance(config, SimulationConfig) and config.shape == TINY, name
        for key, value in family.overrides.items():
            if key.startswith("n_"):
                assert 1 <= getattr(config, key) <= value, (name, key)
            else:
                assert getattr(config, key) == value, (name, key)
    full = family_config("cellular", 0)
    assert (full.n_membranes, full.n_actin, full.n_microtubules, full.n_ice) == (4, 16, 3, 2)
    with pytest.raises(CryoetInputError, match="unknown simulation family"):
        family_config("nope", 0, TINY)


@pytest.mark.parametrize(
    "options",
    [
        {"reconstruction": "fbp"},
        {"noise_colour": "pink"},
        {"voxel_size": 50.0},
        {"n_actin": -1},
        {"crowding": -1.0},
        {"sirt_iterations": 0},
    ],
)
def test_bad_values_are_clear_errors(options: dict) -> None:
    with pytest.raises(CryoetInputError):
        SimulationConfig(shape=TINY, **options)


def test_clutter_cannot_be_added_to_a_layout(tmp_path: Path) -> None:
    layout = tmp_path / "particle_locations.txt"
    layout.write_text("1s3x 10 10 10 0 0 0\n")
    with pytest.raises(CryoetInputError, match="clutter"):
        simulate(SimulationConfig(shape=TINY, n_actin=1), layout=_read(layout))
    layout.write_text("actin 10 10 10 NaN NaN NaN\n")
    with pytest.raises(CryoetInputError, match="drawn at random"):
        _read(layout)


def _read(path: Path):
    from napari_cryoet_particles.simulate import read_layout

    return read_layout(path, TINY)


def test_cli_simulate_family_cellular(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cellular"
    code = main(
        [
            "simulate",
            "--out",
            str(out),
            "--size",
            "32",
            "64",
            "64",
            "--family",
            "cellular",
            "--no-projections",
            "--quiet",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    assert "(cellular)" in capsys.readouterr().out
    names = (out / "class_names.txt").read_text().splitlines()
    assert names[16:] == ["16 membrane", "17 actin", "18 microtubule", "19 ice", "20 carbon"]
    with mrcfile.open(out / "class_mask.mrc") as mrc:
        present = set(np.unique(mrc.data).tolist())
    assert {class_index(c) for c in ("membrane", "actin", "microtubule", "ice")} <= present
    config = json.loads((out / "simulation.json").read_text())["config"]
    assert config["n_membranes"] == 1 and config["reconstruction"] == "wbp"
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--out", str(tmp_path / "x"), "--family", "nope"])
    assert exit_info.value.code == 2

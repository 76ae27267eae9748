"""Classical baselines (broadband DoG, multi-scale LoG, DoG + Hessian blob test) on tiny scenes."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from napari_cryoet_particles.baselines import (
    BASELINES,
    BroadbandParams,
    HessianParams,
    LoGParams,
    detect_broadband,
    detect_hessian,
    detect_log,
)
from napari_cryoet_particles.baselines.classical import greedy_suppress
from napari_cryoet_particles.baselines.hessian import blobness, hessian_at
from napari_cryoet_particles.benchmark.methods import METHODS, MethodOptions
from napari_cryoet_particles.detect.peaks import suppress_close
from napari_cryoet_particles.io import CryoetInputError, Volume

BROADBAND = BroadbandParams(sigma_small_nm=1.5, sigma_large_nm=4.5, k=4.0, suppression_nm=5.0)
LOG = LoGParams(sigma_min_nm=1.0, sigma_max_nm=2.0, k=6.0, suppression_nm=5.0)
HESSIAN = HessianParams(
    sigma_small_nm=1.5,
    sigma_large_nm=4.5,
    k=3.0,
    suppression_nm=5.0,
    hessian_sigma_nm=1.5,
    min_ratio=0.3,
)


def _scene(
    shape_nm=(24, 48, 48),
    voxel_nm: float = 1.0,
    centres_nm=None,
    amplitudes=None,
    sigma_nm: float = 1.5,
    noise: float = 0.15,
    sign: float = -1.0,
    seed: int = 0,
) -> np.ndarray:
    """Gaussian blobs (dark by default) in white noise, sampled at ``voxel_nm``: voxel index
    ``i`` sits at ``i · voxel_nm`` nm."""
    shape = tuple(int(round(n / voxel_nm)) for n in shape_nm)
    grid = np.indices(shape, dtype=np.float32) * np.float32(voxel_nm)
    volume = np.random.default_rng(seed).normal(0, noise, shape).astype(np.float32)
    amplitudes = amplitudes if amplitudes is not None else [1.0] * len(centres_nm)
    for centre, amplitude in zip(centres_nm, amplitudes, strict=True):
        d2 = sum((grid[a] - centre[a]) ** 2 for a in range(3))
        volume += sign * amplitude * np.exp(-d2 / (2 * sigma_nm**2)).astype(np.float32)
    return volume


CENTRES = np.array(
    [
        [6, 10, 10],
        [6, 24, 38],
        [12, 12, 30],
        [12, 36, 12],
        [18, 22, 20],
        [18, 38, 36],
        [12, 24, 24],
    ],
    dtype=float,
)


def _matched(zyx: np.ndarray, centres: np.ndarray, tolerance: float) -> int:
    """How many distinct ``centres`` have a pick within ``tolerance``."""
    if not len(zyx):
        return 0
    distance, index = cKDTree(centres).query(zyx)
    return len(set(index[distance <= tolerance].tolist()))


@pytest.mark.parametrize(("detect", "params"), [(detect_broadband, BROADBAND), (detect_log, LOG)])
def test_toy_blobs_are_found_once_each_at_their_centres(detect, params) -> None:
    volume = _scene(centres_nm=CENTRES)
    result = detect(Volume(volume, 10.0), params)
    picks = result.picks
    assert len(picks) == len(CENTRES)
    assert _matched(picks.zyx, CENTRES, 1.0) == len(CENTRES)
    assert np.all(np.diff(picks.scores) <= 0) and np.all(picks.scores >= params.k)
    assert result.response.shape == volume.shape and result.info["threshold"] == params.k


def test_bright_blobs_need_bright_or_auto_polarity() -> None:
    volume = Volume(_scene(centres_nm=CENTRES, sign=1.0), 10.0)
    dark = detect_broadband(volume, BROADBAND).picks
    assert _matched(dark.zyx, CENTRES, 1.0) == 0
    for polarity in ("bright", "auto"):
        params = BroadbandParams(**{**BROADBAND.__dict__, "polarity": polarity})
        assert _matched(detect_broadband(volume, params).picks.zyx, CENTRES, 1.0) == len(CENTRES)
    with pytest.raises(CryoetInputError, match="polarity"):
        detect_broadband(volume, BroadbandParams(polarity="up"))


def test_greedy_suppression_keeps_the_stronger_of_two_close_maxima() -> None:
    centres = np.array([[12, 24, 20], [12, 24, 26]], dtype=float)  # 6 nm apart
    volume = Volume(_scene(centres_nm=centres, amplitudes=[0.4, 1.0], noise=0.02), 10.0)
    params = BroadbandParams(**{**BROADBAND.__dict__, "suppression_nm": 10.0})
    picks = detect_broadband(volume, params).picks
    assert len(picks) == 1 and np.linalg.norm(picks.zyx[0] - centres[1]) <= 1.0
    closer = BroadbandParams(**{**BROADBAND.__dict__, "suppression_nm": 3.0})
    picks = detect_broadband(volume, closer).picks
    assert _matched(picks.zyx, centres, 1.5) == 2 and picks.scores[0] > picks.scores[1]


def test_greedy_suppression_is_suppress_close_with_one_radius() -> None:
    rng = np.random.default_rng(1)
    zyx = rng.integers(0, 40, (400, 3)).astype(float)
    for radius in (1.0, 3.0, 7.5):
        np.testing.assert_array_equal(greedy_suppress(zyx, radius), suppress_close(zyx, radius))
    assert greedy_suppress(np.zeros((0, 3)), 5.0).size == 0
    np.testing.assert_array_equal(greedy_suppress(np.array([[0, 0, 0], [0, 0, 3.0]]), 5.0), [0])


def _tube_sheet_blobs() -> tuple[np.ndarray, np.ndarray]:
    """Bright scene: a sheet (plane z = 5), a tube along x (z = 24, y = 10), five blobs."""
    shape = (32, 64, 64)
    z, y, _ = np.indices(shape, dtype=np.float32)
    volume = np.random.default_rng(2).normal(0, 0.05, shape).astype(np.float32)
    volume += np.exp(-((z - 5) ** 2) / (2 * 1.5**2))
    volume += np.exp(-((z - 24) ** 2 + (y - 10) ** 2) / (2 * 1.5**2))
    blobs = np.array(
        [[18, 32, 12], [18, 32, 32], [18, 32, 52], [20, 52, 20], [20, 52, 44]], dtype=float
    )
    return volume + _scene((32, 64, 64), centres_nm=blobs, noise=0.0, sign=1.0), blobs


def test_hessian_keeps_blobs_and_rejects_a_tube_and_a_sheet() -> None:
    volume, blobs = _tube_sheet_blobs()
    params = HessianParams(**{**HESSIAN.__dict__, "polarity": "bright"})
    # the DoG alone picks along the tube and on the sheet too
    broad = BroadbandParams(
        sigma_small_nm=1.5, sigma_large_nm=4.5, k=3.0, suppression_nm=5.0, polarity="bright"
    )
    plain = detect_broadband(Volume(volume, 10.0), broad).picks
    on_tube = np.hypot(plain.zyx[:, 0] - 24, plain.zyx[:, 1] - 10) <= 2
    on_sheet = np.abs(plain.zyx[:, 0] - 5) <= 2
    assert on_tube.sum() >= 3 and on_sheet.sum() >= 3
    result = detect_hessian(Volume(volume, 10.0), params)
    picks = result.picks
    assert len(picks) == len(blobs) and _matched(picks.zyx, blobs, 1.0) == len(blobs)
    assert np.all(picks.features["blobness"] >= params.min_ratio)
    assert result.info["rejected"] >= on_tube.sum() + on_sheet.sum()


def test_hessian_eigenvalue_ratio_of_ideal_shapes() -> None:
    grid = np.indices((21, 21, 21), dtype=float) - 10
    z, y, x = grid
    shapes = {
        "blob": np.exp(-(z**2 + y**2 + x**2) / 8),
        "tube": np.exp(-(z**2 + y**2) / 8),
        "sheet": np.exp(-(z**2) / 8),
        "dark blob": -np.exp(-(z**2 + y**2 + x**2) / 8),
    }
    ratio = {
        name: blobness(hessian_at(v, np.array([[10, 10, 10]])))[0] for name, v in shapes.items()
    }
    assert ratio["blob"] > 0.95
    assert ratio["tube"] < 0.05 and ratio["sheet"] < 0.05 and ratio["dark blob"] == 0


@pytest.mark.parametrize(("detect", "params"), [(detect_broadband, BROADBAND), (detect_log, LOG)])
def test_the_same_scene_at_5_and_10_angstrom_gives_picks_at_the_same_places(detect, params) -> None:
    found = {}
    for voxel_nm in (1.0, 0.5):
        volume = _scene(centres_nm=CENTRES, voxel_nm=voxel_nm, noise=0.1)
        picks = detect(Volume(volume, 10.0 * voxel_nm), params).picks
        found[voxel_nm] = picks.zyx * voxel_nm
    assert len(found[1.0]) == len(found[0.5]) == len(CENTRES)
    distance, _ = cKDTree(found[1.0]).query(found[0.5])
    assert np.all(distance <= 1.0)


def test_hessian_at_5_angstrom_finds_the_blobs_it_finds_at_10() -> None:
    params = HessianParams(**{**HESSIAN.__dict__, "k": 4.0})
    found = {}
    for voxel_nm in (1.0, 0.5):
        volume = _scene(centres_nm=CENTRES, voxel_nm=voxel_nm, noise=0.1)
        found[voxel_nm] = (
            detect_hessian(Volume(volume, 10.0 * voxel_nm), params).picks.zyx * voxel_nm
        )
    assert _matched(found[1.0], CENTRES, 1.0) == _matched(found[0.5], CENTRES, 1.0) == len(CENTRES)


@pytest.mark.parametrize("name", list(BASELINES))
def test_bad_input_is_refused(name) -> None:
    detect = BASELINES[name].detect
    with pytest.raises(CryoetInputError, match="3D"):
        detect(Volume(np.zeros((32, 32), np.float32), 10.0), BASELINES[name].params)
    volume = _scene(centres_nm=CENTRES)
    volume[3, 4, 5] = np.nan
    with pytest.raises(CryoetInputError, match="NaN"):
        detect(Volume(volume, 10.0), BASELINES[name].params)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(CryoetInputError):
        BroadbandParams(sigma_small_nm=4.0, sigma_large_nm=2.0)
    with pytest.raises(CryoetInputError):
        LoGParams(sigma_min_nm=3.0, sigma_max_nm=1.0)
    with pytest.raises(CryoetInputError):
        HessianParams(min_ratio=1.5)


@pytest.mark.parametrize("name", list(BASELINES))
def test_every_baseline_runs_through_the_benchmark(name) -> None:
    entry = BASELINES[name]
    assert METHODS[name].label == entry.label
    volume = Volume(_scene((24, 64, 64), centres_nm=CENTRES * [1, 1.3, 1.3]), 10.0)
    handed: list = []
    output = METHODS[name].run(volume, MethodOptions(slices=(12,)), handed.append)
    (auto,) = handed
    assert len(auto) <= len(output.floor)
    np.testing.assert_array_equal(auto.zyx, output.floor.zyx[: len(auto)])
    assert output.report["threshold"] == entry.params.k
    assert output.report["info"]["floor_threshold"] <= entry.params.k
    score, binary = output.maps[12]
    assert score.shape == binary.shape == (64, 64)


def test_adaptive_broadband_scores_do_not_depend_on_the_k_asked_for() -> None:
    """The benchmark ranks a run at a lower k and thresholds it at the preset's: with the threshold
    read per tomogram, both must give the preset run's picks."""
    from napari_cryoet_particles.baselines import BASELINES
    from napari_cryoet_particles.io.volume import Volume

    rng = np.random.default_rng(4)
    data = rng.normal(size=(64, 128, 128)).astype(np.float32)
    z, y, x = np.ogrid[:64, :128, :128]
    for centre in rng.uniform(10, [54, 118, 118], size=(60, 3)):
        ball = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= 9
        data[ball] -= rng.uniform(0.3, 1.0)
    volume = Volume(data, 10.0)
    baseline = BASELINES["broadband-adaptive"]
    preset = baseline.run(volume).picks
    floor = baseline.run(volume, k=2.5).picks
    above = floor.subset(floor.scores >= baseline.params.k)
    np.testing.assert_array_equal(preset.zyx, above.zyx)
    assert 0 < len(preset) < len(floor)

"""Baselines: DoG blob detection, the shrunk original 2D method, and the benchmark's plumbing."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from napari_cryoet_particles.baselines import detect_dog
from napari_cryoet_particles.baselines.slices2d import (
    Slices2DConfig,
    SmallResNet,
    choose_slices,
    detect_slices2d,
    nt_xent,
)
from napari_cryoet_particles.benchmark.crops import window_means
from napari_cryoet_particles.benchmark.report import format_report
from napari_cryoet_particles.benchmark.testset import FULL_SIZE, Run, find_shared
from napari_cryoet_particles.io import CryoetInputError, Volume
from napari_cryoet_particles.simulate import SHREC2021_LAYOUT


def _blobs(
    seed: int = 0,
    shape=(40, 96, 96),
    n: int = 25,
    sigma: float = 2.0,
    noise: float = 0.3,
    sign: float = -1.0,
):
    """A noisy volume with ``n`` separated Gaussian blobs (dark by default) and their centres."""
    rng = np.random.default_rng(seed)
    centres: list[np.ndarray] = []
    while len(centres) < n:
        c = np.array([rng.uniform(6, s - 6) for s in shape])
        if all(np.linalg.norm(c - d) > 9 for d in centres):
            centres.append(c)
    grid = np.indices(shape, dtype=np.float32)
    volume = rng.normal(0, noise, shape).astype(np.float32)
    for c in centres:
        d2 = sum((grid[a] - c[a]) ** 2 for a in range(3))
        volume += sign * np.exp(-d2 / (2 * sigma**2)).astype(np.float32)
    return volume, np.array(centres)


def test_dog_finds_dark_blobs_and_not_bright_ones() -> None:
    volume, centres = _blobs()
    picks, response, info = detect_dog(Volume(volume, 10.0), diameter_nm=6.0, min_distance_nm=3.0)
    assert response.shape == volume.shape
    distance, index = cKDTree(centres).query(picks.zyx)
    found = len(set(index[distance <= 2].tolist()))
    assert found >= 0.9 * len(centres)
    # the default threshold (3 robust sigmas) lets noise peaks through, but the score ranks the
    # blobs first: the best len(centres) picks are nearly all on blobs
    assert np.all(np.diff(picks.scores) <= 0) and info["threshold"] > 0
    assert np.mean(distance[: len(centres)] <= 2) >= 0.9
    bright, bright_centres = _blobs(sign=1.0)
    picks_bright, _, _ = detect_dog(Volume(bright, 10.0), diameter_nm=6.0, min_distance_nm=3.0)
    distance, _ = cKDTree(bright_centres).query(picks_bright.zyx[: len(bright_centres)])
    assert np.mean(distance <= 2) < 0.2


def test_dog_refuses_bad_input() -> None:
    with pytest.raises(CryoetInputError, match="constant"):
        detect_dog(Volume(np.ones((16, 32, 32), np.float32), 10.0))


def test_edge_detection_prefers_slices_with_structure() -> None:
    volume = np.random.default_rng(0).normal(0, 0.1, (30, 64, 64)).astype(np.float32)
    volume[20, 16:48, 16:48] = -3.0
    volume[8, 10:30, 10:30] = -3.0
    chosen = choose_slices(volume, 2, min_gap=5, margin=2)
    assert sorted(chosen.tolist()) == [8, 20]


def test_nt_xent_rewards_matching_views() -> None:
    a = torch.randn(16, 8)
    assert nt_xent(a, a + 0.01 * torch.randn(16, 8), 0.5) < nt_xent(a, torch.randn(16, 8), 0.5)
    assert SmallResNet()(torch.zeros(2, 1, 32, 32)).shape == (2, 32)


def test_original_2d_method_runs_and_separates_blob_crops() -> None:
    volume, centres = _blobs(seed=1, shape=(24, 72, 72), n=30, sigma=2.5)
    config = Slices2DConfig(
        n_slices=2,
        min_slice_gap=4,
        crop=16,
        grid_step=4,
        steps=15,
        batch=32,
        threads=1,
        diameter_nm=6.0,
    )
    result = detect_slices2d(Volume(volume, 10.0), config)
    assert len(result.slices) == 2
    assert len(result.centres) == len(result.score) == len(result.assignment)
    assert np.all((result.score >= 0) & (result.score <= 1))
    # crops whose centre pixel is on a blob (dark) score higher on average than the others
    z, y, x = result.centres.astype(int).T
    dark = volume[z, y, x] < -0.5
    assert dark.any() and result.score[dark].mean() > result.score[~dark].mean()
    assert len(result.picks) > 0 and set(result.picks.zyx[:, 0]) <= set(result.slices.tolist())


def test_window_means_average_the_crop_around_each_grid_point() -> None:
    image = np.zeros((64, 64))
    image[0:32, 0:32] = 1.0
    means = window_means(image, np.array([16, 48]), np.array([16, 48]))
    np.testing.assert_allclose(means, [1.0, 0.0, 0.0, 0.0])


def test_reference_data_defaults_to_the_package_and_a_given_folder_is_checked(
    tmp_path: Path,
) -> None:
    assert find_shared() == SHREC2021_LAYOUT.parents[1]
    assert find_shared(tmp_path) is None
    (tmp_path / "layouts").mkdir()
    shutil.copy(SHREC2021_LAYOUT, tmp_path / "layouts")
    assert find_shared(tmp_path) == tmp_path


def test_report_states_targets_and_machine() -> None:
    common = {"layout": True, "size": FULL_SIZE, "tomogram_mb": 200.0}
    run = Run(
        "shrec2021-layout-seed3",
        "ours",
        n_picks=10,
        precision=0.9,
        recall=0.8,
        f1=0.847,
        best_f1=0.86,
        repeat_hits=2,
        crop_auc=0.96,
        wall=12.0,
        rss_mb=500,
        **common,
    )
    dog = Run(
        "shrec2021-layout-seed3",
        "dog",
        n_picks=10,
        precision=0.5,
        recall=0.9,
        f1=0.64,
        wall=5.0,
        rss_mb=400,
        **common,
    )
    text = format_report([run, dog], [], quick=True, shared=Path("x"), model=None, threads=2)
    assert "cores" in text and "DoG (previous tuning)" in text
    lines = text.splitlines()
    (main_row,) = [
        line for line in lines if line.startswith("| shrec2021-layout-seed3 | ours | 10 |")
    ]
    assert "| 0.847 | 0.860 | 2 |" in main_row
    (f1_row,) = [line for line in lines if line.startswith("| F1 on the SHREC-2021-layout")]
    assert f1_row.endswith("| 0.847 | no | -0.003 |")
    assert "| +0.207 (shrec2021-layout-seed3) | yes | +0.107 |" in text
    assert "| 2.40× | yes | +0.10× |" in text

"""Detection: seamless tiling, the pipeline on tiny volumes, polarity, rescaling, bad inputs, CLI."""

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage
from scipy.spatial import cKDTree
from torch import nn

from napari_cryoet_particles.cli import main
from napari_cryoet_particles.detect import (
    DetectionConfig,
    detect_particles,
    detect_particles_job,
    score_map_at_input,
)
from napari_cryoet_particles.detect.config import CANDIDATE_FLOOR
from napari_cryoet_particles.detect.params import PRESETS
from napari_cryoet_particles.detect.tiling import embed_volume_job, plan_tiles
from napari_cryoet_particles.io import (
    CryoetInputError,
    Volume,
    read_csv,
    read_tomogram,
    write_tomogram,
)
from napari_cryoet_particles.jobs import CancelToken, JobCancelled, run_job
from napari_cryoet_particles.model import DenseEncoder, EncoderConfig, ModelConfig, save_checkpoint
from napari_cryoet_particles.simulate import make_sample_dataset


class BlobEncoder(nn.Module):
    """A fixed 'embedding': the volume low-passed at three scales, sampled at stride 2.

    It stands in for a trained model where the test is about the pipeline, not the learning:
    its embedding separates dark blobs from noise, as a trained encoder's should.
    """

    stride = 2
    receptive_field = 13
    embedding_dim = 3

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 3, 14, stride=2, padding=6, bias=False)
        grid = np.indices((14, 14, 14)).astype(float) - 6.5
        r2 = (grid**2).sum(0)
        kernels = [np.exp(-r2 / (2 * s**2)) * (r2 <= 36) for s in (1.0, 2.0, 3.0)]
        weight = np.stack([k / k.sum() for k in kernels])[:, None]
        self.conv.weight.data = torch.from_numpy(weight.astype(np.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _recall_precision(
    pred: np.ndarray, truth: np.ndarray, reach: float = 3.0
) -> tuple[float, float]:
    if not len(pred):
        return 0.0, 0.0
    distance, index = cKDTree(truth).query(pred)
    found = len(set(index[distance <= reach].tolist()))
    return found / len(truth), float(np.mean(distance <= reach))


@dataclass
class Scene:
    volume: np.ndarray
    centres: np.ndarray


def blob_scene(
    seed: int = 0,
    shape=(48, 96, 96),
    n: int = 30,
    sigma: float = 2.0,
    noise: float = 0.5,
    spacing: float = 8.0,
) -> Scene:
    """Dark Gaussian blobs (at least ``spacing`` voxels apart) in Gaussian noise: a tiny stand-in tomogram."""
    rng = np.random.default_rng(seed)
    centres: list[np.ndarray] = []
    while len(centres) < n:
        c = np.array([rng.uniform(5, s - 5) for s in shape])
        if all(np.linalg.norm(c - d) >= spacing for d in centres):
            centres.append(c)
    grid = np.indices(shape, dtype=np.float32)
    volume = rng.normal(0.0, noise, shape).astype(np.float32)
    for c in centres:
        d2 = sum((grid[a] - c[a]) ** 2 for a in range(3))
        volume -= np.exp(-d2 / (2 * sigma**2)).astype(np.float32)
    return Scene(volume, np.array(centres))


@pytest.fixture(scope="module")
def sample() -> Scene:
    return blob_scene(seed=3)


CONFIG = DetectionConfig(diameter_nm=4.0, threads=1)


@pytest.mark.parametrize("stride", [2, 4])
def test_tiled_embedding_equals_single_pass(stride: int) -> None:
    torch.manual_seed(0)
    encoder = DenseEncoder(
        EncoderConfig(stride=stride, width=6, depth=2, dilations=(1, 2), embedding_dim=5)
    ).eval()
    volume = np.random.default_rng(1).normal(size=(29, 45, 38)).astype(np.float32)
    tiled = run_job(
        embed_volume_job(
            lambda box: volume[box], volume.shape, encoder, tile_voxels=36**3, dtype=np.float32
        )
    )
    with torch.inference_mode():
        single = encoder(torch.from_numpy(volume)[None, None])[0].numpy()
    assert tiled.shape == single.shape
    np.testing.assert_allclose(tiled, single, atol=1e-5 * np.abs(single).max())


def test_tiles_cover_the_grid_once_and_respect_the_memory_bound() -> None:
    shape, stride, halo, budget = (40, 96, 72), 2, 4, 24**3
    tiles = plan_tiles(shape, stride, halo, budget, unit=4)
    assert len(tiles) > 1
    cover = np.zeros([n // stride for n in shape], dtype=int)
    for tile in tiles:
        cover[tile.out] += 1
        assert np.prod([s.stop - s.start for s in tile.read]) <= budget
        assert all(s.start % stride == 0 for s in tile.read)
        assert all((s.stop - s.start) % 2 == 0 for s in tile.out)
    assert np.all(cover == 1)


def test_detection_finds_the_dark_blobs(sample) -> None:
    result = detect_particles(Volume(sample.volume, 10.0), BlobEncoder(), CONFIG)
    recall, _ = _recall_precision(result.picks.zyx, sample.centres)
    assert recall >= 0.9
    # the automatic threshold also lets through noise dips of blob size, but they rank below
    # every blob: the best len(centres) picks are the blobs
    _, precision = _recall_precision(result.picks.zyx[: len(sample.centres)], sample.centres)
    assert precision >= 0.9
    assert result.info["threshold"] == result.info["auto_threshold"]
    features = result.picks.features
    assert {"score", "cluster", "group", "status"} <= set(features.columns)
    assert (features["status"] == "auto").all()
    assert np.all(np.diff(features["score"].to_numpy()) <= 0)
    assert set(result.timings) == {"prepare", "candidates", "fit", "embed", "peaks", "groups"}
    assert score_map_at_input(result).shape == sample.volume.shape
    assert result.embeddings.shape == (len(result.picks), BlobEncoder.embedding_dim)
    assert result.embeddings.dtype == np.float32


def test_values_gathered_at_the_blobs_equal_those_read_from_whole_maps() -> None:
    """The embedding pass keeps the learned maps at the candidates only: tile by tile, the
    interpolated probability, nearest cluster and pooled embedding equal whole-map look-ups."""
    from napari_cryoet_particles.detect.gather import PointGather

    rng = np.random.default_rng(0)
    grid, pool = (12, 16, 20), 2
    tiles = plan_tiles(tuple(2 * n for n in grid), 2, 4, 14**3, unit=2 * pool)
    assert len(tiles) > 4
    embedding = rng.normal(size=(3, *grid)).astype(np.float32)
    probability = rng.random(grid).astype(np.float32)
    cluster = rng.integers(0, 5, grid).astype(np.int8)
    coords = np.vstack(
        [rng.uniform(-1, np.asarray(grid), size=(200, 3)), [[0, 0, 0], [11, 15, 19]]]
    )
    gather = PointGather(coords, grid, pool)
    for tile in tiles:
        gather.add(
            tile, embedding[(slice(None), *tile.out)], probability[tile.out], cluster[tile.out]
        )
    expected = ndimage.map_coordinates(probability, coords.T, order=1, mode="nearest")
    np.testing.assert_allclose(gather.probability, expected, rtol=1e-6, atol=1e-7)
    nearest = np.clip(np.rint(coords), 0, np.asarray(grid) - 1).astype(int)
    np.testing.assert_array_equal(gather.cluster, cluster[tuple(nearest.T)])
    pooled = embedding.reshape(3, 6, pool, 8, pool, 10, pool).mean(axis=(2, 4, 6))
    np.testing.assert_allclose(
        gather.embedding, pooled[(slice(None), *(nearest // pool).T)].T, atol=1e-6
    )


def test_values_scored_only_where_the_points_need_them_equal_whole_map_look_ups() -> None:
    """``add_scored`` asks for the maps at the few voxels around the points (each once per tile)
    and fills the same values as ``add`` given the whole maps."""
    from napari_cryoet_particles.detect.gather import PointGather

    rng = np.random.default_rng(1)
    grid, pool = (12, 16, 20), 2
    tiles = plan_tiles(tuple(2 * n for n in grid), 2, 4, 14**3, unit=2 * pool)
    embedding = rng.normal(size=(3, *grid)).astype(np.float32)
    probability = rng.random(grid).astype(np.float32)
    cluster = rng.integers(0, 5, grid).astype(np.int8)
    coords = rng.uniform(-1, np.asarray(grid), size=(150, 3))
    whole, sparse = PointGather(coords, grid, pool), PointGather(coords, grid, pool)
    asked = 0
    for tile in tiles:
        core = embedding[(slice(None), *tile.out)]
        whole.add(tile, core, probability[tile.out], cluster[tile.out])

        def score_at(local: np.ndarray, tile=tile) -> tuple[np.ndarray, np.ndarray]:
            nonlocal asked
            assert len(np.unique(local, axis=0)) == len(local)
            asked += len(local)
            return cluster[tile.out][tuple(local.T)], probability[tile.out][tuple(local.T)]

        sparse.add_scored(tile, core, score_at)
    assert asked <= 8 * len(coords) and asked < probability.size
    np.testing.assert_array_equal(sparse.probability, whole.probability)
    np.testing.assert_array_equal(sparse.cluster, whole.cluster)
    np.testing.assert_array_equal(sparse.embedding, whole.embedding)


def test_detection_without_the_score_map_gives_the_same_picks(sample) -> None:
    volume = Volume(sample.volume, 10.0)
    mapped = detect_particles(volume, BlobEncoder(), CONFIG)
    unmapped = detect_particles(volume, BlobEncoder(), replace(CONFIG, keep_score_map=False))
    assert unmapped.score_map is None and len(mapped.picks) > 10
    np.testing.assert_array_equal(unmapped.picks.zyx, mapped.picks.zyx)
    np.testing.assert_allclose(unmapped.picks.scores, mapped.picks.scores, atol=1e-6)
    np.testing.assert_array_equal(
        unmapped.picks.features["cluster"], mapped.picks.features["cluster"]
    )


def test_detection_without_learned_features_skips_the_encoder_and_gives_the_same_picks(
    sample,
) -> None:
    volume = Volume(sample.volume, 10.0)
    full = detect_particles(volume, BlobEncoder(), replace(CONFIG, keep_score_map=False))
    encoder = BlobEncoder()
    calls = []
    encoder.register_forward_hook(lambda *_: calls.append(1))
    lean = replace(CONFIG, keep_score_map=False, learned_features=False)
    picks_only = detect_particles(volume, encoder, lean)
    assert not calls and picks_only.embeddings is None and len(full.picks) > 10
    assert "probability" not in picks_only.picks.features
    assert (picks_only.picks.features["cluster"] == -1).all()
    assert picks_only.info["learned_features"] is False and "embed" not in picks_only.timings
    np.testing.assert_array_equal(picks_only.picks.zyx, full.picks.zyx)
    np.testing.assert_allclose(picks_only.picks.scores, full.picks.scores, atol=1e-6)
    learned_term = detect_particles(volume, BlobEncoder(), lean.with_params(learned_weight=0.25))
    assert learned_term.info["learned_features"] is True  # the score reads the embedding


def test_mask_pieces_computed_by_chunks_equal_the_whole_volume_ones() -> None:
    from napari_cryoet_particles.detect.volume import (
        OverviewFilters,
        chunked_median,
        low_pass_box,
        particle_skewness,
        slab_mask,
    )

    rng = np.random.default_rng(3)
    overview = rng.normal(size=(40, 24, 28)).astype(np.float32)
    overview[:6] *= 0.05  # quiet planes: masked
    overview[:, :, :12] = 0.0  # flat padding: masked everywhere
    rule = PRESETS["default"].prepare
    mask = slab_mask(overview, rule, chunk=7)
    np.testing.assert_array_equal(mask, slab_mask(overview, rule, chunk=40))
    kept, refiltered = OverviewFilters(overview, chunk=7), OverviewFilters(overview, chunk=7)
    refiltered._kept = None  # as on an overview too large to keep
    np.testing.assert_array_equal(slab_mask(overview, rule, filters=kept), mask)
    np.testing.assert_array_equal(slab_mask(overview, rule, filters=refiltered), mask)
    assert particle_skewness(overview, mask, filters=kept) == pytest.approx(
        particle_skewness(overview, mask, chunk=40), rel=1e-9
    )
    assert not mask[:, :, :6].any() and mask[20].any() and not mask[0].any()
    box = (slice(5, 17), slice(0, 9), slice(20, 28))
    whole = ndimage.gaussian_filter(overview, 1.3, mode="nearest")
    np.testing.assert_array_equal(low_pass_box(overview, box, 1.3), whole[box])
    for values in (overview, np.round(overview, 1), np.zeros((5, 3, 3), np.float32)):
        chunks = [(z, min(len(values), z + 6)) for z in range(0, len(values), 6)]
        found = chunked_median(lambda a, b, v=values: v[a:b], chunks, values.ravel()[::7])
        assert found == float(np.median(values))


def test_random_model_runs_end_to_end_on_the_simulated_sample() -> None:
    simulated = make_sample_dataset(seed=0, shape=(48, 64, 64))
    torch.manual_seed(0)
    encoder = DenseEncoder(EncoderConfig(width=4, depth=1, dilations=(1,), embedding_dim=4))
    job = detect_particles_job(
        Volume(simulated.volume, simulated.voxel_size), encoder, DetectionConfig(threads=1)
    )
    reports = []
    result = run_job(job, reports.append)
    assert reports and reports[-1].step == reports[-1].total
    assert len(result.picks) > 0
    assert np.all(
        (result.picks.zyx >= 0) & (result.picks.zyx <= np.array(simulated.volume.shape) - 1)
    )


def test_cancel_stops_the_job(sample) -> None:
    token = CancelToken()
    job = detect_particles_job(Volume(sample.volume, 10.0), BlobEncoder(), CONFIG, cancel=token)
    next(job)
    token.cancel()
    with pytest.raises(JobCancelled):
        run_job(job)


def test_inverted_contrast_gives_the_same_picks(sample) -> None:
    normal = detect_particles(Volume(sample.volume, 10.0), BlobEncoder(), CONFIG)
    inverted = detect_particles(Volume(-sample.volume, 10.0), BlobEncoder(), CONFIG)
    assert not normal.info["inverted"] and inverted.info["inverted"]
    assert len(normal.picks) == len(inverted.picks)
    np.testing.assert_allclose(inverted.picks.zyx, normal.picks.zyx, atol=1e-4)


def test_voxel_size_rescaling_returns_input_voxels(sample) -> None:
    fine = ndimage.zoom(sample.volume, 2, order=1)  # the same scene at 5 Å
    model = BlobEncoder()
    model.working_voxel_size = 10.0
    result = detect_particles(Volume(fine, 5.0), model, CONFIG)
    assert result.info["ratio"] == pytest.approx(2.0)
    assert result.picks.voxel_size == 5.0
    truth_fine = (sample.centres + 0.5) * 2 - 0.5
    recall, precision = _recall_precision(result.picks.zyx, truth_fine, reach=5.0)
    assert recall >= 0.85 and precision >= 0.8


def test_empty_slab_outside_the_sample_is_masked() -> None:
    scene = blob_scene(seed=5, shape=(40, 80, 80), n=25)
    # above and below the sample: vacuum, whose reconstruction holds weaker, structureless noise
    noise = np.random.default_rng(0).normal(0, 0.2, (24, 80, 80)).astype(np.float32)
    volume = np.concatenate([noise, scene.volume, noise.copy()])
    result = detect_particles(Volume(volume, 10.0), BlobEncoder(), CONFIG)
    assert 0.2 < result.info["masked_fraction"] < 0.6
    z = result.picks.zyx[:, 0]
    assert len(z) >= 15 and np.all((z > 18) & (z < 70))


@pytest.mark.parametrize(
    ("data", "voxel_size", "message"),
    [
        (np.zeros((32, 32), np.float32), 10.0, "3D"),
        (np.full((16, 32, 32), 3.0, np.float32), 10.0, "constant"),
        (
            np.where(np.eye(32, dtype=bool)[None].repeat(16, 0), np.nan, 1.0).astype(np.float32),
            10.0,
            "NaN",
        ),
        (np.random.default_rng(0).normal(size=(16, 32, 32)).astype(np.float32), 0.5, "voxel size"),
        (
            np.random.default_rng(0).normal(size=(16, 32, 32)).astype(np.float32),
            500.0,
            "voxel size",
        ),
        (np.random.default_rng(0).normal(size=(16, 4, 32)).astype(np.float32), 10.0, "too small"),
    ],
)
def test_bad_inputs_give_clear_errors(data: np.ndarray, voxel_size: float, message: str) -> None:
    with pytest.raises(CryoetInputError, match=message):
        detect_particles(Volume(data, voxel_size), BlobEncoder(), CONFIG)


@pytest.mark.parametrize(
    "config",
    [
        DetectionConfig(diameter_nm=0),
        DetectionConfig(threshold=2.0),
        DetectionConfig(bin=0),
        DetectionConfig(polarity="x"),
    ],
)
def test_bad_settings_give_clear_errors(sample, config: DetectionConfig) -> None:
    with pytest.raises(CryoetInputError):
        detect_particles(Volume(sample.volume, 10.0), BlobEncoder(), config)


def test_groups_follow_the_request(sample) -> None:
    config = DetectionConfig(diameter_nm=4.0, groups=3, threads=1)
    result = detect_particles(Volume(sample.volume, 10.0), BlobEncoder(), config)
    assert result.info["n_groups"] == 3
    assert set(result.picks.features["group"]) == {0, 1, 2}
    off = detect_particles(
        Volume(sample.volume, 10.0), BlobEncoder(), DetectionConfig(diameter_nm=4.0, groups=0)
    )
    assert set(off.picks.features["group"]) == {0}


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    encoder_config = EncoderConfig(width=4, depth=1, dilations=(1,), embedding_dim=4)
    return save_checkpoint(
        tmp_path / "model.pt", DenseEncoder(encoder_config), ModelConfig(encoder=encoder_config)
    )


def test_cli_detect_writes_picks_and_score_map(tmp_path: Path, sample, checkpoint: Path) -> None:
    tomogram = write_tomogram(tmp_path / "tomo.mrc", sample.volume, 10.0)
    out = tmp_path / "picks.csv"
    args = [
        "detect",
        str(tomogram),
        "--out",
        str(out),
        "--model",
        str(checkpoint),
        "--diameter",
        "4",
        "--quiet",
    ]
    assert main([*args, "--score-map", str(tmp_path / "score.mrc"), "--threads", "1"]) == 0
    table = pd.read_csv(out)
    assert {"x", "y", "z", "score", "group", "cluster", "status"} <= set(table.columns)
    assert len(read_csv(out)) == len(table) > 0
    assert read_tomogram(tmp_path / "score.mrc").shape == sample.volume.shape
    assert main(args) == 2  # exists already, no --overwrite
    assert main([*args, "--overwrite", "--threads", "1"]) == 0  # picks only: no embedding pass
    assert "probability" not in pd.read_csv(out).columns
    assert main([*args, "--overwrite", "--threads", "1", "--learned-features"]) == 0
    assert "probability" in pd.read_csv(out).columns


def test_cli_detect_without_default_model_is_a_clear_error(
    tmp_path: Path, sample, monkeypatch, capsys
) -> None:
    import napari_cryoet_particles.model.checkpoint as checkpoint_module

    monkeypatch.setattr(checkpoint_module, "default_model_path", lambda: tmp_path / "missing.pt")
    tomogram = write_tomogram(tmp_path / "tomo.mrc", sample.volume, 10.0)
    assert main(["detect", str(tomogram), "--out", str(tmp_path / "p.csv"), "--quiet"]) == 2
    assert "default model" in capsys.readouterr().err


def _blobs(shape: tuple[int, int, int], centres, radii, noise: float, seed: int = 0) -> np.ndarray:
    """Dark balls (value -1) of the given radii in Gaussian noise, lightly smoothed like a tomogram."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    volume = np.zeros(shape, np.float32)
    for centre, radius in zip(centres, radii, strict=True):
        inside = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius**2
        volume[inside] = -1.0
    volume = ndimage.gaussian_filter(volume, 0.7) + rng.normal(0, noise, shape).astype(np.float32)
    return volume.astype(np.float32)


def _candidates(volume: np.ndarray, min_radius: float, max_radius: float):
    from napari_cryoet_particles.detect.candidates import blob_radii, multiscale_candidates
    from napari_cryoet_particles.model.normalize import normalize, robust_stats

    norm = normalize(volume, robust_stats(volume))
    params = PRESETS["default"].candidates
    radii = blob_radii(min_radius, max_radius, params.radius_step)
    return multiscale_candidates(lambda box: norm[box].copy(), norm.shape, radii, params)


def _hits(found, centre, radius: float) -> int:
    return int(np.sum(np.linalg.norm(found.zyx - np.asarray(centre), axis=1) <= radius))


def test_a_large_particle_gives_one_pick_and_touching_small_ones_stay_two() -> None:
    """One pick per object whatever its size: a 12-voxel-radius ball (a ribosome at 10 Å) is
    one pick; two 3-voxel balls (5-6 nm proteins) whose surfaces touch stay two picks."""
    shape = (48, 64, 96)
    large, small_a, small_b = (24, 32, 24), (24, 32, 66), (24, 32, 72.5)
    volume = _blobs(shape, [large, small_a, small_b], [12, 3, 3], noise=0.15)
    found = _candidates(volume, 2.5, 13.5)
    strong = found.take(np.flatnonzero(found.strength >= 5.0))
    assert _hits(strong, large, 12) == 1
    assert _hits(strong, small_a, 2.5) == 1 and _hits(strong, small_b, 2.5) == 1


def test_five_nm_blobs_are_found_at_ten_angstrom_voxels() -> None:
    """Small proteins (5 nm = 2.5-voxel radius at 10 Å) in noise: every one found, few false picks."""
    centres = [(z, y, x) for z in (10, 30) for y in range(10, 60, 16) for x in range(10, 60, 16)]
    volume = _blobs((40, 64, 64), centres, [2.5] * len(centres), noise=0.35, seed=2)
    found = _candidates(volume, 2.5, 6.0)
    picks = found.take(np.flatnonzero(found.strength >= 5.0))
    hit = [_hits(picks, c, 2.5) >= 1 for c in centres]
    assert np.mean(hit) >= 0.95
    assert len(picks) <= 1.2 * len(centres)


def test_candidates_do_not_depend_on_the_slab_size() -> None:
    """Slabs with halos find the same objects as one pass over the whole volume (the robust
    z-scores are per slab, so strengths may differ slightly)."""
    from napari_cryoet_particles.detect.candidates import blob_radii, multiscale_candidates_job
    from napari_cryoet_particles.jobs import run_job

    volume = _blobs((70, 40, 40), [(15, 20, 20), (50, 12, 30)], [3, 8], noise=0.2)
    params = PRESETS["default"].candidates
    radii = blob_radii(2.5, 9.0, params.radius_step)

    def search(slab: int):
        read = lambda box: volume[box].copy()  # noqa: E731
        return run_job(multiscale_candidates_job(read, volume.shape, radii, params, slab=slab))

    whole, slabs = search(70), search(16)
    strong_whole = whole.zyx[whole.strength >= 6.0]
    strong_slabs = slabs.zyx[slabs.strength >= 6.0]
    assert len(strong_whole) == len(strong_slabs) == 2
    np.testing.assert_allclose(
        strong_slabs[np.lexsort(strong_slabs.T)], strong_whole[np.lexsort(strong_whole.T)], atol=1.0
    )


def test_pick_score_is_one_half_at_the_blob_threshold_and_follows_the_learned_probability() -> None:
    from napari_cryoet_particles.detect.scoring import pick_score

    strength = np.array([5.0, 5.0, 5.0, 7.0])
    probability = np.array([0.5, 0.9, 0.1, 0.5])
    score = pick_score(strength, probability, learned_weight=0.5, blob_threshold=5.0)
    assert score[0] == pytest.approx(0.5)
    assert score[1] > 0.5 > score[2] and score[3] > score[1]
    np.testing.assert_allclose(pick_score(strength, probability, 0.0, 5.0)[:3], 0.5)


def test_close_picks_are_suppressed_best_first() -> None:
    from napari_cryoet_particles.detect.peaks import suppress_close

    points = np.array([[0, 0, 0], [0, 0, 1.5], [0, 0, 5], [0, 0, 6]], dtype=float)
    assert suppress_close(points, 2.0).tolist() == [0, 2]


def test_particle_clusters_are_the_clearly_dark_ones() -> None:
    from napari_cryoet_particles.detect.cluster import particle_clusters

    darkness = np.random.default_rng(0).normal(0, 1, 5000)
    assert particle_clusters(np.array([0.1, -3.0, -0.2, -2.0]), darkness, 1.0).tolist() == [1, 3]
    assert particle_clusters(np.array([0.1, -0.3, 0.2]), darkness, 1.0).tolist() == [1]


def test_groups_separate_two_particle_sizes() -> None:
    from sklearn.metrics import adjusted_rand_score

    # 14 voxels apart: the large blobs' density reaches 7 voxels out (where the extent
    # suppression stops), as real particles of that size would stand apart
    small = blob_scene(seed=7, shape=(48, 96, 96), n=24, sigma=1.5, noise=0.2, spacing=14.0)
    rng = np.random.default_rng(1)
    big_kind = rng.random(len(small.centres)) < 0.5
    grid = np.indices(small.volume.shape, dtype=np.float32)
    volume = small.volume.copy()
    for c in small.centres[big_kind]:
        d2 = sum((grid[a] - c[a]) ** 2 for a in range(3))
        volume -= 1.5 * np.exp(-d2 / (2 * 3.0**2)).astype(np.float32)
    config = DetectionConfig(diameter_nm=8.0, groups=2, threshold=0.5, threads=1)
    result = detect_particles(Volume(volume, 10.0), BlobEncoder(), config)
    assert result.info["threshold"] == 0.5 and 0 < result.info["auto_threshold"] < 1
    distance, index = cKDTree(small.centres).query(result.picks.zyx)
    hit = distance <= 3
    assert len(set(index[hit].tolist())) >= 0.75 * len(small.centres)
    agreement = adjusted_rand_score(
        big_kind[index[hit]], result.picks.features["group"].to_numpy()[hit]
    )
    assert agreement > 0.6


def test_released_pages_of_a_memory_map_read_back_the_same(tmp_path: Path) -> None:
    from napari_cryoet_particles.io.volume import release_pages

    data = np.random.default_rng(0).normal(size=(8, 16, 16)).astype(np.float32)
    volume = read_tomogram(write_tomogram(tmp_path / "t.mrc", data, 10.0))
    before = np.array(volume.data[2:4])
    release_pages(volume.data[2:4])
    release_pages(data)  # not memory-mapped: nothing happens
    np.testing.assert_array_equal(volume.data[2:4], before)


def test_density_channel_lets_kmeans_find_dense_voxels_the_embedding_misses() -> None:
    """An embedding whose main variance is not particle / background (two kinds of background)
    and a darkness that marks the particles: with the weighted density channel the particle
    probability ranks the dense voxels first; without it k-means follows the embedding."""
    from sklearn.metrics import roc_auc_score

    from napari_cryoet_particles.detect.cluster import fit_particle_clusters
    from napari_cryoet_particles.detect.pipeline import with_density

    rng = np.random.default_rng(0)
    n, channels = 6000, 8
    particle = rng.random(n) < 0.1
    embedding = rng.normal(0, 1, (n, channels)).astype(np.float32)
    embedding[:, 0] += np.where(rng.random(n) < 0.5, -4.0, 4.0)  # two kinds of background
    darkness = rng.normal(0, 0.3, n) - 2.0 * particle
    core = embedding.T.reshape(channels, 10, 20, 30)
    rows = with_density(core, darkness.reshape(10, 20, 30), 3.0)
    assert rows.shape == (n, channels + 1) and np.allclose(rows[:, -1], darkness)
    assert with_density(core, darkness.reshape(10, 20, 30), 0.0).shape == (n, channels)

    weights = np.ones(channels + 1, dtype=np.float32)
    weights[-1] = 3.0
    learned = PRESETS["default"].learned  # k = 5
    with_channel = fit_particle_clusters(rows, darkness, learned, 0, weights)
    _, probability = with_channel.assign(rows)
    assert roc_auc_score(particle, probability) > 0.95
    without = fit_particle_clusters(embedding, darkness, learned, 0)
    _, probability = without.assign(embedding)
    assert roc_auc_score(particle, probability) < 0.8


def _dark_balls_in_noise() -> np.ndarray:
    """64×128×128 voxels of white noise holding 60 dark balls of radius 3 and varied contrast."""
    rng = np.random.default_rng(5)
    data = rng.normal(size=(64, 128, 128)).astype(np.float32)
    for centre in rng.uniform(8, [56, 120, 120], size=(60, 3)):
        z, y, x = np.ogrid[:64, :128, :128]
        ball = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= 9
        data[ball] -= rng.uniform(0.3, 1.0)
    return data


def test_adaptive_threshold_gives_the_fixed_threshold_picks_at_the_estimated_threshold() -> None:
    """The strength-order preset reads its threshold from the tomogram's own peaks; the picks
    above it are those a fixed threshold there gives (suppression is greedy, strongest first)."""
    data = _dark_balls_in_noise()
    config = DetectionConfig(threads=1, params="strength-order", groups=0)
    adaptive = detect_particles(Volume(data, 10.0), None, config)
    estimate = adaptive.info["threshold_estimate"]
    assert estimate is not None and 3.5 <= estimate["threshold"] <= 7.0
    fixed = PRESETS["fixed-threshold"].updated(blob_threshold=estimate["threshold"])
    same = detect_particles(Volume(data, 10.0), None, replace(config, params=fixed))
    np.testing.assert_array_equal(adaptive.picks.zyx, same.picks.zyx)
    assert "threshold_estimate" not in same.info


def test_the_ranker_keeps_the_count_and_chooses_among_the_floor_picks() -> None:
    """The ranker keeps the number of picks the threshold gives (at most that many when the
    share of particles is read from the tomogram) and chooses them, among the picks down to the
    floor (the default: at its looser extent reach), by its probability."""
    data = _dark_balls_in_noise()
    volume = Volume(data, 10.0)
    strength = DetectionConfig(threads=1, params="strength-order", groups=0)
    plain = detect_particles(volume, None, strength)
    floor = detect_particles(volume, None, replace(strength, threshold=CANDIDATE_FLOOR))
    floor_points = {tuple(p) for p in np.round(floor.picks.zyx, 3)}
    reach = PRESETS["default"].score.ranker_extent_reach
    loose = PRESETS["strength-order"].updated(extent_reach=reach)
    loose_config = replace(strength, params=loose, threshold=CANDIDATE_FLOOR)
    loose_points = {
        tuple(p) for p in np.round(detect_particles(volume, None, loose_config).picks.zyx, 3)
    }
    trained = detect_particles(volume, None, replace(strength, params="ranker-trained-share"))
    trained_record = trained.info["threshold_estimate"]["ranker"]
    assert trained_record["picks"] == len(plain.picks) == len(trained.picks)
    assert trained_record["particle_share"] is None
    ranked = detect_particles(volume, None, replace(strength, params="default"))
    ranked_record = ranked.info["threshold_estimate"]["ranker"]
    assert ranked_record["picks"] == len(ranked.picks) <= len(plain.picks)
    assert 0 < ranked_record["particle_share"] < 1
    assert "ranker" not in plain.info["threshold_estimate"]
    for result, points in ((trained, floor_points), (ranked, loose_points)):
        assert result.info["threshold_estimate"]["ranker"]["ranked"] >= len(result.picks)
        assert {tuple(p) for p in np.round(result.picks.zyx, 3)} <= points
        assert (result.picks.scores >= 0.5).all()

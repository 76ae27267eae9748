"""The targets table and its explanations, computed from hand-made runs."""

import pytest

from napari_cryoet_particles.benchmark import targets as targets_module
from napari_cryoet_particles.benchmark.targets import (
    compute_targets,
    where_f1_goes,
)
from napari_cryoet_particles.benchmark.targets import why_missed as _why
from napari_cryoet_particles.benchmark.testset import FULL_SIZE, LOW_SNR, Run
from napari_cryoet_particles.benchmark.training import TrainingRun


def _run(name: str, method: str, f1: float, wall: float, **extra) -> Run:
    return Run(name, method, size=FULL_SIZE, f1=f1, best_f1=f1 + 0.02, wall=wall, **extra)


def _runs() -> list[Run]:
    small = {"1S3X": 0.7, "3QM1": 0.5, "3GL1": 0.9}
    return [
        _run("random-seed1", "ours", 0.90, 20.0, rss_mb=1400.0),
        _run("random-seed1", "dog", 0.75, 10.0),
        _run("random-seed2", "ours", 0.80, 30.0, rss_mb=1600.0, rss_imports_mb=380.0),
        _run("random-seed2", "dog", 0.74, 10.0),
        _run("low", "ours", 0.81, 22.0, snr=LOW_SNR, rss_mb=1000.0),
        _run("low", "dog", 0.70, 10.0),
        _run("layout", "ours", 0.86, 24.0, layout=True, per_class=small, rss_mb=1000.0),
        _run("layout", "dog", 0.72, 10.0, layout=True, per_class={"3QM1": 0.6}),
        _run("slices-only", "slices2d", 0.1, 60.0),
    ]


def _training(f1s: dict[str, list[float]]) -> list[TrainingRun]:
    return [
        TrainingRun(name, "from scratch", seed, 150, 1.0, 88.0, 2, f1, 0.6, 0.6, 0.85)
        for name, values in f1s.items()
        for seed, f1 in enumerate(values)
    ]


@pytest.fixture
def model_read(monkeypatch) -> None:
    """A default preset whose picks read the model: the seed spread is a target."""
    monkeypatch.setattr(targets_module, "default_picks_read_the_model", lambda: True)


def test_targets_are_computed_from_the_runs(model_read) -> None:
    speed = [Run("cube", "ours", size=(512, 512, 512), wall=70.0, rss_mb=1500.0)]
    training = _training({"random-seed1": [0.80, 0.82, 0.81], "random-seed2": [0.70, 0.75, 0.74]})
    targets = {t.key: t for t in compute_targets(_runs(), speed, training)}
    assert targets["f1_layout"].measured == 0.86 and targets["f1_layout"].met
    random = targets["f1_random"]
    assert random.measured == pytest.approx(0.85) and random.met
    assert targets["f1_low_snr"].met and targets["f1_low_snr"].margin == pytest.approx(0.01)
    over = targets["f1_over_dog"]  # worst margin: random-seed2, 0.80 - 0.74
    assert over.where == "random-seed2" and over.measured == pytest.approx(0.06)
    assert over.met is False and over.margin == pytest.approx(-0.04)
    assert targets["small_recall:3QM1"].met is False and targets["small_recall:1S3X"].met
    spread = targets["seed_spread"]
    assert spread.where == "random-seed2" and spread.measured == pytest.approx(0.05)
    assert spread.met is False and spread.margin == pytest.approx(-0.02)
    # ours / DoG wall time on the 200×512×512 tomograms: 2.0, 3.0, 2.2, 2.4 → median 2.3
    assert targets["time_vs_dog"].measured == pytest.approx(2.3) and targets["time_vs_dog"].met
    rss = targets["rss_mb"]
    assert rss.measured == 1600.0 and rss.where == "random-seed2" and rss.met is False
    assert targets["seconds_512_cubed"].met is False
    assert targets["rss_512_cubed"].met is None  # information only
    assert "| ≥ +0.1 | +0.060 (random-seed2) | no | -0.040 |" in over.row()


def test_targets_not_measured_in_a_quick_run() -> None:
    quick = [Run("random-seed1-100x256x256", "ours", size=(100, 256, 256), f1=0.5, wall=3.0)]
    targets = {t.key: t for t in compute_targets(quick, [], [])}
    assert targets["f1_random"].measured == 0.5 and targets["f1_random"].met is False
    for key in ("f1_layout", "f1_low_snr", "f1_over_dog", "seed_spread", "time_vs_dog", "rss_mb"):
        assert targets[key].met is None and "not measured" in targets[key].row()


def test_seed_spread_says_nothing_when_the_default_picks_do_not_read_the_model() -> None:
    training = _training({"random-seed1": [0.80, 0.80, 0.80]})
    spread = {t.key: t for t in compute_targets(_runs(), [], training)}["seed_spread"]
    assert spread.met is None and "n/a: the default picks do not read the model" in spread.row()


def test_why_has_one_bullet_per_missed_group_with_the_measured_numbers(model_read) -> None:
    runs = _runs()
    training = _training({"random-seed1": [0.30, 0.82, 0.81]})
    targets = compute_targets(runs, [], training)
    bullets = _why(runs, [], training, targets)
    heads = [b.split("**")[1] for b in bullets]
    assert heads == ["Over the best classical picker", "Small particles", "Seed spread", "Memory"]
    over, small, seeds, memory = bullets
    assert "0.800 vs 0.740" in over and "0.820 vs 0.760" in over
    assert "3QM1 0.50" in small and "3QM1 0.60" in small and "1S3X" not in small
    assert "seed 0 F1 0.300" in seeds
    assert "1600 MB" in memory and "380 MB" in memory
    runs[0].f1 = 0.70  # the random-layout mean drops below 0.85
    bullets = _why(runs, [], training, compute_targets(runs, [], training))
    assert bullets[0].startswith("- **F1**") and "random-seed1" in bullets[0]


def test_where_f1_goes_splits_precision_into_background_and_repeat_hits() -> None:
    run = Run("t", "ours", tp=920, fp=46, repeat_hits=310, precision=0.72, recall=0.8)
    text = where_f1_goes(run)
    assert "310 of 1276 counted picks are repeat hits" in text and "46 hit background" in text
    assert "precision without repeat hits 0.952" in text
    assert "the larger loss is precision, 87 % of its loss repeat hits" in text


def test_the_huge_tomogram_is_the_source_mirrored_along_each_axis(tmp_path) -> None:
    import numpy as np

    from napari_cryoet_particles.benchmark.huge import mirror_tile, mirrored_index
    from napari_cryoet_particles.io import read_tomogram, write_tomogram

    assert mirrored_index(7, 3).tolist() == [0, 1, 2, 2, 1, 0, 0]
    source = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    write_tomogram(tmp_path / "s.mrc", source, 7.5)
    made = read_tomogram(mirror_tile(tmp_path / "s.mrc", tmp_path / "big.mrc", (9, 7, 13)))
    assert made.shape == (9, 7, 13) and made.voxel_size == 7.5
    index = np.ix_(mirrored_index(9, 4), mirrored_index(7, 5), mirrored_index(13, 6))
    np.testing.assert_array_equal(made.data, source[index])


def test_the_huge_row_has_its_memory_target_and_section() -> None:
    from napari_cryoet_particles.benchmark.huge import HUGE_SIZE
    from napari_cryoet_particles.benchmark.report import format_huge

    huge = [
        Run("huge", "ours", size=HUGE_SIZE, n_picks=30000, wall=300.0, rss_mb=1400.0),
        Run("huge", "dog", size=HUGE_SIZE, n_picks=20000, wall=200.0, rss_mb=9000.0),
    ]
    for run in huge:
        run.tomogram_mb = 2000.0
    target = {t.key: t for t in compute_targets(_runs(), [], [], huge)}["rss_huge_mb"]
    assert target.measured == 1400.0 and target.met
    huge[0].rss_mb = 1700.0
    targets = compute_targets(_runs(), [], [], huge)
    assert {t.key: t for t in targets}["rss_huge_mb"].met is False
    assert any("2 GB tomogram**: 1700 MB" in b for b in _why(_runs(), [], [], targets, huge))
    text = "\n".join(format_huge(huge))
    assert "1024×1024×500" in text and "--no-huge" in text
    assert "| DoG (previous tuning) | 20000 | 200.0 |" in text


def test_the_huge_row_can_be_skipped(monkeypatch, tmp_path) -> None:
    from napari_cryoet_particles.benchmark import run as benchmark
    from napari_cryoet_particles.cli import main

    seen = {}
    monkeypatch.setattr(benchmark, "run_benchmark", lambda *a, **k: seen.update(k))
    assert main(["benchmark", "--out", str(tmp_path / "b.md"), "--no-huge"]) == 0
    assert seen["huge"] is False

"""The benchmark's training part: the real `train` CLI in a child process, and the report rows."""

from pathlib import Path

import numpy as np
import pytest

from napari_cryoet_particles.benchmark.training import (
    SCRATCH,
    TRAINING_RUNS,
    TrainingRun,
    format_training,
    run_training,
    training_why,
    worst_seed_spread,
)
from napari_cryoet_particles.io import write_tomogram
from napari_cryoet_particles.model import load_checkpoint

TINY_RECIPE = ("--steps", "2", "--crop-size", "16", "--batch-size", "2")


@pytest.mark.slow
def test_run_training_trains_in_a_child_and_reads_its_summary(tmp_path: Path) -> None:
    data = np.random.default_rng(0).normal(size=(32, 48, 48)).astype(np.float32)
    tomogram = write_tomogram(tmp_path / "tomo.mrc", data, 10.0)
    out = tmp_path / "model.pt"
    seconds, steps, rate = run_training(tomogram, out, TINY_RECIPE, threads=1)
    assert steps == 2 and rate > 0 and seconds > 0
    assert load_checkpoint(out).config.training["steps"] == 2


@pytest.mark.slow
def test_run_training_reports_the_child_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mrc"
    try:
        run_training(missing, tmp_path / "model.pt", TINY_RECIPE, threads=1)
    except RuntimeError as error:
        assert "missing.mrc" in str(error)
    else:
        raise AssertionError("a failed training must raise")


def _run(name: str, f1: float, shipped: float, seed: int = 0, tomogram: str = "random-seed1"):
    return TrainingRun(tomogram, name, seed, 150, 1.2, 88.0, 2, f1, 0.7, 0.6, shipped)


def test_training_plan_runs_three_seeds_from_scratch_and_two_fine_tuning_on_one_tomogram() -> None:
    scratch, finetune = TRAINING_RUNS
    assert scratch.name == SCRATCH and scratch.seeds == (0, 1, 2) and scratch.tomograms is None
    assert finetune.extra == ("--init", "default") and len(finetune.seeds) == 2
    assert finetune.tomograms == 1


def test_training_table_and_seed_spread() -> None:
    runs = [
        _run(SCRATCH, 0.70, 0.69, 0),
        _run(SCRATCH, 0.60, 0.69, 1),
        _run(SCRATCH, 0.66, 0.69, 2),
        _run(SCRATCH, 0.50, 0.55, 0, "random-seed2"),
        _run(SCRATCH, 0.52, 0.55, 1, "random-seed2"),
        _run("fine-tune shipped model", 0.72, 0.69),
    ]
    table = format_training(runs)
    assert table[0] == "## Training on the user's tomogram"
    assert (
        "| random-seed1 | from scratch | 0 | 2 | 150 | 1.20 | 88 | 0.700 | 0.600 | 0.700 | +0.010 |"
        in table
    )
    assert any("0.600 to 0.700 (0.100) over 3 seeds" in line for line in table)
    spread, where = worst_seed_spread(runs)
    assert spread == pytest.approx(0.10) and where == "random-seed1"
    assert format_training([]) == [] and worst_seed_spread(runs[-1:]) is None


def test_training_why_names_every_seed_of_the_worst_tomogram() -> None:
    runs = [_run(SCRATCH, 0.03, 0.69, 0), _run(SCRATCH, 0.66, 0.69, 1)]
    (bullet,) = training_why(runs, 0.03)
    assert "0.630" in bullet and "seed 0 F1 0.030" in bullet and "seed 1 F1 0.660" in bullet
    assert training_why(runs, 0.7) == [] and training_why([], 0.03) == []

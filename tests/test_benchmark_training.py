"""The benchmark's training part: the real `train` CLI in a child process, and the report rows."""

from pathlib import Path

import numpy as np
import pytest

from napari_cryoet_particles.benchmark.training import (
    TrainingRun,
    format_training,
    run_training,
    training_target_rows,
    training_why,
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


def _run(name: str, minutes: float, f1: float, shipped: float) -> TrainingRun:
    return TrainingRun("random-seed1", name, 0, 150, minutes, 88.0, 2, f1, 0.7, 0.6, shipped)


def test_training_rows_judge_time_per_run_and_f1_gap_on_the_mean() -> None:
    runs = [
        _run("from scratch", 1.2, 0.70, 0.69),
        _run("from scratch", 11.0, 0.60, 0.65),
        _run("fine-tune shipped model", 1.0, 0.72, 0.69),
    ]
    rows = training_target_rows(runs)
    assert "| 11.00 min | no |" in rows[0]
    assert "-0.020 | yes |" in rows[1]  # mean of +0.01 and -0.05
    assert "| 1.00 min | yes |" in rows[2]
    table = format_training(runs)
    assert table[0] == "## Training on the user's tomogram"
    assert (
        "| random-seed1 | from scratch | 0 | 2 | 150 | 1.20 | 88 | 0.700 | 0.600 | 0.700 | +0.010 |"
        in table
    )
    assert "- from scratch: ΔF1 mean -0.020, from -0.050 to +0.010 over 2 runs." in table
    assert format_training([]) == [] and training_target_rows([]) == []


def test_training_why_explains_a_missed_target_and_names_the_worst_run() -> None:
    runs = [
        _run("from scratch", 1.0, 0.60, 0.65),
        _run("fine-tune shipped model", 1.0, 0.30, 0.65),
    ]
    (bullet,) = training_why(runs)
    assert "ΔF1 -0.050" in bullet and "fine-tune shipped model, seed 0" in bullet
    assert training_why([_run("from scratch", 1.0, 0.66, 0.65)]) == []

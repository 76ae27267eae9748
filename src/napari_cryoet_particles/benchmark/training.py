"""The training part of ``cryoet-particles benchmark``: what a user's own training costs and gives.

On the random-layout SNR-0.1 test tomograms, as a user would with ``cryoet-particles train``:
train a model from scratch on one tomogram alone (no labels: self-supervision on the data to be
picked is the intended use) with each of three seeds, and fine-tune the shipped model
(``--init default``) with two seeds on one tomogram (:data:`TRAINING_RUNS`), each in its own
process; then detect with each model and score the picks like the shipped model's. The
from-scratch seeds measure stability: the worst seed's F1 against the best's on the same
tomogram. Nothing is tuned here: the recipe and the steps are the defaults.
"""

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cryoet_particles.benchmark.text import fmt

SCRATCH = "from scratch"


@dataclass(frozen=True)
class TrainingPlan:
    """One kind of training run: extra ``train`` arguments, the seeds (``train --seed``) and on
    how many of the eligible tomograms (None: all of them)."""

    name: str
    extra: tuple[str, ...]
    seeds: tuple[int, ...]
    tomograms: int | None = None


TRAINING_RUNS = (
    TrainingPlan(SCRATCH, (), (0, 1, 2)),
    TrainingPlan("fine-tune shipped model", ("--init", "default"), (0, 1), tomograms=1),
)


@dataclass
class TrainingRun:
    """One training run on one test tomogram, and detection with the model it produced."""

    tomogram: str
    name: str
    seed: int
    steps: int
    minutes: float
    crops_per_second: float
    threads: int
    f1: float
    precision: float
    recall: float
    shipped_f1: float

    @property
    def f1_gap(self) -> float:
        """F1 of this model minus the shipped model's F1 on the same tomogram."""
        return self.f1 - self.shipped_f1


def train_command(
    tomogram: Path, out: Path, extra: tuple[str, ...], threads: int, seed: int = 0
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "napari_cryoet_particles.cli",
        "train",
        str(tomogram),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--threads",
        str(threads),
        "--overwrite",
        "--seed",
        str(seed),
        *extra,
    ]


#: The summary line ``cryoet-particles train`` prints at the end.
WROTE_LINE = re.compile(r"\((\d+) steps, ([0-9.]+) crops/s\)")


def run_training(
    tomogram: Path, out: Path, extra: tuple[str, ...], threads: int, seed: int = 0
) -> tuple[float, int, float]:
    """Train in a child process; return (wall seconds, steps, crops per second)."""
    started = time.perf_counter()
    completed = subprocess.run(
        train_command(tomogram, out, extra, threads, seed), capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    match = WROTE_LINE.search(completed.stdout)
    if completed.returncode != 0 or match is None:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"training on {tomogram} failed: {' | '.join(tail)}")
    return seconds, int(match.group(1)), float(match.group(2))


def default_picks_read_the_model() -> bool:
    """Whether the default preset's picks change with the model (:attr:`.DetectionParams.reads_the_model`)."""
    from napari_cryoet_particles.detect.params import DEFAULT_PRESET, PRESETS

    return PRESETS[DEFAULT_PRESET].reads_the_model


#: Why the trained models' F1 and seed spread say nothing about them under the default preset.
MODEL_NOT_READ = "n/a: the default picks do not read the model"


def _model_not_read_note() -> list[str]:
    if default_picks_read_the_model():
        return []
    return [
        "",
        "**The default picks do not read the model** (the threshold and the pick ranker read the "
        "blobs and their radial profiles; the learned term's weight is 0, docs/detection.md, "
        '"What is learned"): detection with a trained model gives the shipped model\'s picks by '
        "construction, so ΔF1 is 0 and the seed spread measures nothing. What training changes is "
        "what curation learns from (refine, more like these: the pooled embedding). The minutes "
        "and crops/s are this section's measurement.",
    ]


def format_training(runs: list[TrainingRun]) -> list[str]:
    """The report's "Training on the user's tomogram" section."""
    if not runs:
        return []
    lines = [
        "## Training on the user's tomogram",
        "",
        "As a user would: `cryoet-particles train TOMO.mrc --out model.pt` (from scratch) and "
        "`... --init default` (fine-tuning the shipped model) on the test tomogram alone, with "
        "several seeds (`--seed`), default recipe (NT-Xent, 150 steps of 16 pairs of 32³ crops), CPU, each in its own process; *minutes* "
        "is that process's wall time (start-up, reading and the content map included). No labels "
        "are used; detection then runs with the new model, default settings, scored like the rest. "
        "*ΔF1* is against the shipped model on the same tomogram.",
        *_model_not_read_note(),
        "",
        "| tomogram | training | seed | threads | steps | minutes | crops/s | precision | recall | F1 | ΔF1 vs shipped |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        lines.append(
            f"| {run.tomogram} | {run.name} | {run.seed} | {run.threads} | {run.steps} | {fmt(run.minutes, 2)} | "
            f"{fmt(run.crops_per_second, 0)} | {fmt(run.precision)} | {fmt(run.recall)} | {fmt(run.f1)} | "
            f"{run.f1_gap:+.3f} |"
        )
    lines.append("")
    for plan in TRAINING_RUNS:
        gaps = [r.f1_gap for r in runs if r.name == plan.name]
        if gaps:
            lines.append(
                f"- {plan.name}: ΔF1 mean {np.mean(gaps):+.3f}, from {min(gaps):+.3f} to "
                f"{max(gaps):+.3f} over {len(gaps)} runs."
            )
    for name, group in seed_spreads(runs).items():
        f1s = [r.f1 for r in group]
        lines.append(
            f"- seed spread from scratch on {name}: F1 {min(f1s):.3f} to {max(f1s):.3f} "
            f"({max(f1s) - min(f1s):.3f}) over {len(f1s)} seeds."
        )
    return lines


def seed_spreads(runs: list[TrainingRun]) -> dict[str, list[TrainingRun]]:
    """The from-scratch runs per tomogram, when it has at least two seeds."""
    spreads: dict[str, list[TrainingRun]] = {}
    for run in runs:
        if run.name == SCRATCH:
            spreads.setdefault(run.tomogram, []).append(run)
    return {name: group for name, group in spreads.items() if len(group) > 1}


def worst_seed_spread(runs: list[TrainingRun]) -> tuple[float, str] | None:
    """(max - min F1 over the from-scratch seeds, tomogram) where that is largest; None if no
    tomogram has two seeds."""
    spreads = {
        name: max(r.f1 for r in group) - min(r.f1 for r in group)
        for name, group in seed_spreads(runs).items()
    }
    if not spreads:
        return None
    name = max(spreads, key=lambda n: spreads[n])
    return spreads[name], name


def training_why(runs: list[TrainingRun], goal: float) -> list[str]:
    """A bullet for the report when the from-scratch seeds differ by more than ``goal`` in F1."""
    worst = worst_seed_spread(runs)
    if worst is None or worst[0] <= goal:
        return []
    group = sorted(seed_spreads(runs)[worst[1]], key=lambda r: r.seed)
    seeds = ", ".join(
        f"seed {r.seed} F1 {r.f1:.3f} (P {r.precision:.3f}, R {r.recall:.3f})" for r in group
    )
    return [
        f"- **Seed spread** ({worst[0]:.3f}, goal ≤ {goal:.2f}): from scratch on {worst[1]}, "
        f"{seeds}; the shipped model scores {group[0].shipped_f1:.3f} there."
    ]

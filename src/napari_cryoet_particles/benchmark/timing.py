"""The parent's side of the child processes: run one, time it, time it again interleaved with
the other methods, and say on what machine."""

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from napari_cryoet_particles.benchmark.child import sibling
from napari_cryoet_particles.benchmark.testset import Run
from napari_cryoet_particles.detect.params import DEFAULT_PRESET

#: Methods whose time is compared (ours against the tuned DoG): on each 512² tomogram and the 512³
#: one they are timed this many times, the methods interleaved, and their wall time is the median.
#: One run per method left the ratio per tomogram spread 2.2-2.6× with the same code (other jobs
#: share the machine's two cores); the median of interleaved runs is steadier.
TIMED_METHODS = ("ours", "dog")
TIMING_RUNS = 3


def machine_description(threads: int | None) -> str:
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    memory = ""
    try:
        import psutil

        memory = f", {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    except ImportError:
        pass
    return (
        f"{cpu}, {cores} cores usable{memory}; torch {torch.__version__} with "
        f"{threads or cores} thread{'s' if (threads or cores) != 1 else ''}; "
        f"Python {platform.python_version()}; {platform.system()} {platform.release()}"
    )


def load_average() -> float:
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return float("nan")


def run_child(
    method: str,
    tomogram: Path,
    out: Path,
    crops: Path | None,
    model: str | None,
    threads: int | None,
    steps: int | None,
    timing_only: bool = False,
    preset: str = DEFAULT_PRESET,
) -> tuple[float, dict]:
    """(wall seconds of the user's part, the child's report): the child's lifetime minus the
    time it spent after handing over its picks (scoring extras). ``timing_only``: the child stops
    once its picks are written (a repeated timing: no low-floor picks, no crop maps). ``preset``:
    our detection's (``detect/params.py``)."""
    command = [
        sys.executable,
        "-m",
        "napari_cryoet_particles.benchmark.child",
        method,
        str(tomogram),
        "--out",
        str(out),
    ]
    if crops is not None:
        command += ["--crops", str(crops)]
    if model:
        command += ["--model", model]
    if threads:
        command += ["--threads", str(threads)]
    if steps:
        command += ["--steps", str(steps)]
    if timing_only:
        command += ["--timing-only"]
    command += ["--preset", preset]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{method} on {tomogram} failed: {' | '.join(tail)}")
    report = json.loads(sibling(out, ".json").read_text())
    return wall - float(report.get("scoring_seconds", 0.0)), report


def timed_again(
    runs: list[Run],
    tomogram: Path,
    scratch: Path,
    model: str | None,
    threads: int | None,
    repeats: int,
    log,
) -> None:
    """Time each run's method ``repeats`` more times on ``tomogram``, interleaved (the order
    reversed every other round, so no method always runs first), then set each run's wall time
    to the median of all its runs. The extra runs' picks go to ``scratch`` and are not scored."""
    for round_ in range(repeats):
        order = runs if round_ % 2 else runs[::-1]
        for run in order:
            wall, _ = run_child(run.method, tomogram, scratch, None, model, threads, None, True)
            run.walls.append(wall)
    for run in runs:
        run.wall = float(np.median(run.walls))
        log(f"  {run.method} wall times {' / '.join(f'{w:.1f}' for w in run.walls)} s")

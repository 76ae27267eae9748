"""The child process: one method on one tomogram, as a user runs it.

``python -m napari_cryoet_particles.benchmark.child METHOD TOMOGRAM --out OUT`` reads the
tomogram, runs the method of the registry (:mod:`.methods`) and writes its picks to ``OUT.csv``;
its wall time and peak memory (its own peak resident set, ``VmHWM``) stop there. What it computes
after for scoring (picks down to a low floor in ``OUT-all.csv``, crop maps in ``OUT.crops.npz``)
is in neither; ``OUT.json`` holds its report.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from napari_cryoet_particles.benchmark.crops import grid_crops
from napari_cryoet_particles.benchmark.methods import METHODS, MethodOptions
from napari_cryoet_particles.detect.params import DEFAULT_PRESET


def sibling(out: Path, tail: str) -> Path:
    """``out`` with ``tail`` appended to its name (names may hold dots, e.g. ``snr0.07``)."""
    return out.with_name(out.name + tail)


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB).

    Linux's ``VmHWM`` belongs to the process image, whereas ``ru_maxrss`` survives ``exec``: a
    child started from a big parent would report the parent's peak. ``ru_maxrss`` elsewhere.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


class _TimingDone(Exception):
    """Raised by a timing-only child once its picks are written: nothing else to compute."""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("method", choices=tuple(METHODS))
    parser.add_argument("tomogram")
    parser.add_argument("--out", required=True)
    parser.add_argument("--crops", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--preset", default=DEFAULT_PRESET, help="our detection's preset")
    parser.add_argument(
        "--timing-only", action="store_true", help="stop once the picks are written (no extras)"
    )
    args = parser.parse_args(argv)

    from napari_cryoet_particles.baselines import dog, slices2d  # noqa: F401 (imports first)
    from napari_cryoet_particles.io import read_tomogram, write_picks

    report: dict[str, object] = {"rss_imports_mb": peak_rss_mb()}
    started = time.perf_counter()
    out = Path(args.out)
    grid = np.load(args.crops) if args.crops else None
    slices = tuple(int(z) for z in grid["slices"]) if grid is not None else ()
    options = MethodOptions(args.model, args.threads, args.steps, slices, args.preset)
    finished: list[float] = []

    def done(picks) -> None:
        write_picks(sibling(out, ".csv"), picks, overwrite=True)
        finished.append(time.perf_counter())
        report["inner"] = finished[0] - started
        report["rss_mb"] = peak_rss_mb()
        if args.timing_only:
            raise _TimingDone

    try:
        output = METHODS[args.method].run(read_tomogram(args.tomogram), options, done)
    except _TimingDone:
        report["scoring_seconds"] = time.perf_counter() - finished[0]
        sibling(out, ".json").write_text(json.dumps(report, default=float))
        return 0
    if not finished:
        raise RuntimeError(f"{args.method} gave no picks")
    write_picks(sibling(out, "-all.csv"), output.floor, overwrite=True)
    crops = output.crops
    if crops is None and grid is not None:
        crops = grid_crops(output.maps, grid)
    if crops is not None:
        np.savez(sibling(out, ".crops.npz"), **crops)
    report.update(output.report)
    report["scoring_seconds"] = time.perf_counter() - finished[0]
    sibling(out, ".json").write_text(json.dumps(report, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Reject a structure: does rejecting a few picks on structures drop the others?

A simulated user rejects the 6 strongest automatic picks that land on a structure (membrane,
vesicle, actin, microtubule, fiducial: the class mask within one voxel) and accepts the 6
strongest true picks; refine then runs without the tomogram (the marks and the refine head only)
and with it (:mod:`napari_cryoet_particles.detect.bodies`: a rejection on an extended body drops
the picks on every extended body). Printed per tomogram: picks on structures and recall (clutter
rule, rejected marks left out) for the automatic picks, the marks alone, refine without and
with the tomogram, and the seconds the bodies took.

    python scripts/reject_structure.py FOLDER [FOLDER ...] [--cache DIR] [--threads 1]

FOLDERs are SHREC-style folders with ``class_mask.mrc`` and ``class_names.txt`` (the cellular
family's). Choose numbers on the validation tomograms (cellular seeds 101, 102) only; the
benchmark's family tomogram (seed 21) is for reporting. Detection (down to the refine floor) is
cached per folder as a pickle in ``--cache``.
"""

import argparse
import pickle
import time
from pathlib import Path

import numpy as np

from napari_cryoet_particles.detect import DetectionConfig, detect_particles
from napari_cryoet_particles.detect.config import AUTO_THRESHOLD, CANDIDATE_FLOOR
from napari_cryoet_particles.detect.refine import RefineConfig, refined_picks
from napari_cryoet_particles.evaluate import SHREC2021_SKIP
from napari_cryoet_particles.evaluate.report import evaluate_data, load_truth
from napari_cryoet_particles.io import read_tomogram

STRUCTURES = ("membrane", "vesicle", "actin", "microtubule", "fiducial")
MARKS = 6


def detection(folder: Path, cache: Path, threads: int):
    """The floor detection of ``folder``, from ``cache`` when there."""
    path = cache / f"{folder.name}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    config = DetectionConfig(threads=threads, threshold=CANDIDATE_FLOOR, keep_score_map=False)
    result = detect_particles(read_tomogram(folder / "reconstruction.mrc"), None, config)
    path.write_bytes(pickle.dumps(result))
    return result


def measure(truth, picks) -> tuple[int, float, int]:
    """(picks on structures, recall, true picks) under the clutter rule, rejected marks left out."""
    picks = picks.subset((picks.features["status"] != "rejected").to_numpy())
    report = evaluate_data(truth, picks, skip=SHREC2021_SKIP, clutter=True)
    on = np.isin(report.landing.on_clutter.astype(str), STRUCTURES)
    return int(on.sum()), float(report.clutter.recall), int(report.clutter.tp)


def user_marks(truth, candidates):
    """The 6 strongest automatic picks on structures rejected, the 6 strongest true ones accepted."""
    auto = candidates.subset(np.flatnonzero(candidates.scores >= AUTO_THRESHOLD))
    report = evaluate_data(truth, auto, skip=SHREC2021_SKIP, clutter=True)
    on = np.isin(report.landing.on_clutter.astype(str), STRUCTURES)
    order = np.argsort(-auto.scores, kind="stable")
    rejected = [i for i in order if on[i]][:MARKS]
    accepted = [i for i in order if report.clutter.pred_status[i] == "tp"][:MARKS]
    marks = auto.subset(np.array(rejected + accepted, dtype=int))
    marks.features["status"] = ["rejected"] * len(rejected) + ["accepted"] * len(accepted)
    return auto, marks


def marks_alone(auto, marks):
    rejected = marks.zyx[(marks.features["status"] == "rejected").to_numpy()]
    keep = ~(auto.zyx[:, None, :] == rejected[None]).all(-1).any(1)
    return auto.subset(np.flatnonzero(keep))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/reject_structure"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    print("tomogram | step | picks on structures | recall | true picks")
    for folder in args.folders:
        result = detection(folder, args.cache, args.threads)
        truth = load_truth(folder)
        volume = read_tomogram(folder / "reconstruction.mrc")
        auto, marks = user_marks(truth, result.picks)
        rows = {"automatic": auto, "marks alone": marks_alone(auto, marks)}
        rows["refine"] = refined_picks(result, marks, RefineConfig()).picks
        clock = time.perf_counter()
        outcome = refined_picks(result, marks, RefineConfig(), volume)
        seconds = time.perf_counter() - clock
        rows["refine + tomogram"] = outcome.picks
        for step, picks in rows.items():
            on, recall, tp = measure(truth, picks)
            print(f"{folder.name} | {step} | {on} | {recall:.4f} | {tp}")
        dropped = outcome.info["n_dropped_on_structures"]
        print(f"{folder.name} | {dropped} candidates dropped on structures, {seconds:.1f} s refine")


if __name__ == "__main__":
    main()

"""Reject a structure: does rejecting a few picks on structures drop the others?

A simulated user rejects the 6 strongest automatic picks that land on a structure (membrane,
vesicle, actin, microtubule, fiducial: the class mask within one voxel) and accepts the 6
strongest true picks; refine then runs without the tomogram (the marks and the refine head only)
and with it (:mod:`napari_cryoet_particles.detect.bodies`: a rejection on an extended body drops
the picks on every extended body). Printed per tomogram: picks on structures and recall (clutter
rule, rejected marks left out) for the automatic picks, the marks alone, refine without and
with the tomogram (:func:`napari_cryoet_particles.benchmark.curation.reject_structure`).

    python scripts/reject_structure.py FOLDER [FOLDER ...] [--cache DIR] [--threads 1]

FOLDERs are SHREC-style folders with ``class_mask.mrc`` and ``class_names.txt`` (the cellular
family's). Choose numbers on the validation tomograms (cellular seeds 101, 102) only; the
benchmark's family tomogram (seed 21) is for reporting. Detection (down to the refine floor) is
cached per folder as a pickle in ``--cache``.
"""

import argparse
import pickle
from pathlib import Path

from napari_cryoet_particles.benchmark.curation import reject_structure
from napari_cryoet_particles.detect import DetectionConfig, detect_particles
from napari_cryoet_particles.detect.config import CANDIDATE_FLOOR
from napari_cryoet_particles.evaluate.report import load_truth
from napari_cryoet_particles.io import read_tomogram


def detection(folder: Path, cache: Path, threads: int):
    """The floor detection of ``folder``, from ``cache`` when there."""
    path = cache / f"{folder.name}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    config = DetectionConfig(threads=threads, threshold=CANDIDATE_FLOOR, keep_score_map=False)
    result = detect_particles(read_tomogram(folder / "reconstruction.mrc"), None, config)
    path.write_bytes(pickle.dumps(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/reject_structure"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    print("tomogram | step | picks on structures | recall")
    for folder in args.folders:
        result = detection(folder, args.cache, args.threads)
        volume = read_tomogram(folder / "reconstruction.mrc")
        for step, (on, recall) in reject_structure(result, load_truth(folder), volume).items():
            print(f"{folder.name} | {step} | {on} | {recall:.4f}")


if __name__ == "__main__":
    main()

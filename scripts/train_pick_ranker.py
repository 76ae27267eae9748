"""Write the pick ranker's training table (``data/pick_ranker_training.npz``, :mod:`.detect.ranker`).

The picks down to the floor of the validation tomograms of the tuning family (val101,
val106-layout) and of the cellular family (cell101, cell102) — the only tomograms a choice may
be made on (scripts/score_search.py) — are described by the ranker's features and labelled by
whether each hit a particle first (under the clutter rule: picks on membranes, filaments and
gold are not particles). Held-out families and test tomograms are never used.

    python scripts/train_pick_ranker.py --work /tmp/score [--out src/.../data/pick_ranker_training.npz]

Takes about 2 minutes on 2 cores once the simulations exist (about 10 minutes to make them).
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from score_search import CELLULAR_VALIDATION, TUNING_VALIDATION, scored, tomograms

from napari_cryoet_particles.detect import DetectionConfig, DetectionResult, detect_particles
from napari_cryoet_particles.detect.config import CANDIDATE_FLOOR
from napari_cryoet_particles.detect.params import PRESETS
from napari_cryoet_particles.detect.pipeline import prepare
from napari_cryoet_particles.detect.ranker import RANKER_FEATURES, TRAINING_FILE, ranker_table
from napari_cryoet_particles.detect.scoring import ranker_config
from napari_cryoet_particles.detect.volume import WorkingVolume
from napari_cryoet_particles.evaluate.report import load_truth
from napari_cryoet_particles.io import read_shrec_folder
from napari_cryoet_particles.io.units import nm_to_voxels

DEFAULT_OUT = Path(__file__).parents[1] / "src" / "napari_cryoet_particles" / "data" / TRAINING_FILE


@dataclass
class FloorRun:
    """One tomogram's picks down to the floor in strength order (the picks the ranker re-ranks),
    the working volume they were found in, and which picks count and hit a particle first."""

    result: DetectionResult
    work: WorkingVolume
    counted: np.ndarray
    is_particle: np.ndarray


def floor_run(folder: Path) -> FloorRun:
    """The default with the ranker off on one validation tomogram: its candidates at the ranker's
    extent reach, down to the floor, matched to the truth under the clutter rule."""
    volume = read_shrec_folder(folder).tomogram
    default = DetectionConfig(params=PRESETS["default"])
    params = ranker_config(default).params.updated(
        ranker=False, adapt_share=False, f1_cut=False, ranker_extent_reach=None
    )
    config = DetectionConfig(
        params=params,
        threshold=CANDIDATE_FLOOR,
        keep_score_map=False,
        learned_features=False,
        groups=0,
    )
    result = detect_particles(volume, None, config)
    matched = scored(load_truth(folder), result.picks)
    counted = matched.pred_counted
    return FloorRun(
        result, prepare(volume, None, config).work, counted, (matched.pred_status == "tp")[counted]
    )


def floor_table(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(features, hit a particle first) of one tomogram's picks down to the floor, ranked by
    strength (the default with the ranker off: the picks the ranker re-ranks)."""
    run = floor_run(folder)
    picks, work, features = run.result.picks, run.work, run.result.picks.features
    table = ranker_table(
        work,
        work.from_input(picks.zyx),
        features["strength"].to_numpy(float),
        nm_to_voxels(features["radius_nm"].to_numpy(float), work.voxel_size),
        run.result.profiles,
        run.result.info["threshold_estimate"]["threshold"],
    )
    return table[run.counted], run.is_particle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="simulations are kept here")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    tables, labels = [], []
    for name, (folder, held_out) in tomograms(args.work, []).items():
        assert not held_out and name in (*TUNING_VALIDATION, *CELLULAR_VALIDATION)
        table, is_particle = floor_table(folder)
        tables.append(table.astype(np.float32))
        labels.append(is_particle)
        print(f"{name}: {len(table)} picks, {int(is_particle.sum())} particles", flush=True)
    np.savez_compressed(
        args.out,
        table=np.concatenate(tables),
        is_particle=np.concatenate(labels),
        features=np.array(RANKER_FEATURES),
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

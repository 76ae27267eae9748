"""Ablation of the training objectives (the table in docs/model.md).

Trains one model per variant exactly like the default model (scripts/train_default_model.py:
same simulated training tomogram, seed >= 1000, same steps and seed) but with a subset of the
objectives, then runs detection with each on test tomograms (SHREC-2021-style simulations, seeds
below 100 as in the benchmark) and scores the picks by the SHREC rule:

    NT-Xent only  →  + pixel consistency  →  + spatial organisation (puzzle CE + KL)  →  + rotations

    python scripts/model_ablation.py [--work /tmp/cryoet-ablation] [--test-seeds 1 2] [--steps 150]
"""

import argparse
import json
import time
from pathlib import Path

from napari_cryoet_particles.detect import DetectionConfig, detect_particles
from napari_cryoet_particles.evaluate import SHREC2021_SKIP, score_shrec
from napari_cryoet_particles.io import read_shrec_folder, read_tomogram
from napari_cryoet_particles.jobs import run_job_with_bar
from napari_cryoet_particles.model.augment import AugmentConfig
from napari_cryoet_particles.model.train import TrainConfig, train_job
from napari_cryoet_particles.simulate import simulate_dataset

TRAINING_SEEDS = (1000,)
SIZE = (200, 512, 512)
NO_ROTATIONS = AugmentConfig(rotations=False)
VARIANTS = {
    "NT-Xent only": ({"ntxent": 1.0}, NO_ROTATIONS),
    "+ pixel consistency": ({"ntxent": 1.0, "pixel": 1.0}, NO_ROTATIONS),
    "+ spatial organisation": (
        {"ntxent": 1.0, "pixel": 1.0, "puzzle_ce": 0.5, "puzzle_kl": 0.5},
        NO_ROTATIONS,
    ),
    "+ rotations": (
        {"ntxent": 1.0, "pixel": 1.0, "puzzle_ce": 0.5, "puzzle_kl": 0.5},
        AugmentConfig(),
    ),
    "NT-Xent + rotations (shipped default)": ({"ntxent": 1.0}, AugmentConfig()),
}


def simulated(work: Path, seed: int) -> Path:
    folder = work / f"seed{seed}"
    if not (folder / "reconstruction.mrc").exists():
        simulate_dataset(folder, size=SIZE, seed=seed, projections=False, overwrite=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/cryoet-ablation")
    parser.add_argument("--test-seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=None, help="run only variants whose name contains this")
    parser.add_argument(
        "--density-weight", type=float, default=0.0, help="detection's density channel (0: off)"
    )
    parser.add_argument("--clusters", type=int, default=3, help="detection's k-means clusters")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    volumes = [
        read_tomogram(simulated(work, seed) / "reconstruction.mrc") for seed in TRAINING_SEEDS
    ]
    tests = {seed: read_shrec_folder(simulated(work, seed)) for seed in args.test_seeds}
    rows = []
    for name, (weights, augment) in VARIANTS.items():
        if args.only and args.only not in name:
            continue
        config = TrainConfig(
            steps=args.steps,
            batch_size=16,
            seed=0,
            threads=args.threads,
            loss_weights=weights,
            augment=augment,
        )
        out = work / f"model-{'-'.join(sorted(weights))}-rot{int(augment.rotations)}.pt"
        if not out.exists():
            started = time.perf_counter()
            run_job_with_bar(train_job(volumes, out, config, device="cpu", overwrite=True), name)
            print(f"{name}: trained in {(time.perf_counter() - started) / 60:.1f} min", flush=True)
        scores = {}
        for seed, dataset in tests.items():
            result = detect_particles(
                dataset.tomogram,
                out,
                DetectionConfig(threads=args.threads).with_params(
                    density_weight=args.density_weight, n_clusters=args.clusters
                ),
            )
            score = score_shrec(dataset.truth, result.picks, dataset.occupancy, skip=SHREC2021_SKIP)
            scores[seed] = (score.precision, score.recall, score.f1)
        row = {"variant": name, "scores": scores}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    seeds = " | ".join(f"F1 seed {s} (P / R)" for s in args.test_seeds)
    print(f"| objectives | {seeds} | mean F1 |")
    print("| --- |" + " --- |" * (len(args.test_seeds) + 1))
    for row in rows:
        cells = " | ".join(f"{f:.3f} ({p:.2f} / {r:.2f})" for p, r, f in row["scores"].values())
        mean = sum(f for _, _, f in row["scores"].values()) / len(row["scores"])
        print(f"| {row['variant']} | {cells} | {mean:.3f} |")


if __name__ == "__main__":
    main()

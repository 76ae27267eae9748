"""Reproduce the default model shipped in src/napari_cryoet_particles/data/default_model.pt.

Trained only on simulated tomograms with seeds from 1000 up (benchmarks use seeds below 100,
detection settings were chosen on seeds 100-199), no labels. Steps:

1. simulate the training tomograms (SHREC-2021-style, 200×512×512 voxels of 10 Å) into --work;
2. train the encoder with the settings below (CPU, fixed seed, deterministic);
3. export an inference-only copy (no heads, optimizer or RNG state) into the package.

    python scripts/train_default_model.py [--work /tmp/cryoet-default-model] [--threads 2] [--overwrite]
"""

import argparse
import json
import time
from pathlib import Path

from napari_cryoet_particles.io import read_tomogram
from napari_cryoet_particles.jobs import run_job_with_bar
from napari_cryoet_particles.model.checkpoint import default_model_path
from napari_cryoet_particles.model.train import TrainConfig, export_model, train_job
from napari_cryoet_particles.simulate import simulate_dataset

#: Simulation seeds of the training tomograms (never below 1000: those belong to benchmarks).
TRAINING_SEEDS = (1000,)
SIZE = (200, 512, 512)
#: Chosen on validation tomograms (simulation seeds 2000 and 2001), see docs/model.md.
CONFIG = TrainConfig(steps=150, batch_size=16, seed=0, loss_weights={"ntxent": 1.0})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work",
        default="/tmp/cryoet-default-model",
        help="folder for simulations and the raw checkpoint",
    )
    parser.add_argument(
        "--out", default=str(default_model_path()), help="where the exported model goes"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    folders = []
    for seed in TRAINING_SEEDS:
        assert seed >= 1000, "training seeds must stay clear of the benchmark seeds"
        folder = work / f"seed{seed}"
        if not (folder / "reconstruction.mrc").exists():
            print(f"simulating seed {seed} -> {folder}", flush=True)
            simulate_dataset(folder, size=SIZE, seed=seed, projections=False, overwrite=True)
        folders.append(folder)
    volumes = [read_tomogram(folder / "reconstruction.mrc") for folder in folders]
    config = TrainConfig.from_dict({**CONFIG.to_dict(), "threads": args.threads})
    raw = work / "default_model_training.pt"
    started = time.perf_counter()
    result = run_job_with_bar(
        train_job(volumes, raw, config, device="cpu", overwrite=True), "train default model"
    )
    minutes = (time.perf_counter() - started) / 60
    metadata = {
        "description": "default model: trained without labels on simulated tomograms only",
        "training_data": [
            f"simulate_dataset(size={SIZE}, seed={seed}, snr=0.1)" for seed in TRAINING_SEEDS
        ],
        "script": "scripts/train_default_model.py",
        "training_minutes": round(minutes, 2),
        "crops_per_second": round(result.crops_per_second, 1),
        "threads": args.threads,
        "final_losses": {k: round(v, 4) for k, v in result.values.items()},
    }
    out = export_model(raw, args.out, metadata=metadata, overwrite=args.overwrite)
    print(json.dumps(metadata, indent=2))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

"""Measure candidate encoder architectures on this machine's CPU (the table in docs/model.md).

For each candidate: parameters, receptive field, FLOPs and inference time for a 512×512×200
tomogram (measured on one tile and scaled by voxel count; the tile has the receptive-field halo
that tiled inference needs), and training throughput (crops/s) of the full objective.

    python scripts/encoder_speed.py [--threads 2] [--tile 96 160 160] [--repeats 3]

Timings are the best of ``--repeats`` runs after a warm-up; on a shared machine they are noisy.
"""

import argparse
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from napari_cryoet_particles.io import Volume
from napari_cryoet_particles.model.encoder import DenseEncoder, EncoderConfig, count_parameters
from napari_cryoet_particles.model.train import TrainConfig, Trainer

FULL_VOXELS = 200 * 512 * 512

CANDIDATES = {
    "s2 w16 d3 dil(1,2,4)": EncoderConfig(stride=2, width=16, depth=3, dilations=(1, 2, 4)),
    "s2 w16 d4 dil(1,2,3,4)": EncoderConfig(stride=2, width=16, depth=4, dilations=(1, 2, 3, 4)),
    "s2 w24 d4 dil(1,2,3,4)": EncoderConfig(stride=2, width=24, depth=4, dilations=(1, 2, 3, 4)),
    "s2 w32 d4 dil(1,2,3,4)": EncoderConfig(stride=2, width=32, depth=4, dilations=(1, 2, 3, 4)),
    "s2 w32 d4 separable": EncoderConfig(
        stride=2, width=32, depth=4, dilations=(1, 2, 3, 4), separable=True
    ),
    "s4 w32 d4 dil(1,2,3,4)": EncoderConfig(stride=4, width=32, depth=4, dilations=(1, 2, 3, 4)),
    "s1 w8 d3 dil(1,2,4)": EncoderConfig(stride=1, width=8, depth=3, dilations=(1, 2, 4)),
}


def best_time(run, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def inference(
    config: EncoderConfig, tile: tuple[int, int, int], repeats: int, channels_last: bool
) -> tuple[float, float]:
    encoder = DenseEncoder(config).eval()
    halo = encoder.receptive_field // 2
    shape = tuple(n + 2 * halo for n in tile)
    x = torch.randn(1, 1, *shape)
    if channels_last:
        encoder = encoder.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            encoder(x)
        seconds = best_time(lambda: encoder(x), repeats)
    scale = FULL_VOXELS / float(np.prod(tile))
    return counter.get_total_flops() * scale / 1e9, seconds * scale


def training(config: EncoderConfig, repeats: int, loss_weights: dict | None = None) -> float:
    """Crops through the encoder per second during training (views and puzzled copies)."""
    rng = np.random.default_rng(0)
    volume = Volume(rng.normal(size=(64, 128, 128)).astype(np.float32), 10.0, None)
    settings = {"encoder": config, "seed": 0}
    if loss_weights is not None:
        settings["loss_weights"] = loss_weights
    trainer = Trainer([volume], TrainConfig(**settings), torch.device("cpu"))
    crops = trainer.step()["crops"]
    return crops / best_time(trainer.step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tile", type=int, nargs=3, default=(128, 256, 256))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--only", default=None, help="measure only candidates whose name contains this"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, tile {tuple(args.tile)} + halo")
    print()
    print(
        "| architecture | params | RF (voxels) | GFLOP / 512×512×200 | embed 512×512×200 (s) | same, channels_last_3d (s) | training crops/s (NT-Xent) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, config in CANDIDATES.items():
        if args.only and args.only not in name:
            continue
        encoder = DenseEncoder(config)
        gflop, seconds = inference(config, tuple(args.tile), args.repeats, channels_last=False)
        _, seconds_cl = inference(config, tuple(args.tile), args.repeats, channels_last=True)
        rate = training(config, args.repeats)
        print(
            f"| {name} | {count_parameters(encoder):,} | {encoder.receptive_field} | {gflop:.0f} | "
            f"{seconds:.1f} | {seconds_cl:.1f} | {rate:.0f} |",
            flush=True,
        )
    chosen = CANDIDATES["s2 w16 d4 dil(1,2,3,4)"]
    every = {"ntxent": 1.0, "dense": 1.0, "pixel": 1.0, "puzzle_ce": 0.5, "puzzle_kl": 0.5}
    print()
    print(f"s2 w16 d4, all five objectives: {training(chosen, args.repeats, every):.0f} crops/s")


if __name__ == "__main__":
    main()

"""``cryoet-particles train``: the contrastive model on the user's tomograms (no labels)."""

import argparse
import sys
import time
from pathlib import Path

from napari_cryoet_particles.cli.options import CHECKPOINT_SUFFIXES, EXIT_INTERRUPTED


def add_train(sub: argparse._SubParsersAction) -> None:
    from napari_cryoet_particles.model.train import TrainConfig

    defaults = TrainConfig()
    parser = sub.add_parser("train", help="train the contrastive model on tomograms (no labels)")
    parser.add_argument("tomograms", nargs="+", help="MRC files")
    parser.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"optimisation steps (default {defaults.steps})",
    )
    parser.add_argument(
        "--init", default=None, help="start from 'default' (the shipped model) or a checkpoint"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run stored in --out")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="(default %(default)s)")
    parser.add_argument(
        "--crop-size",
        type=int,
        default=None,
        help=f"crop edge in working voxels (default {defaults.augment.crop_size})",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"positive pairs per step (default {defaults.batch_size})",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: all cores)"
    )
    parser.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from napari_cryoet_particles.io import read_tomogram
    from napari_cryoet_particles.io.atomic import check_output_file
    from napari_cryoet_particles.jobs import run_job_with_bar
    from napari_cryoet_particles.model.augment import AugmentConfig
    from napari_cryoet_particles.model.train import TrainConfig, train_job

    check_output_file(args.out, args.overwrite or args.resume, CHECKPOINT_SUFFIXES, "checkpoint")
    volumes = [read_tomogram(path) for path in args.tomograms]
    config = None
    if not args.resume or args.steps is not None:
        settings: dict = {"seed": args.seed, "threads": args.threads}
        if args.steps is not None:
            settings["steps"] = args.steps
        if args.batch_size is not None:
            settings["batch_size"] = args.batch_size
        if args.crop_size is not None:
            settings["augment"] = AugmentConfig(crop_size=args.crop_size)
        config = TrainConfig(**settings)
    job = train_job(
        volumes,
        args.out,
        config,
        device=args.device,
        init=args.init,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    started = time.time()
    try:
        result = run_job_with_bar(job, "train")
    except KeyboardInterrupt:
        print(f"cryoet-particles train: {interrupted_training(args, started)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"wrote {result.path} ({result.steps} steps, {result.crops_per_second:.1f} crops/s)")
    return 0


def interrupted_training(args: argparse.Namespace, started: float) -> str:
    """What an interrupted training run left at ``--out`` and how to go on (one line)."""
    from napari_cryoet_particles.model.checkpoint import load_checkpoint

    out = Path(args.out)
    if not out.exists() or out.stat().st_mtime < started:
        return f"interrupted before the first checkpoint was written; nothing saved to {out}"
    loaded = load_checkpoint(out)
    done = loaded.steps_done
    if done is None or loaded.complete:
        return f"interrupted; {out} holds a finished model"
    command = " ".join(["cryoet-particles train", *args.tomograms, "--out", str(out), "--resume"])
    return (
        f"interrupted at step {done[0]} of {done[1]}: {out} is an unfinished, resumable "
        f"checkpoint (detect warns when it is used); continue with: {command}"
    )

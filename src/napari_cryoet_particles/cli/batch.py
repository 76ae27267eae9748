"""``cryoet-particles batch``: detection over many tomograms on a Dask cluster."""

import argparse
import sys
from pathlib import Path

from napari_cryoet_particles.cli.options import (
    EXIT_INTERRUPTED,
    add_copick_input_options,
    add_detection_options,
    check_copick_output,
    copick_project,
    detection_config,
)
from napari_cryoet_particles.io.errors import CryoetInputError


def add_batch(sub: argparse._SubParsersAction) -> None:
    from napari_cryoet_particles.batch.run import LOCAL_WORKERS, THREADS_PER_WORKER
    from napari_cryoet_particles.io.picks import picks_suffixes

    parser = sub.add_parser(
        "batch",
        help="detect particles in many tomograms on a Dask cluster",
        description="Run detect over many tomograms, one Dask task each, on a local cluster or on a "
        "running Dask scheduler. Picks go to OUT_DIR/<tomogram>_picks.csv; OUT_DIR/batch_summary.csv "
        "lists picks, time and error per tomogram; a failing tomogram does not stop the others, a "
        "killed worker's tomogram is retried on another one. OUT_DIR/batch_manifest.json records "
        "inputs, checksums, model, settings and outputs: run again with --resume to skip what is "
        "done. Given a copick project config, every run of the project (or those of --runs) is one "
        "tomogram, named by its run; --to-copick stores each run's picks back into it.",
    )
    parser.add_argument(
        "tomograms", nargs="+", help="MRC files, OME-Zarr folders or one copick config"
    )
    parser.add_argument(
        "--out-dir", required=True, help="folder for the picks files and the summary"
    )
    parser.add_argument("--runs", nargs="+", default=None, help="copick runs (default: all)")
    add_copick_input_options(parser)
    parser.add_argument("--model", default=None, help="checkpoint; default: the shipped model")
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Dask scheduler, e.g. tcp://head:8786 (default: a local cluster)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"local cluster worker processes (default {LOCAL_WORKERS})",
    )
    parser.add_argument(
        "--threads-per-worker",
        type=int,
        default=THREADS_PER_WORKER,
        help="CPU threads per worker, torch and the blob search (default %(default)s)",
    )
    parser.add_argument(
        "--format",
        choices=[suffix.lstrip(".") for suffix in picks_suffixes()],
        default="csv",
        help="picks file format",
    )
    add_detection_options(parser)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip the tomograms an earlier run of this batch finished (see batch_manifest.json)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_batch)


def _batch_inputs(args: argparse.Namespace):
    """(tomogram paths, picks names or None, copick root or None) of a batch."""
    from napari_cryoet_particles.io.copick_project import (
        choose_tomogram,
        get_run,
        run_names,
        tomogram_local_path,
    )

    config = args.tomograms[0] if len(args.tomograms) == 1 else None
    root = copick_project(args, config, args.runs, "--runs")
    if root is None:
        return args.tomograms, None, None
    names = args.runs or run_names(root)
    paths = []
    for name in names:
        run = get_run(root, name, config)
        # a resumed batch replaces the sets its earlier run stored
        check_copick_output(args, root, name, args.overwrite or args.resume)
        path = tomogram_local_path(
            run, choose_tomogram(run, args.tomo_type, args.voxel_size, config)
        )
        if path is None:
            raise CryoetInputError(
                config, f"run {name!r}: batch needs the tomograms on this machine (a local project)"
            )
        paths.append(str(path))
    return paths, names, root


def run_batch(args: argparse.Namespace) -> int:
    from napari_cryoet_particles.batch import (
        MANIFEST_NAME,
        SUMMARY_NAME,
        batch_detect_job,
        read_manifest,
    )
    from napari_cryoet_particles.io.copick_project import write_run_picks
    from napari_cryoet_particles.io.picks import read_picks
    from napari_cryoet_particles.jobs import run_job_with_bar

    tomograms, names, root = _batch_inputs(args)
    config = detection_config(args, device="cpu", voxel_size=args.voxel_size)
    job = batch_detect_job(
        tomograms,
        args.out_dir,
        args.model,
        config,
        scheduler=args.scheduler,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        suffix=f".{args.format}",
        overwrite=args.overwrite,
        resume=args.resume,
        names=names,
    )
    try:
        items = run_job_with_bar(job, "batch", disable=args.quiet)
    except KeyboardInterrupt:
        manifest = read_manifest(Path(args.out_dir)) if Path(args.out_dir).is_dir() else None
        finished = len(manifest["tomograms"]) if manifest else 0
        print(
            f"cryoet-particles batch: interrupted; {finished} finished tomograms are recorded in "
            f"{Path(args.out_dir) / MANIFEST_NAME}: run the same command with --resume to do the rest",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    failed = [item for item in items if item.error]
    if root is not None and args.to_copick:
        for name, item in zip(names, items, strict=True):
            if not item.error:
                picks = read_picks(item.picks_file)
                picks.tomogram = name
                write_run_picks(
                    root,
                    name,
                    picks,
                    args.to_copick,
                    args.session_id,
                    overwrite=args.overwrite or args.resume,
                )
    resumed = sum(item.resumed for item in items)
    print(
        f"{len(items) - len(failed)} of {len(items)} tomograms done"
        + (f" ({resumed} by an earlier run)" if resumed else "")
        + f", {sum(item.n_picks for item in items)} picks; summary in {args.out_dir}/{SUMMARY_NAME}"
        + (f"; picks stored in the copick runs as {args.to_copick}" if args.to_copick else "")
    )
    for warning in dict.fromkeys(w for item in items for w in item.warnings):
        print(f"cryoet-particles batch: warning: {warning}", file=sys.stderr)
    for item in failed:
        print(f"failed: {item.error}", file=sys.stderr)
    return 1 if failed else 0

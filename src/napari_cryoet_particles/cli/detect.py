"""``cryoet-particles detect``: picks in one tomogram (a file, or a run of a copick project)."""

import argparse
import sys

from napari_cryoet_particles.cli.options import (
    add_copick_input_options,
    add_detection_options,
    check_copick_output,
    copick_project,
    detection_config,
)
from napari_cryoet_particles.io.errors import CryoetInputError


def add_detect(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "detect",
        help="detect particles in a tomogram and write picks",
        description="Detect particles in an MRC or OME-Zarr tomogram, or in the tomogram of a run "
        "of a copick project (PROJECT.json --run RUN; --voxel-size then chooses the voxel "
        "spacing).",
    )
    parser.add_argument("tomogram", help="MRC file, OME-Zarr folder or copick project config")
    parser.add_argument(
        "--out",
        default=None,
        help="picks file (.csv, .star, .json, .txt); may be left out with --to-copick",
    )
    parser.add_argument("--run", dest="copick_run", default=None, help="copick run to detect in")
    add_copick_input_options(parser)
    parser.add_argument("--model", default=None, help="checkpoint; default: the shipped model")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    add_detection_options(parser)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads: torch and the blob search (default: all cores)",
    )
    parser.add_argument(
        "--score-map",
        default=None,
        metavar="OUT.mrc",
        help="also write the particle score map (input grid; .mrc, or .zarr for OME-Zarr)",
    )
    parser.add_argument(
        "--learned-features",
        action="store_true",
        help="also give each pick the learned particle probability and k-means cluster (the "
        "embedding pass: slower; the default picks do not use it)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_detect)


def _detect_input(args: argparse.Namespace):
    """The volume to detect in, and the copick root when the input is a copick project."""
    from napari_cryoet_particles.io import read_tomogram
    from napari_cryoet_particles.io.copick_project import read_run_tomogram

    root = copick_project(args, args.tomogram, args.copick_run, "--run")
    if root is None:
        return read_tomogram(args.tomogram, voxel_size=args.voxel_size), None
    if not args.copick_run:
        raise CryoetInputError(args.tomogram, "a copick project needs --run RUN")
    check_copick_output(args, root, args.copick_run, args.overwrite)
    volume = read_run_tomogram(
        root, args.copick_run, args.tomo_type, args.voxel_size, args.tomogram
    )
    return volume, root


def run_detect(args: argparse.Namespace) -> int:
    from napari_cryoet_particles.detect import detect_particles_job, score_map_at_input
    from napari_cryoet_particles.detect.threshold import estimate_text
    from napari_cryoet_particles.io import write_tomogram
    from napari_cryoet_particles.io.atomic import check_output_file
    from napari_cryoet_particles.io.copick_project import write_run_picks
    from napari_cryoet_particles.io.omezarr import OME_ZARR_SUFFIX
    from napari_cryoet_particles.io.picks import picks_suffixes, write_picks
    from napari_cryoet_particles.io.tomogram import TOMOGRAM_SUFFIXES
    from napari_cryoet_particles.jobs import run_job_with_bar

    if not args.out and not args.to_copick:
        raise CryoetInputError(None, "say where the picks go: --out FILE and/or --to-copick OBJECT")
    if args.out:
        check_output_file(args.out, args.overwrite, picks_suffixes(), "picks")
    if args.score_map:
        check_output_file(
            args.score_map, args.overwrite, (*TOMOGRAM_SUFFIXES, OME_ZARR_SUFFIX), "score map"
        )
    config = detection_config(
        args,
        device=args.device,
        threads=args.threads,
        keep_score_map=bool(args.score_map),
        learned_features=args.learned_features,
    )
    volume, root = _detect_input(args)
    result = run_job_with_bar(
        detect_particles_job(volume, args.model, config), "detect", disable=args.quiet
    )
    if root is not None:
        result.picks.tomogram = args.copick_run
    where = []
    if args.out:
        write_picks(args.out, result.picks, overwrite=args.overwrite, shape_zyx=volume.shape)
        where.append(str(args.out))
    if root is not None and args.to_copick:
        where.append(
            write_run_picks(
                root,
                args.copick_run,
                result.picks,
                args.to_copick,
                args.session_id,
                overwrite=args.overwrite,
            )
        )
    if args.score_map:
        write_tomogram(
            args.score_map,
            score_map_at_input(result),
            result.picks.voxel_size,
            overwrite=args.overwrite,
        )
    for warning in result.info.get("warnings", []):
        print(f"cryoet-particles detect: warning: {warning}", file=sys.stderr)
    seconds = sum(result.timings.values())
    polarity = "inverted" if result.info.get("inverted") else "dark"
    print(
        f"{len(result.picks)} picks in {result.info.get('n_groups', 1)} groups written to {' and '.join(where)} "
        f"({seconds:.1f} s; voxel {result.picks.voxel_size:g} Å, worked at {result.info['working_voxel_size']:g} Å, "
        f"particles {polarity}){dropped_text(result.info.get('dropped', {}))}"
    )
    estimate = estimate_text(result.info.get("threshold_estimate"))
    if estimate:
        print(estimate[0].upper() + estimate[1:])
    return 0


def dropped_text(dropped: dict[str, int]) -> str:
    """What detection left out and why, for the closing line of ``detect`` (empty if nothing)."""
    if not dropped:
        return ""
    parts = ", ".join(
        f"{count} {'at' if name == 'faces' else 'on'} {name}" for name, count in dropped.items()
    )
    return f"; not picked: {parts} (--keep-structures, --keep-edges keep them)"

"""``cryoet-particles refine``: learn from curated picks and detect again."""

import argparse
import sys

from napari_cryoet_particles.cli.options import (
    CHECKPOINT_SUFFIXES,
    add_detection_options,
    add_star_options,
    detection_config,
)


def add_refine(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "refine",
        help="learn from curated picks and detect again",
        description="Learn from the picks you marked (status accepted, rejected or added; the rest "
        "auto) and detect again in the same tomogram: accepted and added picks are particles, "
        "rejected ones are not. --like-accepted keeps only the particles like the accepted ones "
        "(one kind from a few examples). Every marked pick stays in the output with its status.",
    )
    parser.add_argument("tomogram", help="MRC file or OME-Zarr folder the picks are on")
    parser.add_argument(
        "--picks",
        required=True,
        help="curated picks: a picks CSV whose status column is auto, accepted, rejected or "
        "added (or a STAR file written by this package, status in rlnCryoetStatus)",
    )
    parser.add_argument(
        "--out", required=True, help="picks file to write (.csv, .star, .json, .txt)"
    )
    parser.add_argument("--model", default=None, help="checkpoint; default: the shipped model")
    parser.add_argument(
        "--like-accepted",
        action="store_true",
        help="keep only particles like the accepted (and added) picks, with a score of likeness; "
        "when most of those lie on no detected candidate (points added where the detector "
        "proposes nothing, e.g. the centres of hollow VLPs), their average is searched for over "
        "the whole tomogram instead",
    )
    parser.add_argument(
        "--save-model",
        default=None,
        metavar="OUT.pt",
        help="also write the model with the learned head (detect --model OUT.pt applies it)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    add_detection_options(parser)
    add_star_options(parser, tomogram_dest="picks_tomogram")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads: torch and the blob search (default: all cores)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_refine)


def run_refine(args: argparse.Namespace) -> int:
    from napari_cryoet_particles.detect.refine import (
        RefineConfig,
        check_curated,
        refine_job,
        save_refined_model,
        unlike_examples_warning,
    )
    from napari_cryoet_particles.io import read_tomogram
    from napari_cryoet_particles.io.atomic import check_output_file
    from napari_cryoet_particles.io.picks import (
        PICK_STATUSES,
        picks_suffixes,
        read_picks,
        write_picks,
    )
    from napari_cryoet_particles.jobs import run_job_with_bar

    check_output_file(args.out, args.overwrite, picks_suffixes(), "picks")
    if args.save_model:
        check_output_file(args.save_model, args.overwrite, CHECKPOINT_SUFFIXES, "checkpoint")
    volume = read_tomogram(args.tomogram, voxel_size=args.voxel_size)
    curated = read_picks(
        args.picks,
        voxel_size=volume.voxel_size,
        star_pixel_size=args.star_pixel_size,
        tomogram=args.picks_tomogram,
        shape_zyx=volume.shape,
    )
    check_curated(curated, volume.shape, need_positive=args.like_accepted)
    config = RefineConfig(
        detection=detection_config(args, device=args.device, threads=args.threads),
        like_accepted=args.like_accepted,
    )
    outcome = run_job_with_bar(
        refine_job(volume, curated, args.model, config), "refine", disable=args.quiet
    )
    picks = outcome.picks
    write_picks(args.out, picks, overwrite=args.overwrite, shape_zyx=volume.shape)
    where = [str(args.out)]
    unsaved = bool(args.save_model) and outcome.head is None
    if args.save_model and not unsaved:
        where.append(
            str(save_refined_model(args.save_model, outcome.head, args.model, args.overwrite))
        )
    counts = picks.features["status"].value_counts()
    kept = ", ".join(
        f"{int(counts[status])} {status}" for status in PICK_STATUSES[1:] if status in counts
    )
    info = outcome.info
    learned = (
        f"picks like {info['n_positive']} accepted ones"
        + (
            f", by reference ({info['radius_nm']:.0f} nm radius)"
            if info["kind"] == "reference"
            else ""
        )
        if args.like_accepted
        else f"learned from {info['n_positive']} positive and {info['n_negative']} negative marks"
    )
    print(
        f"{len(picks)} picks ({kept} kept) written to {' and '.join(where)}: {learned} "
        f"({info['n_marks_on_candidates']} of {info['n_marks']} marks on detected candidates)"
    )
    warning = unlike_examples_warning(info)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if unsaved:
        print(
            f"error: no model saved to {args.save_model}: most examples lie on no described "
            "candidate, so they were searched for by reference, which learns no head (the picks "
            "are saved)",
            file=sys.stderr,
        )
        return 1
    return 0

"""``cryoet-particles convert``: picks from one format to another."""

import argparse
import sys

from napari_cryoet_particles.cli.options import add_star_options


def add_convert(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "convert",
        help="convert picks between formats (CSV, RELION 4/5 STAR, copick JSON, SHREC txt)",
        description="Convert a picks file to another format, keeping angles, particle names, scores "
        "and statuses where the target format has a place for them (what it has none for is "
        "named on stderr). The output format is the file's suffix, or --format.",
    )
    parser.add_argument("input", help="picks file (.csv, .star, .json, .txt)")
    parser.add_argument("output", help="picks file to write")
    add_star_options(parser)
    parser.add_argument(
        "--voxel-size",
        type=float,
        default=None,
        metavar="A",
        help="voxel size (Å) of the tomogram the output is for: coordinates are rescaled to it "
        "(and a SHREC txt or bare CSV input is read in it)",
    )
    parser.add_argument(
        "--shape",
        type=int,
        nargs=3,
        default=None,
        metavar=("Z", "Y", "X"),
        help="tomogram shape in voxels (RELION 5 centred coordinates, in or out)",
    )
    parser.add_argument(
        "--format",
        default=None,
        help="output format by name: csv, star, star5 (RELION 5), copick, shrec",
    )
    parser.add_argument(
        "--object", default=None, help="copick object name (default: the picks' one class)"
    )
    parser.add_argument(
        "--order",
        choices=("xyz", "zyx"),
        default="xyz",
        help="column order of a SHREC .txt input (zyx for SHREC 2019)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.set_defaults(run=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    from napari_cryoet_particles.io.atomic import check_output_file
    from napari_cryoet_particles.io.picks import (
        carried_features,
        format_for,
        read_picks,
        write_picks,
    )
    from napari_cryoet_particles.io.units import voxel_size_text

    target = format_for(args.output, args.format)
    check_output_file(args.output, args.overwrite, what="picks")
    shape = None if args.shape is None else tuple(args.shape)
    picks = read_picks(
        args.input,
        voxel_size=args.voxel_size,
        star_pixel_size=args.star_pixel_size,
        tomogram=args.tomogram,
        shape_zyx=shape,
        order=args.order,
    )
    written = write_picks(
        args.output,
        picks,
        target.name,
        overwrite=args.overwrite,
        shape_zyx=shape,
        object_name=args.object,
    )
    dropped = [f for f in carried_features(picks) if f not in target.keeps]
    if dropped:
        print(
            f"cryoet-particles convert: warning: {target.label} has no place for: "
            f"{', '.join(dropped)}",
            file=sys.stderr,
        )
    print(
        f"wrote {len(picks)} picks to {written} ({target.label}, {voxel_size_text(picks.voxel_size)})"
    )
    return 0

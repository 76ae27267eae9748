"""The ``cryoet-particles`` command: the same functions the napari widgets call.

Each subcommand has an ``add_<name>`` function that declares its arguments and a ``run_<name>``
function that does the work; errors in user input end with a one-line message and exit code 2.
"""

import argparse
import sys
from collections.abc import Callable, Sequence

from napari_cryoet_particles import __version__
from napari_cryoet_particles.io.errors import CryoetInputError

EXIT_USAGE = 2
EXIT_NOT_BUILT = 3


class NotBuiltYet(Exception):
    """A subcommand of the contract that this version does not provide yet."""


def _not_built(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise NotBuiltYet(f"'cryoet-particles {name}' is not built yet in version {__version__}")

    run.not_built = True  # type: ignore[attr-defined]
    return run


def add_simulate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("simulate", help="write a SHREC-2021-style simulated tomogram folder with truth")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--size", type=int, nargs=3, metavar=("Z", "Y", "X"), default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--snr", type=float, default=None)
    parser.set_defaults(run=_not_built("simulate"))


def add_train(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train the contrastive model on tomograms (no labels)")
    parser.add_argument("tomograms", nargs="+", help="MRC files")
    parser.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--steps", type=int, default=None)
    parser.set_defaults(run=_not_built("train"))


def add_detect(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("detect", help="detect particles in a tomogram and write picks")
    parser.add_argument("tomogram", help="MRC file")
    parser.add_argument("--out", required=True, help="picks file (.csv, .star, .json)")
    parser.add_argument("--model", default=None, help="checkpoint; default: the shipped model")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--diameter", type=float, default=None, metavar="NM", help="particle diameter in nm (default 10)")
    parser.add_argument("--groups", type=int, default=None, metavar="K", help="particle groups (default: by silhouette, 0: off)")
    parser.add_argument("--threshold", type=float, default=None, metavar="T", help="minimum particle probability 0-1 (default 0.5)")
    parser.add_argument("--bin", type=int, default=1, metavar="N", help="work at N times the model's voxel size (faster)")
    parser.add_argument("--voxel-size", type=float, default=None, metavar="A", help="voxel size in Å (overrides the header)")
    parser.add_argument("--polarity", choices=("auto", "dark", "bright"), default="auto", help="particle contrast (default: detect)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.add_argument("--score-map", default=None, metavar="OUT.mrc", help="also write the particle score map (input grid)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_detect)


def run_detect(args: argparse.Namespace) -> int:
    from napari_cryoet_particles.detect import DetectionConfig, detect_particles_job, score_map_at_input
    from napari_cryoet_particles.io import read_tomogram, write_picks, write_tomogram
    from napari_cryoet_particles.io.atomic import check_can_write
    from napari_cryoet_particles.jobs import run_job_with_bar

    check_can_write(args.out, args.overwrite)
    if args.score_map:
        check_can_write(args.score_map, args.overwrite)
    config = DetectionConfig(
        threshold=args.threshold,
        groups=args.groups,
        bin=args.bin,
        voxel_size=args.voxel_size,
        polarity=args.polarity,
        device=args.device,
        torch_threads=args.threads,
        keep_score_map=bool(args.score_map),
    )
    if args.diameter is not None:
        config.diameter_nm = args.diameter
    volume = read_tomogram(args.tomogram, voxel_size=args.voxel_size)
    result = run_job_with_bar(detect_particles_job(volume, args.model, config), "detect", disable=args.quiet)
    write_picks(args.out, result.picks, overwrite=args.overwrite, shape_zyx=volume.shape)
    if args.score_map:
        write_tomogram(args.score_map, score_map_at_input(result), result.picks.voxel_size, overwrite=args.overwrite)
    seconds = sum(result.timings.values())
    polarity = "inverted" if result.info.get("inverted") else "dark"
    print(
        f"{len(result.picks)} picks in {result.info.get('n_groups', 1)} groups written to {args.out} "
        f"({seconds:.1f} s; voxel {result.picks.voxel_size:g} Å, model at {result.info['working_voxel_size']:g} Å, "
        f"particles {polarity})"
    )
    return 0


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="score picks against ground truth",
        description="Score picks against ground truth: precision, recall, F1. "
        "A SHREC folder with occupancy_mask.mrc is scored by the SHREC rule (particle-id map dilated by "
        "one voxel), a bare particle_locations.txt by the distance rule (hit radius per class).",
    )
    parser.add_argument("--truth", required=True, help="SHREC folder or particle_locations.txt")
    parser.add_argument("--pred", required=True, help="picks file (.csv, .star, .json, SHREC .txt)")
    parser.add_argument(
        "--rule",
        choices=("auto", "shrec", "distance"),
        default="auto",
        help="scoring rule (default: shrec when an occupancy mask is there, else distance)",
    )
    parser.add_argument(
        "--radius",
        type=float,
        default=None,
        help="hit radius in voxels for every class (distance rule; default: per-class table)",
    )
    parser.add_argument(
        "--radii",
        choices=("shrec2021", "shrec2019"),
        default=None,
        help="per-class radius table (default: the one that knows every class)",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="classes to leave out, comma-separated, e.g. 4V94,vesicle,fiducial "
        "('shrec2021' = those three, as the SHREC 2021 results)",
    )
    parser.add_argument(
        "--count-skipped-picks",
        action="store_true",
        help="count picks on skipped particles in the number of predictions (SHREC 2021 script)",
    )
    parser.add_argument(
        "--order",
        choices=("xyz", "zyx"),
        default="xyz",
        help="column order of SHREC .txt files (zyx for SHREC 2019)",
    )
    parser.add_argument("--json", default=None, help="write the metrics to this JSON file")
    parser.add_argument(
        "--plots", default=None, help="folder to write curves.png (picks with scores)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from napari_cryoet_particles.evaluate import plot_ranking_curves, save_figure_png, write_json
    from napari_cryoet_particles.evaluate.report import evaluate_files, format_report, parse_skip
    from napari_cryoet_particles.io.atomic import check_can_write

    if args.json:
        check_can_write(args.json, args.overwrite)
    if args.plots and Path(args.plots).is_dir():
        check_can_write(Path(args.plots) / "curves.png", args.overwrite)
    report = evaluate_files(
        args.truth,
        args.pred,
        rule=args.rule,
        radius=args.radius,
        radius_table=args.radii,
        skip=parse_skip(args.skip),
        order=args.order,
        count_skipped_picks=args.count_skipped_picks,
    )
    for warning in report.result.warnings:
        print(f"cryoet-particles evaluate: warning: {warning}", file=sys.stderr)
    print(format_report(report))
    if args.json:
        print(f"wrote {write_json(args.json, report.to_dict(), overwrite=args.overwrite)}")
    if args.plots:
        if report.curves is None:
            print(
                "cryoet-particles evaluate: warning: the picks have no varying scores: no curves drawn",
                file=sys.stderr,
            )
        else:
            folder = Path(args.plots)
            folder.mkdir(parents=True, exist_ok=True)
            figure = plot_ranking_curves(report.curves, title=Path(args.pred).name)
            print(
                f"wrote {save_figure_png(figure, folder / 'curves.png', overwrite=args.overwrite)}"
            )
    return 0


def add_benchmark(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("benchmark", help="measure accuracy and speed against the baselines")
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.set_defaults(run=_not_built("benchmark"))


SUBCOMMANDS = (add_simulate, add_train, add_detect, add_evaluate, add_benchmark)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cryoet-particles",
        description="Label-free particle picking in cryo-electron tomograms.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.run(args) or 0)
    except CryoetInputError as error:
        print(f"cryoet-particles {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except NotBuiltYet as error:
        print(f"cryoet-particles: {error}", file=sys.stderr)
        return EXIT_NOT_BUILT
    except KeyboardInterrupt:
        print("cryoet-particles: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

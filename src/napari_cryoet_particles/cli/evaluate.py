"""``cryoet-particles evaluate``: picks scored against ground truth (localization or CZII)."""

import argparse
import sys
from pathlib import Path

from napari_cryoet_particles.cli.options import add_star_options
from napari_cryoet_particles.io.errors import CryoetInputError


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="score picks against ground truth",
        description="Score picks against ground truth. --metric localization (default): precision, "
        "recall, F1; a SHREC folder with occupancy_mask.mrc is scored by the SHREC rule (particle-id "
        "map dilated by one voxel), other truth by the distance rule (hit radius per class). "
        "--metric czii: the CryoET Object Identification challenge's F-beta (beta 4), over every "
        "tomogram of the truth (a copick project, a multi-tomogram STAR file...).",
    )
    parser.add_argument(
        "--truth",
        required=True,
        help="SHREC folder, particle_locations.txt, picks file (.csv, .star, .json) or copick "
        "project config",
    )
    parser.add_argument(
        "--pred",
        required=True,
        help="picks file (.csv, .star, .json, SHREC .txt) or copick project config",
    )
    parser.add_argument(
        "--metric",
        choices=("localization", "czii"),
        default="localization",
        help="what to compute (default localization)",
    )
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
    add_star_options(parser)
    copick = parser.add_argument_group("copick projects as --truth / --pred")
    copick.add_argument(
        "--run", dest="copick_run", default=None, help="only this run (localization needs one)"
    )
    copick.add_argument(
        "--truth-user", default=None, help="user id of the truth picks (default: any)"
    )
    copick.add_argument("--truth-session", default=None, help="session id of the truth picks")
    copick.add_argument(
        "--pred-user",
        default=None,
        help="user id of the predicted picks (default: cryoet-particles)",
    )
    copick.add_argument("--pred-session", default=None, help="session id of the predicted picks")
    parser.add_argument(
        "--pred-type",
        default=None,
        metavar="NAME",
        help="czii: the particle type of predictions that have none (label-free picks)",
    )
    parser.add_argument("--json", default=None, help="write the metrics to this JSON file")
    parser.add_argument(
        "--plots", default=None, help="folder to write curves.png (picks with scores)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(run=run_evaluate)


def _read_side(args: argparse.Namespace, side: str, **options: object) -> dict:
    """Truth or predictions as picks per tomogram (``side``: ``truth`` or ``pred``)."""
    from napari_cryoet_particles.io.copick_project import USER_ID
    from napari_cryoet_particles.io.sources import CopickQuery, read_picks_source

    user = getattr(args, f"{side}_user")
    if side == "pred" and user is None:
        user = USER_ID
    return read_picks_source(
        getattr(args, side),
        CopickQuery(args.copick_run, user, getattr(args, f"{side}_session")),
        tomogram=args.tomogram,
        star_pixel_size=args.star_pixel_size,
        order=args.order,
        **options,
    )


def _only(by_tomogram: dict, path: str, what: str):
    if len(by_tomogram) != 1:
        names = ", ".join(list(by_tomogram)[:5])
        raise CryoetInputError(
            path,
            f"holds {what} of {len(by_tomogram)} tomograms ({names}); say which one "
            "(--tomogram NAME, or --run RUN for a copick project)",
        )
    return next(iter(by_tomogram.values()))


def _evaluate_truth(args: argparse.Namespace):
    """TruthData for localization: a SHREC folder or txt as before, any other source by format."""
    from napari_cryoet_particles.evaluate.report import TruthData, load_truth

    path = Path(args.truth)
    if path.is_dir() or path.suffix.lower() == ".txt":
        return load_truth(path, order=args.order)
    truth = _only(_read_side(args, "truth"), args.truth, "truth")
    if len(truth) == 0:
        raise CryoetInputError(path, "the truth has no particles to score against")
    return TruthData(truth, source=path)


def run_evaluate(args: argparse.Namespace) -> int:
    from napari_cryoet_particles.evaluate import plot_ranking_curves, save_figure_png, write_json
    from napari_cryoet_particles.evaluate.report import evaluate_data, format_report, parse_skip
    from napari_cryoet_particles.io.atomic import check_output_file, check_output_folder

    if args.json:
        check_output_file(args.json, args.overwrite, (".json",), "metrics")
    if args.plots:
        check_output_folder(args.plots)
        if Path(args.plots).is_dir():
            check_output_file(Path(args.plots) / "curves.png", args.overwrite)
    if args.metric == "czii":
        return _run_czii(args)
    truth = _evaluate_truth(args)
    pred = _only(
        _read_side(args, "pred", voxel_size=truth.truth.voxel_size, shape_zyx=truth.shape),
        args.pred,
        "picks",
    )
    report = evaluate_data(
        truth,
        pred,
        rule=args.rule,
        radius=args.radius,
        radius_table=args.radii,
        skip=parse_skip(args.skip),
        count_skipped_picks=args.count_skipped_picks,
    )
    for warning in report.warnings:
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


def _run_czii(args: argparse.Namespace) -> int:
    from napari_cryoet_particles.evaluate import write_json
    from napari_cryoet_particles.evaluate.czii import czii_score, format_czii

    truth = _read_side(args, "truth")
    pred = _read_side(args, "pred")
    if len(truth) == 1 and len(pred) == 1:
        pred = {next(iter(truth)): next(iter(pred.values()))}
    if args.pred_type:
        for picks in pred.values():
            classes = picks.features["class"].astype(str)
            picks.features["class"] = classes.where(classes != "", args.pred_type)
    result = czii_score(truth, pred)
    for warning in result.warnings:
        print(f"cryoet-particles evaluate: warning: {warning}", file=sys.stderr)
    print(format_czii(result))
    if args.json:
        print(f"wrote {write_json(args.json, result.to_dict(), overwrite=args.overwrite)}")
    return 0

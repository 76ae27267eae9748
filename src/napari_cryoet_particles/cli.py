"""The ``cryoet-particles`` command: the same functions the napari widgets call.

Each subcommand has an ``add_<name>`` function that declares its arguments and a ``run_<name>``
function that does the work; errors in user input end with a one-line message and exit code 2.
"""

import argparse
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from napari_cryoet_particles import __version__
from napari_cryoet_particles.io.errors import CryoetInputError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
CHECKPOINT_SUFFIXES = (".pt", ".pth")


def add_simulate(sub: argparse._SubParsersAction) -> None:
    from napari_cryoet_particles.simulate import FAMILIES, SimulationConfig

    defaults = SimulationConfig()
    parser = sub.add_parser(
        "simulate",
        help="write a SHREC-2021-style simulated tomogram folder with truth",
        description="Simulate a tomogram from the SHREC 2021 protein maps (1 voxel = 10 Å) and write "
        "reconstruction.mrc, grandmodel.mrc, occupancy_mask.mrc, class_mask.mrc, particle_locations.txt, "
        "projections.mrc, tilt_angles.tlt, class_names.txt and simulation.json.",
    )
    parser.add_argument(
        "--out", required=True, help="output folder (must be empty or new unless --overwrite)"
    )
    parser.add_argument(
        "--size",
        type=int,
        nargs=3,
        metavar=("Z", "Y", "X"),
        default=None,
        help=f"voxels (default {' '.join(map(str, defaults.shape))})",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="(default %(default)s)")
    parser.add_argument(
        "--family",
        choices=list(FAMILIES),
        metavar="NAME",
        default="tuning",
        help="condition family (default %(default)s: the defaults); the options below override "
        "it. " + "; ".join(f"{f.name}: {f.description}" for f in FAMILIES.values()),
    )
    parser.add_argument(
        "--snr",
        type=float,
        default=None,
        help=f"per-projection SNR at 0° (default {defaults.snr:g}; 'inf' = no noise)",
    )
    parser.add_argument(
        "--layout", default=None, help="SHREC particle_locations.txt to place the objects from"
    )
    parser.add_argument(
        "--n-particles",
        type=int,
        default=None,
        help="proteins to draw (default: SHREC 2021 crowding)",
    )
    parser.add_argument(
        "--tilt-range",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=None,
        help="degrees (default {:g} {:g})".format(*defaults.tilt_range),
    )
    parser.add_argument(
        "--tilt-step", type=float, default=None, help=f"degrees (default {defaults.tilt_step:g})"
    )
    parser.add_argument(
        "--defocus",
        type=float,
        default=None,
        help=f"µm underfocus (default {defaults.defocus:g})",
    )
    parser.add_argument(
        "--dose",
        type=float,
        default=None,
        help=f"total e/Å² (default {defaults.dose:g}): radiation damage",
    )
    parser.add_argument(
        "--physical-noise", action="store_true", help="shot noise from --dose instead of --snr"
    )
    parser.add_argument(
        "--no-projections", action="store_true", help="do not write projections.mrc"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    parser.add_argument(
        "--overwrite", action="store_true", help="write into a non-empty folder, replacing files"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    import math

    from napari_cryoet_particles.io.atomic import check_output_folder
    from napari_cryoet_particles.jobs import run_job_with_bar
    from napari_cryoet_particles.simulate import (
        NON_PROTEIN_CLASSES,
        SimulationConfig,
        family_config,
        simulate_dataset_job,
    )
    from napari_cryoet_particles.simulate.simulator import check_output_folder as check_empty

    check_empty(check_output_folder(args.out), args.overwrite)
    options = {
        "shape": args.size,
        "tilt_range": args.tilt_range,
        "tilt_step": args.tilt_step,
        "defocus": args.defocus,
        "dose": args.dose,
        "n_particles": args.n_particles,
        "threads": args.threads,
    }
    options = {key: value for key, value in options.items() if value is not None}
    if args.snr is not None:
        options["snr"] = None if math.isinf(args.snr) else args.snr
    if args.physical_noise:
        options["physical_noise"] = True
    shape = options.pop("shape", SimulationConfig().shape)
    config = family_config(args.family, args.seed, shape, **options)
    job = simulate_dataset_job(
        args.out,
        config,
        layout=args.layout,
        overwrite=args.overwrite,
        projections=not args.no_projections,
    )
    result = run_job_with_bar(job, "simulate", disable=args.quiet)
    counts = result.truth.features["class"].value_counts()
    proteins = int(counts.drop(list(NON_PROTEIN_CLASSES), errors="ignore").sum())
    others = ", ".join(f"{int(counts[c])} {c}" for c in NON_PROTEIN_CLASSES if c in counts)
    shape = result.reconstruction.shape
    print(
        f"wrote {args.out} ({args.family}): {shape[2]} x {shape[1]} x {shape[0]} voxels "
        f"(x y z, {result.voxel_size:g} Å), {proteins} proteins" + (f", {others}" if others else "")
    )
    return 0


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


def add_detection_options(parser: argparse.ArgumentParser) -> None:
    """The detection settings shared by ``detect`` and ``batch`` (defaults: DetectionConfig's)."""
    from napari_cryoet_particles.detect.config import AUTO_THRESHOLD, POLARITIES, DetectionConfig

    defaults = DetectionConfig()
    parser.add_argument(
        "--diameter",
        type=float,
        default=None,
        metavar="NM",
        help=f"typical particle diameter in nm, for the learned map (default {defaults.diameter_nm:g})",
    )
    parser.add_argument(
        "--diameters",
        type=float,
        nargs=2,
        default=None,
        metavar=("MIN", "MAX"),
        help="smallest and largest particle diameters searched, nm (default "
        f"{defaults.min_diameter_nm:g} {defaults.max_diameter_nm:g})",
    )
    parser.add_argument(
        "--learned-weight",
        type=float,
        default=None,
        metavar="W",
        help="weight of the learned particle probability in the pick score (default "
        f"{defaults.learned_weight:g}; 0: blob strength only)",
    )
    parser.add_argument(
        "--groups",
        type=int,
        default=None,
        metavar="K",
        help="particle groups of the picks above the automatic threshold (default: 8; 0: off)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="T",
        help=f"minimum pick score 0-1 (default {AUTO_THRESHOLD:g}, the automatic threshold)",
    )
    parser.add_argument(
        "--bin",
        type=int,
        default=defaults.bin,
        metavar="N",
        help="work at N times the model's voxel size (faster)",
    )
    parser.add_argument(
        "--voxel-size",
        type=float,
        default=None,
        metavar="A",
        help="voxel size in Å (overrides the header)",
    )
    parser.add_argument(
        "--polarity",
        choices=POLARITIES,
        default=defaults.polarity,
        help="particle contrast (default: detect)",
    )
    parser.add_argument(
        "--keep-edges",
        action="store_true",
        help="keep picks whose box crosses the volume's faces (default: dropped, they are cut)",
    )
    parser.add_argument(
        "--keep-structures",
        action="store_true",
        help="keep picks on filaments, microtubules, membranes and gold (default: dropped)",
    )
    parser.add_argument(
        "--density-weight",
        type=float,
        default=None,
        metavar="W",
        help="k-means on the embedding plus the local density with this weight (default "
        f"{defaults.density_weight:g}; 0: embedding only)",
    )
    parser.add_argument(
        "--clusters",
        type=int,
        default=None,
        metavar="K",
        help=f"k-means clusters of the voxels (default {defaults.n_clusters})",
    )


def detection_config(args: argparse.Namespace, **settings: object):
    """A DetectionConfig from the options of :func:`add_detection_options` plus ``settings``.

    ``--voxel-size`` is not in it: it is applied once, where the tomogram is read (``detect``), or
    passed in ``settings`` for the workers that read them (``batch``).
    """
    from napari_cryoet_particles.detect.config import DetectionConfig

    config = DetectionConfig(
        threshold=args.threshold,
        groups=args.groups,
        bin=args.bin,
        polarity=args.polarity,
        keep_edges=args.keep_edges,
        keep_structures=args.keep_structures,
        **settings,
    )
    if args.diameter is not None:
        config.diameter_nm = args.diameter
    if args.diameters is not None:
        config.min_diameter_nm, config.max_diameter_nm = args.diameters
    if args.learned_weight is not None:
        config.learned_weight = args.learned_weight
    if args.density_weight is not None:
        config.density_weight = args.density_weight
    if args.clusters is not None:
        config.n_clusters = args.clusters
    return config


def add_copick_input_options(parser: argparse.ArgumentParser) -> None:
    """Where detection reads a copick project's tomograms and writes its picks back."""
    group = parser.add_argument_group("copick project input (the input is a copick config JSON)")
    group.add_argument("--tomo-type", default=None, metavar="T", help="tomogram type, e.g. wbp")
    group.add_argument(
        "--to-copick",
        default=None,
        metavar="OBJECT",
        help="also store the picks in the run as copick picks of this object "
        "(user cryoet-particles)",
    )
    group.add_argument(
        "--session-id", default="0", help="copick session id of the picks written (default 0)"
    )


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
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_detect)


def _copick_project(args: argparse.Namespace, path: str | None, runs: object, option: str):
    """The copick project whose config ``path`` is, else ``None``; without a project the copick
    options (``runs``: the value of the one naming runs, ``option``) are refused."""
    from napari_cryoet_particles.io.copick_project import is_copick_config, open_project

    if path is not None and is_copick_config(path):
        return open_project(path)
    if runs or args.to_copick or args.tomo_type:
        raise CryoetInputError(
            path, f"{option}, --tomo-type and --to-copick need a copick project config"
        )
    return None


def _check_copick_output(args: argparse.Namespace, root, run: str, overwrite: bool) -> None:
    """Refuse, before anything is computed, a run that cannot take the picks of --to-copick."""
    from napari_cryoet_particles.io.copick_project import check_can_write_run_picks

    if args.to_copick:
        check_can_write_run_picks(root, run, args.to_copick, args.session_id, overwrite=overwrite)


def _detect_input(args: argparse.Namespace):
    """The volume to detect in, and the copick root when the input is a copick project."""
    from napari_cryoet_particles.io import read_tomogram
    from napari_cryoet_particles.io.copick_project import read_run_tomogram

    root = _copick_project(args, args.tomogram, args.copick_run, "--run")
    if root is None:
        return read_tomogram(args.tomogram, voxel_size=args.voxel_size), None
    if not args.copick_run:
        raise CryoetInputError(args.tomogram, "a copick project needs --run RUN")
    _check_copick_output(args, root, args.copick_run, args.overwrite)
    volume = read_run_tomogram(
        root, args.copick_run, args.tomo_type, args.voxel_size, args.tomogram
    )
    return volume, root


def run_detect(args: argparse.Namespace) -> int:
    from napari_cryoet_particles.detect import detect_particles_job, score_map_at_input
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
        args, device=args.device, threads=args.threads, keep_score_map=bool(args.score_map)
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
    return 0


def dropped_text(dropped: dict[str, int]) -> str:
    """What detection left out and why, for the closing line of ``detect`` (empty if nothing)."""
    if not dropped:
        return ""
    parts = ", ".join(
        f"{count} {'at' if name == 'faces' else 'on'} {name}" for name, count in dropped.items()
    )
    return f"; not picked: {parts} (--keep-structures, --keep-edges keep them)"


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
        "with added points, their average is searched for over the whole tomogram (objects the "
        "detector does not propose, e.g. the centres of hollow VLPs)",
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
        uses_examples,
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
    if args.save_model and uses_examples(curated, args.like_accepted):
        save_refined_model(args.save_model, None)  # refuses: a reference search learns no head
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
    if args.save_model:
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
    return 0


def add_star_options(parser: argparse.ArgumentParser, tomogram_dest: str = "tomogram") -> None:
    """How to read a RELION STAR file (any picks input); ``tomogram_dest`` names where
    ``--tomogram`` goes (a command whose input tomogram is a positional ``tomogram`` needs
    another)."""
    parser.add_argument(
        "--tomogram",
        dest=tomogram_dest,
        default=None,
        metavar="NAME",
        help="which tomogram (rlnTomoName) of a STAR file holding several",
    )
    parser.add_argument(
        "--star-pixel-size",
        type=float,
        default=None,
        metavar="A",
        help="pixel size (Å) of a STAR file's rlnCoordinateX/Y/Z when the file does not say "
        "(no rlnImagePixelSize or optics block)",
    )


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


def add_benchmark(sub: argparse._SubParsersAction) -> None:
    from napari_cryoet_particles.benchmark.methods import METHODS

    parser = sub.add_parser("benchmark", help="measure accuracy and speed against the baselines")
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one small random tomogram, short 2D training (a smoke test of the benchmark)",
    )
    parser.add_argument(
        "--shared",
        default=None,
        metavar="DIR",
        help="reference data folder holding layouts/shrec2021_model_particle_locations.txt "
        "(default: the package's own data)",
    )
    parser.add_argument(
        "--model", default=None, help="checkpoint for our method (default: the shipped model)"
    )
    parser.add_argument(
        "--work",
        default=None,
        metavar="DIR",
        help="keep simulated tomograms and picks here (reused)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: all cores)"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=tuple(METHODS),
        default=list(METHODS),
        help="methods to run (default: all)",
    )
    parser.add_argument(
        "--no-training",
        action="store_true",
        help="skip training models on the test tomograms (from scratch, fine-tuned)",
    )
    parser.add_argument(
        "--no-huge",
        action="store_true",
        help="skip timing ours and the DoG on a 1024×1024×500 float32 tomogram (2 GB of disk in "
        "the work folder, about 10 minutes)",
    )
    parser.add_argument(
        "--no-curation",
        action="store_true",
        help="skip the simulated curation (refine from marks, more like these, groups)",
    )
    parser.add_argument(
        "--only-curation",
        action="store_true",
        help="regenerate only the curation section of an existing report (--out)",
    )
    parser.add_argument(
        "--no-families",
        action="store_true",
        help="skip the held-out simulation families and the real volumes",
    )
    parser.add_argument(
        "--only-families",
        action="store_true",
        help="regenerate only the held-out families and real volumes section of an existing "
        "report (--out)",
    )
    parser.set_defaults(run=run_benchmark)


def run_benchmark(args: argparse.Namespace) -> int:
    from napari_cryoet_particles.benchmark.run import run_benchmark as benchmark
    from napari_cryoet_particles.io.atomic import check_output_file

    check_output_file(args.out, True, (".md",), "benchmark report")
    if args.only_curation:
        from napari_cryoet_particles.benchmark.run import run_curation_only

        run_curation_only(args.out, args.shared, args.model, args.work, args.threads)
        return 0
    if args.only_families:
        from napari_cryoet_particles.benchmark.run import run_generalisation_only

        run_generalisation_only(args.out, args.shared, args.model, args.work, args.threads)
        return 0
    benchmark(
        args.out,
        args.quick,
        args.shared,
        args.model,
        args.work,
        args.threads,
        tuple(args.methods),
        train=not args.no_training,
        huge=not args.no_huge,
        curation=not args.no_curation,
        families=not args.no_families,
    )
    return 0


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
    root = _copick_project(args, config, args.runs, "--runs")
    if root is None:
        return args.tomograms, None, None
    names = args.runs or run_names(root)
    paths = []
    for name in names:
        run = get_run(root, name, config)
        # a resumed batch replaces the sets its earlier run stored
        _check_copick_output(args, root, name, args.overwrite or args.resume)
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


SUBCOMMANDS = (
    add_simulate,
    add_train,
    add_detect,
    add_evaluate,
    add_refine,
    add_convert,
    add_benchmark,
    add_batch,
)


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


@contextmanager
def plain_warnings(command: str) -> Iterator[None]:
    """Show warnings as one line each (``cryoet-particles CMD: warning: ...``), above the progress
    bar, without the source file and code line Python adds."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        from tqdm import tqdm

        tqdm.write(f"cryoet-particles {command}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        with plain_warnings(args.command):
            return int(args.run(args) or 0)
    except CryoetInputError as error:
        print(f"cryoet-particles {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            f"cryoet-particles {args.command}: interrupted; no output file was left half-written",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

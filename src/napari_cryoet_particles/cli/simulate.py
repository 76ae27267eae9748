"""``cryoet-particles simulate``: a SHREC-2021-style simulated tomogram folder with truth."""

import argparse


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

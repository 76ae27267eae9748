"""``cryoet-particles benchmark``: accuracy and speed against the baselines (the benchmark package)."""

import argparse


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

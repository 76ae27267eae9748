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
    parser.set_defaults(run=_not_built("detect"))


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("evaluate", help="score picks against ground truth")
    parser.add_argument("--truth", required=True, help="SHREC folder or particle_locations.txt")
    parser.add_argument("--pred", required=True, help="picks file")
    parser.set_defaults(run=_not_built("evaluate"))


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

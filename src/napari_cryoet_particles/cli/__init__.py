"""The ``cryoet-particles`` command: the same functions the napari widgets call.

One module per subcommand (``simulate``, ``train``, ``detect``, ``evaluate``, ``refine``,
``convert``, ``benchmark``, ``batch``), each with an ``add_<name>`` function that declares its
arguments and a ``run_<name>`` function that does the work; what several share (detection
settings, copick input, STAR reading, exit codes) is in :mod:`.options`. Errors in user input end
with a one-line message and exit code 2.
"""

import argparse
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from napari_cryoet_particles import __version__
from napari_cryoet_particles.cli.batch import add_batch
from napari_cryoet_particles.cli.benchmark import add_benchmark
from napari_cryoet_particles.cli.convert import add_convert
from napari_cryoet_particles.cli.detect import add_detect
from napari_cryoet_particles.cli.evaluate import add_evaluate
from napari_cryoet_particles.cli.options import EXIT_INTERRUPTED, EXIT_USAGE, detection_config
from napari_cryoet_particles.cli.refine import add_refine
from napari_cryoet_particles.cli.simulate import add_simulate
from napari_cryoet_particles.cli.train import add_train
from napari_cryoet_particles.io.errors import CryoetInputError

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "build_parser", "detection_config", "main"]

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

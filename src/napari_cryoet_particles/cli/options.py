"""What several commands share: exit codes, option groups (detection settings, copick input,
STAR reading) and the copick project behind an input."""

import argparse

from napari_cryoet_particles.io.errors import CryoetInputError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
CHECKPOINT_SUFFIXES = (".pt", ".pth")


def add_detection_options(parser: argparse.ArgumentParser) -> None:
    """The detection settings shared by ``detect`` and ``batch`` (defaults: DetectionConfig's)."""
    from napari_cryoet_particles.detect.config import AUTO_THRESHOLD, POLARITIES, DetectionConfig
    from napari_cryoet_particles.detect.params import DEFAULT_PRESET, PRESETS

    defaults = DetectionConfig()
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=DEFAULT_PRESET,
        help="the tuned numbers of detection (detect/params.py; default %(default)s); "
        "--learned-weight, --density-weight and --clusters change it",
    )
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
        params=args.preset,
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
    tuned = {
        "learned_weight": args.learned_weight,
        "density_weight": args.density_weight,
        "n_clusters": args.clusters,
    }
    return config.with_params(**{key: value for key, value in tuned.items() if value is not None})


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


def copick_project(args: argparse.Namespace, path: str | None, runs: object, option: str):
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


def check_copick_output(args: argparse.Namespace, root, run: str, overwrite: bool) -> None:
    """Refuse, before anything is computed, a run that cannot take the picks of --to-copick."""
    from napari_cryoet_particles.io.copick_project import check_can_write_run_picks

    if args.to_copick:
        check_can_write_run_picks(root, run, args.to_copick, args.session_id, overwrite=overwrite)

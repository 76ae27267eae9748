"""The registry of picks file formats: one entry per format, used by every face.

The CLI (``detect --out``, ``convert``, ``evaluate``, ``batch --format``), the npe2 writers, the
Export dock and batch all look formats up here, so a new format is one :class:`PicksFormat`
added to :data:`PICKS_FORMATS` (and, for napari's Save dialog, one writer entry in
``napari.yaml``, which a test keeps in step with this table).

Reading always gives picks in voxels of ``voxel_size`` (the tomogram they are for) when it is
given: each reader first places the picks in the units the file states, then they are rescaled.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks.copick import read_copick_json, write_copick_json
from napari_cryoet_particles.io.picks.csv import csv_states_unit, read_csv, write_csv
from napari_cryoet_particles.io.picks.model import Picks, one_tomogram
from napari_cryoet_particles.io.picks.shrec import read_shrec_locations, write_shrec_locations
from napari_cryoet_particles.io.picks.star import read_star_by_tomogram, write_star


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need besides the file.

    ``voxel_size``: voxel size (Å) of the tomogram the picks are for (the result is in its voxels;
    a file without a unit, SHREC txt or a bare CSV, is taken to be in it). ``star_pixel_size``:
    size (Å) of the pixels a STAR file's coordinates count, when the file does not say.
    ``tomogram``: which tomogram of a multi-tomogram file. ``shape_zyx``: the tomogram's shape
    (RELION 5 centred coordinates). ``order``: column order of SHREC txt (``zyx`` for SHREC 2019).
    """

    voxel_size: float | None = None
    star_pixel_size: float | None = None
    tomogram: str | None = None
    shape_zyx: tuple[int, int, int] | None = None
    order: str = "xyz"


@dataclass(frozen=True)
class WriteOptions:
    """What a writer may need besides the picks: the tomogram's shape (RELION 5), and for copick
    the object name, user and session."""

    overwrite: bool = False
    shape_zyx: tuple[int, int, int] | None = None
    object_name: str | None = None
    user_id: str = "cryoet-particles"
    session_id: str = "0"


@dataclass(frozen=True)
class PicksFormat:
    """One picks file format: how to read and write it and what it keeps.

    ``keeps`` lists the per-pick features that survive a write and read back (``score``,
    ``angles``, ``class``, ``status``, ``cluster``); ``needs`` what writing requires beyond the
    picks (``shape``: the tomogram's shape).
    """

    name: str
    suffix: str
    label: str
    read: Callable[[Path, ReadOptions], dict[str, Picks]]
    write: Callable[[Path, Picks, WriteOptions], Path]
    keeps: tuple[str, ...] = ()
    needs: tuple[str, ...] = field(default=())

    @property
    def file_filter(self) -> str:
        """A Qt file-dialog filter, e.g. ``RELION 4 STAR (voxels) (*.star)``."""
        return f"{self.label} (*{self.suffix})"


def _one(picks: Picks) -> dict[str, Picks]:
    return {picks.tomogram: picks}


def _read_csv(path: Path, options: ReadOptions) -> dict[str, Picks]:
    if csv_states_unit(path):
        return _one(read_csv(path).in_voxels_of(options.voxel_size))
    return _one(read_csv(path, options.voxel_size))


def _read_star(path: Path, options: ReadOptions) -> dict[str, Picks]:
    by_tomogram = read_star_by_tomogram(
        path, options.star_pixel_size, options.voxel_size, options.shape_zyx
    )
    return by_tomogram


def _read_copick(path: Path, options: ReadOptions) -> dict[str, Picks]:
    return _one(read_copick_json(path).in_voxels_of(options.voxel_size))


def _read_shrec(path: Path, options: ReadOptions) -> dict[str, Picks]:
    return _one(read_shrec_locations(path, options.voxel_size, options.order))


def _write_csv(path: Path, picks: Picks, options: WriteOptions) -> Path:
    return write_csv(path, picks, options.overwrite)


def _write_star4(path: Path, picks: Picks, options: WriteOptions) -> Path:
    return write_star(path, picks, 4, None, options.overwrite)


def _write_star5(path: Path, picks: Picks, options: WriteOptions) -> Path:
    if options.shape_zyx is None:
        raise CryoetInputError(
            path,
            "RELION 5 centred coordinates need the tomogram's shape (CLI: --shape Z Y X, "
            "or --tomogram-file; napari: open the tomogram)",
        )
    return write_star(path, picks, 5, options.shape_zyx, options.overwrite)


def _write_copick(path: Path, picks: Picks, options: WriteOptions) -> Path:
    return write_copick_json(
        path,
        picks,
        options.object_name,
        user_id=options.user_id,
        session_id=options.session_id,
        overwrite=options.overwrite,
    )


def _write_shrec(path: Path, picks: Picks, options: WriteOptions) -> Path:
    return write_shrec_locations(path, picks, options.overwrite)


ALL_FEATURES = ("score", "angles", "class", "status", "cluster")

#: Every picks format; the first of a suffix is the one a bare file name means.
PICKS_FORMATS: tuple[PicksFormat, ...] = (
    PicksFormat("csv", ".csv", "CSV (voxels + Å)", _read_csv, _write_csv, ALL_FEATURES),
    PicksFormat("star", ".star", "RELION 4 STAR (voxels)", _read_star, _write_star4, ALL_FEATURES),
    PicksFormat(
        "star5",
        ".star",
        "RELION 5 STAR (centred Å)",
        _read_star,
        _write_star5,
        ALL_FEATURES,
        needs=("shape",),
    ),
    PicksFormat(
        "copick",
        ".json",
        "copick JSON (Å)",
        _read_copick,
        _write_copick,
        ("score", "angles", "class", "cluster"),
    ),
    PicksFormat(
        "shrec",
        ".txt",
        "SHREC particle_locations.txt",
        _read_shrec,
        _write_shrec,
        ("angles", "class"),
    ),
)


def picks_suffixes() -> tuple[str, ...]:
    """The file suffixes of the picks formats, each once, in registry order."""
    return tuple(dict.fromkeys(fmt.suffix for fmt in PICKS_FORMATS))


def format_named(name: str) -> PicksFormat:
    for fmt in PICKS_FORMATS:
        if fmt.name == name:
            return fmt
    raise CryoetInputError(
        None,
        f"unknown picks format {name!r} (one of {', '.join(f.name for f in PICKS_FORMATS)})",
    )


def format_for(path: str | Path, name: str | None = None) -> PicksFormat:
    """The format ``name`` says, else the first one of the file's suffix."""
    if name:
        return format_named(name)
    suffix = Path(path).suffix.lower()
    for fmt in PICKS_FORMATS:
        if fmt.suffix == suffix:
            return fmt
    raise CryoetInputError(
        path, f"unknown picks format {suffix!r} (use {', '.join(picks_suffixes())})"
    )


def read_picks_by_tomogram(
    path: str | Path, fmt: str | None = None, **options: object
) -> dict[str, Picks]:
    """Every tomogram's picks in a file, by name (one entry for single-tomogram formats): what
    :func:`read_picks` chooses from."""
    path = Path(path)
    return format_for(path, fmt).read(path, ReadOptions(**options))  # type: ignore[arg-type]


def read_picks(path: str | Path, fmt: str | None = None, **options: object) -> Picks:
    """The picks of one tomogram from a file of any format: ``fmt`` by name, else the one the
    file's suffix says (``options``: :class:`ReadOptions`).

    A file with several tomograms needs ``tomogram`` to say which one.
    """
    by_tomogram = read_picks_by_tomogram(path, fmt, **options)
    return one_tomogram(by_tomogram, options.get("tomogram"), path)  # type: ignore[arg-type]


def write_picks(path: str | Path, picks: Picks, fmt: str | None = None, **options: object) -> Path:
    """Write picks in a format: ``fmt`` by name, else the one the file's suffix says
    (``options``: :class:`WriteOptions`)."""
    path = Path(path)
    return format_for(path, fmt).write(path, picks, WriteOptions(**options))  # type: ignore[arg-type]

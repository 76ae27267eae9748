"""Picks from wherever the user keeps them: a picks file of any registered format, a copick
project (picks per run) or a SHREC folder, as picks per tomogram name.

This is what the CLI's ``--truth`` / ``--pred`` / ``convert`` read through, so a STAR file, a
copick project and a CSV are all accepted in the same places.
"""

from dataclasses import dataclass
from pathlib import Path

from napari_cryoet_particles.io.copick_project import (
    get_run,
    is_copick_config,
    open_project,
    read_run_picks,
    run_names,
    run_voxel_size,
)
from napari_cryoet_particles.io.errors import CryoetInputError, reader
from napari_cryoet_particles.io.picks import Picks, read_picks_by_tomogram, wanted_tomogram
from napari_cryoet_particles.io.shrec import is_shrec_folder, read_shrec_folder


@dataclass(frozen=True)
class CopickQuery:
    """Which picks of a copick project: those of ``run`` (default: every run) in the picks sets
    of this user, session and object (default: any)."""

    run: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    object_name: str | None = None


@reader("a copick project")
def read_copick_source(path: str | Path, query: CopickQuery = CopickQuery()) -> dict[str, Picks]:
    """The picks of a copick project that ``query`` asks for, by run, in voxels of each run's
    finest tomogram spacing."""
    root = open_project(path)
    names = [get_run(root, query.run, path).name] if query.run else run_names(root)
    return {
        name: read_run_picks(
            root,
            name,
            run_voxel_size(root, name),
            query.object_name,
            query.user_id,
            query.session_id,
        )
        for name in names
    }


def read_picks_source(
    path: str | Path, copick: CopickQuery = CopickQuery(), **options: object
) -> dict[str, Picks]:
    """Picks per tomogram from a copick project (those ``copick`` asks for), a SHREC folder or a
    picks file (``options``: :class:`~napari_cryoet_particles.io.picks.ReadOptions`;
    ``tomogram`` keeps just that one)."""
    path = Path(path)
    if not path.exists():
        raise CryoetInputError(path, "no such file or folder")
    if is_copick_config(path):
        return read_copick_source(path, copick)
    if path.is_dir():
        if not is_shrec_folder(path):
            raise CryoetInputError(path, "folder is neither a SHREC folder nor a picks file")
        dataset = read_shrec_folder(path)
        if dataset.truth is None:
            raise CryoetInputError(path, "SHREC folder has no particle_locations.txt")
        return {dataset.truth.tomogram: dataset.truth}
    by_tomogram = read_picks_by_tomogram(path, **options)
    name = wanted_tomogram(by_tomogram, options.get("tomogram"), path)  # type: ignore[arg-type]
    return by_tomogram if name is None else {name: by_tomogram[name]}

"""Detection over many tomograms on a Dask cluster (a local one by default).

Each tomogram is one task: the worker opens the file memory-mapped, runs the same
:func:`~napari_cryoet_particles.detect.pipeline.detect_particles` the CLI and the GUI run, and
writes the picks next to the others in the output folder. A tomogram that fails (bad file,
error in detection) is recorded in the summary and does not stop the batch.
"""

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from napari_cryoet_particles.detect.config import DetectionConfig
from napari_cryoet_particles.io.atomic import atomic_write, check_can_write
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.formats import picks_suffixes
from napari_cryoet_particles.jobs import CancelToken, Job, Progress

SUMMARY_NAME = "batch_summary.csv"
PICKS_SUFFIXES = picks_suffixes()


@dataclass
class BatchItem:
    """What happened to one tomogram of a batch."""

    tomogram: str
    picks_file: str
    n_picks: int = 0
    seconds: float = 0.0
    error: str = ""


def picks_path_for(tomogram: Path | str, out_dir: Path, suffix: str) -> Path:
    """``<name>_picks<suffix>``: ``tomogram`` is a file (its stem) or a name (a copick run)."""
    name = tomogram.stem if isinstance(tomogram, Path) else tomogram
    return out_dir / f"{name}_picks{suffix}"


def detect_file(
    tomogram: str, picks_file: str, model: str | None, config: DetectionConfig, overwrite: bool
) -> BatchItem:
    """One task of a batch: detect in one tomogram file and write its picks (runs on a worker)."""
    from napari_cryoet_particles.detect.pipeline import detect_particles
    from napari_cryoet_particles.io import read_tomogram, write_picks

    clock = time.perf_counter()
    item = BatchItem(tomogram, picks_file)
    try:
        volume = read_tomogram(tomogram, voxel_size=config.voxel_size)
        result = detect_particles(volume, model, dataclasses.replace(config, keep_score_map=False))
        write_picks(picks_file, result.picks, overwrite=overwrite, shape_zyx=volume.shape)
        item.n_picks = len(result.picks)
    except CryoetInputError as error:
        item.error = str(error)
    except Exception as error:  # noqa: BLE001 - one broken tomogram must not end a batch of hundreds
        item.error = f"{tomogram}: {type(error).__name__}: {error}"
    item.seconds = time.perf_counter() - clock
    return item


def _client(scheduler: str | None, workers: int | None, threads_per_worker: int, processes: bool):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(
        n_workers=workers or 1,
        threads_per_worker=threads_per_worker,
        processes=processes,
        dashboard_address=None,
    )
    return Client(cluster), cluster


def batch_detect_job(
    tomograms: Sequence[str | Path],
    out_dir: str | Path,
    model: str | Path | None = None,
    config: DetectionConfig | None = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool = True,
    suffix: str = ".csv",
    overwrite: bool = False,
    cancel: CancelToken | None = None,
    names: Sequence[str] | None = None,
) -> Job[list[BatchItem]]:
    """Detect particles in every tomogram on a Dask cluster; yields a Progress per finished one.

    ``scheduler`` is the address of a running Dask scheduler (``tcp://host:8786``); without it a
    local cluster of ``workers`` processes is started and closed afterwards. Picks go to
    ``out_dir/<tomogram stem>_picks<suffix>``; ``out_dir/batch_summary.csv`` lists picks count,
    time and error per tomogram. ``names`` name the picks files instead of the tomograms' file
    names (e.g. copick runs, whose tomograms are all called ``wbp.zarr``).
    """
    from dask.distributed import as_completed

    config = (config or DetectionConfig()).validated()
    if suffix not in PICKS_SUFFIXES:
        raise CryoetInputError(
            None, f"picks format {suffix!r} is not one of {', '.join(PICKS_SUFFIXES)}"
        )
    paths = [Path(t) for t in tomograms]
    if not paths:
        raise CryoetInputError(None, "no tomograms given")
    stems = list(names) if names is not None else [p.stem for p in paths]
    if len(stems) != len(paths):
        raise CryoetInputError(None, f"{len(stems)} names for {len(paths)} tomograms")
    if len(set(stems)) != len(stems):
        raise CryoetInputError(
            None, "two tomograms share a file name; their picks files would collide"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = [picks_path_for(name, out, suffix) for name in stems]
    for target in [*targets, out / SUMMARY_NAME]:
        check_can_write(target, overwrite)
    model_arg = None if model is None else str(model)
    if config.torch_threads is None:
        config = dataclasses.replace(config, torch_threads=threads_per_worker)

    yield Progress(0, len(paths), "starting the Dask cluster")
    client, cluster = _client(scheduler, workers, threads_per_worker, processes)
    items: list[BatchItem] = []
    try:
        futures = [
            client.submit(detect_file, str(p), str(t), model_arg, config, overwrite, pure=False)
            for p, t in zip(paths, targets, strict=True)
        ]
        for done, future in enumerate(as_completed(futures), start=1):
            if cancel is not None and cancel.cancelled:
                client.cancel(futures)
                cancel.check()
            item = future.result()
            items.append(item)
            failed = sum(1 for i in items if i.error)
            yield Progress(done, len(paths), Path(item.tomogram).name, {"failed": float(failed)})
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    order = {str(p): i for i, p in enumerate(paths)}
    items.sort(key=lambda item: order[item.tomogram])
    with atomic_write(out / SUMMARY_NAME, overwrite=overwrite) as tmp:
        pd.DataFrame([dataclasses.asdict(i) for i in items]).to_csv(tmp, index=False)
    return items

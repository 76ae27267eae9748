"""Detection over many tomograms on a Dask cluster (a local one by default).

Each tomogram is one task: the worker opens the file memory-mapped, runs the same
:func:`~napari_cryoet_particles.detect.pipeline.detect_particles` the CLI and the GUI run, and
writes the picks next to the others in the output folder. A tomogram that fails (bad file,
error in detection, a worker that died on it again and again) is recorded in the summary and
does not stop the batch.

Faults: every output path is checked before the cluster starts. A task writes its picks
atomically (a temporary file renamed into place), so no partial file ever has a final name.
When a worker dies, Dask runs its task again on another worker; that retry may find the picks
file its first attempt wrote just before dying and replaces it with the same content (the
batch refused existing files before starting, so any file there now is this batch's own). After
each finished tomogram the manifest (:mod:`.manifest`) records inputs, checksums, model,
parameters, outputs and timings, so ``resume=True`` skips what is done.
"""

import dataclasses
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from napari_cryoet_particles.batch.manifest import (
    MANIFEST_NAME,
    InputRecord,
    finished_entry,
    is_finished,
    new_manifest,
    read_manifest,
    same_run,
    sha256_of,
    write_manifest,
)
from napari_cryoet_particles.detect.config import DetectionConfig
from napari_cryoet_particles.io.atomic import atomic_write, check_output_folder, stale_parts
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks import picks_suffixes
from napari_cryoet_particles.jobs import CancelToken, Job, Progress

SUMMARY_NAME = "batch_summary.csv"
PICKS_SUFFIXES = picks_suffixes()
#: Between the warnings of one tomogram in the summary's ``warning`` column.
WARNING_SEPARATOR = " | "
#: Worker processes of a local cluster, and torch threads per worker, unless told otherwise.
LOCAL_WORKERS = 1
THREADS_PER_WORKER = 1


@dataclass
class BatchItem:
    """What happened to one tomogram of a batch.

    ``picks_file`` is empty when nothing was written (the tomogram failed); ``resumed`` is True
    when an earlier run of the batch had already done it.
    """

    tomogram: str
    picks_file: str
    n_picks: int = 0
    seconds: float = 0.0
    error: str = ""
    warning: str = ""
    resumed: bool = False
    input_record: InputRecord | None = field(default=None, repr=False)
    warnings: list[str] = field(default_factory=list, repr=False)


def picks_path_for(tomogram: Path | str, out_dir: Path, suffix: str) -> Path:
    """``<name>_picks<suffix>``: ``tomogram`` is a file (its stem) or a name (a copick run)."""
    name = tomogram.stem if isinstance(tomogram, Path) else tomogram
    return out_dir / f"{name}_picks{suffix}"


def detect_file(
    tomogram: str, picks_file: str, model: str | None, config: DetectionConfig
) -> BatchItem:
    """One task of a batch: detect in one tomogram file and write its picks (runs on a worker).

    The picks file is replaced if it exists: the batch refused existing outputs before it
    started, so a file here was written by an earlier attempt of this very task (a worker that
    died after writing it) and holds the same picks.
    """
    from napari_cryoet_particles.detect.pipeline import detect_particles
    from napari_cryoet_particles.io import read_tomogram, write_picks

    clock = time.perf_counter()
    item = BatchItem(tomogram, "")
    try:
        item.input_record = InputRecord.of(tomogram)
        volume = read_tomogram(tomogram, voxel_size=config.voxel_size)
        # the volume carries the voxel size now: detection does not apply it a second time
        settings = dataclasses.replace(
            config, keep_score_map=False, learned_features=False, voxel_size=None
        )
        result = detect_particles(volume, model, settings)
        write_picks(picks_file, result.picks, overwrite=True, shape_zyx=volume.shape)
        item.picks_file = picks_file
        item.n_picks = len(result.picks)
        item.warnings = list(result.info.get("warnings", []))
        item.warning = WARNING_SEPARATOR.join(item.warnings)
    except CryoetInputError as error:
        item.error = str(error)
    except OSError as error:
        item.error = f"{tomogram}: {error.strerror or error}"
    except Exception as error:  # noqa: BLE001 - one broken tomogram must not end a batch of hundreds
        item.error = f"{tomogram}: {type(error).__name__}: {error}"
    item.seconds = time.perf_counter() - clock
    return item


def _client(scheduler: str | None, workers: int | None, threads_per_worker: int, processes: bool):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except OSError as error:
            raise CryoetInputError(
                None, f"cannot reach the Dask scheduler {scheduler} ({error})"
            ) from None
    cluster = LocalCluster(
        n_workers=workers or LOCAL_WORKERS,
        threads_per_worker=threads_per_worker,
        processes=processes,
        dashboard_address=None,
    )
    return Client(cluster), cluster


def check_inputs(paths: Sequence[Path], names: Sequence[str] | None = None) -> list[str]:
    """The names of the picks files (``names``, else the file stems); refuses an empty batch and
    inputs whose picks files would share a name, naming them."""
    if not paths:
        raise CryoetInputError(None, "no tomograms given")
    stems = list(names) if names is not None else [p.stem for p in paths]
    if len(stems) != len(paths):
        raise CryoetInputError(None, f"{len(stems)} names for {len(paths)} tomograms")
    by_stem: dict[str, list[Path]] = {}
    for path, stem in zip(paths, stems, strict=True):
        by_stem.setdefault(stem, []).append(path)
    clashes = [group for group in by_stem.values() if len(group) > 1]
    if clashes:
        named = "; ".join(" and ".join(map(str, group)) for group in clashes)
        raise CryoetInputError(
            None,
            f"tomograms with the same file name would write the same picks file: {named}; "
            "rename them or run them in separate batches",
        )
    return stems


def model_file(model: str | Path | None) -> Path:
    from napari_cryoet_particles.model.checkpoint import default_model_path

    path = default_model_path() if model is None else Path(model)
    if not path.is_file():
        raise CryoetInputError(path, "no such checkpoint file")
    return path


def _failed(tomogram: Path, error: BaseException) -> BatchItem:
    """The item of a task that raised on the cluster (e.g. its workers kept dying)."""
    from distributed import KilledWorker

    if isinstance(error, KilledWorker):
        problem = "the workers running it died repeatedly (out of memory?)"
    else:
        problem = f"{type(error).__name__}: {error}"
    return BatchItem(str(tomogram), "", error=f"{tomogram}: {problem}")


def batch_detect_job(
    tomograms: Sequence[str | Path],
    out_dir: str | Path,
    model: str | Path | None = None,
    config: DetectionConfig | None = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int = THREADS_PER_WORKER,
    processes: bool = True,
    suffix: str = ".csv",
    overwrite: bool = False,
    resume: bool = False,
    cancel: CancelToken | None = None,
    names: Sequence[str] | None = None,
) -> Job[list[BatchItem]]:
    """Detect particles in every tomogram on a Dask cluster; yields a Progress per finished one.

    ``scheduler`` is the address of a running Dask scheduler (``tcp://host:8786``); without it a
    local cluster of ``workers`` processes is started and closed afterwards. Picks go to
    ``out_dir/<tomogram stem>_picks<suffix>``; ``out_dir/batch_summary.csv`` lists picks count,
    time, warnings and error per tomogram, ``out_dir/batch_manifest.json`` what was done
    (see :mod:`.manifest`). ``names`` name the picks files instead of the tomograms' file names
    (e.g. copick runs, whose tomograms are all called ``wbp.zarr``). ``resume``: skip the
    tomograms the manifest of an earlier run with the same model and settings records as
    finished, redo the others (replacing their files). Every check (inputs, output folder,
    existing files, model) happens when this is called, before any work; the returned generator
    runs the batch.
    """
    config = (config or DetectionConfig()).validated()
    if suffix not in PICKS_SUFFIXES:
        raise CryoetInputError(
            None, f"picks format {suffix!r} is not one of {', '.join(PICKS_SUFFIXES)}"
        )
    paths = [Path(t).absolute() for t in tomograms]
    stems = check_inputs(paths, names)
    out = check_output_folder(out_dir).absolute()
    targets = [picks_path_for(name, out, suffix) for name in stems]
    model_path = model_file(model)
    manifest = new_manifest(model_path, sha256_of(model_path), config, suffix)
    old = read_manifest(out) if resume else None
    if old is not None and same_run(old, manifest):
        manifest["tomograms"] = dict(old["tomograms"])
    elif old is not None:
        warnings.warn(
            f"{out / MANIFEST_NAME} was written with another model, settings or picks format: "
            "every tomogram is done again",
            stacklevel=2,
        )
    done = {
        str(p): is_finished(manifest["tomograms"].get(str(p)), p, t)
        for p, t in zip(paths, targets, strict=True)
    }
    manifest["tomograms"] = {k: v for k, v in manifest["tomograms"].items() if done.get(k, True)}
    if not (overwrite or resume):
        for target in [*targets, out / SUMMARY_NAME, out / MANIFEST_NAME]:
            if target.exists():
                raise CryoetInputError(
                    target,
                    "exists already; pass --resume to skip the tomograms done before, or "
                    "--overwrite to redo everything",
                )
    out.mkdir(parents=True, exist_ok=True)
    model_arg = None if model is None else str(model)
    if config.threads is None:
        config = dataclasses.replace(config, threads=threads_per_worker)

    items: list[BatchItem] = []
    for path, target in zip(paths, targets, strict=True):
        if done[str(path)]:
            entry = manifest["tomograms"][str(path)]
            items.append(
                BatchItem(
                    str(path),
                    str(target),
                    int(entry["n_picks"]),
                    float(entry["seconds"]),
                    warning=WARNING_SEPARATOR.join(entry.get("warnings", [])),
                    resumed=True,
                    warnings=list(entry.get("warnings", [])),
                )
            )
    todo = [(p, t) for p, t in zip(paths, targets, strict=True) if not done[str(p)]]
    cluster = (scheduler, workers, threads_per_worker, processes)
    labels = {str(p): name for p, name in zip(paths, stems, strict=True)}
    return _run_batch(
        items, todo, paths, targets, labels, out, manifest, model_arg, config, cluster, cancel
    )


def _run_batch(
    items: list[BatchItem],
    todo: list[tuple[Path, Path]],
    paths: list[Path],
    targets: list[Path],
    labels: dict[str, str],
    out: Path,
    manifest: dict,
    model_arg: str | None,
    config: DetectionConfig,
    cluster_options: tuple,
    cancel: CancelToken | None,
) -> Job[list[BatchItem]]:
    """The work of :func:`batch_detect_job` once everything is checked (``labels``: the name
    of each tomogram in the progress)."""
    from dask.distributed import as_completed

    yield Progress(len(items), len(paths), "starting the Dask cluster")
    if todo:
        write_manifest(out, manifest)
        client, cluster = _client(*cluster_options)
        try:
            futures = {
                client.submit(detect_file, str(p), str(t), model_arg, config, pure=False): p
                for p, t in todo
            }
            for future in as_completed(futures):
                if cancel is not None and cancel.cancelled:
                    client.cancel(list(futures))
                    cancel.check()
                try:
                    item = future.result()
                except Exception as error:  # noqa: BLE001 - recorded for this tomogram only
                    item = _failed(futures[future], error)
                items.append(item)
                if not item.error and item.input_record is not None:
                    manifest["tomograms"][item.tomogram] = finished_entry(
                        item.input_record,
                        Path(item.picks_file),
                        item.n_picks,
                        item.seconds,
                        item.warnings,
                    )
                    write_manifest(out, manifest)
                failed = sum(1 for i in items if i.error)
                yield Progress(
                    len(items), len(paths), labels[item.tomogram], {"failed": float(failed)}
                )
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
            for target in targets:
                for part in stale_parts(target):
                    part.unlink(missing_ok=True)
    order = {str(p): i for i, p in enumerate(paths)}
    items.sort(key=lambda item: order[item.tomogram])
    columns = ["tomogram", "picks_file", "n_picks", "seconds", "error", "warning", "resumed"]
    with atomic_write(out / SUMMARY_NAME, overwrite=True) as tmp:
        pd.DataFrame([{c: getattr(i, c) for c in columns} for i in items]).to_csv(tmp, index=False)
    return items

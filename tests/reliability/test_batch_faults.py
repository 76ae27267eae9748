"""Batch detection under faults: workers killed mid-task or right after writing, reruns (--resume).

The cluster tests start a real 2-worker ``LocalCluster`` (worker processes under nannies, as in
production) and kill a worker process while the batch of 4 tiny tomograms runs; the picks must
equal what a sequential ``cryoet-particles detect`` writes.
"""

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from napari_cryoet_particles.batch.manifest import MANIFEST_NAME
from napari_cryoet_particles.batch.run import SUMMARY_NAME, batch_detect_job, detect_file
from napari_cryoet_particles.cli import main
from napari_cryoet_particles.detect import DetectionConfig
from napari_cryoet_particles.io import CryoetInputError, write_tomogram
from napari_cryoet_particles.jobs import run_job

SHAPE = (24, 48, 48)
CONFIG = DetectionConfig(groups=0, device="cpu")


def blob_tomogram(path: Path, seed: int) -> Path:
    """Noise with a dozen dark Gaussian blobs (10 Å voxels): particles detection can find."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(SHAPE)
    data = rng.normal(0, 0.5, SHAPE)
    for centre in rng.uniform((4, 6, 6), np.array(SHAPE) - (4, 6, 6), size=(12, 3)):
        r2 = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2
        data -= 2.0 * np.exp(-r2 / (2 * 2.0**2))
    return write_tomogram(path, data.astype(np.float32), 10.0)


@pytest.fixture(scope="module")
def four_tomograms(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    """Four tiny tomograms and the picks a sequential ``detect`` writes for each."""
    folder = tmp_path_factory.mktemp("faults")
    tomograms = [blob_tomogram(folder / f"tomo_{i}.mrc", i) for i in range(4)]
    reference = folder / "sequential"
    reference.mkdir()
    for tomogram in tomograms:
        out = reference / f"{tomogram.stem}_picks.csv"
        argv = ["detect", str(tomogram), "--out", str(out), "--model", str(tiny_model)]
        assert main([*argv, "--groups", "0", "--threads", "1", "--device", "cpu", "--quiet"]) == 0
    return tomograms, reference


@pytest.fixture
def two_workers():
    """A real local Dask cluster: 2 worker processes, each under a nanny that restarts it (one
    per test: a test that kills a worker leaves the cluster restarting it)."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    client.wait_for_workers(2, timeout=60)
    yield client
    client.close()
    cluster.close()


def assert_same_as_sequential(out: Path, reference: Path, n: int = 4) -> None:
    written = sorted(out.glob("*_picks.csv"))
    assert [p.name for p in written] == sorted(p.name for p in reference.glob("*_picks.csv"))
    assert len(written) == n
    for path in written:
        assert path.read_bytes() == (reference / path.name).read_bytes(), path.name
    assert not list(out.glob(".*.part")), "a temporary file was left behind"


def kill_a_busy_worker(client, delay: float, killed: dict) -> None:
    """Wait until a worker is running a task, give it ``delay`` s, then SIGKILL its process."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        busy = {address: keys for address, keys in client.processing().items() if keys}
        if busy:
            address, keys = next(iter(busy.items()))
            pid = client.run(os.getpid, workers=[address])[address]
            time.sleep(delay)
            os.kill(pid, signal.SIGKILL)
            killed.update(address=address, pid=pid, keys=list(keys))
            return
        time.sleep(0.05)


def test_a_worker_killed_mid_task_is_retried_elsewhere(
    two_workers, four_tomograms, tiny_model, tmp_path
):
    tomograms, reference = four_tomograms
    killed: dict = {}
    killer = threading.Thread(target=kill_a_busy_worker, args=(two_workers, 0.5, killed))
    killer.start()
    job = batch_detect_job(
        tomograms, tmp_path, tiny_model, CONFIG, scheduler=two_workers.scheduler.address
    )
    items = run_job(job)
    killer.join()
    assert killed, "no worker was ever busy"
    assert any(key.startswith("detect_file") for key in killed["keys"])
    assert [item.error for item in items] == [""] * 4
    assert_same_as_sequential(tmp_path, reference)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert len(manifest["tomograms"]) == 4


class DieAfterTheFirstTask:
    """Worker plugin: the first worker to finish a detection task exits at once, before it can
    tell the scheduler, i.e. after the task wrote its picks file (once per cluster)."""

    name = "die-after-the-first-task"

    def __init__(self, marker: str):
        self.marker = marker

    def transition(self, key, start, finish, **kwargs) -> None:  # noqa: ANN001
        if finish != "memory" or start != "executing" or "detect_file" not in str(key):
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(1)


def test_a_worker_dying_right_after_writing_is_retried_without_exists_already(
    two_workers, four_tomograms, tiny_model, tmp_path
):
    from dask.distributed import WorkerPlugin

    tomograms, reference = four_tomograms
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = tmp_path.parent / f"{tmp_path.name}.died"
    plugin = type("Plugin", (DieAfterTheFirstTask, WorkerPlugin), {})(str(marker))
    two_workers.register_plugin(plugin)
    try:
        job = batch_detect_job(
            tomograms,
            tmp_path,
            tiny_model,
            CONFIG,
            scheduler=two_workers.scheduler.address,
        )
        items = run_job(job)
    finally:
        two_workers.unregister_worker_plugin(DieAfterTheFirstTask.name)
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert marker.exists(), "no worker died"
    assert [item.error for item in items] == [""] * 4
    assert_same_as_sequential(tmp_path, reference)


def test_a_retry_replaces_the_file_its_first_attempt_wrote(four_tomograms, tiny_model, tmp_path):
    tomograms, reference = four_tomograms
    target = tmp_path / "tomo_0_picks.csv"
    first = detect_file(str(tomograms[0]), str(target), str(tiny_model), CONFIG.validated())
    second = detect_file(str(tomograms[0]), str(target), str(tiny_model), CONFIG.validated())
    assert first.error == second.error == ""
    assert target.read_bytes() == (reference / target.name).read_bytes()


def test_resume_skips_finished_tomograms_and_redoes_the_rest(four_tomograms, tiny_model, tmp_path):
    tomograms, reference = four_tomograms
    first = run_job(batch_detect_job(tomograms[:3], tmp_path, tiny_model, CONFIG, processes=False))
    assert not any(item.resumed for item in first)
    (tmp_path / "tomo_1_picks.csv").unlink()
    stamp = (tmp_path / "tomo_0_picks.csv").stat().st_mtime_ns
    with pytest.raises(CryoetInputError, match="--resume"):
        run_job(batch_detect_job(tomograms, tmp_path, tiny_model, CONFIG, processes=False))
    second = run_job(
        batch_detect_job(tomograms, tmp_path, tiny_model, CONFIG, processes=False, resume=True)
    )
    assert [item.resumed for item in second] == [True, False, True, False]
    assert (tmp_path / "tomo_0_picks.csv").stat().st_mtime_ns == stamp
    assert_same_as_sequential(tmp_path, reference)
    summary = pd.read_csv(tmp_path / SUMMARY_NAME)
    assert summary["resumed"].tolist() == [True, False, True, False]
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    entry = manifest["tomograms"][str(tomograms[2].absolute())]
    assert set(entry) >= {"sha256", "picks_file", "picks_sha256", "n_picks", "seconds"}
    assert manifest["parameters"]["diameter_nm"] == CONFIG.diameter_nm
    assert len(manifest["model"]["sha256"]) == 64


def test_resume_redoes_a_tomogram_whose_input_or_settings_changed(
    four_tomograms, tiny_model, tmp_path
):
    tomograms, _ = four_tomograms
    local = [tmp_path / t.name for t in tomograms[:2]]
    for source, copy in zip(tomograms, local, strict=False):
        copy.write_bytes(source.read_bytes())
    out = tmp_path / "out"
    run_job(batch_detect_job(local, out, tiny_model, CONFIG, processes=False))
    os.utime(local[0], ns=(time.time_ns(), time.time_ns()))  # touched, same bytes: still done
    blob_tomogram(local[1].with_suffix(".new"), 7).replace(local[1])  # new content: redo
    items = run_job(batch_detect_job(local, out, tiny_model, CONFIG, processes=False, resume=True))
    assert [item.resumed for item in items] == [True, False]
    other = DetectionConfig(groups=0, device="cpu", diameter_nm=8.0)
    with pytest.warns(UserWarning, match="another model, settings"):
        items = run_job(
            batch_detect_job(local, out, tiny_model, other, processes=False, resume=True)
        )
    assert [item.resumed for item in items] == [False, False]

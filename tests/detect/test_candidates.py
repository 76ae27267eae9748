"""Blob candidates on a thread pool: the same candidates as one thread, bounded, cancellable."""

import threading
import time

import numpy as np
import pytest
from scipy import ndimage

from napari_cryoet_particles.detect import candidates
from napari_cryoet_particles.detect.candidates import (
    _block_maxima,
    _run_bounded,
    blob_radii,
    block_mean2,
    blocks,
    multiscale_candidates_job,
)
from napari_cryoet_particles.detect.params import PRESETS
from napari_cryoet_particles.jobs import CancelToken, JobCancelled, Progress, run_job

PARAMS = PRESETS["default"].candidates

#: Small blocks, so a tiny volume makes several of them at both resolutions.
SLAB, SIDE = 12, 24
RADII = blob_radii(
    2.5, 9.0, PARAMS.radius_step
)  # 2.5 and 3.5 at full resolution, three radii on the 2× binned one


def _volume(shape=(40, 48, 56), seed: int = 0) -> np.ndarray:
    """Smooth noise with dark balls of several sizes (the model's view: particles dark)."""
    rng = np.random.default_rng(seed)
    volume = ndimage.gaussian_filter(rng.normal(0, 1, shape), 1.0)
    zz, yy, xx = np.indices(shape)
    for _ in range(12):
        centre, radius = rng.uniform(0, shape), rng.uniform(1.5, 7.0)
        inside = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2
        volume[inside <= radius**2] -= 1.0
    return (volume / volume.std()).astype(np.float32)


def _unit_count(shape: tuple[int, int, int]) -> int:
    fine = int(np.sum(PARAMS.bin_from_radius > RADII))
    binned = tuple(n // 2 for n in shape)
    return len(blocks(shape, SLAB, SIDE)) * fine + len(blocks(binned, SLAB, SIDE)) * (
        len(RADII) - fine
    )


def _run(volume: np.ndarray, threads: int, read=None, check=None):
    read = read or (lambda box: volume[box].copy())
    job = multiscale_candidates_job(
        read, volume.shape, RADII, PARAMS, check, slab=SLAB, threads=threads, side=SIDE
    )
    reports: list[Progress] = []
    return run_job(job, reports.append), reports


def _assert_identical(a, b) -> None:
    for name in ("zyx", "strength", "radius"):
        left, right = getattr(a, name), getattr(b, name)
        assert left.dtype == right.dtype
        assert np.array_equal(left, right), name


def test_threads_give_the_candidates_of_one_thread_bit_for_bit(monkeypatch) -> None:
    """Several blocks at both resolutions, units finishing out of order (the early boxes are
    read slowly): the maxima of every unit, and the suppressed candidates, equal one thread's."""
    volume = _volume()

    def slow_early_read(box):
        time.sleep(0.01 * (box[0].start < SLAB and box[1].start < SIDE))
        return volume[box].copy()

    sequential, _ = _run(volume, threads=1)
    for threads in (2, 3):
        found, _ = _run(volume, threads, slow_early_read)
        _assert_identical(found, sequential)
    assert len(sequential) > 5

    monkeypatch.setattr(candidates, "suppress_by_size", lambda found, reach: found)
    raw_sequential, _ = _run(volume, threads=1)
    raw_parallel, _ = _run(volume, threads=2, read=slow_early_read)
    _assert_identical(raw_parallel, raw_sequential)
    assert np.array_equal(np.unique(raw_sequential.radius), RADII)  # every scale, both scans


def test_progress_counts_every_unit_up_to_the_total() -> None:
    volume = _volume((30, 30, 30), seed=1)
    _, reports = _run(volume, threads=2)
    total = _unit_count(volume.shape)
    assert total > 2 * len(RADII)  # several blocks
    assert [r.step for r in reports] == list(range(1, total + 1))
    assert {r.total for r in reports} == {total}


def test_cancel_between_units_stops_the_job_and_its_threads() -> None:
    volume = _volume((30, 30, 30), seed=2)
    token = CancelToken()
    reads = []

    def read(box):
        reads.append(box)
        if len(reads) == 3:
            token.cancel()
        return volume[box].copy()

    with pytest.raises(JobCancelled):
        _run(volume, threads=2, read=read, check=token.check)
    assert len(reads) <= 3 + 2  # the read that cancelled, then at most the units running
    assert _unit_count(volume.shape) > 10
    assert not any(t.name.startswith("candidates") for t in threading.enumerate())


def _recording_tasks(sizes: list[int]):
    """Tasks that take a moment and record, as each starts, its index and the sizes running."""
    lock, running, starts = threading.Lock(), [], []

    def task(index: int):
        def run() -> int:
            with lock:
                running.append(sizes[index])
                starts.append((index, sum(running)))
            time.sleep(0.02)
            with lock:
                running.remove(sizes[index])
            return sizes[index]

        return run

    return [task(i) for i in range(len(sizes))], starts


def test_units_in_flight_stay_within_the_byte_budget() -> None:
    """A task starts only while the sizes running fit the budget; one too large runs alone."""
    sizes = [10, 10, 10, 1, 1, 1, 30, 1]
    tasks, starts = _recording_tasks(sizes)
    results = dict(_run_bounded(tasks, sizes, 4, 20, None))
    assert results == dict(enumerate(sizes))
    in_flight = sorted(total for _, total in starts)
    assert in_flight[-1] == 30  # the oversized task, alone
    assert in_flight[-2] == 20  # two of the 10s together, never a third beside them


def test_a_unit_that_must_wait_lets_a_smaller_later_one_start() -> None:
    sizes = [10, 15, 5]
    tasks, starts = _recording_tasks(sizes)
    assert sorted(dict(_run_bounded(tasks, sizes, 2, 20, None))) == [0, 1, 2]
    assert [index for index, _ in starts] == [0, 2, 1]


def test_block_mean_is_numpys_mean_over_the_cells() -> None:
    """Bit for bit, as the search always made it (numpy sums in another order only when the
    result is one voxel wide along x, which a block never is)."""
    rng = np.random.default_rng(3)
    for shape in [(6, 8, 10), (7, 9, 11), (2, 2, 4), (16, 2, 4), (3, 5, 40)]:
        data = rng.normal(0, 3, shape).astype(np.float32)
        even = data[: shape[0] // 2 * 2, : shape[1] // 2 * 2, : shape[2] // 2 * 2]
        cells = even.reshape(shape[0] // 2, 2, shape[1] // 2, 2, shape[2] // 2, 2)
        expected = cells.mean(axis=(1, 3, 5))
        got = block_mean2(data)
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_block_mean_of_the_working_volume_is_numpys_block_mean() -> None:
    """The overview (stride-2 block mean, partial blocks at the far edges averaged over their
    voxels) bit for bit as numpy's reshape mean made it before, and a factor 3 too."""
    from napari_cryoet_particles.detect.volume import WorkingVolume, block_mean

    rng = np.random.default_rng(5)
    for factor, shape in [(2, (12, 10, 14)), (2, (9, 11, 13)), (3, (9, 12, 7))]:
        data = rng.normal(0, 3, shape).astype(np.float32)
        work = WorkingVolume(data, 10.0, 1.0, shape, clip=1e9)
        pad = [(0, (-n) % factor) for n in shape]
        cells = [(n + p[1]) // factor for n, p in zip(shape, pad, strict=True)]
        split = (cells[0], factor, cells[1], factor, cells[2], factor)
        sums = np.pad(work.read((slice(None),) * 3), pad).reshape(split).sum(axis=(1, 3, 5))
        counts = np.pad(np.ones(shape, np.float32), pad).reshape(split).sum(axis=(1, 3, 5))
        expected = sums / (np.float32(factor**3) if not any(p[1] for p in pad) else counts)
        assert np.array_equal(block_mean(work, factor), expected)


def test_block_maxima_are_the_voxels_equal_to_their_local_maximum_above_the_floor() -> None:
    rng = np.random.default_rng(4)
    zscore = ndimage.gaussian_filter(rng.normal(0, 1, (20, 22, 24)), 1.0).astype(np.float32)
    zscore /= zscore.std()
    zscore[5, 6, 7] = zscore[5, 6, 8] = 9.0  # a tie: both are maxima
    core = (slice(3, 17), slice(4, 18), slice(2, 20))
    nearby = ndimage.maximum_filter(zscore, size=5, mode="nearest")
    peak = (nearby == zscore) & (zscore >= 1.0)
    expected = np.argwhere(peak[core]) + [s.start for s in core]

    where, values = _block_maxima(zscore.copy(), 2, 1.0, core, np.empty_like(zscore))
    assert np.array_equal(where, expected)
    assert np.array_equal(values, zscore[tuple(expected.T)])
    assert [5, 6, 7] in where.tolist() and [5, 6, 8] in where.tolist()

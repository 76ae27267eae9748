"""Multi-scale blob candidates, one per object whatever its size.

A single blob-filter scale either misses small particles (a wide filter averages a
5-nm protein away) or hits a large one many times (a narrow filter finds every dense patch
inside a ribosome). Here the volume is filtered at several blob radii — a geometric series from
the smallest to the largest expected particle — and each scale's response is turned into a
robust z-score (median / 1.4826·MAD of that scale's response), so the scales compare: a blob is
found at the scale where it stands out most from the noise. The filter is a difference of
Gaussians or a Laplacian of Gaussian (``CandidateParams.candidate_filter``). Candidates of every
scale, strongest first, suppress the weaker ones that lie within ``reach`` times the stronger
one's radius
(:func:`~.peaks.suppress_close`): the suppression follows the object's own size, so a large
particle gives one pick while two touching small particles, each found at a small radius, stay
two.

The volume is processed in blocks with halos — z-slabs of :data:`SLAB` planes, cut along y and x
when a plane is wider than :data:`PLANE_SIDE` — so memory is bounded by a block, not the
tomogram (the robust z-score is each block's). Radii from ``bin_from_radius`` up are
filtered on a 2× block mean of the volume, made block by block from the full-resolution one (the
large scales do not need full resolution, and this makes them 8× cheaper).

**Threads and memory.** The work is cut into units, one per block and scale (:class:`_Unit`),
run on a small thread pool (``threads`` workers, the detection's thread setting): scipy's
filters and numpy's loops release the GIL. The blocks, halos and robust z-scores do not depend
on the thread count, and the units' maxima are concatenated in the sequential order whatever
order they finish in, so the candidates are bit for bit those of one thread. A unit holds two
float32 arrays of its block with halo (the block read, filtered in place into the wide Gaussian
and then into the local maximum, and the narrow Gaussian that becomes the z-score; the LoG holds
one more while filtering) plus the indices of its core's voxels above the floor. At most
``threads`` units run at a time, and their blocks add up to at most :data:`UNITS_IN_FLIGHT` times
the largest unit's (a unit that does not fit waits, and smaller later ones may start meanwhile),
so however many threads, the peak is about two units. docs/detection.md has the time and memory
this measured.
"""

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from scipy import ndimage

from napari_cryoet_particles.detect.params import CandidateParams
from napari_cryoet_particles.detect.peaks import suppress_close
from napari_cryoet_particles.detect.volume import block_sums
from napari_cryoet_particles.jobs import Progress, run_job

Box = tuple[slice, slice, slice]
T = TypeVar("T")

#: z-planes per block (before halos).
SLAB = 128
#: Blocks are at most this many voxels along y and x (before halos): with :data:`SLAB` this
#: bounds the memory of the search (about three float32 arrays of a block with its halo).
PLANE_SIDE = 512
#: Worker threads of the search unless told otherwise (the detection passes its thread setting).
THREADS = 2
#: At most this many largest units' worth of block bytes are filtered at once, whatever the
#: thread count (see the module docstring).
UNITS_IN_FLIGHT = 2.0


@dataclass
class Candidates:
    """Blob candidates in working voxels (zyx), their strength (robust z) and radius (voxels)."""

    zyx: np.ndarray
    strength: np.ndarray
    radius: np.ndarray

    def __len__(self) -> int:
        return len(self.strength)

    def take(self, index: np.ndarray) -> "Candidates":
        return Candidates(self.zyx[index], self.strength[index], self.radius[index])


def blob_radii(min_radius: float, max_radius: float, step: float) -> np.ndarray:
    """Geometric series of radii (voxels) from ``min_radius`` to at least ``max_radius``."""
    low = max(1.0, float(min_radius))
    high = max(low, float(max_radius))
    count = 1 + int(np.ceil(np.log(high / low) / np.log(step) - 1e-9))
    return low * step ** np.arange(count)


def _sigma(radius: float) -> float:
    """The Gaussian sigma at which a 3D blob of ``radius`` responds most: ``r/√3``."""
    return max(0.5, radius / np.sqrt(3.0))


def _halo(radius: float, params: CandidateParams) -> int:
    """Voxels of context a scale needs around a slab core (filter support + peak window)."""
    if params.candidate_filter == "dog":
        support = params.truncate * params.sigma_ratio * (radius / np.sqrt(3.0))
    else:
        support = params.truncate * _sigma(radius)
    return int(np.ceil(support)) + _window(radius, params.peak_window) + 1


def _window(radius: float, peak_window: float) -> int:
    """Half-width of the local-maximum window at blob ``radius`` (``peak_window`` radii)."""
    return max(1, int(round(peak_window * radius)))


def block_mean2(data: np.ndarray) -> np.ndarray:
    """2× block mean (a trailing odd plane, row or column is dropped), with the values of
    ``reshape(…, 2, …, 2, …, 2).mean(axis=(1, 3, 5))`` (see :func:`~.volume.block_sums`)."""
    shape = [n - n % 2 for n in data.shape]
    total = block_sums(data[: shape[0], : shape[1], : shape[2]], 2)
    total /= 8
    return total


def dog_zscore(
    slab: np.ndarray, radius: float, sigma_ratio: float, truncate: float, in_place: bool = False
) -> np.ndarray:
    """Robust z-score of the DoG response ``G(σ) - G(sigma_ratio·σ)`` of ``slab`` (particles
    bright) at blob ``radius`` (``σ = r/√3``); Gaussians end at ``truncate`` sigmas.

    ``in_place``: ``slab`` may be overwritten (it then holds the wider Gaussian), which saves
    one array of its size.
    """
    sigma = _sigma(radius)
    response = ndimage.gaussian_filter(slab, sigma, mode="nearest", truncate=truncate)
    wide = ndimage.gaussian_filter(
        slab,
        sigma_ratio * sigma,
        mode="nearest",
        truncate=truncate,
        output=slab if in_place else None,
    )
    response -= wide
    del wide
    return robust_z(response)


def log_zscore(slab: np.ndarray, radius: float, truncate: float) -> np.ndarray:
    """Robust z-score of the negated Laplacian of Gaussian ``-∇²G(σ)`` of ``slab`` (particles
    bright) at blob ``radius`` (``σ = r/√3``); the Gaussian ends at ``truncate`` sigmas."""
    response = ndimage.gaussian_laplace(slab, _sigma(radius), mode="nearest", truncate=truncate)
    np.negative(response, out=response)
    return robust_z(response)


def blob_zscore(
    slab: np.ndarray, radius: float, params: CandidateParams, in_place: bool = False
) -> np.ndarray:
    """Robust z-score of the blob filter ``params.candidate_filter`` of ``slab`` (particles
    bright) at blob ``radius``; ``in_place``: ``slab`` may be overwritten."""
    if params.candidate_filter == "log":
        return log_zscore(slab, radius, params.truncate)
    return dog_zscore(slab, radius, params.sigma_ratio, params.truncate, in_place=in_place)


def robust_z(response: np.ndarray) -> np.ndarray:
    """``response`` made a robust z-score in place (median, 1.4826·MAD of a strided sample)."""
    sample = response.ravel()[:: max(1, response.size // 1_000_000)]
    median = float(np.median(sample))
    spread = 1.4826 * float(np.median(np.abs(sample - median)))
    response -= median
    response /= max(spread, 1e-12)
    return response


def _block_maxima(
    zscore: np.ndarray,
    window: int,
    floor: float,
    core: tuple[slice, slice, slice],
    scratch: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``zscore`` above ``floor`` inside ``core`` (a box of ``zscore``), in C
    order; ``scratch``, an array of its shape and type, is overwritten instead of allocating one.

    The local maximum is taken over the core and ``window`` around it only (the rest of the
    block's halo cannot change it), and compared only at the core's voxels above the floor (a
    few percent).
    """
    reach = grow_box(core, window, zscore.shape)
    nearby = ndimage.maximum_filter(
        zscore[reach],
        size=2 * window + 1,
        mode="nearest",
        output=None if scratch is None else scratch[reach],
    )
    inner = zscore[core]
    above = np.nonzero(inner >= floor)
    values = inner[above]
    peak = nearby[_inside(core, reach)][above] == values
    where = np.column_stack([axis[peak] for axis in above]) + [s.start for s in core]
    return where.reshape(-1, 3), values[peak]


def _split(n: int, side: int) -> list[tuple[int, int]]:
    """``[0, n)`` cut into the fewest near-equal parts of at most ``side``."""
    count = -(-n // side)
    edges = np.linspace(0, n, count + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def blocks(shape: tuple[int, int, int], slab: int, side: int = PLANE_SIDE) -> list[Box]:
    """Cores of the blocks a volume is searched in: ``slab`` z-planes by at most ``side``² voxels."""
    zs = [(z, min(shape[0], z + slab)) for z in range(0, shape[0], slab)]
    return [
        (slice(*z), slice(*y), slice(*x))
        for z in zs
        for y in _split(shape[1], side)
        for x in _split(shape[2], side)
    ]


def grow_box(core: Box, halo: int, shape: tuple[int, ...]) -> Box:
    """``core`` widened by ``halo`` voxels on every side, clipped to a volume of ``shape``."""
    return tuple(
        slice(max(0, s.start - halo), min(n, s.stop + halo))
        for s, n in zip(core, shape, strict=True)
    )  # type: ignore[return-value]


def _inside(box: Box, outer: Box) -> Box:
    """``box`` in the coordinates of the array read for ``outer``."""
    return tuple(
        slice(b.start - o.start, b.stop - o.start) for b, o in zip(box, outer, strict=True)
    )  # type: ignore[return-value]


@dataclass(frozen=True)
class _Unit:
    """One block at one scale: ``core`` (a box of ``shape``, the voxels of ``read``) searched at
    blob ``radius``, its halo included."""

    read: Callable[[Box], np.ndarray]
    shape: tuple[int, int, int]
    core: Box
    radius: float
    params: CandidateParams

    @property
    def box(self) -> Box:
        """The box read: the core grown by the scale's halo, inside the volume."""
        return grow_box(self.core, _halo(self.radius, self.params), self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of one float32 array of :attr:`box`."""
        return 4 * int(np.prod([s.stop - s.start for s in self.box]))

    def maxima(self) -> tuple[np.ndarray, np.ndarray]:
        """Maxima in the core (zyx in ``read``'s voxels) above the blob floor and their robust z.

        The block is read with this scale's halo (reading again per scale is cheaper than
        holding the widest read while filtering) and filtered in place; its robust z-score is
        that block's (see :func:`blob_zscore`).
        """
        part = self.box
        params = self.params
        data = np.asarray(self.read(part), dtype=np.float32)
        zscore = blob_zscore(data, self.radius, params, in_place=True)
        window = _window(self.radius, params.peak_window)
        where, values = _block_maxima(
            zscore, window, params.blob_floor, _inside(self.core, part), data
        )
        return where + [s.start for s in part], values


def _units(
    read: Callable[[Box], np.ndarray],
    shape: tuple[int, int, int],
    radii: list[float],
    params: CandidateParams,
    slab: int,
    side: int,
) -> list[_Unit]:
    """The units of one volume in the sequential order: block by block, each at every radius."""
    return [
        _Unit(read, shape, core, r, params) for core in blocks(shape, slab, side) for r in radii
    ]


def _next_fitting(
    pending: list[int], sizes: Sequence[int], running: Sequence[int], budget: float
) -> int | None:
    """The first of ``pending`` that may start beside ``running`` within ``budget``."""
    if not running:
        return pending[0] if pending else None
    free = budget - sum(sizes[i] for i in running)
    return next((i for i in pending if sizes[i] <= free), None)


def _run_bounded(
    tasks: Sequence[Callable[[], T]],
    sizes: Sequence[int],
    threads: int,
    budget: float,
    check: Callable[[], None] | None,
) -> Iterator[tuple[int, T]]:
    """Yield ``(index, result)`` of every task as it finishes.

    At most ``threads`` tasks run at a time, and the ``sizes`` of those running add up to at
    most ``budget`` (a task larger than that runs alone). When a thread is free, the first task
    in order that fits starts: a large task that must wait lets smaller later ones run beside
    the one running. ``check()`` runs before each start and after each finish (in the calling
    thread). When the consumer stops (an error, a cancel, ``close()``), tasks not started are
    dropped and the running ones finish first.
    """
    if threads <= 1:
        for index, task in enumerate(tasks):
            if check is not None:
                check()
            yield index, task()
        return
    pending = list(range(len(tasks)))
    with ThreadPoolExecutor(threads, thread_name_prefix="candidates") as pool:
        running: dict[Future[T], int] = {}
        try:
            while pending or running:
                while len(running) < threads:
                    index = _next_fitting(pending, sizes, list(running.values()), budget)
                    if index is None:
                        break
                    if check is not None:
                        check()
                    pending.remove(index)
                    running[pool.submit(tasks[index])] = index
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=running.__getitem__):
                    yield running.pop(future), future.result()
                    if check is not None:
                        check()
        finally:
            for future in running:
                future.cancel()


def bright_reader(read: Callable[[Box], np.ndarray]) -> Callable[[Box], np.ndarray]:
    """``read`` (the working volume's view: particles dark, a new array per box) with particles
    made bright, in place."""

    def read_bright(box: Box) -> np.ndarray:
        block = read(box)
        np.negative(block, out=block)
        return block

    return read_bright


def binned_reader(read: Callable[[Box], np.ndarray], chunk: int = 8) -> Callable[[Box], np.ndarray]:
    """``read`` of the 2× block mean (:func:`block_mean2`) of the volume ``read`` gives, made
    ``chunk`` binned planes at a time so the full-resolution box is never read whole."""

    def read_binned(box: Box) -> np.ndarray:
        z, y, x = box
        out = np.empty((z.stop - z.start, y.stop - y.start, x.stop - x.start), dtype=np.float32)
        for lo in range(z.start, z.stop, chunk):
            hi = min(z.stop, lo + chunk)
            full = read(
                (
                    slice(2 * lo, 2 * hi),
                    slice(2 * y.start, 2 * y.stop),
                    slice(2 * x.start, 2 * x.stop),
                )
            )
            out[lo - z.start : hi - z.start] = block_mean2(full)
        return out

    return read_binned


def multiscale_candidates_job(
    read: Callable[[Box], np.ndarray],
    shape: tuple[int, int, int],
    radii: np.ndarray,
    params: CandidateParams,
    check: Callable[[], None] | None = None,
    slab: int = SLAB,
    threads: int = THREADS,
    side: int = PLANE_SIDE,
) -> Iterator[Progress]:
    """Generator over units of one block at one scale (yields :class:`Progress` as each
    finishes); returns the :class:`Candidates`.

    ``read(box)`` gives the normalised volume with particles dark (the model's view); it is
    called from ``threads`` worker threads at once, so it must be thread-safe. Maxima of every
    scale with a robust z of at least ``params.blob_floor`` are candidates, then de-duplicated by
    size (:func:`suppress_by_size`, ``params.reach``). Radii from ``params.bin_from_radius`` up
    are searched on a 2× block mean of the volume, made block by block (:func:`binned_reader`).
    The result does not depend on ``threads``. Blocks are ``slab`` planes by at most ``side``²
    voxels (:func:`blocks`).
    """
    shape = tuple(int(n) for n in shape)  # type: ignore[assignment]
    fine = [float(r) for r in radii if r < params.bin_from_radius]
    coarse = [float(r) / 2.0 for r in radii if r >= params.bin_from_radius]
    binned_shape = tuple(n // 2 for n in shape)

    read_bright = bright_reader(read)
    units: list[tuple[_Unit, float, float]] = []  # unit, scale and offset to working voxels
    if fine:
        units += [(u, 1.0, 0.0) for u in _units(read_bright, shape, fine, params, slab, side)]
    if coarse and min(binned_shape) > 0:
        binned = binned_reader(read_bright)
        units += [(u, 2.0, 0.5) for u in _units(binned, binned_shape, coarse, params, slab, side)]
    if not units:
        return Candidates(np.zeros((0, 3)), np.zeros(0), np.zeros(0))
    sizes = [unit.nbytes for unit, _, _ in units]
    tasks = [unit.maxima for unit, _, _ in units]
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * len(units)
    runs = _run_bounded(tasks, sizes, threads, UNITS_IN_FLIGHT * max(sizes), check)
    for done, (index, result) in enumerate(runs, start=1):
        (unit, scale, offset), (where, values) = units[index], result
        found[index] = (where * scale + offset, values, np.full(len(values), unit.radius * scale))
        yield Progress(done, len(units), "blob candidates")
    zyx, strength, radius = (np.concatenate(parts) for parts in zip(*found, strict=True))
    found_all = Candidates(zyx.astype(float), strength.astype(float), radius)
    return suppress_by_size(found_all, params.reach)


def suppress_by_size(candidates: Candidates, reach: float) -> Candidates:
    """Strongest first; drop candidates within ``reach`` × the radius of a stronger kept one."""
    order = np.argsort(-candidates.strength, kind="stable")
    ordered = candidates.take(order)
    keep = suppress_close(ordered.zyx, reach * ordered.radius)
    return ordered.take(keep)


def suppress_by_extent(
    zyx: np.ndarray, radius: np.ndarray, extent: np.ndarray, reach: float
) -> np.ndarray:
    """Indices (of candidates ordered best first) to keep once each kept one suppresses the weaker
    ones within ``reach`` times the larger of its blob radius and its density's ``extent``
    (both in voxels; see :func:`~.describe.profile_extent_nm`)."""
    return suppress_close(zyx, reach * np.maximum(np.asarray(radius), np.asarray(extent)))


def multiscale_candidates(
    read: Callable[[Box], np.ndarray],
    shape: tuple[int, int, int],
    radii: np.ndarray,
    params: CandidateParams,
    threads: int = THREADS,
) -> Candidates:
    """:func:`multiscale_candidates_job` run to the end."""
    return run_job(multiscale_candidates_job(read, shape, radii, params, threads=threads))

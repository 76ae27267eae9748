"""Multi-scale blob candidates, one per object whatever its size.

A single difference-of-Gaussians scale either misses small particles (a wide filter averages a
5-nm protein away) or hits a large one many times (a narrow filter finds every dense patch
inside a ribosome). Here the volume is filtered at several blob radii — a geometric series from
the smallest to the largest expected particle — and each scale's response is turned into a
robust z-score (median / 1.4826·MAD of that scale's response), so the scales compare: a blob is
found at the scale where it stands out most from the noise. Candidates of every scale, strongest
first, suppress the weaker ones that lie within :data:`REACH` times the stronger one's radius
(:func:`~.peaks.suppress_close`): the suppression follows the object's own size, so a large
particle gives one pick while two touching small particles, each found at a small radius, stay
two.

The volume is processed in z-slabs with halos, so memory is bounded by a slab, not the tomogram;
radii from :data:`BIN_FROM_RADIUS` up are filtered on a 2× block mean of the volume (the large
scales do not need full resolution, and this makes them 8× cheaper).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_cryoet_particles.detect.peaks import suppress_close
from napari_cryoet_particles.jobs import Progress, run_job

#: ``G(σ) - G(SIGMA_RATIO·σ)`` with ``σ = r/√3``: the scale at which a 3D blob of radius r responds most.
SIGMA_RATIO = 1.6
#: A weaker candidate within this many radii of a stronger one (the stronger one's radius) is
#: dropped. Chosen on validation simulations (docs/detection.md).
REACH = 2.0
#: Radii (working voxels) from which the filter runs on a 2× binned slab.
BIN_FROM_RADIUS = 4.5
#: Ratio between successive radii.
RADIUS_STEP = 1.4
#: z-planes per slab (before halos).
SLAB = 128
#: Gaussian filters are truncated at this many sigmas (scipy: 4; 3 is a third faster, F1 within 0.005 on validation).
TRUNCATE = 3.0


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


def blob_radii(min_radius: float, max_radius: float, step: float = RADIUS_STEP) -> np.ndarray:
    """Geometric series of radii (voxels) from ``min_radius`` to at least ``max_radius``."""
    low = max(1.0, float(min_radius))
    high = max(low, float(max_radius))
    count = 1 + int(np.ceil(np.log(high / low) / np.log(step) - 1e-9))
    return low * step ** np.arange(count)


def _halo(radius: float) -> int:
    """Voxels of context a scale needs around a slab core (filter support + peak window)."""
    sigma = radius / np.sqrt(3.0)
    return int(np.ceil(TRUNCATE * SIGMA_RATIO * sigma)) + _window(radius) + 1


def _window(radius: float) -> int:
    """Half-width of the local-maximum window at blob ``radius``."""
    return max(1, int(round(0.8 * radius)))


def block_mean2(data: np.ndarray) -> np.ndarray:
    """2× block mean (a trailing odd plane, row or column is dropped)."""
    shape = [n - n % 2 for n in data.shape]
    data = data[: shape[0], : shape[1], : shape[2]]
    return data.reshape(shape[0] // 2, 2, shape[1] // 2, 2, shape[2] // 2, 2).mean(axis=(1, 3, 5))


def dog_zscore(slab: np.ndarray, radius: float) -> np.ndarray:
    """Robust z-score of the DoG response of ``slab`` (particles bright) at blob ``radius``."""
    sigma = max(0.5, radius / np.sqrt(3.0))
    response = ndimage.gaussian_filter(slab, sigma, mode="nearest", truncate=TRUNCATE)
    response -= ndimage.gaussian_filter(
        slab, SIGMA_RATIO * sigma, mode="nearest", truncate=TRUNCATE
    )
    sample = response.ravel()[:: max(1, response.size // 1_000_000)]
    median = float(np.median(sample))
    spread = 1.4826 * float(np.median(np.abs(sample - median)))
    response -= median
    response /= max(spread, 1e-12)
    return response


def _slab_maxima(
    zscore: np.ndarray, window: int, floor: float, core: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``zscore`` above ``floor`` whose z lies in ``core`` (start, stop)."""
    peak = ndimage.maximum_filter(zscore, size=2 * window + 1, mode="nearest") == zscore
    peak &= zscore >= floor
    peak[: core[0]] = False
    peak[core[1] :] = False
    where = np.argwhere(peak)
    return where, zscore[tuple(where.T)]


def _scan(
    read: Callable[[int, int], np.ndarray],
    depth: int,
    radii: list[float],
    floor: float,
    slab: int,
    check: Callable[[], None] | None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per slab: maxima (zyx in ``read``'s voxels), robust z and radius at every scale in ``radii``.

    ``read(lo, hi)`` returns planes ``lo:hi`` with particles bright.
    """
    if not radii:
        return
    halos = {r: _halo(r) for r in radii}
    outer = max(halos.values())
    for start in range(0, depth, slab):
        if check is not None:
            check()
        stop = min(depth, start + slab)
        lo, hi = max(0, start - outer), min(depth, stop + outer)
        block = read(lo, hi)
        zyx, strength, radius = [], [], []
        for r, halo in halos.items():
            a, b = max(0, start - halo), min(depth, stop + halo)
            z = dog_zscore(np.ascontiguousarray(block[a - lo : b - lo], dtype=np.float32), r)
            where, values = _slab_maxima(z, _window(r), floor, (start - a, stop - a))
            zyx.append(where + [a, 0, 0])
            strength.append(values)
            radius.append(np.full(len(values), r))
        yield np.concatenate(zyx), np.concatenate(strength), np.concatenate(radius)


def multiscale_candidates_job(
    read: Callable[[tuple[slice, slice, slice]], np.ndarray],
    shape: tuple[int, int, int],
    radii: np.ndarray,
    floor: float,
    check: Callable[[], None] | None = None,
    slab: int = SLAB,
) -> Iterator[Progress]:
    """Generator over slabs (yields :class:`Progress`); returns the :class:`Candidates`.

    ``read(box)`` gives the normalised volume with particles dark (the model's view); maxima of
    every scale with a robust z of at least ``floor`` are candidates, then de-duplicated by
    size (:func:`suppress_by_size`). Radii from :data:`BIN_FROM_RADIUS` up are searched on a 2×
    block mean of the volume, built slab by slab.
    """
    depth = int(shape[0])
    fine = [float(r) for r in radii if r < BIN_FROM_RADIUS]
    coarse = [float(r) / 2.0 for r in radii if r >= BIN_FROM_RADIUS]
    whole = (slice(None), slice(None))
    binned_parts: list[np.ndarray] = []
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def read_bright(lo: int, hi: int) -> np.ndarray:
        block = read((slice(lo, hi), *whole))
        np.negative(block, out=block)
        return block

    slabs = -(-depth // slab)
    total = slabs * (1 + bool(fine)) + (-(-(depth // 2) // slab) if coarse else 0)
    done = 0
    for start in range(0, depth, slab):
        if check is not None:
            check()
        if coarse:
            stop = min(depth, start + slab)
            binned_parts.append(block_mean2(read_bright(start, stop - (stop - start) % 2)))
        done += 1
        yield Progress(done, total, "blob candidates")
    for zyx, strength, radius in _scan(read_bright, depth, fine, floor, slab, check):
        found.append((zyx.astype(float), strength, radius))
        done += 1
        yield Progress(done, total, "blob candidates")
    if coarse:
        binned = np.concatenate(binned_parts)
        for zyx, strength, radius in _scan(
            lambda lo, hi: binned[lo:hi], len(binned), coarse, floor, slab, check
        ):
            found.append((zyx * 2.0 + 0.5, strength, radius * 2.0))
            done += 1
            yield Progress(done, total, "blob candidates")
    if not found:
        return Candidates(np.zeros((0, 3)), np.zeros(0), np.zeros(0))
    zyx, strength, radius = (np.concatenate(parts) for parts in zip(*found, strict=True))
    return suppress_by_size(Candidates(zyx.astype(float), strength.astype(float), radius))


def suppress_by_size(candidates: Candidates, reach: float = REACH) -> Candidates:
    """Strongest first; drop candidates within ``reach`` × the radius of a stronger kept one."""
    order = np.argsort(-candidates.strength, kind="stable")
    ordered = candidates.take(order)
    keep = suppress_close(ordered.zyx, reach * ordered.radius)
    return ordered.take(keep)


def suppress_by_extent(zyx: np.ndarray, radius: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """Indices (of candidates ordered best first) to keep once each kept one suppresses the weaker
    ones within :data:`REACH` times the larger of its blob radius and its density's ``extent``
    (both in voxels; see :func:`~.describe.profile_extent_nm`)."""
    return suppress_close(zyx, REACH * np.maximum(np.asarray(radius), np.asarray(extent)))


def multiscale_candidates(
    read: Callable[[tuple[slice, slice, slice]], np.ndarray],
    shape: tuple[int, int, int],
    radii: np.ndarray,
    floor: float,
) -> Candidates:
    """:func:`multiscale_candidates_job` run to the end."""
    return run_job(multiscale_candidates_job(read, shape, radii, floor))

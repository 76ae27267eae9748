"""From a user's tomogram to the volume the model sees: checks, rescaling, contrast, polarity, mask.

Real tomograms differ from the training data in voxel size, contrast range and sometimes polarity.
:class:`WorkingVolume` resamples the input to the model's working voxel size (chunk by chunk, so a
large memory-mapped file is never loaded whole), and hands out normalised float32 tiles in which
particles are dark, whatever the input's polarity.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from napari_cryoet_particles.detect.config import SUPPORTED_VOXEL_SIZE
from napari_cryoet_particles.detect.params import PrepareParams
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.units import DEFAULT_VOXEL_SIZE, resolve_voxel_size
from napari_cryoet_particles.io.volume import Volume, release_pages
from napari_cryoet_particles.model.normalize import DEFAULT_CLIP, NormStats, normalize, robust_stats

#: Input voxels per working voxel closer than this to 1 are not resampled at all.
RESAMPLE_TOLERANCE = 0.02
#: Output z-slices resampled at a time (bounds memory for large inputs).
RESAMPLE_CHUNK = 16
#: Input voxels read (and their memory-mapped pages released) at a time by WorkingVolume.read.
READ_VOXELS = 4 * 1024 * 1024
#: Overview planes low-passed at a time (bounds the memory of the mask and the skewness).
OVERVIEW_CHUNK = 16
#: Overviews up to this many voxels keep their chunks' low-pass and local variance
#: (:class:`OverviewFilters`: two float32 copies, 128 MB at most) instead of filtering again.
KEEP_OVERVIEW_VOXELS = 16 * 1024 * 1024
#: Values sampled to bracket a median computed by chunks (:func:`chunked_median`).
PROBE_SAMPLES = 1_000_000
#: Gaussian filters of the overview reach this many sigmas (scipy's default).
GAUSSIAN_TRUNCATE = 4.0


def check_volume(volume: Volume, voxel_size: float | None = None, min_size: int = 8) -> float:
    """Refuse volumes detection cannot work on; return the voxel size (Å) to use.

    ``voxel_size`` overrides the volume's; a missing one (header 0) is taken as
    :data:`~napari_cryoet_particles.io.units.DEFAULT_VOXEL_SIZE` with a warning
    (:func:`~napari_cryoet_particles.io.units.resolve_voxel_size`).
    """
    path: Path | str | None = volume.path
    data = volume.data
    if data.ndim != 3:
        raise CryoetInputError(
            path, f"expected a 3D tomogram, got a {data.ndim}D array of shape {data.shape}"
        )
    if min(data.shape) < min_size:
        raise CryoetInputError(
            path, f"volume of shape {data.shape} is too small to detect in (each side ≥ {min_size})"
        )
    if not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
        raise CryoetInputError(path, f"unsupported data type {data.dtype}")
    size = resolve_voxel_size(
        volume.voxel_size, voxel_size, default=DEFAULT_VOXEL_SIZE, what=path or "volume"
    )
    low, high = SUPPORTED_VOXEL_SIZE
    if not np.isfinite(size) or not low <= float(size) <= high:
        raise CryoetInputError(
            path,
            f"voxel size {size:g} Å is outside what detection supports ({low:g}-{high:g} Å); "
            "check the header or give the voxel size explicitly",
        )
    return float(size)


def _finite_and_spread(data: np.ndarray, path: Path | str | None) -> tuple[float, float]:
    """Mean and standard deviation over the whole volume, a slab at a time; refuse NaN and constant data."""
    step = max(1, (4 * 1024 * 1024) // max(1, int(np.prod(data.shape[1:]))))
    total = 0.0
    total_sq = 0.0
    count = 0
    bad = 0
    low, high = np.inf, -np.inf
    wide = np.dtype(data.dtype).itemsize > 4
    for z in range(0, data.shape[0], step):
        slab = np.asarray(data[z : z + step], dtype=np.float64 if wide else np.float32)
        slab_low, slab_high = float(slab.min()), float(slab.max())
        if bad or not (np.isfinite(slab_low) and np.isfinite(slab_high)):
            # NaN makes min and max NaN, Inf makes one of them infinite: only then count
            bad += int(slab.size - np.count_nonzero(np.isfinite(slab)))
            continue
        total += float(slab.sum(dtype=np.float64))
        total_sq += float(np.square(slab, dtype=np.float64).sum())
        count += slab.size
        low = min(low, slab_low)
        high = max(high, slab_high)
        release_pages(data)
    if bad:
        raise CryoetInputError(path, f"holds {bad} NaN/Inf value{'s' if bad != 1 else ''}")
    if high - low <= 0:
        raise CryoetInputError(
            path, f"the volume is constant (every voxel is {low:g}): nothing to detect"
        )
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
    if std <= 1e-12 * max(1.0, abs(mean)):
        raise CryoetInputError(
            path, "the volume has no contrast (standard deviation ~0): nothing to detect"
        )
    return mean, std


def resample(data: np.ndarray, ratio: float, chunk: int = RESAMPLE_CHUNK) -> np.ndarray:
    """Resample a volume so that one output voxel spans ``ratio`` input voxels (linear interpolation).

    Output voxel ``j`` is centred on input coordinate ``(j + 0.5) * ratio - 0.5``. When shrinking,
    a Gaussian of sigma ``(ratio - 1) / 2`` removes what would alias (as scikit-image does).
    Works through z-chunks of the output so only a slab of the input is in memory at a time.
    """
    shape_in = np.array(data.shape)
    shape_out = np.maximum(1, np.round(shape_in / ratio).astype(int))
    sigma = max(0.0, (ratio - 1.0) / 2.0)
    margin = int(np.ceil(4 * sigma)) + 2
    out = np.empty(tuple(shape_out), dtype=np.float32)
    yy = (np.arange(shape_out[1]) + 0.5) * ratio - 0.5
    xx = (np.arange(shape_out[2]) + 0.5) * ratio - 0.5
    for z0 in range(0, shape_out[0], chunk):
        z1 = min(shape_out[0], z0 + chunk)
        zz = (np.arange(z0, z1) + 0.5) * ratio - 0.5
        lo = max(0, int(np.floor(zz.min())) - margin)
        hi = min(shape_in[0], int(np.ceil(zz.max())) + margin + 1)
        slab = np.asarray(data[lo:hi], dtype=np.float32)
        if sigma > 0:
            slab = ndimage.gaussian_filter(slab, sigma, mode="nearest")
        grid = np.meshgrid(zz - lo, yy, xx, indexing="ij")
        out[z0:z1] = ndimage.map_coordinates(slab, grid, order=1, mode="nearest")
    return out


@dataclass
class WorkingVolume:
    """The model's view of a tomogram: input voxels rescaled to ``voxel_size`` Å, normalised.

    ``ratio`` is input voxels per working voxel; working voxel ``j`` is centred on input
    coordinate ``(j + 0.5) * ratio - 0.5``. ``read`` returns the model's normalisation (robust
    z-score clipped to ``±clip``, see :mod:`napari_cryoet_particles.model.normalize`) times
    ``sign``, as float32, so particles are dark (negative) whatever the input's polarity.
    """

    raw: np.ndarray
    voxel_size: float
    ratio: float
    input_shape: tuple[int, int, int]
    centre: float = 0.0
    scale: float = 1.0
    sign: float = 1.0
    clip: float = DEFAULT_CLIP

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.raw.shape)  # type: ignore[return-value]

    def read(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        """The normalised box (slices of step 1), as a new float32 array.

        Read :data:`READ_VOXELS` at a time, releasing a memory-mapped file's pages after each
        part, so reading a box costs the box itself and little more.
        """
        stats = NormStats(self.centre, self.scale, self.clip)
        ranges = [range(*s.indices(n)) for s, n in zip(box, self.shape, strict=True)]
        out = np.empty(tuple(len(r) for r in ranges), dtype=np.float32)
        step = max(1, READ_VOXELS // max(1, len(ranges[1]) * len(ranges[2])))
        for lo in range(0, len(ranges[0]), step):
            z = slice(ranges[0].start + lo, ranges[0].start + min(len(ranges[0]), lo + step))
            out[lo : lo + step] = normalize(self.raw[(z, box[1], box[2])], stats)
            release_pages(self.raw)
        if self.sign < 0:
            np.negative(out, out=out)
        return out

    def to_input(self, zyx: np.ndarray) -> np.ndarray:
        """Working voxel coordinates to input voxel coordinates."""
        return (np.asarray(zyx, dtype=float) + 0.5) * self.ratio - 0.5

    def from_input(self, zyx: np.ndarray) -> np.ndarray:
        """Input voxel coordinates to working voxel coordinates."""
        return (np.asarray(zyx, dtype=float) + 0.5) / self.ratio - 0.5


def make_working_volume(
    volume: Volume, input_voxel_size: float, working_voxel_size: float
) -> WorkingVolume:
    """Rescale (if needed) and measure the contrast of ``volume``; polarity is set later."""
    _finite_and_spread(volume.data, volume.path)
    ratio = working_voxel_size / input_voxel_size
    if abs(ratio - 1.0) <= RESAMPLE_TOLERANCE:
        raw = volume.data
        ratio = 1.0
        size = input_voxel_size
    else:
        raw = resample(volume.data, ratio)
        size = working_voxel_size
    try:
        norm = robust_stats(raw)
    except CryoetInputError as error:
        raise CryoetInputError(volume.path, error.problem) from None
    return WorkingVolume(
        raw, size, ratio, volume.shape, centre=norm.center, scale=norm.scale, clip=norm.clip
    )


def block_sums(data: np.ndarray, factor: int) -> np.ndarray:
    """Sums over ``factor``³ blocks of ``data`` (each side a multiple of ``factor``).

    For ``factor`` 2 the cells are added in numpy's own order for that reduction (from zero,
    each x pair summed first, the pairs added in zyx order), so the values are those of
    ``reshape(…, 2, …, 2, …, 2).sum(axis=(1, 3, 5))``, about 7× faster: that reduction runs an
    inner loop of two elements per output voxel.
    """
    if factor != 2:
        nz, ny, nx = (n // factor for n in data.shape)
        return data.reshape(nz, factor, ny, factor, nx, factor).sum(axis=(1, 3, 5))
    total = np.zeros([n // 2 for n in data.shape], dtype=np.result_type(data.dtype, np.float32))
    for z in (0, 1):
        for y in (0, 1):
            total += data[z::2, y::2, 0::2] + data[z::2, y::2, 1::2]
    return total


def block_mean(
    work: WorkingVolume, factor: int, shape: tuple[int, int, int] | None = None, chunk: int = 8
) -> np.ndarray:
    """Mean over ``factor``³ blocks of the normalised working volume (edge blocks may be partial).

    ``shape`` (at least the number of blocks along each axis) extends the result by repeating
    its last blocks, as ``np.pad(mode="edge")`` would, without a second copy.
    """
    size = np.array(work.shape)
    blocks = -(-size // factor)
    out = np.empty(tuple(blocks) if shape is None else shape, dtype=np.float32)
    for bz in range(0, blocks[0], chunk):
        bz1 = min(blocks[0], bz + chunk)
        z0, z1 = bz * factor, min(size[0], bz1 * factor)
        slab = work.read((slice(z0, z1), slice(None), slice(None)))
        pad = [(0, (-n) % factor) for n in slab.shape]
        weights: np.ndarray | np.float32 = np.float32(factor**3)
        if any(p[1] for p in pad):  # partial blocks at the far edges: count their voxels
            nz, ny, nx = (-(-n // factor) for n in slab.shape)
            counts = np.pad(np.ones(slab.shape, np.float32), pad)
            weights = counts.reshape(nz, factor, ny, factor, nx, factor).sum(axis=(1, 3, 5))
            slab = np.pad(slab, pad)
        out[bz:bz1, : blocks[1], : blocks[2]] = block_sums(slab, factor) / weights
    for axis, n in enumerate(blocks):
        inside = [slice(None)] * 3
        inside[axis] = slice(n - 1, n)
        beyond = [slice(None)] * 3
        beyond[axis] = slice(n, None)
        out[tuple(beyond)] = out[tuple(inside)]
    return out


def _smoothed(overview: np.ndarray, z0: int, z1: int, sigma: float, margin: int = 0):
    """(planes z0-margin … z1+margin of the overview, their Gaussian low-pass, offset of z0 in them).

    The low-pass of a z-range equals that of the whole overview there: the planes it reads
    reach the Gaussian's support beyond the range (``margin`` more planes come back exact too).
    """
    reach = int(GAUSSIAN_TRUNCATE * sigma + 0.5) + margin
    lo, hi = max(0, z0 - reach), min(len(overview), z1 + reach)
    part = overview[lo:hi]
    smooth = ndimage.gaussian_filter(part, sigma, mode="nearest", truncate=GAUSSIAN_TRUNCATE)
    return part, smooth, z0 - lo


def _filtered(
    overview: np.ndarray, z0: int, z1: int, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Planes z0:z1 of the overview's low-pass and of its local variance (the local 3³ mean
    square of the overview minus its low-pass)."""
    part, smooth, at = _smoothed(overview, z0, z1, sigma, margin=1)
    local = ndimage.uniform_filter(np.square(part - smooth), size=3, mode="nearest")
    return smooth[at : at + z1 - z0], local[at : at + z1 - z0]


class OverviewFilters:
    """The low-pass and local variance of an overview, chunk by chunk, for the mask and the
    skewness. On an overview of at most :data:`KEEP_OVERVIEW_VOXELS` each chunk is filtered
    once and kept (the mask reads the local variance three times, the skewness the low-pass
    once more); on a larger one each read filters again, so memory stays a few chunks."""

    def __init__(self, overview: np.ndarray, sigma: float = 1.0, chunk: int = OVERVIEW_CHUNK):
        self.overview, self.sigma = overview, sigma
        depth = len(overview)
        self.chunks = [(z0, min(depth, z0 + chunk)) for z0 in range(0, depth, chunk)]
        self._kept: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] | None = (
            {} if overview.size <= KEEP_OVERVIEW_VOXELS else None
        )

    def _both(self, z0: int, z1: int) -> tuple[np.ndarray, np.ndarray]:
        if self._kept is None:
            return _filtered(self.overview, z0, z1, self.sigma)
        if (z0, z1) not in self._kept:
            self._kept[(z0, z1)] = _filtered(self.overview, z0, z1, self.sigma)
        return self._kept[(z0, z1)]

    def low_pass(self, z0: int, z1: int) -> np.ndarray:
        return self._both(z0, z1)[0]

    def local_variance(self, z0: int, z1: int) -> np.ndarray:
        return self._both(z0, z1)[1]


def slab_mask(
    overview: np.ndarray,
    params: PrepareParams,
    sigma: float = 1.0,
    chunk: int = OVERVIEW_CHUNK,
    filters: OverviewFilters | None = None,
) -> np.ndarray:
    """Boolean mask (same shape as ``overview``) of the z-range holding the sample.

    Outside the ice slab a reconstruction holds noise only, which the block mean of ``overview``
    already averaged away; inside, particles and membranes keep the low-passed volume structured.
    Only when the per-z standard deviation of the low-passed overview varies by more than
    ``params.mask_contrast`` times is anything masked: Otsu's threshold splits the profile, the
    slices from the first to the last one above it (plus two on each side) are kept, and so is
    every slice whose deviation is at least ``params.mask_quiet`` times the median of the slices
    above the threshold
    (only clearly quiet slices go). A volume full of sample, as most simulations are, is searched whole. Flat regions
    (e.g. zero-padding around a reconstruction) are masked out everywhere.

    Works through ``chunk`` planes at a time (the low-pass of a chunk is exact, see
    :func:`_smoothed`; the median of the local variance is :func:`chunked_median`), so beyond
    the overview it holds the mask and a few chunks (all of them, filtered once, when
    ``filters`` keeps them: :class:`OverviewFilters`; it must be made with the same ``sigma``).
    """
    filters = filters or OverviewFilters(overview, sigma, chunk)
    depth = len(overview)
    profile = np.empty(depth)
    probe, step = [], max(1, overview.size // PROBE_SAMPLES)
    for z0, z1 in filters.chunks:
        profile[z0:z1] = filters.low_pass(z0, z1).reshape(z1 - z0, -1).std(axis=1)
        probe.append(filters.local_variance(z0, z1).ravel()[::step].copy())
    keep = np.ones(depth, dtype=bool)
    if len(profile) >= 8 and profile.max() > params.mask_contrast * max(profile.min(), 1e-12):
        above = np.flatnonzero(profile > threshold_otsu(profile))
        keep[:] = False
        keep[max(0, above[0] - 2) : above[-1] + 3] = True
        keep |= profile >= params.mask_quiet * float(np.median(profile[above]))
    median = chunked_median(filters.local_variance, filters.chunks, np.concatenate(probe))
    floor = 1e-6 * max(median, 1e-12)
    mask = np.empty(overview.shape, dtype=bool)
    for z0, z1 in filters.chunks:
        mask[z0:z1] = filters.local_variance(z0, z1) > floor
        mask[z0:z1] &= keep[z0:z1, None, None]
    return mask


def chunked_median(
    part: Callable[[int, int], np.ndarray],
    chunks: list[tuple[int, int]],
    probe: np.ndarray | None = None,
) -> float:
    """``np.median`` of the concatenated ``part(z0, z1)`` over ``chunks``, exactly, without
    holding them all: a sample of the values (``probe``; a strided one if not given) brackets
    the median, a pass counts the values below the bracket and keeps those inside it, and the
    middle one(s) are picked from those (all values are held only if the bracket missed)."""
    if probe is None:
        pieces, step = [], 0
        for z0, z1 in chunks:
            values = part(z0, z1).ravel()
            step = step or max(1, values.size * len(chunks) // PROBE_SAMPLES)
            pieces.append(values[::step].copy())  # a view would keep the chunk alive
        probe = np.concatenate(pieces)
    low, high = np.quantile(probe, [0.48, 0.52]).astype(probe.dtype)
    below = equal_low = equal_high = total = 0
    inside = []
    for z0, z1 in chunks:
        values = part(z0, z1).ravel()
        total += values.size
        below += int(np.count_nonzero(values < low))
        equal_low += int(np.count_nonzero(values == low))
        equal_high += int(np.count_nonzero(values == high)) if high != low else 0
        inside.append(values[(values > low) & (values < high)])
    between = np.sort(np.concatenate(inside))
    edges = np.cumsum([below, equal_low, len(between), equal_high])

    def ranked(rank: int):
        if rank < edges[0] or rank >= edges[3]:
            return None
        if rank < edges[1]:
            return low
        if rank < edges[2]:
            return between[rank - edges[1]]
        return high

    middle = [ranked((total - 1) // 2), ranked(total // 2)]
    if any(value is None for value in middle):
        return float(np.median(np.concatenate([part(z0, z1).ravel() for z0, z1 in chunks])))
    return float(np.mean(np.array(middle, dtype=probe.dtype)))


def particle_skewness(
    overview: np.ndarray,
    mask: np.ndarray | None = None,
    sigma: float = 1.0,
    chunk: int = OVERVIEW_CHUNK,
    filters: OverviewFilters | None = None,
) -> float:
    """Skewness of the low-passed overview: negative when the dense objects are dark.

    The bias-corrected sample skewness (as ``scipy.stats.skew(bias=False)``) of the voxels in
    ``mask`` (all when it is empty), from float64 power sums over ``chunk`` planes at a time
    (``filters``: the low-pass already made for the mask, same ``sigma``).
    """
    filters = filters or OverviewFilters(overview, sigma, chunk)
    use_mask = mask is not None and bool(mask.any())
    sums = np.zeros(4)
    for z0, z1 in filters.chunks:
        values = filters.low_pass(z0, z1)
        values = (values[mask[z0:z1]] if use_mask else values.ravel()).astype(np.float64)
        sums += [values.size, values.sum(), np.square(values).sum(), (values**3).sum()]
    n = sums[0]
    if n <= 2:
        return 0.0
    mean = sums[1] / n
    m2 = sums[2] / n - mean**2
    m3 = sums[3] / n - 3 * mean * sums[2] / n + 2 * mean**3
    if m2 <= 1e-14 * max(1.0, sums[2] / n):
        return 0.0
    return float(m3 / m2**1.5 * np.sqrt(n * (n - 1)) / (n - 2))


def low_pass_box(overview: np.ndarray, box: tuple[slice, slice, slice], sigma: float) -> np.ndarray:
    """``gaussian_filter(overview, sigma, mode="nearest")[box]``, reading only around ``box``."""
    reach = int(GAUSSIAN_TRUNCATE * sigma + 0.5)
    outer = tuple(
        slice(max(0, s.start - reach), min(n, s.stop + reach))
        for s, n in zip(box, overview.shape, strict=True)
    )
    smooth = ndimage.gaussian_filter(
        overview[outer], sigma, mode="nearest", truncate=GAUSSIAN_TRUNCATE
    )
    return smooth[
        tuple(slice(s.start - o.start, s.stop - o.start) for s, o in zip(box, outer, strict=True))
    ]


def decide_sign(polarity: str, skewness: float, bright_above: float) -> float:
    """+1 keeps the volume, -1 inverts it, so that particles end up dark.

    ``auto``: particles are few, dense objects in a mostly empty volume, so the low-passed
    histogram has a long tail on the particles' side. A positive skewness beyond
    ``bright_above`` (``PrepareParams.polarity_skewness``) means the tail is bright: the volume
    is inverted.
    """
    if polarity == "dark":
        return 1.0
    if polarity == "bright":
        return -1.0
    return -1.0 if skewness > bright_above else 1.0

"""More like these from a few examples the detector need not propose: a reference searched by
normalised cross-correlation.

The like head of :mod:`.refine` compares shapes among the detector's own candidates, so it can
only find objects the detector proposes. A user who wants the centres of hollow virus-like
particles, say, adds points where the detector found nothing. Here those points are the
reference: the examples' crops are averaged over shells around their centres (a **spherical
average**: the reference then matches an object in any orientation, and a hollow shell, whose
centre holds no density of its own, is described by its ring), at the examples' own scale — the
reach of the crops grows until the examples' average profile has ended. The whole volume is then
searched by local normalised cross-correlation (``scipy.signal.fftconvolve`` for the three
sums), the examples are moved to the correlation's peak near them (a click is rarely exactly on a
centre) and the reference rebuilt once, and the peaks above a threshold set by the examples' own
correlation (a fraction of the weakest example's, at least a robust z over the volume's) are
taken greedily, one per example radius, none whose box crosses the volume's faces.

Measured on the real HIV-1 VLP volume (tests/data, 40 Å, 9 annotated VLPs): any 3 centres as
examples (6 triples tried) give picks within half a radius of all 9 centres, 11 picks (the two
more on partial VLPs the annotation leaves out), well under a second of correlation.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, signal

from napari_cryoet_particles.detect.peaks import pick_peaks
from napari_cryoet_particles.detect.volume import check_volume, make_working_volume
from napari_cryoet_particles.io.coords import face_distance
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.tomogram import Volume
from napari_cryoet_particles.io.units import nm_to_voxels, voxels_to_nm
from napari_cryoet_particles.jobs import CancelToken, Job, Progress

#: The examples' crops first reach this many times the largest radius searched for ...
REACH_FACTOR = 1.5
#: ... and 1.5 times as far (up to this many times, and a third of the volume's smallest side)
#: while the examples' profile has not ended: while its outer quarter still differs from the
#: volume's median by more than :data:`ENDED_FRACTION` of its largest difference. (HIV VLPs
#: searched with the default 7-27 nm: the first reach, 5 voxels, lies inside the hollow
#: centre, whose density differs from the volume's as much as the shell does.)
MAX_REACH_GROWTH = 6
ENDED_FRACTION = 0.25
#: The search runs on voxels coarse enough that the first reach is at most this many voxels.
MAX_REACH_VOXELS = 20
#: An example's object ends at the outermost shell whose mean differs from the background (the
#: outermost quarter of shells) by this fraction of the largest difference.
EXTENT_FRACTION = 0.25
#: The reference ball reaches this much beyond the extent (fraction, and at least 2 voxels), so it
#: holds the object's border against the background.
REFERENCE_MARGIN = 0.2
#: Peaks must reach this fraction of the weakest example's correlation (HIV VLPs, 6 triples of
#: examples: the 9 VLPs at 0.35-0.52, the next peaks 0.22-0.27 on partial VLPs, then below 0.2;
#: the weakest example at 0.38-0.47) ...
EXAMPLE_FRACTION = 0.5
#: ... and lie this many robust standard deviations above the volume's median correlation.
MIN_ROBUST_Z = 4.0
#: An example moves to the correlation's peak within this fraction of the extent.
SNAP_FRACTION = 0.35


@dataclass
class ExampleMatches:
    """Objects like the examples: positions (input voxels, zyx) best first, their correlation
    with the reference, and the reference's scale."""

    zyx: np.ndarray
    score: np.ndarray
    radius_nm: float
    threshold: float
    example_scores: np.ndarray
    info: dict[str, object] = field(default_factory=dict)


def spherical_profile(data: np.ndarray, points: np.ndarray, reach: int) -> np.ndarray:
    """Mean of ``data`` in 1-voxel shells around each of ``points`` (voxels of ``data``),
    averaged over the points: (reach,) values, shell ``k`` from ``k`` to ``k + 1`` voxels
    (crops edge-padded beyond the faces)."""
    axis = np.arange(-reach, reach + 1, dtype=float)
    distance = np.sqrt(
        axis[:, None, None] ** 2 + axis[None, :, None] ** 2 + axis[None, None, :] ** 2
    )
    shells = np.floor(distance).astype(int)
    upper = np.asarray(data.shape) - 1
    total = np.zeros(reach)
    for point in np.clip(np.rint(points).astype(int), 0, upper):
        box = tuple(slice(p - reach, p + reach + 1) for p in point)
        low = np.maximum(0, -np.asarray([b.start for b in box]))
        high = np.maximum(0, np.asarray([b.stop for b in box]) - np.asarray(data.shape))
        inside = tuple(slice(max(0, b.start), b.stop) for b in box)
        crop = np.pad(data[inside], list(zip(low, high, strict=True)), mode="edge")
        total += ndimage.mean(crop, shells, index=np.arange(reach))
    return total / len(points)


def examples_profile(data: np.ndarray, points: np.ndarray, reach: int, largest: int) -> np.ndarray:
    """The examples' spherical profile out to ``reach`` voxels, or as much farther (1.5 times at
    a time, :data:`MAX_REACH_GROWTH` times, up to ``largest``) as it takes to end
    (:func:`profile_ended`)."""
    for _ in range(MAX_REACH_GROWTH):
        profile = spherical_profile(data, points, min(reach, largest))
        if reach >= largest or profile_ended(profile):
            break
        reach = int(np.ceil(1.5 * reach))
    return profile


def profile_ended(profile: np.ndarray) -> bool:
    """Whether a spherical profile (of a volume normalised to median 0) has come back to the
    volume's level in its outer quarter (:data:`ENDED_FRACTION`)."""
    outer = np.abs(profile[-max(2, len(profile) // 4) :])
    return bool(outer.max() <= ENDED_FRACTION * np.abs(profile).max())


def profile_extent(profile: np.ndarray, fraction: float = EXTENT_FRACTION) -> float:
    """Radius (voxels) where the object of a spherical profile ends: the outer edge of the
    outermost shell differing from the background (the outer quarter's median) by ``fraction``
    of the largest difference."""
    background = np.median(profile[-max(2, len(profile) // 4) :])
    deviation = np.abs(profile - background)
    return float(np.flatnonzero(deviation > fraction * deviation.max()).max() + 1)


def reference(profile: np.ndarray, extent: float) -> tuple[np.ndarray, np.ndarray]:
    """(reference volume, ball mask): the spherical profile turned around its centre out to
    the extent plus :data:`REFERENCE_MARGIN`."""
    radius = extent + max(2.0, REFERENCE_MARGIN * extent)
    half = int(np.ceil(radius))
    axis = np.arange(-half, half + 1, dtype=float)
    distance = np.sqrt(
        axis[:, None, None] ** 2 + axis[None, :, None] ** 2 + axis[None, None, :] ** 2
    )
    shells = np.arange(len(profile)) + 0.5
    values = np.interp(distance, shells, profile)
    return values.astype(np.float32), distance <= radius


def normalised_correlation(data: np.ndarray, template: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Local normalised cross-correlation of ``data`` with ``template`` inside ``mask`` (same
    shape, odd sides) at every voxel: the template's zero-mean unit-norm values against the
    data's mean-removed, variance-normalised neighbourhood under the mask (−1 to 1)."""
    weights = mask.astype(np.float32)
    count = float(weights.sum())
    values = np.where(mask, template, 0.0).astype(np.float32)
    values[mask] -= values[mask].mean()
    values /= max(float(np.sqrt((values**2).sum())), 1e-12)
    flip = (slice(None, None, -1),) * 3
    numerator = signal.fftconvolve(data, values[flip], mode="same")
    local_sum = signal.fftconvolve(data, weights[flip], mode="same")
    local_squares = signal.fftconvolve(data * data, weights[flip], mode="same")
    variance = np.maximum(local_squares - local_sum**2 / count, 1e-6 * count)
    return (numerator / np.sqrt(variance)).astype(np.float32)


def _scores_near(ncc: np.ndarray, points: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """(each point moved to the largest correlation within ``reach`` voxels, that correlation)."""
    moved = np.empty_like(points)
    scores = np.empty(len(points))
    upper = np.asarray(ncc.shape) - 1
    for row, point in enumerate(np.clip(np.rint(points).astype(int), 0, upper)):
        low = np.maximum(point - reach, 0)
        box = ncc[
            tuple(
                slice(lo, hi + 1)
                for lo, hi in zip(low, np.minimum(point + reach, upper), strict=True)
            )
        ]
        best = np.unravel_index(int(np.argmax(box)), box.shape)
        moved[row] = low + np.asarray(best)
        scores[row] = float(box[best])
    return moved, scores


def _robust_floor(ncc: np.ndarray, z: float) -> float:
    sample = ncc[::2, ::2, ::2]
    median = float(np.median(sample))
    spread = 1.4826 * float(np.median(np.abs(sample - median)))
    return median + z * spread


def check_examples(positives: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The examples as an (N, 3) array inside a volume of ``shape``; a clear error otherwise."""
    points = np.asarray(positives, dtype=float).reshape(-1, 3)
    if not len(points):
        raise CryoetInputError(None, "no example: accept or add a few points of the kind you want")
    outside = np.any((points < -0.5) | (points > np.asarray(shape) - 0.5), axis=1)
    if outside.any():
        raise CryoetInputError(
            None, f"{int(outside.sum())} example(s) lie outside the tomogram of shape {shape}"
        )
    return points


def example_search_job(
    volume: Volume,
    positives: np.ndarray,
    max_diameter_nm: float,
    voxel_size: float | None = None,
    cancel: CancelToken | None = None,
) -> Job[ExampleMatches]:
    """Find every object like the examples at ``positives`` (input voxels, zyx) in ``volume``.

    ``max_diameter_nm`` (the largest size searched for) sets how far the examples' crops first
    reach; the reach then grows with the examples (module docstring). Yields :class:`Progress`;
    returns :class:`ExampleMatches`.
    """
    input_size = check_volume(volume, voxel_size)
    positives = check_examples(positives, volume.shape)
    check = None if cancel is None else cancel.check
    reach_nm = REACH_FACTOR * max_diameter_nm / 2
    working = max(input_size, input_size * nm_to_voxels(reach_nm, input_size) / MAX_REACH_VOXELS)
    work = make_working_volume(volume, input_size, working)
    data = work.read((slice(None),) * 3)
    points = work.from_input(positives)
    total = 5
    yield Progress(1, total, "reading the examples")
    reach = max(4, int(np.ceil(nm_to_voxels(reach_nm, work.voxel_size))))
    largest = max(4, min(work.shape) // 3)
    profile = examples_profile(data, points, reach, largest)
    extent = profile_extent(profile)
    if check is not None:
        check()
    yield Progress(2, total, "building the reference")
    template, mask = reference(profile, extent)
    ncc = normalised_correlation(data, template, mask)
    if check is not None:
        check()
    yield Progress(3, total, "correlating")
    points, _ = _scores_near(ncc, points, max(1, int(round(SNAP_FRACTION * extent))))
    profile = examples_profile(data, points, len(profile), largest)
    extent = profile_extent(profile)
    template, mask = reference(profile, extent)
    ncc = normalised_correlation(data, template, mask)
    _, example_scores = _scores_near(ncc, points, 1)
    if check is not None:
        check()
    yield Progress(4, total, "correlating again from the centred examples")
    floor = _robust_floor(ncc, MIN_ROBUST_Z)
    threshold = max(EXAMPLE_FRACTION * float(example_scores.min()), floor)
    peaks, scores = pick_peaks(ncc, max(1, int(extent)), threshold)
    inside = face_distance(peaks, work.shape) >= extent
    peaks, scores = peaks[inside], scores[inside]
    yield Progress(5, total, "peaks")
    return ExampleMatches(
        zyx=np.clip(work.to_input(peaks), 0, np.asarray(volume.shape) - 1),
        score=scores.astype(float),
        radius_nm=float(voxels_to_nm(extent, work.voxel_size)),
        threshold=float(threshold),
        example_scores=example_scores,
        info={
            "working_voxel_size": float(work.voxel_size),
            "extent_voxels": float(extent),
            "robust_floor": float(floor),
            "n_examples": int(len(positives)),
        },
    )

"""What the classical pickers share: the protein-positive volume, the robust-z threshold, local
maxima and greedy suppression.

Every classical picker here works the same way around its filter: the tomogram is checked and
normalised as the model sees it (robust z-score clipped to ±5), turned so that particles are
*bright*, filtered, and the filter's response is expressed as a robust z-score (median and
1.4826·MAD of the response, from a subsample). Picks are local maxima above ``k`` (the
automatic threshold, in those units, and the picks' score), kept greedily: strongest first,
dropping any maximum within the suppression radius of a kept one. Lowering ``k`` only appends
weaker picks (greedy suppression decides each pick from the stronger ones alone), so the
benchmark's low-floor ranking set starts with the automatic picks.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from napari_cryoet_particles.detect.params import PrepareParams
from napari_cryoet_particles.detect.structure import at_faces
from napari_cryoet_particles.detect.volume import (
    block_mean,
    check_volume,
    decide_sign,
    make_working_volume,
    particle_skewness,
    slab_mask,
)
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks import Picks
from napari_cryoet_particles.io.volume import Volume

#: ``dark``: particles darker than the background (cryo-ET's usual contrast); ``bright``: the
#: opposite; ``auto``: decided from the skewness of a low-passed overview, as detection does.
POLARITIES = ("dark", "bright", "auto")
#: At most about this many voxels are sampled for a response's median and MAD.
SAMPLE_VOXELS = 2_000_000
#: Block size (voxels) of the overview the ``auto`` polarity is decided on.
OVERVIEW_BLOCK = 4
MAD_TO_SIGMA = 1.4826
#: The polarity and sample-mask rule of ``auto`` polarity: our detection's, at its session-8
#: values (fixed here, whatever preset our detection runs with).
SAMPLE_RULE = PrepareParams()
#: How the filters extend the volume beyond its edges: by the background level (0, the median of
#: the normalised volume). Repeating the edge voxels instead (scipy's ``nearest``) gives one
#: voxel the weight of a whole Gaussian tail, so the response's noise near the faces is several
#: times the interior's and its maxima there pass any threshold.
EDGE_MODE = "constant"


@dataclass
class ClassicalResult:
    """Picks (input voxels, ``score`` = robust z of the response), the response itself as robust z
    (input voxels), and ``info``: seconds per stage and scalars (``threshold``: the automatic one)."""

    picks: Picks
    response: np.ndarray
    info: dict[str, float | str] = field(default_factory=dict)


def check_polarity(polarity: str) -> str:
    if polarity not in POLARITIES:
        raise CryoetInputError(
            None, f"polarity must be one of {', '.join(POLARITIES)}, got {polarity!r}"
        )
    return polarity


def bright_volume(
    volume: Volume, voxel_size: float | None = None, polarity: str = "dark"
) -> tuple[np.ndarray, float, float]:
    """(the normalised volume as float32 with particles bright, voxel size in Å, skewness).

    Refuses what detection refuses (not 3D, too small, NaN/Inf, constant: :func:`check_volume`
    and :func:`make_working_volume`). The skewness is NaN unless ``polarity`` is ``auto``.
    """
    check_polarity(polarity)
    size = check_volume(volume, voxel_size)
    work = make_working_volume(volume, size, size)
    skewness = float("nan")
    if polarity == "auto":
        overview = block_mean(work, OVERVIEW_BLOCK)
        skewness = particle_skewness(overview, slab_mask(overview, SAMPLE_RULE))
    # particles dark in what read() gives
    work.sign = decide_sign(polarity, skewness, SAMPLE_RULE.polarity_skewness)
    data = work.read((slice(None), slice(None), slice(None)))
    np.negative(data, out=data)
    return data, size, skewness


def robust_centre_spread(response: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826·MAD of ``response`` from a regular subsample."""
    sample = response.ravel()[:: max(1, response.size // SAMPLE_VOXELS)]
    median = float(np.median(sample))
    spread = MAD_TO_SIGMA * float(np.median(np.abs(sample - median)))
    return median, max(spread, 1e-12)


def to_robust_z(response: np.ndarray) -> np.ndarray:
    """``response`` as a robust z-score, in place."""
    median, spread = robust_centre_spread(response)
    response -= np.float32(median)
    response /= np.float32(spread)
    return response


def local_maxima(
    response: np.ndarray, floor: float, half_width: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Voxels equal to the maximum of their ``(2·half_width + 1)³`` neighbourhood and at least
    ``floor``: (N, 3) integer zyx and values, strongest first (ties in C order)."""
    size = 2 * max(1, int(half_width)) + 1
    above = np.nonzero(response >= floor)
    values = response[above]
    nearby = ndimage.maximum_filter(response, size=size, mode="nearest")[above]
    peak = nearby == values
    zyx = np.column_stack([axis[peak] for axis in above]).reshape(-1, 3)
    values = values[peak]
    order = np.argsort(-values, kind="stable")
    return zyx[order], values[order]


def greedy_suppress(zyx: np.ndarray, radius: float) -> np.ndarray:
    """Indices of ``zyx`` (strongest first) kept when each kept point drops the weaker ones
    closer than ``radius`` voxels.

    The same choice as :func:`~napari_cryoet_particles.detect.peaks.suppress_close` with one
    radius, from one KD-tree query of all close pairs (``cKDTree.query_pairs``), then one pass
    strongest first: much faster when the candidates are many (the tuning script runs it
    thousands of times).
    """
    zyx = np.asarray(zyx, dtype=float).reshape(-1, 3)
    if len(zyx) < 2:
        return np.arange(len(zyx))
    pairs = cKDTree(zyx).query_pairs(max(float(radius), 1e-6) - 1e-9, output_type="ndarray")
    pairs.sort(axis=1)  # (stronger, weaker): a lower index is stronger
    pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
    starts = np.searchsorted(pairs[:, 0], np.arange(len(zyx) + 1))
    dropped = np.zeros(len(zyx), dtype=bool)
    for i in np.flatnonzero(starts[1:] > starts[:-1]):
        if not dropped[i]:
            dropped[pairs[starts[i] : starts[i + 1], 1]] = True
    return np.flatnonzero(~dropped)


def suppressed_inside(
    zyx: np.ndarray,
    suppression_voxels: float,
    radius_voxels: np.ndarray | float,
    shape: tuple[int, ...],
    keep_edges: bool,
) -> np.ndarray:
    """Indices of ``zyx`` (strongest first) kept by :func:`greedy_suppress`, then, unless
    ``keep_edges``, only those whose box (``radius_voxels`` around each) lies inside the volume:
    the face rule of our detection (:func:`~napari_cryoet_particles.detect.structure.at_faces`),
    so every method is scored on picks a user could extract."""
    keep = greedy_suppress(zyx, suppression_voxels)
    if keep_edges:
        return keep
    radius = np.broadcast_to(np.asarray(radius_voxels, dtype=float), (len(zyx),))
    return keep[~at_faces(zyx[keep], radius[keep], shape)]


def blob_radius(sigma: np.ndarray | float) -> np.ndarray | float:
    """The radius of the blob a Gaussian scale ``sigma`` answers most to (``σ = r/√3``)."""
    return np.asarray(sigma) * np.sqrt(3.0)


def make_picks(
    volume: Volume, zyx: np.ndarray, score: np.ndarray, voxel_size: float, **features: np.ndarray
) -> Picks:
    """Picks at ``zyx`` (input voxels) with ``score`` and any further feature columns."""
    table = pd.DataFrame({"score": np.asarray(score, float), "cluster": 0} | features)
    name = volume.path.stem if volume.path else ""
    return Picks(np.asarray(zyx, float).reshape(-1, 3), voxel_size, table, name)


def result_info(
    laps: dict[str, float], k: float, skewness: float, **more: float
) -> dict[str, float | str]:
    """A detector's ``info``: seconds per stage, the threshold, the skewness when measured."""
    measured = {} if np.isnan(skewness) else {"skewness": skewness}
    return laps | {"threshold": k} | measured | more


class Stopwatch:
    """Seconds per stage: ``lap("filter")`` records the time since the previous lap."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = self.laps.get(stage, 0.0) + now - self._last
        self._last = now


Detector = Callable[[Volume, object], ClassicalResult]

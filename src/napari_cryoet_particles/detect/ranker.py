"""The pick ranker: which of a tomogram's picks are particles, learned from simulated tomograms.

How many picks a tomogram gets is read from its own peaks (:mod:`.threshold`); *which* picks
is decided here. Each pick down to the floor (one per object, none on structures or at the
faces) is described by classical, noise-normalised numbers only — its blob strength over the
tomogram's threshold, radius, its nearest stronger pick, the shape of its radial profile and
three band-pass responses (robust z) around it — and a gradient-boosted classifier, fitted on
the picks of simulated validation tomograms of the tuning and cellular families matched to their
truth (never a held-out family or a test tomogram), gives
each a particle probability. The tomogram's count of picks is kept; the most probable picks
are the picks.

The contrastive embedding is deliberately not a feature: a classifier that sees it gains on the
tuning family and loses up to 0.26 F1 on held-out ones (docs/detection.md, "The pick ranker").

The training table ships with the package (``data/pick_ranker_training.npz``, written by
``scripts/train_pick_ranker.py``); the classifier is fitted from it on first use (a few seconds)
and cached per scikit-learn version (:func:`shipped_ranker`), so no pickled model in the
repository ties the package to one version.
"""

import hashlib
import io
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from napari_cryoet_particles.detect.head import logit, sigmoid
from napari_cryoet_particles.detect.volume import WorkingVolume, block_mean
from napari_cryoet_particles.io.units import voxels_to_nm
from napari_cryoet_particles.model.normalize import MAD_TO_SIGMA

#: Band-pass filters (Gaussian σ pairs, nm) read around each pick: fine, mid, wide.
BANDS_NM = {"band_fine": (1.5, 5.0), "band_mid": (2.5, 10.0), "band_wide": (4.0, 12.0)}
#: The bands are filtered on a block mean of this many working voxels per side.
BAND_BIN = 2
#: Binned voxels filtered at a time (a 200×512×512 tomogram at 2× binning is one slab).
SLAB_VOXELS = 8_000_000
#: Gaussian filters end at this many σ (scipy's default).
GAUSSIAN_TRUNCATE = 4.0
#: About this many voxels of a band sample its median and spread.
ROBUST_SAMPLE = 1_000_000
#: Shells of the radial profile used (the last one is the background it is relative to).
PROFILE_SHELLS = 14
#: Neighbours searched for the nearest stronger pick.
NEIGHBOURS = 8
#: "No stronger pick near": distance (nm) and distance in radii given then.
FAR_NM, FAR_RADII = 99.0, 20.0
#: Search ranges (nm) the ranker was trained within; outside them picks keep the strength order.
TRAINED_DIAMETERS_NM = (5.0, 30.0)
RANKER_FEATURES = (
    "excess",
    "radius_nm",
    "stronger_nm",
    "stronger_radii",
    "stronger_excess",
    *(f"profile_{k}" for k in range(PROFILE_SHELLS)),
    *BANDS_NM,
)
TRAINING_FILE = "pick_ranker_training.npz"
#: Bumped when what the cached model carries changes (2: its training prior).
CACHE_FORMAT = 2
#: Score given to a pick the adapted posterior refuses: just under 0.5, first back in when the
#: user lowers the threshold.
REFUSED_SCORE = 0.499
#: Label-shift estimation stops when the tomogram's particle fraction moves less than this.
PRIOR_TOLERANCE = 1e-6


@dataclass(frozen=True)
class RankedPicks:
    """Each pick's particle probability and its score: 0.5 at the probability of the last of
    the ``count`` picks chosen; ``particle_share`` the share of particles among the picks read
    from the tomogram (None when it was not read)."""

    probability: np.ndarray
    score: np.ndarray
    count: int
    particle_share: float | None = None

    def to_info(self) -> dict[str, float | int | None]:
        share = None if self.particle_share is None else round(self.particle_share, 3)
        return {"picks": self.count, "ranked": len(self.score), "particle_share": share}


def ranker_applies(min_diameter_nm: float, max_diameter_nm: float) -> bool:
    """Whether a search range lies within the sizes the ranker was trained on."""
    low, high = TRAINED_DIAMETERS_NM
    return low <= min_diameter_nm and max_diameter_nm <= high


def stronger_neighbours(
    zyx_nm: np.ndarray, radius_nm: np.ndarray, excess: np.ndarray
) -> np.ndarray:
    """(N, 3): distance (nm) to the nearest stronger pick, that distance over the pick's radius,
    and how much stronger it is; picks come strongest first (index order)."""
    n = len(zyx_nm)
    out = np.column_stack([np.full(n, FAR_NM), np.full(n, FAR_RADII), np.zeros(n)])
    if n < 2:
        return out
    k = min(NEIGHBOURS, n)
    distance, index = cKDTree(zyx_nm).query(zyx_nm, k=k)
    stronger = index < np.arange(n)[:, None]
    has = stronger.any(axis=1)
    first = np.argmax(stronger, axis=1)
    rows = np.flatnonzero(has)
    near = distance[rows, first[rows]]
    other = index[rows, first[rows]]
    out[rows, 0] = np.minimum(near, FAR_NM)
    out[rows, 1] = np.minimum(near / np.maximum(radius_nm[rows], 1e-3), FAR_RADII)
    out[rows, 2] = excess[other] - excess[rows]
    return out


def profile_shape(profiles: np.ndarray) -> np.ndarray:
    """Radial profiles over their centre value: the shape, not the contrast."""
    centre = np.maximum(np.abs(profiles[:, :1]), 1e-3)
    return profiles[:, :PROFILE_SHELLS] / centre


def band_responses(work: WorkingVolume, zyx: np.ndarray, threads: int = 1) -> np.ndarray:
    """(N, bands): robust z of each band-pass of the (particles bright) working volume, the
    largest within one binned voxel of each pick at working-voxel position ``zyx``.

    Filtered on a :data:`BAND_BIN`-binned copy, :data:`SLAB_VOXELS` binned voxels at a time
    (with a halo as wide as the widest Gaussian, so the result is the whole volume's), the bands
    on ``threads`` threads.
    """
    factor = BAND_BIN
    voxel_nm = voxels_to_nm(factor, work.voxel_size)
    sigmas = [(small / voxel_nm, large / voxel_nm) for small, large in BANDS_NM.values()]
    blocks = -(-np.array(work.shape) // factor)
    points = np.rint((np.asarray(zyx, float).reshape(-1, 3) + 0.5) / factor - 0.5).astype(int)
    points = np.clip(points, 0, blocks - 1)
    halo = int(GAUSSIAN_TRUNCATE * max(large for _, large in sigmas) + 0.5) + 1
    plane = int(blocks[1] * blocks[2])
    core = max(1, SLAB_VOXELS // plane)
    stride = max(1, int(np.prod(blocks)) // ROBUST_SAMPLE)
    peaks = np.full((len(points), len(sigmas)), -np.inf)
    samples: list[list[np.ndarray]] = [[] for _ in sigmas]
    for c0 in range(0, int(blocks[0]), core):
        c1 = min(int(blocks[0]), c0 + core)
        h0, h1 = max(0, c0 - halo), min(int(blocks[0]), c1 + halo)
        binned = block_mean(replace(work, raw=work.raw[h0 * factor : h1 * factor]), factor)
        binned *= -1
        inside = np.flatnonzero((points[:, 0] >= c0) & (points[:, 0] < c1))
        band = partial(
            band_in_slab, binned, slice(c0 - h0, c1 - h0), stride, points[inside] - [h0, 0, 0]
        )
        with ThreadPoolExecutor(max(1, threads)) as pool:
            for column, (sample, values) in enumerate(pool.map(band, sigmas)):
                samples[column].append(sample)
                peaks[inside, column] = values
        del binned
    out = np.empty_like(peaks)
    for column, parts in enumerate(samples):
        sample = np.concatenate(parts)
        median = float(np.median(sample))
        spread = MAD_TO_SIGMA * float(np.median(np.abs(sample - median)))
        out[:, column] = (peaks[:, column] - median) / max(spread, 1e-12)
    return out


def band_in_slab(
    binned: np.ndarray,
    core: slice,
    stride: int,
    points: np.ndarray,
    sigmas: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """One band-pass ``G(small) − G(large)`` of a slab: (a strided sample of its core planes,
    the largest response around each of ``points``)."""
    small, large = sigmas
    response = ndimage.gaussian_filter(binned, small, mode="nearest")
    response -= ndimage.gaussian_filter(binned, large, mode="nearest")
    sample = response[core].ravel()[::stride].copy()  # a view would keep the slab alive
    return sample, neighbourhood_max(response, points)


def neighbourhood_max(volume: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The largest value of ``volume`` in the 3×3×3 voxels around each of ``points`` (N, 3)."""
    best = np.full(len(points), -np.inf)
    upper = np.array(volume.shape) - 1
    for offset in np.ndindex(3, 3, 3):
        at = np.clip(points + np.array(offset) - 1, 0, upper)
        best = np.maximum(best, volume[tuple(at.T)])
    return best


def ranker_table(
    work: WorkingVolume,
    zyx: np.ndarray,
    strength: np.ndarray,
    radius: np.ndarray,
    profiles: np.ndarray,
    threshold: float,
    threads: int = 1,
) -> np.ndarray:
    """The features (:data:`RANKER_FEATURES`) of picks at working-voxel ``zyx``, strongest
    first, with blob ``strength`` (robust z), ``radius`` (working voxels) and radial
    ``profiles``, on a tomogram whose threshold is ``threshold``."""
    excess = np.asarray(strength, float) - threshold
    radius_nm = voxels_to_nm(np.asarray(radius, float), work.voxel_size)
    zyx_nm = voxels_to_nm(np.asarray(zyx, float), work.voxel_size)
    return np.column_stack(
        [
            excess,
            radius_nm,
            stronger_neighbours(zyx_nm, radius_nm, excess),
            profile_shape(np.asarray(profiles, float)),
            band_responses(work, zyx, threads),
        ]
    )


def fit_ranker(table: np.ndarray, is_particle: np.ndarray):
    """The classifier, fitted on a feature table and whether each pick hit a particle."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.05,
        max_leaf_nodes=15,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=0,
    )
    is_particle = np.asarray(is_particle, bool)
    model.fit(table, is_particle)
    model.training_prior_ = float(is_particle.mean())
    return model


def cache_folder() -> Path:
    """Where fitted models are kept between runs (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "napari-cryoet-particles"


@lru_cache(maxsize=1)
def shipped_ranker():
    """The classifier fitted on the shipped training table: from the cache when this table
    was fitted before with this scikit-learn, else fitted (a few seconds) and cached."""
    import sklearn

    path = resources.files("napari_cryoet_particles").joinpath("data", TRAINING_FILE)
    payload = path.read_bytes()
    stamp = f"{sklearn.__version__}/{CACHE_FORMAT}".encode()
    key = hashlib.sha256(payload + stamp).hexdigest()[:16]
    cached = cache_folder() / f"pick_ranker-{key}.pkl"
    if cached.is_file():
        try:
            return pickle.loads(cached.read_bytes())
        except Exception:  # a damaged cache file is refitted below
            pass
    with np.load(io.BytesIO(payload)) as data:
        names = tuple(str(name) for name in data["features"])
        if names != RANKER_FEATURES:
            raise RuntimeError(
                f"{TRAINING_FILE} holds features {names}, this version ranks by {RANKER_FEATURES}:"
                " run scripts/train_pick_ranker.py"
            )
        model = fit_ranker(data["table"], data["is_particle"])
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(pickle.dumps(model))
        temporary.replace(cached)
    except OSError:  # a read-only home: fit again next time
        pass
    return model


def adapted_posteriors(
    probability: np.ndarray, training_prior: float, iterations: int = 200
) -> tuple[np.ndarray, float]:
    """Posteriors re-weighted to the tomogram's own share of particles among its picks,
    estimated by expectation-maximisation (Saerens, Latinne & Decaestecker 2002).

    The ranker learned how common particles are among the picks of its training tomograms;
    a sparse tomogram has far fewer, so a pick that would be a particle one time in two there
    is mostly background here. Returns the adapted posteriors and the estimated share."""
    probability = np.clip(np.asarray(probability, float), 1e-6, 1 - 1e-6)
    if not len(probability):
        return probability, training_prior
    prior, posterior = training_prior, probability
    for _ in range(iterations):
        particle = prior / training_prior * probability
        background = (1 - prior) / (1 - training_prior) * (1 - probability)
        posterior = particle / (particle + background)
        previous, prior = prior, float(np.clip(posterior.mean(), 1e-6, 1 - 1e-6))
        if abs(prior - previous) < PRIOR_TOLERANCE:
            break
    return posterior, prior


def expected_f1(posterior: np.ndarray, chosen: np.ndarray) -> float:
    """The F1 that picking ``chosen`` is expected to score if ``posterior`` is each pick's
    chance of being a particle: 2·(expected hits) / (picks + expected particles)."""
    posterior = np.asarray(posterior, float)
    denominator = int(np.count_nonzero(chosen)) + float(posterior.sum())
    return 2.0 * float(posterior[chosen].sum()) / denominator if denominator > 0 else 0.0


def rank_picks(
    table: np.ndarray,
    count: int,
    model=None,
    adapt_share: bool = False,
    f1_cut: bool = False,
) -> RankedPicks:
    """Particle probability of each pick and a score that is at least 0.5 for the ``count``
    most probable.

    With ``adapt_share``, a pick below the tomogram's threshold (excess < 0) may take the place
    of one above it only if it is more likely a particle than not once the posteriors are
    adapted to the tomogram's own share of particles (:func:`adapted_posteriors`); the others
    score just under 0.5. With ``f1_cut`` as well, "likely enough" is half the F1 the picks are
    expected to score (:func:`expected_f1`) instead of one half: the cut on calibrated
    probabilities that maximises F1 is half the best F1 (Lipton, Elkan & Naryanaswamy 2014)."""
    model = shipped_ranker() if model is None else model
    probability = model.predict_proba(table)[:, 1] if len(table) else np.zeros(0)
    odds = logit(probability)
    count = int(min(max(count, 0), len(odds)))
    eligible, share = np.ones(len(odds), bool), None
    training_prior = getattr(model, "training_prior_", None)
    if adapt_share and training_prior is not None and len(odds):
        adapted, share = adapted_posteriors(probability, training_prior)
        cut = 0.5
        if f1_cut:
            most_probable = np.zeros(len(odds), bool)
            most_probable[np.argsort(-odds, kind="stable")[:count]] = True
            cut = expected_f1(adapted, most_probable) / 2
        eligible = (table[:, 0] >= 0) | (adapted >= cut)
    count = int(min(count, eligible.sum()))
    if count:
        centre = float(np.sort(odds[eligible])[::-1][count - 1])
    else:  # nothing above 0.5
        centre = float(odds.max()) + 1e-6 if len(odds) else 0.0
    score = sigmoid(odds - centre)
    score[~eligible] = np.minimum(score[~eligible], REFUSED_SCORE)
    return RankedPicks(probability, score, count, share)

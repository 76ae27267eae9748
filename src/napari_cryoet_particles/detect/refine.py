"""Curation teaches the detector: refine from the user's marks, or find more like the accepted picks.

The user marks some picks ``accepted``, ``rejected`` or ``added`` (the rest stay ``auto``). A
small head learns from those marks on each candidate's descriptor:

- **refine** (:func:`fit_refine_head`): a logistic correction *added to* the detector's own score
  logit, ridge-regularised towards zero, so a few marks move the ranking only as far as they give
  evidence for; its bias is then set so that as many unmarked picks pass the threshold as before
  (:func:`keep_pick_count`): the marks re-rank, they do not move the threshold. The correction acts
  only on the *borderline* candidates, those within :data:`REFINE_BAND_LOGIT` of the threshold's
  logit: the marks teach about the picks a user hesitates over, and the detector's confident
  decisions stand. Its inputs are the blob strength, radius, learned probability and where the
  nearest stronger candidate lies (:func:`.head.neighbour_features`): what tells a repeat hit on a large
  particle, or a noise blob, from a particle. Accepted and added picks are positives, rejected
  ones negatives; the unmarked candidates keep the detector's score as their prior.
- **like** (:func:`fit_like_head`): a class-specific score, ``p(like the accepted picks)``, from
  how far each confident pick's shape descriptor (:mod:`.describe`), standardised over the
  confident picks, lies from the accepted (and added) picks' mean: picking one species from a
  few clicks.

The head itself (its data, the descriptor table it reads and how it rescores) is :mod:`.head`,
which the detection pipeline shares to apply a refined model's head.

Marked picks always stay in the output with their status and position: a refined detection never
drops a pick the user accepted, and never brings back one the user rejected. Weights, features
and the selection of simulated marks were chosen on validation simulations (docs/detection.md).
"""

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.spatial import cKDTree

from napari_cryoet_particles.detect.bodies import picks_on_rejected_structures
from napari_cryoet_particles.detect.config import (
    AUTO_THRESHOLD,
    CANDIDATE_FLOOR,
    DetectionConfig,
    DetectionResult,
)
from napari_cryoet_particles.detect.describe import shape_columns
from napari_cryoet_particles.detect.examples import example_search_job
from napari_cryoet_particles.detect.head import (
    REFINE_COLUMNS,
    PickHead,
    apply_head,
    candidate_table,
    logit,
    sigmoid,
    standardise,
    standardised,
)
from napari_cryoet_particles.detect.pipeline import detect_particles_job
from napari_cryoet_particles.detect.volume import check_volume
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks import PICK_STATUSES, Picks
from napari_cryoet_particles.io.units import DEFAULT_VOXEL_SIZE, nm_to_voxels, resolve_voxel_size
from napari_cryoet_particles.io.volume import Volume
from napari_cryoet_particles.jobs import CancelToken, Job, Progress
from napari_cryoet_particles.model.checkpoint import (
    LoadedModel,
    load_checkpoint,
    load_default_model,
    save_checkpoint,
)

MARKED = ("accepted", "rejected", "added")
POSITIVE = ("accepted", "added")
#: Ridge penalty of the refine head (validation seeds 101, 106: λ 1, 3, 10 tried; 1 best).
REFINE_RIDGE = 1.0
#: Ridge penalty of the refine head's bias (the threshold shift).
BIAS_RIDGE = 1.0
#: The refine head learns what to look at only from at least this many positive and negative
#: marks; with fewer of one kind it only moves the threshold.
MIN_EACH_KIND = 3
#: Each column's squared distance is weighed by the inverse of its spread among the accepted
#: picks, shrunk towards 1 (the spread of all confident picks) as if this many more picks had it:
#: ``(n·var + LIKE_PRIOR) / (n + LIKE_PRIOR)``, weights scaled to mean 1. Validation seeds 101-103,
#: 106, 3 clicks: 4CR2 +0.003 to +0.035, 3GL1 +0.002 to +0.038, 1U6G -0.003 to +0.002 over equal
#: weights (priors 1, 3, 10 alike); 20 clicks: 4CR2 best-threshold F1 0.70 / 0.73 -> 0.75 / 0.77.
LIKE_PRIOR = 3.0
#: More like these grows its examples: the head is refitted on the examples plus this share of
#: the confident picks most like them, :data:`LIKE_GROW_ROUNDS` times, so the centre and the
#: columns' weights come from a few dozen picks of the kind instead of three clicks (chosen on
#: the validation seeds; docs/detection.md, "Growing the examples").
LIKE_GROW_SHARE = 0.03
LIKE_GROW_ROUNDS = 2
#: The refine head corrects only candidates whose score logit lies within this of the threshold's.
#: Validation seeds 101-103, 106 (20 / 50 marks nearest the threshold): correcting every candidate
#: lost F1 on two of four (mean -0.008 / -0.010: the marks sample the borderline, and the head
#: extrapolates badly to confident picks); half-widths 0.25 / 0.5 / 1 gave mean +0.006 / +0.004 /
#: -0.001 (20 marks) and +0.010 / +0.007 / +0.000 (50), never below zero at 0.25; the marks alone,
#: no head, +0.003 / +0.009. As built (band and kept count): +0.004 to +0.007 (20), +0.010 to +0.014 (50).
REFINE_BAND_LOGIT = 0.25
#: Columns whose weight in the refine head may not be negative: farther from a stronger candidate
#: (absolutely, and in its radii) must never lower a candidate's score, so a few marks cannot
#: promote the near neighbours of strong picks, which are how repeat hits come in
#: (docs/detection.md, "With the pick ranker's score").
NON_NEGATIVE_COLUMNS = ("neighbour_log_nm", "neighbour_log_relative")
#: A mark lies on a candidate when within this many of the candidate's radii (at least 2 voxels).
MATCH_REACH = 1.0


@dataclass
class RefineConfig:
    """How to refine: the detection settings, and whether to keep only picks like the accepted ones."""

    detection: DetectionConfig = field(default_factory=DetectionConfig)
    like_accepted: bool = False
    ridge: float = REFINE_RIDGE


@dataclass
class RefineOutcome:
    """The refined picks (marks kept), the learned head and what was learned from.

    A search by reference (:func:`example_refine_job`) learns no head: ``head`` and
    ``detection`` are then None."""

    picks: Picks
    head: PickHead | None
    info: dict[str, object]
    detection: DetectionResult | None


def _voxel_size_of(picks: Picks) -> float:
    """The voxel size (Å) of a detection run's picks, which always state one;
    :data:`DEFAULT_VOXEL_SIZE` otherwise, silently."""
    return float(resolve_voxel_size(picks.voxel_size, default=DEFAULT_VOXEL_SIZE, warn=False))


def descriptor_table(result: DetectionResult) -> pd.DataFrame:
    """Per pick of a detection run: the columns every head may use (see :data:`REFINE_COLUMNS`),
    the radial profile (``profile_0``...) and the embedding (``embedding_0``...)."""
    features = result.picks.features
    for column in ("strength", "radius_nm", "probability"):
        if column not in features:
            raise CryoetInputError(None, f"the detection result has no {column!r} column")
    return candidate_table(
        result.picks.zyx,
        _voxel_size_of(result.picks),
        features["score"].to_numpy(dtype=float),
        features["strength"].to_numpy(dtype=float),
        features["radius_nm"].to_numpy(dtype=float),
        features["probability"].to_numpy(dtype=float),
        result.profiles,
        result.embeddings,
        result.shapes,
    )


def check_curated(curated: Picks, shape: tuple[int, int, int], need_positive: bool) -> None:
    """Refuse marks that cannot teach anything, or that belong to another tomogram."""
    status = curated.features["status"].astype(str)
    unknown = sorted(set(status) - set(PICK_STATUSES))
    if unknown:
        raise CryoetInputError(
            None,
            f"unknown status value(s) {unknown}: each pick's status must be one of "
            f"{', '.join(PICK_STATUSES)}",
        )
    marked = status.isin(MARKED).to_numpy()
    if not marked.any():
        raise CryoetInputError(
            None,
            "no pick is marked: accept, reject or add some picks first (status accepted, "
            "rejected or added)",
        )
    if need_positive and not status.isin(POSITIVE).any():
        raise CryoetInputError(None, "no pick is accepted or added: accept a few picks first")
    outside = curated.subset(marked).outside(shape)
    if outside.any():
        raise CryoetInputError(
            None,
            f"{int(outside.sum())} marked pick(s) lie outside the tomogram of shape {shape}: "
            "are the picks from another tomogram (or another voxel size)?",
        )


def match_marks(candidates: Picks, marks: Picks) -> np.ndarray:
    """Index of the candidate each mark lies on (-1: none within :data:`MATCH_REACH` radii)."""
    if not len(candidates) or not len(marks):
        return np.full(len(marks), -1, dtype=int)
    size = _voxel_size_of(candidates)
    radius_vox = nm_to_voxels(candidates.features["radius_nm"].to_numpy(dtype=float), size)
    distance, index = cKDTree(candidates.zyx).query(marks.zyx, k=1)
    reach = np.maximum(2.0, MATCH_REACH * radius_vox[index])
    return np.where(distance <= reach, index, -1)


def fit_refine_head(
    table: pd.DataFrame,
    base_logit: np.ndarray,
    marked: np.ndarray,
    labels: np.ndarray,
    ridge: float,
    threshold: float = AUTO_THRESHOLD,
) -> PickHead:
    """Ridge-penalised logistic correction ``w·x + b`` on top of ``base_logit``, fitted on the marks,
    to act on the candidates within :data:`REFINE_BAND_LOGIT` of ``threshold``'s logit.

    Standardisation uses every candidate, so the penalty means the same whatever the columns' units.
    The bias is penalised too: the detector's own calibration is the prior, so marks of one kind
    only (say, a dozen rejections) shift the threshold by a logit or so, not to infinity.
    """
    columns = REFINE_COLUMNS
    values = table[list(columns)].to_numpy(dtype=float)
    mean, scale = standardise(values)
    x = standardised(values[marked], mean, scale)
    offset = np.asarray(base_logit, dtype=float)[marked]
    y = np.asarray(labels, dtype=float)
    if min(y.sum(), len(y) - y.sum()) < MIN_EACH_KIND:
        x = np.zeros_like(
            x
        )  # marks of (almost) one kind say where the threshold is, not what to look at
    k = x.shape[1]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = offset + x @ w[:k] + w[k]
        p = sigmoid(z)
        penalty = np.append(np.full(k, ridge), BIAS_RIDGE)
        value = np.sum(np.logaddexp(0.0, z) - y * z) + np.sum(penalty * w**2)
        residual = p - y
        return float(value), np.append(x.T @ residual, residual.sum()) + 2 * penalty * w

    bounds = [(0.0, None) if c in NON_NEGATIVE_COLUMNS else (None, None) for c in columns]
    w = minimize(
        loss, np.zeros(k + 1), jac=True, method="L-BFGS-B", bounds=[*bounds, (None, None)]
    ).x
    return PickHead(
        "refine",
        columns,
        mean,
        scale,
        w[:k],
        float(w[k]),
        int(y.sum()),
        int(len(y) - y.sum()),
        band_centre=float(logit(np.asarray(threshold))),
        band_half_width=REFINE_BAND_LOGIT,
    )


def like_columns(table: pd.DataFrame) -> tuple[str, ...]:
    """The columns the like head learns from: the shape descriptor (:func:`.describe.shape_descriptors`)
    and the blob strength, or radius plus radial profile for a detection run made without it.

    On validation simulations the shape alone found a species from 3 clicks about twice as well
    as radius + profile did; adding the profile or the embedding to the shape made it worse, the
    strength (how far a pick stands out of the noise: a species' mass) better (docs/detection.md).
    """
    shape = [c for c in shape_columns() if c in table]
    if shape:
        return (*shape, *(["strength"] if "strength" in table else []))
    return ("radius_nm", *(c for c in table.columns if c.startswith("profile_")))


def like_described(table: pd.DataFrame) -> np.ndarray:
    """Per row of ``table``: whether the like head can read it (every :func:`like_columns` value
    known; detection describes the shape of confident picks only)."""
    return np.isfinite(table[list(like_columns(table))].to_numpy(dtype=float)).all(axis=1)


def fit_like_head(
    table: pd.DataFrame, positive: np.ndarray, negative: np.ndarray, pool: np.ndarray
) -> PickHead:
    """The accepted picks' mean shape descriptor, standardised over the described picks of
    ``pool``: a pick scores ``2 ** -(d² / LIKE_SPREAD)`` by its mean squared distance ``d²`` from
    it, each column weighed by how tightly the accepted picks agree on it (:data:`LIKE_PRIOR`).

    A distance, not a classifier against the other picks (the positive-unlabelled logistic
    regression used until it): a species of middle size lies *between* the others, which no single
    hyperplane cuts out. Rejected picks (``negative``) are counted, not used."""
    columns = like_columns(table)
    values = table[list(columns)].to_numpy(dtype=float)
    described = like_described(table)
    positive, negative, pool = positive & described, negative & described, pool & described
    if not positive.any():
        raise CryoetInputError(
            None,
            "none of the accepted picks has a shape descriptor: accept picks scored at or above "
            f"the automatic threshold ({AUTO_THRESHOLD:g}), where detection describes them",
        )
    mean, scale = standardise(values[pool] if pool.any() else values[described])
    accepted = standardised(values[positive], mean, scale)
    count = len(accepted)
    spread = (count * accepted.var(0) + LIKE_PRIOR) / (count + LIKE_PRIOR)
    weights = 1.0 / spread
    return PickHead(
        "like",
        columns,
        mean,
        scale,
        weights / weights.mean(),
        0.0,
        int(positive.sum()),
        int(negative.sum()),
        centre=accepted.mean(0),
    )


def grown_like_head(
    table: pd.DataFrame,
    positive: np.ndarray,
    negative: np.ndarray,
    pool: np.ndarray,
) -> PickHead:
    """:func:`fit_like_head` refitted :data:`LIKE_GROW_ROUNDS` times on the examples
    (``positive``) plus the :data:`LIKE_GROW_SHARE` of ``pool`` most like them; it still reports
    the user's examples as its positives."""
    head = fit_like_head(table, positive, negative, pool)
    grow = int(round(LIKE_GROW_SHARE * pool.sum()))
    for _ in range(LIKE_GROW_ROUNDS if grow > 0 else 0):
        like = head.like_probability(table)
        alike = np.where(pool & np.isfinite(like), like, -np.inf)
        grown = positive.copy()
        grown[np.argsort(-alike, kind="stable")[:grow]] = True
        head = fit_like_head(table, grown, negative, pool)
    return replace(head, n_positive=int(positive.sum()))


def keep_pick_count(
    head: PickHead,
    score: np.ndarray,
    table: pd.DataFrame,
    marked: np.ndarray,
    threshold: float,
) -> PickHead:
    """The refine head with its bias moved so that as many unmarked candidates reach
    ``threshold`` after refining as before: the marks re-rank the candidates, they do not move
    the threshold.

    Learning the threshold from marks near it was measured to be unsafe: the marks straddle the
    threshold, so their share of particles says little about the candidates just below it, and
    a few more accepted than rejected marks let hundreds of weak candidates in (F1 −0.06 on a
    test tomogram). Re-ranking at a fixed count gained +0.004 to +0.011 on every validation case.
    """
    score = np.asarray(score, dtype=float)
    unmarked = ~np.asarray(marked, dtype=bool)
    count = int(np.sum((score >= threshold) & unmarked))
    distance = logit(score) - head.band_centre
    inside = unmarked & (np.abs(distance) <= head.band_half_width)
    count -= int(np.sum(unmarked & (distance > head.band_half_width)))  # above the band: kept
    refined = np.sort(logit(score[inside]) + head.logit(table.loc[inside]))[::-1]
    if len(refined) == 0:
        return head
    high = refined[count - 1] if count > 0 else refined[0] + 1.0
    low = refined[count] if count < len(refined) else refined[-1] - 1.0
    cut = 0.5 * (high + low)
    return replace(head, bias=head.bias + float(logit(np.asarray(threshold))) - cut)


def refined_picks(
    result: DetectionResult,
    curated: Picks,
    config: RefineConfig | None = None,
    volume: Volume | None = None,
) -> RefineOutcome:
    """Learn from the marks in ``curated`` on a detection run's candidates; return the new picks.

    ``result`` must hold candidates well below the threshold (a run with a low ``threshold``, e.g.
    :data:`CANDIDATE_FLOOR`) with their embeddings and profiles. The output has every marked pick
    (status and position kept; score from the head where it lies on a candidate) plus the
    unmarked candidates whose new score reaches the threshold. Given the tomogram ``volume``, a
    rejected pick on a structure also drops the unmarked picks on structures
    (:func:`rejected_structures`).
    """
    config = config or RefineConfig()
    candidates = result.picks
    size = _voxel_size_of(candidates)
    curated = curated.in_voxels_of(size)
    check_curated(curated, result.input_shape, need_positive=config.like_accepted)
    status = curated.features["status"].astype(str).to_numpy()
    marks = curated.subset(np.isin(status, MARKED))
    mark_status = marks.features["status"].astype(str).to_numpy()
    on = match_marks(candidates, marks)
    table = descriptor_table(result)
    base = candidates.features["score"].to_numpy(dtype=float)
    matched = on >= 0
    positive_rows = np.isin(mark_status, POSITIVE)
    threshold = AUTO_THRESHOLD if config.detection.threshold is None else config.detection.threshold
    if config.like_accepted:
        positive = np.zeros(len(candidates), bool)
        negative = np.zeros(len(candidates), bool)
        positive[on[matched & positive_rows]] = True
        negative[on[matched & ~positive_rows]] = True
        if not positive.any():
            raise CryoetInputError(
                None, "none of the accepted or added picks lies on a detected candidate"
            )
        head = grown_like_head(table, positive, negative, base >= threshold)
        score = apply_head(head, base, table)
        keep = (base >= threshold) & (score >= 0.5)
        examples_alike = int(np.sum(score[positive] >= 0.5))
    else:
        if not matched.any():
            raise CryoetInputError(None, "none of the marked picks lies on a detected candidate")
        rows = on[matched]
        labels = positive_rows[matched].astype(float)
        head = fit_refine_head(table, logit(base), rows, labels, config.ridge, threshold)
        marked_rows = np.zeros(len(candidates), dtype=bool)
        marked_rows[rows] = True
        head = keep_pick_count(head, base, table, marked_rows, threshold)
        score = apply_head(head, base, table)
        keep = score >= threshold
    keep[on[matched]] = False
    on_structures = rejected_structures(result, marks, volume, config)
    keep &= ~on_structures
    auto = candidates.subset(np.flatnonzero(keep))
    auto.features["score"] = score[keep]
    auto.features["status"] = "auto"
    kept_marks = marks.subset(np.arange(len(marks)))
    mark_score = np.where(matched, score[np.maximum(on, 0)], np.where(positive_rows, 1.0, 0.0))
    kept_marks.features["score"] = mark_score
    picks = _marks_and_picks(kept_marks, auto, size, candidates.tomogram or curated.tomogram)
    info = {
        "kind": head.kind,
        "n_marks": int(len(marks)),
        "n_marks_on_candidates": int(matched.sum()),
        "n_positive": head.n_positive,
        "n_negative": head.n_negative,
        "n_picks": int(len(picks)),
        "threshold": threshold,
        "n_dropped_on_structures": int(on_structures.sum()),
    }
    if config.like_accepted:
        info["examples_alike"] = examples_alike
    return RefineOutcome(picks, head, info, result)


def rejected_structures(
    result: DetectionResult, marks: Picks, volume: Volume | None, config: RefineConfig
) -> np.ndarray:
    """Per candidate of ``result``: whether it lies on a structure that a rejected mark lies on
    (:func:`.bodies.picks_on_rejected_structures`; marks in the candidates' voxels). All False
    without rejected marks, or without the ``volume`` the candidates were detected in."""
    candidates = result.picks
    status = marks.features["status"].astype(str).to_numpy()
    rejected = status == "rejected"
    if volume is None or not rejected.any() or tuple(volume.shape) != tuple(result.input_shape):
        return np.zeros(len(candidates), dtype=bool)
    return picks_on_rejected_structures(
        volume.data,
        _voxel_size_of(candidates),
        candidates.zyx,
        marks.zyx[rejected],
        marks.zyx[np.isin(status, POSITIVE)],
        config.detection.max_diameter_nm,
        particles_dark=not result.info.get("inverted", False),
    )


def unlike_examples_warning(info: dict) -> str | None:
    """A warning when most examples of "more like these" do not look like their own mean (they
    are of several kinds, or one is an odd pick), so few or no other picks will either."""
    alike, count = info.get("examples_alike"), info.get("n_positive", 0)
    if alike is None or count < 2 or 2 * alike > count:
        return None
    return (
        f"only {alike} of the {count} examples look like the examples' average: are they of one "
        "kind? Pick examples of similar size and shape (or fewer, odd ones out removed)"
    )


def refine_job(
    volume,
    curated: Picks,
    model=None,
    config: RefineConfig | None = None,
    cancel: CancelToken | None = None,
    result: DetectionResult | None = None,
) -> Job[RefineOutcome]:
    """Detect candidates (unless ``result`` already holds them), then :func:`refined_picks`;
    for "more like these" whose examples mostly lie on no described candidate
    (:func:`examples_described`), the search by reference of ``volume`` instead.

    Yields :class:`Progress`; returns a :class:`RefineOutcome`. ``result`` lets a caller that
    detected with a low threshold (the Detect dock) refine in well under a second.
    """
    config = config or RefineConfig()
    if result is not None:
        shape, size = result.input_shape, _voxel_size_of(result.picks)
    else:
        shape, size = (
            volume.shape,
            resolve_voxel_size(volume.voxel_size, config.detection.voxel_size),
        )
    check_curated(curated.in_voxels_of(size), shape, need_positive=config.like_accepted)
    if result is None or result.embeddings is None or result.profiles is None:
        detection = replace(
            config.detection,
            threshold=CANDIDATE_FLOOR,
            max_picks=None,
            keep_score_map=False,
        )
        job = detect_particles_job(volume, model, detection, cancel)
        while True:
            try:
                report = next(job)
            except StopIteration as stop:
                result = stop.value
                break
            yield Progress(report.step, report.total + 1, f"detecting: {report.message}")
    if cancel is not None:
        cancel.check()
    if config.like_accepted and not examples_described(result, curated):
        return (yield from example_refine_job(volume, curated, config, cancel))
    outcome = refined_picks(result, curated, config, volume)
    yield Progress(1, 1, "refined")
    return outcome


def uses_examples(curated: Picks, like_accepted: bool) -> bool:
    """Whether "more like these" may search by reference (:mod:`.examples`), so needs the
    tomogram itself: when any example is a point the user added (:func:`examples_described`
    decides once the candidates are known)."""
    status = curated.features["status"].astype(str)
    return bool(like_accepted and (status == "added").any())


def examples_described(result: DetectionResult, curated: Picks) -> bool:
    """Whether most examples of "more like these" (accepted and added picks) lie on candidates
    the detection run described, so the like head can compare the candidates' shapes with theirs.

    Accepted picks are the detector's own; an added point on a described candidate marks one the
    threshold left out. An added point on no candidate (the centre of a hollow shell) or on a weak
    undescribed one marks an object the detector does not propose: when such points are most of
    the examples, the reference search (:mod:`.examples`) finds their like in the volume itself.
    When they are a minority, the like head learns from the others and they stay as marks (the
    reference search tells protein species apart far worse than the like head)."""
    curated = curated.in_voxels_of(_voxel_size_of(result.picks))
    positive = curated.subset(curated.features["status"].astype(str).isin(POSITIVE).to_numpy())
    if not len(positive) or not len(result.picks):
        return False
    described = like_described(descriptor_table(result))
    on = match_marks(result.picks, positive)
    readable = (on >= 0) & described[np.maximum(on, 0)]
    return 2 * int(readable.sum()) > len(positive)


def example_refine_job(
    volume, curated: Picks, config: RefineConfig | None = None, cancel: CancelToken | None = None
) -> Job[RefineOutcome]:
    """More like these by reference: the accepted and added picks are the examples of
    :func:`.examples.example_search_job`, searched over the whole volume; the marks keep their
    status and place, and no match within the examples' radius of a mark is added (a rejected
    object stays out). Yields :class:`Progress`; returns a :class:`RefineOutcome` without head."""
    config = config or RefineConfig()
    if volume is None:
        raise CryoetInputError(
            None, "more like added points searches the tomogram itself: open (or give) it"
        )
    size = check_volume(volume, config.detection.voxel_size)
    curated = curated.in_voxels_of(size)
    check_curated(curated, volume.shape, need_positive=True)
    status = curated.features["status"].astype(str).to_numpy()
    marks = curated.subset(np.flatnonzero(np.isin(status, MARKED)))
    positive = np.isin(marks.features["status"].astype(str).to_numpy(), POSITIVE)
    matches = yield from example_search_job(
        volume, marks.zyx[positive], config.detection.max_diameter_nm, size, cancel
    )
    radius = nm_to_voxels(matches.radius_nm, size)
    distance = cKDTree(marks.zyx).query(matches.zyx)[0] if len(matches.zyx) else np.zeros(0)
    new = distance > radius
    # the pick score's convention: 0.5 at the threshold, 1 at twice it (about the examples')
    score = np.clip(0.5 * matches.score[new] / max(matches.threshold, 1e-6), 0.0, 1.0)
    auto = Picks(
        matches.zyx[new],
        size,
        pd.DataFrame({"score": score, "radius_nm": matches.radius_nm, "status": "auto"}),
        curated.tomogram,
    )
    kept = marks.subset(np.arange(len(marks)))
    kept.features["score"] = np.where(positive, 1.0, 0.0)
    picks = _marks_and_picks(kept, auto, size, curated.tomogram)
    info = {
        "kind": "reference",
        "n_marks": int(len(marks)),
        "n_marks_on_candidates": 0,
        "n_positive": int(positive.sum()),
        "n_negative": int((~positive).sum()),
        "n_picks": int(len(picks)),
        "threshold": AUTO_THRESHOLD,
        "radius_nm": matches.radius_nm,
        "example_scores": [float(v) for v in matches.example_scores],
        **matches.info,
    }
    return RefineOutcome(picks, None, info, None)


def _marks_and_picks(marks: Picks, auto: Picks, size: float, tomogram: str | None) -> Picks:
    """The marks, then the new picks, ordered by score (highest first)."""
    features = pd.concat([marks.features, auto.features], ignore_index=True)
    picks = Picks(np.concatenate([marks.zyx, auto.zyx]), size, features, tomogram)
    return picks.subset(np.argsort(-picks.scores, kind="stable"))


def save_refined_model(path, head: PickHead | None, model=None, overwrite: bool = False):
    """Write the encoder of ``model`` (default: the shipped one) with ``head``: a model file that
    ``detect --model`` scores picks with. Atomic; refuses to replace a file unless ``overwrite``."""
    if head is None:
        raise CryoetInputError(
            None,
            "more like added points searches by reference and learns no head: there is no "
            "refined model to save (save the picks instead)",
        )
    if model is None:
        loaded = load_default_model()
    elif isinstance(model, LoadedModel):
        loaded = model
    else:
        loaded = load_checkpoint(model)
    metadata = {**loaded.metadata, "refined_from": str(loaded.path or "default model")}
    return save_checkpoint(
        path,
        loaded.encoder,
        loaded.config,
        metadata=metadata,
        overwrite=overwrite,
        pick_head=head.to_payload(),
    )

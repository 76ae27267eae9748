"""Localization scoring of picks against ground truth: the SHREC rule and the distance rule.

Both rules are class-agnostic and give one :class:`LocalizationResult`. Coordinates are zyx voxel
indices of the truth's tomogram (:func:`evaluate_picks` rescales picks of another voxel size).

Every prediction gets one status (``pred_status``):

- ``tp``: the one prediction credited with finding a truth particle;
- ``duplicate``: another hit on an already found particle. Neither TP nor FP, but it is counted in
  ``n_pred`` (so it lowers precision), as in the SHREC 2019 and 2021 evaluations;
- ``fp``: hits no particle (id 0 in the SHREC rule, no particle within reach in the distance rule);
- ``outside``: its rounded position is outside the volume. Counted as FP (the SHREC scripts instead
  clamped such picks to the border and looked them up there);
- ``skipped``: hits a particle of a skipped class (see below).

**Skipped classes** (SHREC 2021 results skip 4V94 and vesicles; fiducials are not proteins either):
their particles are removed from the truth (``n_truth``, FN, per-class table), and predictions
that land on them are neither TP nor FP. By default those predictions are also left out of
``n_pred``, so finding a skipped particle costs nothing. The SHREC 2021 script
(``misc/eval.py``, also FakET's corrected copy) kept them in the number of predictions, the
denominator of precision: pass ``count_skipped_picks=True`` to reproduce that. (The original
script also forgot to remove vesicles from the number of truth particles; FakET flagged it; we
remove every skipped class.)

**Clutter rule** (:func:`score_clutter`, reported beside the SHREC rule): skipping vesicles hides
picks on membranes, and in a cellular tomogram a pick on a membrane, vesicle, filament or gold
bead is a false positive. Every class that is not a protein (:func:`clutter_classes`) is removed
from the truth as a skipped class is, but predictions on its particles are ``fp`` (flagged in
``pred_on_clutter``); skipped protein classes (4V94) stay skipped.

precision = TP / n_pred, recall = TP / n_truth, F1 their harmonic mean; a zero denominator gives 0.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from napari_cryoet_particles.evaluate.czii import CZII_PARTICLES
from napari_cryoet_particles.evaluate.radii import (
    RADIUS_TABLES,
    SHREC2019_RADII,
    SHREC2021_RADII,
    choose_radius_table,
    class_key,
    radii_for_classes,
)
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks import Picks

#: What the SHREC 2021 results leave out (4V94, vesicles), plus the gold fiducials.
SHREC2021_SKIP = ("4v94", "vesicle", "fiducial")
PRED_STATUSES = ("tp", "duplicate", "fp", "outside", "skipped")
#: Class keys (:func:`class_key`) of proteins: the SHREC 2019 and 2021 classes (every protein the
#: simulator draws) and the CZII challenge's types. Any other class name is clutter.
PROTEIN_CLASS_KEYS = frozenset(
    [*SHREC2021_RADII, *SHREC2019_RADII, *(class_key(p.name) for p in CZII_PARTICLES)]
)
#: Class-mask names that are neither protein nor clutter.
BACKGROUND_NAMES = frozenset(["", "background"])


@dataclass
class LocalizationResult:
    """The score of a set of predictions, with per-prediction and per-particle match details.

    ``pred_truth_id[i]`` is the 1-based row (in the truth table) of the particle prediction ``i``
    hit (for ``tp``, ``duplicate``, ``skipped`` and, under the clutter rule, ``fp`` on clutter),
    0 otherwise; ``pred_distance[i]`` its distance
    in voxels to that particle's centre (NaN when none). ``truth_pred_index[j]`` is the prediction
    credited with truth row ``j`` (-1: missed or skipped). ``confusion`` is the binary particle /
    background matrix, rows = truth (particle, background), columns = prediction (particle,
    background): ``[[tp, fn], [fp, 0]]`` (true negatives are not defined for picking).
    ``clutter`` names the classes the clutter rule counted picks on as FP (empty for other rules),
    ``pred_on_clutter`` flags those picks (``n_on_clutter`` of them, included in ``fp``).
    """

    rule: str
    tp: int
    fp: int
    fn: int
    n_pred: int
    n_truth: int
    n_duplicate: int
    n_outside: int
    n_on_skipped: int
    precision: float
    recall: float
    f1: float
    mean_distance: float
    per_class: pd.DataFrame
    confusion: np.ndarray
    pred_truth_id: np.ndarray
    pred_status: np.ndarray
    pred_distance: np.ndarray
    truth_pred_index: np.ndarray
    truth_skipped: np.ndarray
    skip: tuple[str, ...] = ()
    count_skipped_picks: bool = False
    radii: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    clutter: tuple[str, ...] = ()
    n_on_clutter: int = 0
    pred_on_clutter: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def truth_found(self) -> np.ndarray:
        """Boolean per truth row: found by a prediction."""
        return self.truth_pred_index >= 0

    @property
    def pred_counted(self) -> np.ndarray:
        """Boolean per prediction: counted in ``n_pred``."""
        return (self.pred_status != "skipped") | self.count_skipped_picks

    def summary(self) -> dict[str, object]:
        """The headline numbers as plain Python values."""
        return {
            "rule": self.rule,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "n_pred": self.n_pred,
            "n_truth": self.n_truth,
            "n_duplicate": self.n_duplicate,
            "n_outside": self.n_outside,
            "n_on_skipped": self.n_on_skipped,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "mean_distance": None if np.isnan(self.mean_distance) else self.mean_distance,
        }

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: summary, settings, confusion matrix and per-class table (no per-pick arrays)."""
        return {
            **self.summary(),
            "skip": list(self.skip),
            "clutter": list(self.clutter),
            "n_on_clutter": self.n_on_clutter,
            "count_skipped_picks": self.count_skipped_picks,
            "radii": dict(self.radii),
            "confusion": {
                "rows_truth": ["particle", "background"],
                "columns_prediction": ["particle", "background"],
                "matrix": self.confusion.tolist(),
            },
            "per_class": [
                {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                for row in self.per_class.to_dict(orient="records")
            ],
            "warnings": list(self.warnings),
        }


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


def _skip_keys(skip: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({class_key(s) for s in skip if str(s).strip()}))


def _truth_skipped(truth: Picks, skip_keys: tuple[str, ...]) -> np.ndarray:
    classes = truth.features["class"].astype(str)
    return np.array([class_key(c) in skip_keys for c in classes], dtype=bool)


def _check_truth(truth: Picks, skipped: np.ndarray, skip_keys: tuple[str, ...]) -> None:
    if len(truth) == 0:
        raise CryoetInputError(None, "the truth has no particles to score against")
    if skipped.all():
        raise CryoetInputError(
            None,
            f"all {len(truth)} truth particles belong to skipped classes ({', '.join(skip_keys)})",
        )


def _outside(zyx: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    if shape is None:
        return np.zeros(len(zyx), dtype=bool)
    index = np.rint(zyx)
    return np.any((index < 0) | (index >= np.asarray(shape[:3])), axis=1)


def _finish(
    rule: str,
    truth: Picks,
    pred_status: np.ndarray,
    pred_truth_id: np.ndarray,
    pred_distance: np.ndarray,
    skipped: np.ndarray,
    skip_keys: tuple[str, ...],
    count_skipped_picks: bool,
    radii: dict[str, float] | None = None,
    warnings: list[str] | None = None,
) -> LocalizationResult:
    n_all = len(pred_status)
    truth_pred_index = np.full(len(truth), -1, dtype=int)
    tp_index = np.flatnonzero(pred_status == "tp")
    truth_pred_index[pred_truth_id[tp_index] - 1] = tp_index
    counts = {s: int(np.sum(pred_status == s)) for s in PRED_STATUSES}
    tp = counts["tp"]
    fp = counts["fp"] + counts["outside"]
    n_truth = int((~skipped).sum())
    fn = n_truth - tp
    n_pred = n_all if count_skipped_picks else n_all - counts["skipped"]
    precision = _ratio(tp, n_pred)
    recall = _ratio(tp, n_truth)
    f1 = _ratio(2 * precision * recall, precision + recall)
    mean_distance = float(np.mean(pred_distance[tp_index])) if tp else float("nan")

    classes = truth.features["class"].astype(str).to_numpy()
    kept = ~skipped
    table = pd.DataFrame({"class": classes[kept], "found": truth_pred_index[kept] >= 0})
    per_class = (
        table.groupby("class", sort=True)["found"]
        .agg(n_truth="size", tp="sum")
        .reset_index()
        .astype({"n_truth": int, "tp": int})
    )
    per_class["fn"] = per_class["n_truth"] - per_class["tp"]
    per_class["recall"] = per_class["tp"] / per_class["n_truth"]
    return LocalizationResult(
        rule=rule,
        tp=tp,
        fp=fp,
        fn=fn,
        n_pred=n_pred,
        n_truth=n_truth,
        n_duplicate=counts["duplicate"],
        n_outside=counts["outside"],
        n_on_skipped=counts["skipped"],
        precision=precision,
        recall=recall,
        f1=f1,
        mean_distance=mean_distance,
        per_class=per_class,
        confusion=np.array([[tp, fn], [fp, 0]], dtype=int),
        pred_truth_id=pred_truth_id,
        pred_status=pred_status,
        pred_distance=pred_distance,
        truth_pred_index=truth_pred_index,
        truth_skipped=skipped,
        skip=skip_keys,
        count_skipped_picks=count_skipped_picks,
        radii=dict(radii or {}),
        warnings=list(warnings or []),
    )


# ---------------------------------------------------------------------------------------------
# SHREC rule


def dilate_ids(id_map: np.ndarray, iterations: int = 1) -> np.ndarray:
    """Grow a particle-id map by ``iterations`` voxels into the background only.

    SHREC 2021 applies ``skimage.morphology.dilation`` (a grey dilation: the largest id in the
    6-connected neighbourhood) to the whole occupancy mask, so where two particles touch the larger
    id eats one voxel layer of the smaller particle. Here the same grey dilation fills only
    background voxels (id 0); a background voxel next to several particles still takes the largest
    id. Particle voxels keep their id.
    """
    ids = np.asarray(id_map)
    if ids.ndim != 3:
        raise ValueError(f"expected a 3D id map, got shape {ids.shape}")
    ids = np.rint(ids).astype(np.int32) if ids.dtype.kind == "f" else ids.astype(np.int32)
    cross = ndimage.generate_binary_structure(3, 1)
    for _ in range(iterations):
        background = ids == 0
        if not background.any():
            break
        grown = ndimage.grey_dilation(ids, footprint=cross, mode="constant", cval=0)
        ids[background] = grown[background]
    return ids


def score_shrec(
    truth: Picks,
    pred: Picks,
    id_map: np.ndarray,
    *,
    skip: Iterable[str] = (),
    dilate: int = 1,
    count_skipped_picks: bool = False,
) -> LocalizationResult:
    """SHREC rule: look each rounded prediction up in a particle-id map.

    ``id_map`` holds 0 for background and ``k`` for the particle on line ``k`` (1-based) of the
    truth (SHREC 2021 ``occupancy_mask.mrc``; SHREC 2019 ``hitbox.mrc``). It is dilated by ``dilate``
    voxels with :func:`dilate_ids` (SHREC 2021: 1; give 0 for a map that is already a hit box).
    Among several predictions on one particle the one nearest its centre is the ``tp`` (ties: the
    first), the others are ``duplicate``. See the module docstring for skipped classes.
    """
    skip_keys = _skip_keys(skip)
    skipped = _truth_skipped(truth, skip_keys)
    _check_truth(truth, skipped, skip_keys)
    ids = dilate_ids(id_map, dilate) if dilate > 0 else np.asarray(id_map)
    if ids.ndim != 3:
        raise CryoetInputError(None, f"the particle-id map must be 3D, got shape {ids.shape}")
    top = int(np.max(ids)) if ids.size else 0
    if top > len(truth):
        raise CryoetInputError(
            None,
            f"the particle-id map holds id {top} but the truth lists only {len(truth)} particles",
        )
    n = len(pred)
    status = np.full(n, "fp", dtype=object)
    truth_id = np.zeros(n, dtype=int)
    distance = np.full(n, np.nan)
    outside = _outside(pred.zyx, ids.shape)
    status[outside] = "outside"
    inside = np.flatnonzero(~outside)
    index = np.rint(pred.zyx[inside]).astype(int)
    hit = (
        np.rint(ids[index[:, 0], index[:, 1], index[:, 2]]).astype(int)
        if len(inside)
        else np.zeros(0, int)
    )
    on_particle = inside[hit > 0]
    truth_id[on_particle] = hit[hit > 0]
    distance[on_particle] = np.linalg.norm(
        pred.zyx[on_particle] - truth.zyx[truth_id[on_particle] - 1], axis=1
    )
    on_skipped = on_particle[skipped[truth_id[on_particle] - 1]]
    status[on_skipped] = "skipped"
    counted = on_particle[~skipped[truth_id[on_particle] - 1]]
    order = counted[np.lexsort((counted, distance[counted], truth_id[counted]))]
    first = np.ones(len(order), dtype=bool)
    first[1:] = truth_id[order][1:] != truth_id[order][:-1]
    status[order[first]] = "tp"
    status[order[~first]] = "duplicate"
    warnings = (
        [
            f"{int(outside.sum())} predictions lie outside the volume {tuple(ids.shape)}: counted as FP"
        ]
        if outside.any()
        else []
    )
    return _finish(
        "shrec",
        truth,
        status.astype(str),
        truth_id,
        distance,
        skipped,
        skip_keys,
        count_skipped_picks,
        None,
        warnings,
    )


# ---------------------------------------------------------------------------------------------
# Distance rule


def _candidate_pairs(
    pred_zyx: np.ndarray, truth_zyx: np.ndarray, radii: np.ndarray
) -> tuple[np.ndarray, ...]:
    """All (prediction, truth, distance) with distance <= the truth particle's radius."""
    reach = np.isfinite(radii)
    if not len(pred_zyx) or not reach.any():
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    pairs = cKDTree(pred_zyx).sparse_distance_matrix(
        cKDTree(truth_zyx), float(np.nanmax(radii)), output_type="ndarray"
    )
    i, j, d = pairs["i"].astype(int), pairs["j"].astype(int), pairs["v"].astype(float)
    keep = d <= np.nan_to_num(radii[j], nan=-1.0)
    return i[keep], j[keep], d[keep]


def match_pairs(
    n_pred: int, n_truth: int, i: np.ndarray, j: np.ndarray, d: np.ndarray
) -> np.ndarray:
    """Optimal one-to-one matching over candidate pairs: most matches, then least total distance.

    Returns, per truth row, the matched prediction or -1. The bipartite graph is split into
    connected components, each solved with ``scipy.optimize.linear_sum_assignment``.
    """
    matched = np.full(n_truth, -1, dtype=int)
    if not len(i):
        return matched
    graph = coo_matrix((np.ones(len(i)), (i, n_pred + j)), shape=(n_pred + n_truth,) * 2)
    _, labels = connected_components(graph, directed=False)
    component = labels[i]
    order = np.argsort(component, kind="stable")
    starts = np.flatnonzero(np.r_[True, component[order][1:] != component[order][:-1]])
    for start, stop in zip(starts, np.r_[starts[1:], len(order)], strict=True):
        edges = order[start:stop]
        if len(edges) == 1:
            matched[j[edges[0]]] = i[edges[0]]
            continue
        rows, row_of = np.unique(i[edges], return_inverse=True)
        cols, col_of = np.unique(j[edges], return_inverse=True)
        big = (float(d[edges].max()) + 1.0) * (min(len(rows), len(cols)) + 1)
        cost = np.full((len(rows), len(cols)), big)
        cost[row_of, col_of] = d[edges]
        r, c = linear_sum_assignment(cost)
        ok = cost[r, c] < big
        matched[cols[c[ok]]] = rows[r[ok]]
    return matched


def _resolve_radii(
    truth: Picks,
    skipped: np.ndarray,
    radius: float | None,
    class_radii: Mapping[str, float] | str | None,
) -> tuple[np.ndarray, dict[str, float], list[str]]:
    classes = truth.features["class"].astype(str).to_numpy()
    if radius is not None and (not np.isfinite(radius) or radius <= 0):
        raise CryoetInputError(
            None, f"the hit radius must be a positive number of voxels, got {radius}"
        )
    if class_radii is None and radius is not None:
        radii = np.full(len(truth), float(radius))
        return radii, {class_key(c): float(radius) for c in np.unique(classes)}, []
    if class_radii is None:
        class_radii = choose_radius_table(classes[~skipped])
    if isinstance(class_radii, str):
        if class_radii not in RADIUS_TABLES:
            raise CryoetInputError(
                None, f"unknown radius table {class_radii!r} (use {', '.join(RADIUS_TABLES)})"
            )
        class_radii = RADIUS_TABLES[class_radii]
    radii, unknown = radii_for_classes(classes, class_radii, radius)
    unknown_kept = sorted({c for c in classes[~skipped & np.isnan(radii)]})
    if unknown_kept:
        raise CryoetInputError(
            None,
            f"no hit radius for class{'es' if len(unknown_kept) > 1 else ''} {', '.join(unknown_kept)}: "
            "give one radius for all (--radius) or skip them (--skip)",
        )
    warnings = []
    if unknown:
        warnings.append(
            f"skipped class{'es' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            "have no hit radius: predictions on them count as FP"
        )
    used = {class_key(c): float(r) for c, r in zip(classes, radii, strict=True) if np.isfinite(r)}
    return radii, dict(sorted(used.items())), warnings


def score_distance(
    truth: Picks,
    pred: Picks,
    *,
    radius: float | None = None,
    class_radii: Mapping[str, float] | str | None = None,
    skip: Iterable[str] = (),
    shape: tuple[int, ...] | None = None,
    count_skipped_picks: bool = False,
) -> LocalizationResult:
    """Distance rule: a hit is a prediction within its particle's radius of the particle's centre.

    Radii: one ``radius`` (voxels) for every particle; or a per-class table ``class_radii`` (a dict
    or the name of a shipped table, ``"shrec2021"`` / ``"shrec2019"``, see
    :mod:`~napari_cryoet_particles.evaluate.radii`), with ``radius`` as the fallback for classes it
    lacks. Neither: the shipped table that knows every (non-skipped) class.

    Each particle is matched to at most one prediction by an optimal matching (most matches, then
    least total distance; :func:`match_pairs`). An unmatched prediction within reach of a
    (necessarily matched) particle is a ``duplicate``; else within reach of a skipped particle it is
    ``skipped``; else ``fp``. Distances use the unrounded coordinates. With ``shape``, predictions
    whose rounded position is outside the volume are ``outside`` (FP) and match nothing.
    """
    skip_keys = _skip_keys(skip)
    skipped = _truth_skipped(truth, skip_keys)
    _check_truth(truth, skipped, skip_keys)
    radii, used, warnings = _resolve_radii(truth, skipped, radius, class_radii)
    n = len(pred)
    outside = _outside(pred.zyx, shape)
    i, j, d = _candidate_pairs(pred.zyx, truth.zyx, radii)
    keep = ~outside[i]
    i, j, d = i[keep], j[keep], d[keep]
    kept = ~skipped[j]
    matched = match_pairs(n, len(truth), i[kept], j[kept], d[kept])

    status = np.full(n, "fp", dtype=object)
    truth_id = np.zeros(n, dtype=int)
    distance = np.full(n, np.nan)
    status[outside] = "outside"
    # nearest reachable particle of each prediction, kept classes first, then skipped ones
    for group, label in ((kept, "duplicate"), (~kept, "skipped")):
        gi, gj, gd = i[group], j[group], d[group]
        order = np.lexsort((gd, gi))
        first = np.r_[True, gi[order][1:] != gi[order][:-1]] if len(order) else np.zeros(0, bool)
        pi, pj, pd_ = gi[order][first], gj[order][first], gd[order][first]
        free = truth_id[pi] == 0
        truth_id[pi[free]] = pj[free] + 1
        distance[pi[free]] = pd_[free]
        status[pi[free]] = label
    found = np.flatnonzero(matched >= 0)
    status[matched[found]] = "tp"
    truth_id[matched[found]] = found + 1
    distance[matched[found]] = np.linalg.norm(pred.zyx[matched[found]] - truth.zyx[found], axis=1)
    if outside.any():
        warnings.append(
            f"{int(outside.sum())} predictions lie outside the volume {tuple(shape)}: counted as FP"
        )
    return _finish(
        "distance",
        truth,
        status.astype(str),
        truth_id,
        distance,
        skipped,
        skip_keys,
        count_skipped_picks,
        used,
        warnings,
    )


def evaluate_picks(
    truth: Picks,
    pred: Picks,
    *,
    id_map: np.ndarray | None = None,
    rule: str = "auto",
    radius: float | None = None,
    class_radii: Mapping[str, float] | str | None = None,
    skip: Iterable[str] = (),
    shape: tuple[int, ...] | None = None,
    dilate: int = 1,
    count_skipped_picks: bool = False,
) -> LocalizationResult:
    """Score ``pred`` against ``truth`` by the SHREC rule (with ``id_map``) or the distance rule.

    ``rule="auto"`` takes the SHREC rule when an id map is given. Picks in voxels of another size
    than the truth's are rescaled to the truth's voxels first (noted in ``warnings``); when either
    voxel size is unknown (``None``, e.g. a CSV that states none) both are taken to be in the
    same voxels. ``shape`` (default: the id map's) marks predictions outside the volume.
    """
    if rule not in ("auto", "shrec", "distance"):
        raise CryoetInputError(None, f"unknown scoring rule {rule!r} (use shrec or distance)")
    if rule == "auto":
        rule = "shrec" if id_map is not None else "distance"
    if rule == "shrec" and id_map is None:
        raise CryoetInputError(None, "the SHREC rule needs a particle-id map (occupancy_mask.mrc)")
    notes = []
    sizes = (pred.voxel_size, truth.voxel_size)
    if None not in sizes and not np.isclose(*sizes, rtol=1e-3):
        notes.append(
            f"predictions in voxels of {pred.voxel_size:g} Å rescaled to the truth's {truth.voxel_size:g} Å"
        )
        pred = pred.rescaled(truth.voxel_size)
    if shape is None and id_map is not None:
        shape = tuple(np.shape(id_map))
    if rule == "shrec":
        result = score_shrec(
            truth, pred, id_map, skip=skip, dilate=dilate, count_skipped_picks=count_skipped_picks
        )
    else:
        result = score_distance(
            truth,
            pred,
            radius=radius,
            class_radii=class_radii,
            skip=skip,
            shape=shape,
            count_skipped_picks=count_skipped_picks,
        )
    result.warnings[:0] = notes
    return result


# ---------------------------------------------------------------------------------------------
# Clutter rule


def clutter_classes(
    names: Iterable[object], protein: Iterable[str] = PROTEIN_CLASS_KEYS
) -> tuple[str, ...]:
    """The class keys among ``names`` that are clutter: neither protein nor background.

    ``names`` are a truth's class column and a class mask's names (``class_names.txt``), e.g.
    ``vesicle``, ``fiducial``, ``membrane``, ``actin``, ``microtubule``, ``ice``, ``carbon``.
    """
    proteins = {class_key(p) for p in protein}
    keys = {class_key(n) for n in names}
    return tuple(sorted(keys - proteins - BACKGROUND_NAMES))


def score_clutter(
    truth: Picks,
    pred: Picks,
    clutter: Iterable[str],
    *,
    skip: Iterable[str] = (),
    **options: object,
) -> LocalizationResult:
    """The clutter rule: :func:`evaluate_picks` with the ``clutter`` classes out of the truth and
    every prediction on one of their particles a false positive (not skipped).

    ``skip`` (e.g. 4V94) stays skipped; ``options`` go to :func:`evaluate_picks` (give the same as
    for the rule it is reported beside). Under the distance rule a clutter class without a hit
    radius catches no prediction (they are FP anyway, but not flagged as on clutter).
    """
    clutter_keys = _skip_keys(clutter)
    base = evaluate_picks(truth, pred, skip=(*skip, *clutter_keys), **options)
    classes = np.array([class_key(c) for c in truth.features["class"].astype(str)], dtype=object)
    hit = base.pred_truth_id
    hit_class = np.where(hit > 0, classes[np.maximum(hit, 1) - 1], "")
    on_clutter = (base.pred_status == "skipped") & np.isin(hit_class, clutter_keys)
    status = base.pred_status.astype(object)
    status[on_clutter] = "fp"
    result = _finish(
        base.rule,
        truth,
        status.astype(str),
        hit,
        base.pred_distance,
        base.truth_skipped,
        base.skip,
        base.count_skipped_picks,
        base.radii,
        base.warnings,
    )
    result.skip = tuple(k for k in base.skip if k not in clutter_keys)
    result.clutter = clutter_keys
    result.pred_on_clutter = on_clutter
    result.n_on_clutter = int(on_clutter.sum())
    return result

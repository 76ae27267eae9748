"""Loading the truth for scoring, and showing a result as a table or JSON."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cryoet_particles.evaluate.curves import RankingCurves, ranking_curves
from napari_cryoet_particles.evaluate.groups import GroupAgreement, group_class_agreement
from napari_cryoet_particles.evaluate.landing import (
    FACES,
    Landing,
    class_names_from_masks,
    landing_sites,
)
from napari_cryoet_particles.evaluate.localization import (
    SHREC2021_SKIP,
    LocalizationResult,
    clutter_classes,
    dilate_ids,
    evaluate_picks,
    score_clutter,
)
from napari_cryoet_particles.evaluate.radii import class_key
from napari_cryoet_particles.io.atomic import atomic_write
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks import Picks, read_picks, read_shrec_locations
from napari_cryoet_particles.io.shrec import LOCATIONS, is_shrec_folder, read_shrec_folder


@dataclass
class TruthData:
    """Ground truth to score against: particles, and for a SHREC folder the id map, the volume
    shape, and the class mask with the names of its values (``class_names.txt``, or derived from
    the masks and the truth when the folder has none)."""

    truth: Picks
    id_map: np.ndarray | None = None
    shape: tuple[int, int, int] | None = None
    source: Path | None = None
    class_mask: np.ndarray | None = None
    class_names: dict[int, str] | None = None

    @property
    def clutter(self) -> tuple[str, ...]:
        """The clutter classes named by the truth's class column and the class mask's names."""
        names = list(self.truth.features["class"].astype(str))
        return clutter_classes([*names, *(self.class_names or {}).values()])


def load_truth(path: str | Path, order: str = "xyz", voxel_size: float | None = None) -> TruthData:
    """Like :func:`_load_truth`, refusing a truth without particles with a message naming the file."""
    truth = _load_truth(path, order, voxel_size)
    if len(truth.truth) == 0:
        raise CryoetInputError(truth.source, "the truth has no particles to score against")
    return truth


def _load_truth(path: str | Path, order: str, voxel_size: float | None) -> TruthData:
    """Truth from a SHREC folder (``particle_locations.txt`` + ``occupancy_mask.mrc`` if present) or a
    bare ``particle_locations.txt`` (``order="zyx"`` for SHREC 2019's ``CLASS Z Y X`` columns;
    ``voxel_size`` in Å, by default SHREC's 10 Å, used only for a bare file).
    """
    path = Path(path)
    if path.is_dir():
        if not is_shrec_folder(path):
            if (path / LOCATIONS).is_file():
                return TruthData(
                    read_shrec_locations(path / LOCATIONS, voxel_size, order),
                    source=path / LOCATIONS,
                )
            raise CryoetInputError(
                path, f"folder holds neither a SHREC reconstruction nor {LOCATIONS}"
            )
        dataset = read_shrec_folder(path)
        if dataset.truth is None:
            raise CryoetInputError(path, f"SHREC folder has no {LOCATIONS} (no ground truth)")
        truth = dataset.truth
        if order == "zyx":
            truth = read_shrec_locations(path / LOCATIONS, dataset.tomogram.voxel_size, order)
        id_map = None if dataset.occupancy is None else np.asarray(dataset.occupancy)
        names = dataset.class_names
        if names is None and dataset.class_mask is not None and id_map is not None:
            names = class_names_from_masks(id_map, dataset.class_mask, truth.features["class"])
        return TruthData(
            truth, id_map, tuple(dataset.tomogram.shape[:3]), path, dataset.class_mask, names
        )
    if not path.exists():
        raise CryoetInputError(path, "no such file or folder")
    return TruthData(read_shrec_locations(path, voxel_size, order), source=path)


def _fmt(value: float) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.4f}"
    )


def format_result(result: LocalizationResult) -> str:
    """A readable multi-line table of the scores, the binary confusion matrix and per-class recall."""
    rule = (
        "SHREC rule (particle-id map)" if result.rule == "shrec" else "distance rule (hit radius)"
    )
    lines = [f"Localization, {rule}"]
    if result.skip:
        how = "counted in predictions" if result.count_skipped_picks else "left out"
        lines.append(
            f"  skipped classes: {', '.join(result.skip)} (picks on them: {result.n_on_skipped}, {how})"
        )
    rows = [
        ("predictions", str(result.n_pred)),
        ("truth particles", str(result.n_truth)),
        ("TP (particles found)", str(result.tp)),
        (
            "FP",
            str(result.fp)
            + (f" (of which {result.n_outside} outside the volume)" if result.n_outside else ""),
        ),
        ("FN (particles missed)", str(result.fn)),
        ("duplicates (neither)", str(result.n_duplicate)),
        ("precision", _fmt(result.precision)),
        ("recall", _fmt(result.recall)),
        ("F1", _fmt(result.f1)),
        ("mean distance of TP (vox)", _fmt(result.mean_distance)),
    ]
    width = max(len(name) for name, _ in rows)
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    (tp, fn), (fp, _) = result.confusion
    lines += [
        "",
        "  confusion        predicted particle  predicted background",
        f"  truth particle   {tp:>18}  {fn:>20}",
        f"  truth background {fp:>18}  {'-':>20}",
        "",
        "  per class:",
    ]
    table = result.per_class.copy()
    if result.radii:
        table["radius"] = [result.radii.get(class_key(c), np.nan) for c in table["class"]]
    text = table.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    lines += ["    " + line for line in text.splitlines()]
    return "\n".join(lines)


def write_json(path: str | Path, document: dict, overwrite: bool = False) -> Path:
    """Write a JSON document atomically (NaN becomes null)."""

    def clean(value):
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            return None
        return value

    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(clean(document), indent=2))
    return Path(path)


@dataclass
class EvaluationReport:
    """Everything ``cryoet-particles evaluate`` shows: the localization result, and when the picks
    allow it the ranking curves (picks with scores) and the group agreement (picks with clusters)."""

    result: LocalizationResult
    truth: TruthData
    pred: Picks
    curves: RankingCurves | None = None
    groups: GroupAgreement | None = None
    clutter: LocalizationResult | None = None
    landing: Landing | None = None

    @property
    def warnings(self) -> list[str]:
        """The result's warnings, then the clutter rule's that differ."""
        extra = [] if self.clutter is None else self.clutter.warnings
        return [*self.result.warnings, *(w for w in extra if w not in self.result.warnings)]

    def to_dict(self) -> dict[str, object]:
        document: dict[str, object] = {
            "truth": str(self.truth.source) if self.truth.source else None,
            "localization": self.result.to_dict(),
        }
        if self.clutter is not None:
            document["clutter_rule"] = self.clutter.to_dict()
        if self.landing is not None:
            document["landing"] = self.landing.to_dict()
        if self.curves is not None:
            document["ranking"] = self.curves.to_dict()
        if self.groups is not None:
            document["groups_vs_classes"] = self.groups.to_dict()
        return document


def parse_skip(text: str | None) -> tuple[str, ...]:
    """``"4V94,vesicle"`` to a tuple of class names; ``"shrec2021"`` means 4V94, vesicles and fiducials."""
    names: list[str] = []
    for part in (text or "").split(","):
        part = part.strip()
        if part.lower() == "shrec2021":
            names += SHREC2021_SKIP
        elif part:
            names.append(part)
    return tuple(names)


def read_predictions(path: str | Path, order: str = "xyz") -> Picks:
    """Picks from any supported file; a SHREC ``.txt`` is read in the given column order."""
    path = Path(path)
    if path.suffix.lower() == ".txt":
        return read_shrec_locations(path, order=order)
    return read_picks(path)


def evaluate_files(
    truth_path: str | Path,
    pred_path: str | Path,
    *,
    rule: str = "auto",
    radius: float | None = None,
    radius_table: str | None = None,
    skip: tuple[str, ...] = (),
    order: str = "xyz",
    count_skipped_picks: bool = False,
) -> EvaluationReport:
    """Score a picks file against a SHREC folder or ``particle_locations.txt`` (see :func:`evaluate_picks`).

    A SHREC folder with ``occupancy_mask.mrc`` is scored by the SHREC rule unless ``rule`` says
    otherwise; anything else by the distance rule. ``order`` is the column order of SHREC ``.txt``
    files (truth and predictions; ``"zyx"`` for SHREC 2019).
    """
    truth = load_truth(truth_path, order=order)
    pred = read_predictions(pred_path, order=order)
    return evaluate_data(
        truth,
        pred,
        rule=rule,
        radius=radius,
        radius_table=radius_table,
        skip=skip,
        count_skipped_picks=count_skipped_picks,
    )


def evaluate_data(
    truth: TruthData,
    pred: Picks,
    *,
    rule: str = "auto",
    radius: float | None = None,
    radius_table: str | None = None,
    skip: tuple[str, ...] = (),
    count_skipped_picks: bool = False,
    dilate: int = 1,
    clutter: bool = True,
) -> EvaluationReport:
    """Score picks already in memory: the one path behind the CLI and the Metrics dock.

    ``dilate=0`` when ``truth.id_map`` is already dilated (a GUI caches that). Groups are compared
    with classes from the ``group`` feature when detection set it, else from ``cluster``.
    With ``clutter``, a truth naming clutter classes (:attr:`TruthData.clutter`) is also scored
    by the clutter rule (:func:`score_clutter`), and with a known volume shape the report says
    where the false picks land (:func:`landing_sites`; false by the clutter rule when there is one).
    """
    id_map = truth.id_map if rule in ("auto", "shrec") else None
    if id_map is not None and dilate > 0:
        id_map, dilate = dilate_ids(id_map, dilate), 0  # once, for both rules
    options = {
        "id_map": id_map,
        "rule": rule,
        "radius": radius,
        "class_radii": radius_table,
        "shape": truth.shape,
        "count_skipped_picks": count_skipped_picks,
        "dilate": dilate,
    }
    result = evaluate_picks(truth.truth, pred, skip=skip, **options)
    report = EvaluationReport(result, truth, pred)
    if clutter:
        report.clutter = _clutter_rule(truth, pred, skip, options)
        if truth.shape is not None:
            report.landing = _landing(truth, pred, report.clutter or result)
    scores = pred.scores
    finite = scores[np.isfinite(scores)]
    if len(finite) and np.ptp(finite) > 0:
        report.curves = ranking_curves(result, scores)
    column = "group" if "group" in pred.features else "cluster"
    groups = pred.features[column].to_numpy()
    if len(groups) and np.any(groups.astype(float) >= 0):
        report.groups = group_class_agreement(result, truth.truth.features["class"], groups)
    return report


def _clutter_rule(
    truth: TruthData, pred: Picks, skip: tuple[str, ...], options: dict
) -> LocalizationResult | None:
    """The clutter rule's result, or ``None`` when the truth names no clutter or holds nothing else."""
    kinds = truth.clutter
    left_out = {class_key(c) for c in (*skip, *kinds)}
    classes = {class_key(c) for c in truth.truth.features["class"].astype(str)}
    if not kinds or classes <= left_out:
        return None
    kinds = tuple(sorted({*kinds, *clutter_classes(skip)}))  # a skipped fiducial is clutter too
    return score_clutter(truth.truth, pred, kinds, skip=skip, **options)


def _in_truth_voxels(pred: Picks, truth: Picks) -> Picks:
    """The picks in the truth's voxels, as :func:`evaluate_picks` rescales them."""
    sizes = (pred.voxel_size, truth.voxel_size)
    if None not in sizes and not np.isclose(*sizes, rtol=1e-3):
        return pred.rescaled(truth.voxel_size)
    return pred


def _landing(truth: TruthData, pred: Picks, result: LocalizationResult) -> Landing:
    classes = truth.truth.features["class"].astype(str).to_numpy()
    hit = result.pred_truth_id
    hit_class = np.where(hit > 0, classes[np.maximum(hit, 1) - 1], "")
    return landing_sites(
        _in_truth_voxels(pred, truth.truth),
        np.isin(result.pred_status, ("fp", "outside")),
        truth.shape,
        class_mask=truth.class_mask,
        class_names=truth.class_names,
        clutter=result.clutter or truth.clutter,
        hit_class=hit_class,
    )


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f} %"


def format_rules_side_by_side(result: LocalizationResult, clutter: LocalizationResult) -> str:
    """The result beside the same picks under the clutter rule, one row per number."""
    name = "SHREC rule" if result.rule == "shrec" else "distance rule"
    still = f"; {', '.join(clutter.skip)} still skipped" if clutter.skip else ""
    lines = [
        f"Clutter rule beside the {name} (picks on {', '.join(clutter.clutter)} are FP{still})"
    ]
    rows = [
        ("predictions", result.n_pred, clutter.n_pred),
        ("truth particles", result.n_truth, clutter.n_truth),
        ("TP", result.tp, clutter.tp),
        ("FP", result.fp, clutter.fp),
        ("  of which on clutter", "-", clutter.n_on_clutter),
        ("picks on skipped (neither)", result.n_on_skipped, clutter.n_on_skipped),
        ("precision", _fmt(result.precision), _fmt(clutter.precision)),
        ("recall", _fmt(result.recall), _fmt(clutter.recall)),
        ("F1", _fmt(result.f1), _fmt(clutter.f1)),
    ]
    width = max(len(row[0]) for row in rows)
    lines.append(f"  {'':<{width}}  {name:>13}  {'clutter rule':>13}")
    lines += [f"  {label:<{width}}  {a!s:>13}  {b!s:>13}" for label, a, b in rows]
    return "\n".join(lines)


def format_landing(landing: Landing) -> str:
    """Where the false picks landed, and how many of all picks lie on clutter or near a face."""
    lines = [f"Where false picks land ({landing.n_false} of {landing.n_picks} picks are false)"]
    labels = {FACES: "faces (within half a box)"}
    rows = [(labels.get(s, s), c) for s, c in landing.counts.items()]
    width = max(len(label) for label, _ in rows)
    lines += [
        f"  {label:<{width}}  {count:>6}  {_percent(landing.fraction(count)):>8} of picks"
        for label, count in rows
    ]
    if landing.clutter:
        kinds = ", ".join(f"{k} {c}" for k, c in landing.clutter_counts.items())
        lines.append(
            f"  picks on clutter (all picks): {landing.n_on_clutter} "
            f"({_percent(landing.fraction(landing.n_on_clutter))}): {kinds}"
        )
    lines.append(
        f"  picks within {landing.face_margin:g} voxels of a face (all picks): "
        f"{landing.n_near_faces} ({_percent(landing.fraction(landing.n_near_faces))})"
    )
    return "\n".join(lines)


def format_report(report: EvaluationReport) -> str:
    """:func:`format_result`, the clutter rule beside it and where false picks land, then the
    ranking summary and the group-vs-class table, each when present."""
    lines = [format_result(report.result)]
    if report.clutter is not None:
        lines += ["", format_rules_side_by_side(report.result, report.clutter)]
    if report.landing is not None:
        lines += ["", format_landing(report.landing)]
    if report.curves is not None:
        c = report.curves
        lines += [
            "",
            "Ranking by score",
            f"  average precision  {_fmt(c.average_precision)}",
            f"  ROC AUC of picks   {_fmt(c.roc_auc)}",
            f"  best F1            {_fmt(c.best_f1)} at score >= {c.best_threshold:.4g}",
        ]
    if report.groups is not None:
        g = report.groups
        lines += [
            "",
            f"Groups vs true classes ({g.n_matched} matched picks, adjusted Rand index {_fmt(g.ari)})",
        ]
        lines += ["    " + line for line in g.table.to_string().splitlines()]
    return "\n".join(lines)

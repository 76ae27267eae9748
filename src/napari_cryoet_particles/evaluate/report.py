"""Loading the truth for scoring, and showing a result as a table or JSON."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cryoet_particles.evaluate.curves import RankingCurves, ranking_curves
from napari_cryoet_particles.evaluate.groups import GroupAgreement, group_class_agreement
from napari_cryoet_particles.evaluate.localization import (
    SHREC2021_SKIP,
    LocalizationResult,
    evaluate_picks,
)
from napari_cryoet_particles.evaluate.radii import class_key
from napari_cryoet_particles.io.atomic import atomic_write
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks import Picks, read_picks, read_shrec_locations
from napari_cryoet_particles.io.shrec import LOCATIONS, is_shrec_folder, read_shrec_folder


@dataclass
class TruthData:
    """Ground truth to score against: particles, and for a SHREC folder the id map and volume shape."""

    truth: Picks
    id_map: np.ndarray | None = None
    shape: tuple[int, int, int] | None = None
    source: Path | None = None


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
        return TruthData(truth, id_map, tuple(dataset.tomogram.shape[:3]), path)
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

    def to_dict(self) -> dict[str, object]:
        document: dict[str, object] = {
            "truth": str(self.truth.source) if self.truth.source else None,
            "localization": self.result.to_dict(),
        }
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
) -> EvaluationReport:
    """Score picks already in memory: the one path behind the CLI and the Metrics dock.

    ``dilate=0`` when ``truth.id_map`` is already dilated (a GUI caches that). Groups are compared
    with classes from the ``group`` feature when detection set it, else from ``cluster``.
    """
    result = evaluate_picks(
        truth.truth,
        pred,
        id_map=truth.id_map if rule in ("auto", "shrec") else None,
        rule=rule,
        radius=radius,
        class_radii=radius_table,
        skip=skip,
        shape=truth.shape,
        count_skipped_picks=count_skipped_picks,
        dilate=dilate,
    )
    report = EvaluationReport(result, truth, pred)
    scores = pred.scores
    finite = scores[np.isfinite(scores)]
    if len(finite) and np.ptp(finite) > 0:
        report.curves = ranking_curves(result, scores)
    column = "group" if "group" in pred.features else "cluster"
    groups = pred.features[column].to_numpy()
    if len(groups) and np.any(groups.astype(float) >= 0):
        report.groups = group_class_agreement(result, truth.truth.features["class"], groups)
    return report


def format_report(report: EvaluationReport) -> str:
    """:func:`format_result` plus the ranking summary and the group-vs-class table when present."""
    lines = [format_result(report.result)]
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

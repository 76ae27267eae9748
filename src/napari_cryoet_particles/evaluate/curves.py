"""Precision-recall and ROC curves of picks ranked by score, and their figure.

Both curves follow the scored picks from the highest score down; the picks counted are those in
``n_pred`` of the :class:`LocalizationResult` (picks on skipped classes are left out unless the
result counted them). A pick without a finite score ranks last.

- **Precision-recall** (detection): at each score threshold, TP = truth particles hit by at least
  one pick at or above it (a particle counts once, however many picks hit it), precision = TP /
  picks at or above, recall = TP / ``n_truth``. The curve ends at the result's precision and
  recall. Average precision sums precision × recall increments (scikit-learn's definition).
- **ROC** (per pick): positives are picks that hit a particle (``tp`` or ``duplicate``), negatives
  the others; ``sklearn.metrics.roc_curve`` / ``roc_auc_score``.

The figure is a :class:`matplotlib.figure.Figure` built without pyplot, so a Qt widget can embed it
(``FigureCanvasQTAgg(figure)``) and the CLI can write it to PNG (Agg) from any thread.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from napari_cryoet_particles.evaluate.localization import LocalizationResult
from napari_cryoet_particles.io.atomic import atomic_write


@dataclass
class RankingCurves:
    """Points of the two curves (one per distinct score threshold, highest first) and summaries."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    average_precision: float
    best_f1: float
    best_threshold: float
    fpr: np.ndarray
    tpr: np.ndarray
    roc_auc: float
    n_truth: int
    n_pred: int

    def to_dict(self) -> dict[str, float | None]:
        def num(v: float) -> float | None:
            return None if not np.isfinite(v) else float(v)

        return {
            "average_precision": num(self.average_precision),
            "best_f1": num(self.best_f1),
            "best_threshold": num(self.best_threshold),
            "roc_auc": num(self.roc_auc),
        }


def ranking_curves(result: LocalizationResult, scores: np.ndarray) -> RankingCurves:
    """Curves of the result's picks ranked by ``scores`` (one per prediction, higher = better)."""
    scores = np.asarray(scores, dtype=float).ravel()
    if len(scores) != len(result.pred_status):
        raise ValueError(f"{len(result.pred_status)} predictions but {len(scores)} scores")
    counted = result.pred_counted
    score = scores[counted]
    finite = np.isfinite(score)
    floor = (score[finite].min() - 1.0) if finite.any() else 0.0
    score = np.where(finite, score, floor)
    status = result.pred_status[counted]
    truth_id = result.pred_truth_id[counted]
    hit = (status == "tp") | (status == "duplicate")

    order = np.argsort(-score, kind="stable")
    ranked_id = np.where(hit[order], truth_id[order], 0)
    new = np.zeros(len(order), dtype=bool)
    if hit.any():
        hits = np.flatnonzero(ranked_id > 0)
        _, first = np.unique(ranked_id[hits], return_index=True)
        new[hits[first]] = True
    cum_tp = np.cumsum(new)
    cum_n = np.arange(1, len(order) + 1)
    ranked_score = score[order]
    last_of_tie = (
        np.r_[ranked_score[1:] != ranked_score[:-1], True] if len(order) else np.zeros(0, bool)
    )
    tp = cum_tp[last_of_tie].astype(float)
    precision = tp / cum_n[last_of_tie]
    recall = tp / result.n_truth if result.n_truth else np.zeros_like(tp)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    average_precision = float(np.sum(np.diff(np.r_[0.0, recall]) * precision)) if len(tp) else 0.0
    best = int(np.argmax(f1)) if len(f1) else -1
    thresholds = ranked_score[last_of_tie]

    nan = float("nan")
    fpr = tpr = np.zeros(0)
    roc_auc = nan
    if hit.any() and not hit.all():
        fpr, tpr, _ = roc_curve(hit, score)
        roc_auc = float(roc_auc_score(hit, score))
    return RankingCurves(
        thresholds=thresholds,
        precision=precision,
        recall=recall,
        f1=f1,
        average_precision=average_precision,
        best_f1=float(f1[best]) if best >= 0 else nan,
        best_threshold=float(thresholds[best]) if best >= 0 else nan,
        fpr=fpr,
        tpr=tpr,
        roc_auc=roc_auc,
        n_truth=result.n_truth,
        n_pred=int(counted.sum()),
    )


def plot_ranking_curves(curves: RankingCurves, title: str = "") -> Figure:
    """A two-panel figure: precision-recall (with F1 iso-lines) and ROC."""
    figure = Figure(figsize=(9.0, 4.2), layout="constrained")
    pr_axes, roc_axes = figure.subplots(1, 2)
    grid = np.linspace(0.01, 1.0, 200)
    for level in (0.2, 0.4, 0.6, 0.8):
        with np.errstate(divide="ignore", invalid="ignore"):
            p = level * grid / (2 * grid - level)
        ok = (p > 0) & (p <= 1.0)
        pr_axes.plot(grid[ok], p[ok], color="0.85", linewidth=0.8, zorder=0)
        pr_axes.annotate(
            f"F1={level:.1f}",
            (grid[ok][-1], p[ok][-1]),
            fontsize=7,
            color="0.55",
            xytext=(-28, 2),
            textcoords="offset points",
        )
    if len(curves.recall):
        pr_axes.plot(
            np.r_[0.0, curves.recall],
            np.r_[curves.precision[0], curves.precision],
            drawstyle="steps-pre",
            color="C0",
            label=f"AP = {curves.average_precision:.3f}",
        )
        best = int(np.argmax(curves.f1))
        pr_axes.plot(
            curves.recall[best],
            curves.precision[best],
            "o",
            color="C3",
            label=f"best F1 = {curves.best_f1:.3f} (score ≥ {curves.best_threshold:.3g})",
        )
    pr_axes.set(
        xlim=(0, 1.01),
        ylim=(0, 1.01),
        xlabel="recall (of truth particles)",
        ylabel="precision",
        title=f"Precision-recall ({curves.n_pred} picks, {curves.n_truth} particles)",
    )
    pr_axes.legend(loc="lower left", fontsize=8)
    roc_axes.plot([0, 1], [0, 1], color="0.8", linestyle="--", linewidth=0.8)
    if len(curves.fpr):
        roc_axes.plot(curves.fpr, curves.tpr, color="C1", label=f"AUC = {curves.roc_auc:.3f}")
        roc_axes.legend(loc="lower right", fontsize=8)
    else:
        roc_axes.text(
            0.5, 0.5, "undefined: all picks hit\nor all picks missed", ha="center", va="center"
        )
    roc_axes.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="false positive rate (picks on background)",
        ylabel="true positive rate (picks on particles)",
        title="ROC of picks by score",
    )
    if title:
        figure.suptitle(title)
    return figure


def save_figure_png(
    figure: Figure, path: str | Path, overwrite: bool = False, dpi: int = 120
) -> Path:
    """Write a figure to PNG atomically (Agg backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    with atomic_write(path, overwrite=overwrite) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    return Path(path)

"""Unsupervised groups against true classes, for the picks that found a particle."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from napari_cryoet_particles.evaluate.localization import LocalizationResult


@dataclass
class GroupAgreement:
    """``table``: counts of matched picks, rows = true class, columns = group. ``ari``: adjusted
    Rand index of groups vs classes over the same picks (NaN with fewer than two picks)."""

    table: pd.DataFrame
    ari: float
    n_matched: int

    def to_dict(self) -> dict[str, object]:
        return {
            "ari": None if np.isnan(self.ari) else self.ari,
            "n_matched": self.n_matched,
            "table": {
                str(c): {str(g): int(n) for g, n in row.items()} for c, row in self.table.iterrows()
            },
        }


def group_class_agreement(
    result: LocalizationResult,
    truth_classes: np.ndarray | pd.Series,
    groups: np.ndarray | pd.Series,
) -> GroupAgreement:
    """Confusion of ``groups`` (one per prediction, e.g. the ``cluster`` feature) against the class of
    the truth particle each TP prediction found (``truth_classes``: one per truth row)."""
    groups = np.asarray(groups)
    if len(groups) != len(result.pred_status):
        raise ValueError(f"{len(result.pred_status)} predictions but {len(groups)} groups")
    matched = np.flatnonzero(result.pred_status == "tp")
    classes = np.asarray(truth_classes).astype(str)[result.pred_truth_id[matched] - 1]
    picked = groups[matched]
    table = pd.crosstab(
        pd.Series(classes, name="class"), pd.Series(picked, name="group"), dropna=False
    )
    ari = float(adjusted_rand_score(classes, picked)) if len(matched) >= 2 else float("nan")
    return GroupAgreement(table, ari, len(matched))

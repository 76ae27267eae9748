"""Crop-level metrics, the original method's measure: is there a particle in this crop?

Crops are axis-aligned boxes given by their centre (zyx voxels) and size (voxels, one number or
z, y, x; a 2D crop of a slice has z size 1). A crop's label comes from the truth by one of two rules:

- **centre rule** (default): the crop is "particle" when at least one truth particle's centre lies
  inside it, i.e. ``centre - size/2 <= particle < centre + size/2`` on every axis;
- **occupancy rule**: the crop is "particle" when at least ``min_fraction`` of its voxels belong to
  particles in an occupancy / id map (non-zero voxels; the part of a crop outside the volume counts
  as background).

AUC-ROC comes from a continuous score (higher = more particle-like) with
``sklearn.metrics.roc_auc_score``; F1 from a binary assignment (True / 1 = particle, e.g. the
k-means cluster taken as the particle cluster) with ``sklearn.metrics.f1_score``.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score


def _box(
    centres_zyx: np.ndarray, size: float | tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    centres = np.asarray(centres_zyx, dtype=float).reshape(-1, 3)
    size = np.broadcast_to(np.asarray(size, dtype=float), (3,))
    if np.any(size <= 0):
        raise ValueError(f"crop size must be positive, got {size.tolist()}")
    low = centres - size / 2.0
    return low, low + size


def crop_labels_by_centre(
    centres_zyx: np.ndarray, size: float | tuple[float, float, float], truth_zyx: np.ndarray
) -> np.ndarray:
    """Boolean per crop: at least one truth centre lies inside it (half-open box)."""
    low, high = _box(centres_zyx, size)
    truth = np.asarray(truth_zyx, dtype=float).reshape(-1, 3)
    labels = np.zeros(len(low), dtype=bool)
    if not len(truth):
        return labels
    order = np.argsort(truth[:, 0])
    sorted_z = truth[order, 0]
    for k in range(len(low)):
        start, stop = np.searchsorted(sorted_z, [low[k, 0], high[k, 0]], side="left")
        candidates = truth[order[start:stop]]
        labels[k] = bool(np.any(np.all((candidates >= low[k]) & (candidates < high[k]), axis=1)))
    return labels


def crop_labels_by_occupancy(
    centres_zyx: np.ndarray,
    size: int | tuple[int, int, int],
    occupancy: np.ndarray,
    min_fraction: float = 0.1,
) -> np.ndarray:
    """Boolean per crop: at least ``min_fraction`` of its voxels are particle (occupancy != 0).

    The crop covers the integer voxels ``round(centre - size/2) ... + size``.
    """
    if not 0.0 < min_fraction <= 1.0:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
    low, _ = _box(centres_zyx, size)
    size = np.broadcast_to(np.asarray(size, dtype=int), (3,))
    start = np.rint(low).astype(int)
    shape = np.asarray(occupancy.shape[:3])
    labels = np.zeros(len(start), dtype=bool)
    for k, s in enumerate(start):
        a, b = np.clip(s, 0, shape), np.clip(s + size, 0, shape)
        window = occupancy[a[0] : b[0], a[1] : b[1], a[2] : b[2]]
        labels[k] = np.count_nonzero(window) >= min_fraction * float(np.prod(size))
    return labels


@dataclass
class CropMetrics:
    """Crop-level scores. ``auc`` is NaN without scores or when all crops share one label."""

    n_crops: int
    n_particle: int
    auc: float
    f1: float
    precision: float
    recall: float
    accuracy: float

    def to_dict(self) -> dict[str, float]:
        return {
            k: (None if isinstance(v, float) and np.isnan(v) else v)
            for k, v in self.__dict__.items()
        }


def crop_metrics(
    labels: np.ndarray, scores: np.ndarray | None = None, assignment: np.ndarray | None = None
) -> CropMetrics:
    """AUC-ROC of ``scores`` and F1 (precision, recall, accuracy) of the binary ``assignment``."""
    labels = np.asarray(labels).astype(bool).ravel()
    nan = float("nan")
    auc = nan
    if scores is not None:
        scores = np.asarray(scores, dtype=float).ravel()
        if scores.shape != labels.shape:
            raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
        if labels.any() and not labels.all():
            auc = float(roc_auc_score(labels, scores))
    f1 = precision = recall = accuracy = nan
    if assignment is not None:
        assignment = np.asarray(assignment).astype(bool).ravel()
        if assignment.shape != labels.shape:
            raise ValueError(f"{len(labels)} labels but {len(assignment)} assignments")
        f1 = float(f1_score(labels, assignment, zero_division=0.0))
        precision = float(precision_score(labels, assignment, zero_division=0.0))
        recall = float(recall_score(labels, assignment, zero_division=0.0))
        accuracy = float(accuracy_score(labels, assignment))
    return CropMetrics(len(labels), int(labels.sum()), auc, f1, precision, recall, accuracy)

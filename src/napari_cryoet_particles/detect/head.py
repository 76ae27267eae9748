"""A pick head learned from curation: its data (:class:`PickHead`, saved in a refined model) and
how it scores candidates (:func:`candidate_table`, :func:`apply_head`).

Two modules use it: :mod:`.refine` fits heads from the user's marks, and :mod:`.pipeline` rescores
a detection run's candidates with the head of a refined model (``detect --model``). Both share
this module, not each other.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from napari_cryoet_particles.detect.config import AUTO_THRESHOLD
from napari_cryoet_particles.detect.describe import shape_columns
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.units import voxels_to_nm

#: Standardised descriptor values are clipped to this many standard deviations, so one odd
#: candidate cannot swing its score by many logits.
CLIP_SD = 3.0
#: A like head gives ``p = 2 ** -(d² / LIKE_SPREAD)``, ``d²`` the mean squared standardised
#: distance per descriptor column from the accepted picks' mean: picks within LIKE_SPREAD score 0.5
#: or more. Validation seeds 101 / 106, 3 clicks, 5 draws: the best cut per draw lay at 0.33-0.85
#: (median about 0.5); class F1 at 0.35 / 0.5 / 0.65: 4CR2 0.51 / 0.63 / 0.64 and 0.54 / 0.63 /
#: 0.59, 1U6G 0.16 / 0.21 / 0.21 and 0.17 / 0.20 / 0.21, 3GL1 0.24 / 0.26 / 0.24 and 0.22 / 0.22 /
#: 0.21; the positive-unlabelled logistic regression it replaces: 4CR2 0.48 / 0.41, 1U6G 0.14 /
#: 0.15, 3GL1 0.25 / 0.23 (a middle-sized species cannot be cut from the rest by one hyperplane).
LIKE_SPREAD = 0.5
#: Candidates with no stronger candidate this close (nm) count as isolated.
NEIGHBOUR_HORIZON_NM = 60.0
#: An isolated candidate's distance over its neighbour's radius is the horizon over this radius (nm).
ISOLATED_NEIGHBOUR_RADIUS_NM = 10.0
#: What a refine head reads (:func:`candidate_table` has them all, besides the descriptors).
REFINE_COLUMNS = (
    "strength",
    "radius_nm",
    "learned_logit",
    "neighbour_log_nm",
    "neighbour_log_relative",
    "neighbour_radius_nm",
)
HEAD_KINDS = ("refine", "like")


@dataclass
class PickHead:
    """A learned linear score on standardised descriptor columns: ``((x - mean) / scale) · w + b``."""

    kind: str
    columns: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    n_positive: int = 0
    n_negative: int = 0
    calibration: float = 1.0
    """Like heads saved as a logistic regression (before the distance head, ``centre`` None): mean
    ``sigmoid(logit)`` of the accepted picks; ``p = sigmoid(logit) / calibration`` (Elkan & Noto's
    positive-unlabelled correction)."""
    band_centre: float = 0.0
    """Refine heads: the threshold's score logit when the head was fitted."""
    band_half_width: float = float("inf")
    """Refine heads correct only candidates whose score logit lies within this of ``band_centre``
    (heads saved before the band existed correct every candidate)."""
    centre: np.ndarray | None = None
    """Like heads: the accepted picks' mean standardised descriptor; ``weights`` then weigh each
    column's squared distance from it (heads saved before it existed are a logistic regression in
    ``weights``)."""

    def logit(self, table: pd.DataFrame) -> np.ndarray:
        """The head's logit for each row of a descriptor table (:func:`descriptor_table`)."""
        missing = [c for c in self.columns if c not in table]
        if missing:
            raise CryoetInputError(None, f"the picks lack descriptor columns {missing}")
        values = table[list(self.columns)].to_numpy(dtype=float)
        return standardised(values, self.mean, self.scale) @ self.weights + self.bias

    def like_probability(self, table: pd.DataFrame) -> np.ndarray:
        """A like head's ``p(like the accepted picks)`` per row (NaN for undescribed rows)."""
        if self.centre is None:
            return np.clip(sigmoid(self.logit(table)) / max(self.calibration, 1e-6), 0.0, 1.0)
        values = table[list(self.columns)].to_numpy(dtype=float)
        offsets = standardised(values, self.mean, self.scale) - self.centre
        distance = np.mean(offsets**2 * self.weights, 1)
        return 2.0 ** (-distance / LIKE_SPREAD)

    def correction(self, score: np.ndarray, table: pd.DataFrame) -> np.ndarray:
        """A refine head's change to each candidate's score logit: :meth:`logit` inside the band
        around the threshold, 0 outside it."""
        inside = np.abs(logit(np.asarray(score, dtype=float)) - self.band_centre)
        return np.where(inside <= self.band_half_width, self.logit(table), 0.0)

    def to_payload(self) -> dict:
        """Plain lists and numbers, for a checkpoint that loads with ``weights_only``."""
        return {
            "kind": self.kind,
            "columns": list(self.columns),
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "weights": [float(v) for v in self.weights],
            "bias": float(self.bias),
            "n_positive": int(self.n_positive),
            "n_negative": int(self.n_negative),
            "calibration": float(self.calibration),
            "band": [float(self.band_centre), float(self.band_half_width)],
            "centre": None if self.centre is None else [float(v) for v in self.centre],
        }

    @classmethod
    def from_payload(cls, payload: dict) -> "PickHead":
        try:
            head = cls(
                kind=str(payload["kind"]),
                columns=tuple(str(c) for c in payload["columns"]),
                mean=np.asarray(payload["mean"], dtype=float),
                scale=np.asarray(payload["scale"], dtype=float),
                weights=np.asarray(payload["weights"], dtype=float),
                bias=float(payload["bias"]),
                n_positive=int(payload.get("n_positive", 0)),
                n_negative=int(payload.get("n_negative", 0)),
                calibration=float(payload.get("calibration", 1.0)),
                band_centre=float(payload.get("band", (0.0, np.inf))[0]),
                band_half_width=float(payload.get("band", (0.0, np.inf))[1]),
                centre=_optional_array(payload.get("centre")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CryoetInputError(None, f"the refined pick head is invalid ({error})") from None
        sizes = {len(head.columns), len(head.mean), len(head.scale), len(head.weights)}
        if head.centre is not None:
            sizes.add(len(head.centre))
        if head.kind not in HEAD_KINDS or len(sizes) != 1:
            raise CryoetInputError(None, "the refined pick head is invalid (inconsistent sizes)")
        return head


def _optional_array(values) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=float)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def standardise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and spread (1 where a column is constant), for :func:`standardised`."""
    mean = values.mean(0)
    scale = values.std(0)
    return mean, np.where(scale > 1e-9, scale, 1.0)


def standardised(values: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.clip((values - mean) / scale, -CLIP_SD, CLIP_SD)


def neighbour_features(
    zyx: np.ndarray, scores: np.ndarray, radius_nm: np.ndarray, voxel_size: float, k: int = 16
) -> np.ndarray:
    """(N, 3): log distance (nm) to the nearest higher-scored candidate, log of that distance over
    the neighbour's radius, and the neighbour's radius (nm).

    A second hit on a large particle lies about two of the first hit's radii from it; a particle
    of its own usually lies farther, or next to a neighbour of its own size. Candidates with no
    stronger one among their ``k`` nearest within :data:`NEIGHBOUR_HORIZON_NM` get the horizon.
    """
    zyx = np.asarray(zyx, dtype=float).reshape(-1, 3)
    out = np.tile(
        [
            np.log(NEIGHBOUR_HORIZON_NM),
            np.log(NEIGHBOUR_HORIZON_NM / ISOLATED_NEIGHBOUR_RADIUS_NM),
            0.0,
        ],
        (len(zyx), 1),
    )
    if len(zyx) < 2:
        return out
    k = min(k, len(zyx) - 1)
    distance, index = cKDTree(zyx).query(zyx, k=k + 1)
    distance_nm = voxels_to_nm(distance, voxel_size)
    stronger = (np.asarray(scores)[index] > np.asarray(scores)[:, None]) & (
        distance_nm <= NEIGHBOUR_HORIZON_NM
    )
    has = stronger.any(1)
    first = stronger.argmax(1)
    rows = np.flatnonzero(has)
    near = distance_nm[rows, first[rows]]
    neighbour = index[rows, first[rows]]
    radius = np.maximum(np.asarray(radius_nm, dtype=float)[neighbour], 1e-3)
    out[rows] = np.column_stack(
        [np.log(np.maximum(near, 1e-3)), np.log(np.maximum(near, 1e-3) / radius), radius]
    )
    return out


def candidate_table(
    zyx: np.ndarray,
    voxel_size: float,
    score: np.ndarray,
    strength: np.ndarray,
    radius_nm: np.ndarray,
    probability: np.ndarray,
    profiles: np.ndarray | None,
    embeddings: np.ndarray | None,
    shapes: np.ndarray | None = None,
) -> pd.DataFrame:
    """The descriptor table of candidates at ``zyx`` (voxels of ``voxel_size`` Å)."""
    table = pd.DataFrame(
        {
            "strength": np.asarray(strength, dtype=float),
            "radius_nm": np.asarray(radius_nm, dtype=float),
            "learned_logit": logit(probability),
        }
    )
    near = neighbour_features(zyx, score, table["radius_nm"].to_numpy(), voxel_size)
    table["neighbour_log_nm"], table["neighbour_log_relative"], table["neighbour_radius_nm"] = (
        near.T
    )
    blocks = {"profile": profiles, "embedding": embeddings}
    for name, block in blocks.items():
        if block is not None and len(block) == len(table):
            block = np.asarray(block, dtype=float)
            columns = [f"{name}_{i}" for i in range(block.shape[1])]
            table = pd.concat([table, pd.DataFrame(block, columns=columns)], axis=1)
    if shapes is not None and len(shapes) == len(table):
        shape_table = pd.DataFrame(np.asarray(shapes, dtype=float), columns=list(shape_columns()))
        table = pd.concat([table, shape_table], axis=1)
    return table


def apply_head(head: PickHead, score: np.ndarray, table: pd.DataFrame) -> np.ndarray:
    """Scores after a learned head: a refine head corrects the score's logit; a like head gives
    ``p(like the accepted picks)`` to candidates at or above the automatic threshold, 0 to the rest."""
    if head.kind == "refine":
        return sigmoid(logit(score) + head.correction(score, table))
    like = head.like_probability(table)
    described = np.isfinite(like)  # picks below the automatic threshold have no shape
    return np.where((np.asarray(score) >= AUTO_THRESHOLD) & described, like, 0.0)

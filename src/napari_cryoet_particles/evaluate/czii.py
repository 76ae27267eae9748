"""The CZII CryoET Object Identification challenge's score (Kaggle, 2024-25).

Per particle type and tomogram, a prediction is a hit when it lies within ``hit_fraction`` (0.5)
× the type's radius of a true centre of that type; TP is the number of distinct true particles
hit, FP the predictions of the type less TP (so a second hit on one particle is an FP), FN the
true particles less TP. TP, FP and FN are summed over the tomograms per type; each type gets
F-beta (β = 4: recall weighs 16 times precision) and the score is the weighted mean over the
types. This is the challenge's own ``score`` function, reimplemented on
:class:`~napari_cryoet_particles.io.Picks` (positions compared in Å); the challenge's winner
scored 0.788 on real tomograms (a supervised 3D U-Net ensemble).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from napari_cryoet_particles.io.coords import voxels_to_angstrom
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks import Picks

CZII_BETA = 4.0
CZII_HIT_FRACTION = 0.5


@dataclass(frozen=True)
class ParticleType:
    """A particle type of the metric: radius in Å and weight in the mean."""

    name: str
    radius: float
    weight: float


#: The challenge's six types (copick object names), radii in Å and weights.
CZII_PARTICLES: tuple[ParticleType, ...] = (
    ParticleType("apo-ferritin", 60.0, 1.0),
    ParticleType("beta-amylase", 65.0, 0.0),
    ParticleType("beta-galactosidase", 90.0, 2.0),
    ParticleType("ribosome", 150.0, 1.0),
    ParticleType("thyroglobulin", 130.0, 2.0),
    ParticleType("virus-like-particle", 135.0, 1.0),
)


def type_key(name: object) -> str:
    """Type names are compared in lower case with ``_`` and spaces read as ``-``."""
    return str(name).strip().lower().replace("_", "-").replace(" ", "-")


def count_hits(
    truth_angstrom: np.ndarray, pred_angstrom: np.ndarray, radius: float
) -> tuple[int, int, int]:
    """TP, FP, FN of one type in one tomogram (the challenge's ``compute_metrics``)."""
    n_truth, n_pred = len(truth_angstrom), len(pred_angstrom)
    if n_truth == 0:
        return 0, n_pred, 0
    if n_pred == 0:
        return 0, 0, n_truth
    matches = cKDTree(pred_angstrom).query_ball_tree(cKDTree(truth_angstrom), r=radius)
    tp = len({index for found in matches for index in found})
    return tp, n_pred - tp, n_truth - tp


def f_beta(tp: int, fp: int, fn: int, beta: float = CZII_BETA) -> tuple[float, float, float]:
    """Precision, recall and F-beta (0 where a denominator is 0, as the challenge)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    beta2 = beta * beta
    denominator = beta2 * precision + recall
    score = (1 + beta2) * precision * recall / denominator if denominator else 0.0
    return precision, recall, score


@dataclass
class CziiResult:
    """The challenge score and its per-type table (``type, radius, weight, tp, fp, fn,
    precision, recall, f_beta``)."""

    score: float
    per_type: pd.DataFrame
    beta: float = CZII_BETA
    n_tomograms: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "metric": "czii",
            "score": self.score,
            "beta": self.beta,
            "n_tomograms": self.n_tomograms,
            "per_type": self.per_type.to_dict(orient="records"),
            "warnings": list(self.warnings),
        }


def _by_tomogram(picks: Iterable[Picks] | Mapping[str, Picks]) -> dict[str, Picks]:
    if isinstance(picks, Mapping):
        return dict(picks)
    table: dict[str, Picks] = {}
    for p in picks:
        if p.tomogram in table:
            raise CryoetInputError(None, f"two sets of picks for tomogram {p.tomogram!r}")
        table[p.tomogram] = p
    return table


def _angstrom_of_type(picks: Picks | None, key: str) -> np.ndarray:
    if picks is None or len(picks) == 0:
        return np.zeros((0, 3))
    mask = np.array([type_key(c) == key for c in picks.features["class"]], dtype=bool)
    return voxels_to_angstrom(picks.zyx[mask], picks.known_voxel_size())


def czii_score(
    truth: Iterable[Picks] | Mapping[str, Picks],
    pred: Iterable[Picks] | Mapping[str, Picks],
    particles: Iterable[ParticleType] = CZII_PARTICLES,
    beta: float = CZII_BETA,
    hit_fraction: float = CZII_HIT_FRACTION,
) -> CziiResult:
    """Score predictions against truth the challenge's way.

    ``truth`` and ``pred`` are picks per tomogram (matched by :attr:`Picks.tomogram`, or the keys
    of a mapping), each pick's type in its ``class`` feature. Tomograms without predictions count
    all their particles as FN; predictions for a tomogram without truth are FP. Every type of
    ``particles`` enters the mean, found or not; predictions of other types are left out, with a
    warning.
    """
    truth_by = _by_tomogram(truth)
    pred_by = _by_tomogram(pred)
    particles = tuple(particles)
    keys = {type_key(p.name) for p in particles}
    warnings = []
    unknown = sorted(
        {str(c) for p in pred_by.values() for c in p.features["class"] if type_key(c) not in keys}
    )
    if unknown:
        label = "(no type)" if unknown == [""] else ", ".join(repr(u) for u in unknown[:6])
        warnings.append(f"predictions of types the metric does not score were left out: {label}")
    extra = sorted(set(pred_by) - set(truth_by))
    if extra:
        warnings.append(
            f"predictions for {len(extra)} tomogram(s) without truth count as FP: {', '.join(extra[:5])}"
        )
    rows = []
    tomograms = sorted(set(truth_by) | set(pred_by))
    for particle in particles:
        key = type_key(particle.name)
        radius = particle.radius * hit_fraction
        tp = fp = fn = 0
        for name in tomograms:
            counts = count_hits(
                _angstrom_of_type(truth_by.get(name), key),
                _angstrom_of_type(pred_by.get(name), key),
                radius,
            )
            tp, fp, fn = tp + counts[0], fp + counts[1], fn + counts[2]
        precision, recall, score = f_beta(tp, fp, fn, beta)
        rows.append(
            {
                "type": particle.name,
                "radius": particle.radius,
                "weight": particle.weight,
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "precision": precision,
                "recall": recall,
                "f_beta": score,
            }
        )
    table = pd.DataFrame(rows)
    weights = table["weight"].to_numpy(dtype=float) if len(table) else np.zeros(0)
    total = float(weights.sum())
    score = float((table["f_beta"].to_numpy() * weights).sum() / total) if total else 0.0
    return CziiResult(score, table, beta, len(truth_by), warnings)


def format_czii(result: CziiResult) -> str:
    """A readable table of the score."""
    lines = [
        f"CZII challenge score (F-beta, beta {result.beta:g}, weighted over types): "
        f"{result.score:.4f}   ({result.n_tomograms} tomograms; challenge winner 0.788)",
    ]
    text = result.per_type.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    lines += ["    " + line for line in text.splitlines()]
    return "\n".join(lines)

"""Every tuned number of detection, in one frozen object with named presets.

A *tuned* number is one chosen by measurement (on validation simulations: docs/detection.md,
"Parameters and presets", says where each was chosen and what it measured); implementation
constants (block sizes, memory budgets, thread counts) stay in the modules that use them. The
numbers are grouped by the stage that reads them; every stage of :mod:`.pipeline` takes them
from ``DetectionConfig.params`` and passes them down as arguments, so no function reads a
tuned number from a module global and a preset changes detection without patching anything.

Field names are unique across the groups, so :meth:`DetectionParams.updated` can change any of
them by name (``PRESETS["default"].updated(reach=2.5, learned_weight=0.0)``).
"""

import math
from dataclasses import dataclass, fields, replace

from napari_cryoet_particles.io.errors import CryoetInputError

#: Blob filters of the candidate search (:mod:`.candidates`).
CANDIDATE_FILTERS = ("dog", "log")


@dataclass(frozen=True)
class PrepareParams:
    """Polarity and the mask of the sample slab (:mod:`.volume`)."""

    #: Skewness of the low-passed overview above which particles are bright.
    polarity_skewness: float = 0.05
    #: Mask z-slices only when the per-z deviation varies by more than this.
    mask_contrast: float = 2.5
    #: Keep a slice whose deviation is this fraction of the sample's median.
    mask_quiet: float = 0.5


@dataclass(frozen=True)
class CandidateParams:
    """Multi-scale blob candidates and their size-aware suppression (:mod:`.candidates`)."""

    #: Blob filter: "dog" (G(σ) − G(ratio·σ)) or "log" (−∇²G(σ)).
    candidate_filter: str = "dog"
    #: DoG: wide over narrow Gaussian sigma.
    sigma_ratio: float = 1.6
    #: Ratio between successive blob radii searched.
    radius_step: float = 1.4
    #: Radii (working voxels) from which a 2× block mean is filtered.
    bin_from_radius: float = 4.5
    #: Gaussian filters end at this many sigmas.
    truncate: float = 3.0
    #: Half-width of the local-maximum window, in blob radii.
    peak_window: float = 0.8
    #: Maxima below this robust z are not candidates at all.
    blob_floor: float = 3.0
    #: A weaker candidate within this many radii of a stronger one is dropped.
    reach: float = 2.0


@dataclass(frozen=True)
class LearnedParams:
    """The learned particle probability: k-means on the embedding (:mod:`.cluster`)."""

    #: Weight of the local density channel beside the embedding (0: off).
    density_weight: float = 3.0
    #: Clusters of k-means (k).
    n_clusters: int = 5
    #: The density channel's low-pass sigma is the particle radius / this.
    density_smoothing: float = 3.0
    #: Crops embedded to fit k-means.
    fit_crops: int = 4
    #: Core side of each fitting crop (working voxels).
    fit_crop_size: int = 48
    #: A particle cluster's mean darkness lies this many robust SDs below the median.
    particle_z: float = 1.0
    #: Samples this many robust SDs from the median darkness (gold) are not fitted.
    outlier_z: float = 6.0
    #: Soft assignment: T is this fraction of the median distance gap.
    temperature_fraction: float = 1.0
    #: A pick's embedding averages embedding_pool³ coarse voxels.
    embedding_pool: int = 2


@dataclass(frozen=True)
class ScoreParams:
    """The pick score ``sigmoid(strength + learned_weight·logit p − blob_threshold)``."""

    #: Weight of the learned probability's logit.
    learned_weight: float = 0.25
    #: Combined strength (robust z) at which the score is 0.5.
    blob_threshold: float = 5.5
    #: Move that point, per tomogram, to the threshold its own peaks give (:mod:`.threshold`);
    #: ``blob_threshold`` stays where too few peaks are found to tell.
    adaptive_threshold: bool = False
    #: With the adaptive threshold: keep its count of picks, but choose them by the pick
    #: ranker's particle probability (:mod:`.ranker`) instead of the strength.
    ranker: bool = False
    #: With the ranker: a pick below the threshold takes the place of one above it only if it
    #: is more likely a particle than not at the tomogram's own share of particles
    #: (:func:`.ranker.adapted_posteriors`), not the share the ranker was trained at.
    adapt_share: bool = False
    #: With the share read: "likely enough" is half the F1 the picks are expected to score
    #: (the F1-optimal cut on calibrated probabilities) instead of one half.
    f1_cut: bool = False
    #: With the ranker: the extent reach (:attr:`PeakParams.extent_reach`) of the picks it ranks
    #: and of the final picks; ``None``: the same as the threshold's. A looser reach leaves the
    #: ranker neighbours the strict one wipes out where density spreads (SIRT-like
    #: reconstructions); the count still comes from the strict picks (docs/detection.md, "Where
    #: the candidates go missing").
    ranker_extent_reach: float | None = None


@dataclass(frozen=True)
class PeakParams:
    """One pick per object: extent and joined suppression (:mod:`.describe`, :mod:`.joined`)."""

    #: A pick's extent ends where its radial profile falls below this × centre.
    extent_fraction: float = 0.05
    #: A weaker pick within this many × the larger of a stronger one's radius and extent goes.
    extent_reach: float = 2.0
    #: Low-pass (nm) of the density along the segment between two picks.
    joined_sigma_nm: float = 2.0
    #: Picks farther apart than this (nm) are never joined.
    joined_reach_nm: float = 20.0
    #: Joined when the segment stays above this × its lower end.
    valley_ratio: float = 0.5


@dataclass(frozen=True)
class StructureParams:
    """What a pick sits on: tubes, sheets, gold (:mod:`.structure`)."""

    #: The structure volume is a block mean of this many working voxels per side.
    structure_bin: int = 2
    #: Low-pass (nm) of the structure volume.
    structure_sigma_nm: float = 2.0
    #: Pick radii at which the density beyond is read.
    continuation_reach: tuple[float, ...] = (1.5, 2.0, 2.5, 3.0)
    #: Directions (and their opposites) it is read along.
    directions: int = 32
    #: On a tube or sheet when the density keeps more than this fraction.
    continuation: float = 0.3
    #: Gold when denser than this × a typical confident pick (the density at gold_percentile).
    gold_ratio: float = 3.0
    #: Percentile of the confident picks' density that is a typical pick's.
    gold_percentile: float = 75.0


@dataclass(frozen=True)
class DetectionParams:
    """Every tuned number of detection, grouped by the stage that reads it."""

    prepare: PrepareParams = PrepareParams()
    candidates: CandidateParams = CandidateParams()
    learned: LearnedParams = LearnedParams()
    score: ScoreParams = ScoreParams()
    peaks: PeakParams = PeakParams()
    structure: StructureParams = StructureParams()

    def updated(self, **changes: object) -> "DetectionParams":
        """A copy with the named fields changed, in whichever group holds them."""
        groups = {}
        for group in fields(self):
            part = getattr(self, group.name)
            mine = {f.name: changes.pop(f.name) for f in fields(part) if f.name in changes}
            if mine:
                groups[group.name] = replace(part, **mine)
        if changes:
            raise TypeError(f"no detection parameter named {', '.join(sorted(changes))}")
        return replace(self, **groups)

    @property
    def reads_the_model(self) -> bool:
        """Whether the picks depend on the model: only through the learned term of the score (the
        threshold and the pick ranker read the blobs and their profiles, not the embedding). A
        refined model's head reads it too, whatever the preset."""
        return self.score.learned_weight != 0

    def validated(self) -> "DetectionParams":
        """Refuse values detection cannot run with (CryoetInputError); return ``self``."""
        candidates, learned, score = self.candidates, self.learned, self.score
        if candidates.candidate_filter not in CANDIDATE_FILTERS:
            raise CryoetInputError(
                None,
                f"candidate filter must be one of {', '.join(CANDIDATE_FILTERS)}, "
                f"got {candidates.candidate_filter!r}",
            )
        if not 0.0 <= score.learned_weight <= 10.0:
            raise CryoetInputError(None, f"learned weight {score.learned_weight} is outside 0-10")
        if not math.isfinite(score.blob_threshold):
            raise CryoetInputError(None, "blob threshold must be a finite number")
        if not 0.0 <= learned.density_weight <= 100.0:
            raise CryoetInputError(
                None,
                f"density weight {learned.density_weight} is outside 0-100 (0: embedding only)",
            )
        if not 2 <= learned.n_clusters <= 16:
            raise CryoetInputError(
                None, f"number of k-means clusters {learned.n_clusters} is outside 2-16"
            )
        needs = {
            "ranker": "adaptive_threshold",
            "adapt_share": "ranker",
            "f1_cut": "adapt_share",
        }
        for switch, needed in needs.items():
            if getattr(score, switch) and not getattr(score, needed):
                raise CryoetInputError(
                    None, f"score setting {switch} does nothing without {needed}: set both"
                )
        if score.ranker_extent_reach is not None and not score.ranker:
            raise CryoetInputError(
                None, "score setting ranker_extent_reach does nothing without ranker: set both"
            )
        return self


#: The named presets. ``default``: blob strength alone (no learned term: it added nothing at any
#: threshold on the validation seeds of the tuning and cellular families, docs/detection.md,
#: "What is learned"), the threshold read per tomogram from its own peaks (:mod:`.threshold`;
#: robust z 4.25 where too few peaks tell), which fixes how many picks; the pick ranker
#: (:mod:`.ranker`) chooses which, a pick below the threshold joining only if, at the
#: tomogram's own share of particles, it is likely enough a particle for F1 (half the F1 the
#: picks are expected to score), among picks kept at a looser extent reach (1.0) than the
#: threshold's count is read at, from candidates suppressed within 1.5 radii (not 2).
#: ``ranker-strict-floor``: the ranker ranks the strict floor of the 2-radii candidates (as in
#: session 13, with the ranker trained on the default's floor); ``ranker-half-cut``: "likely" is
#: one half instead;
#: ``ranker-trained-share``: the ranker at the share it was trained at (session 11's opt-in
#: preset); ``strength-order``: the same count in strength order (session 10's default);
#: ``fixed-threshold`` keeps 4.25 everywhere (session 9's default); ``session8`` keeps the
#: score of session 8 (the class defaults: learned weight 0.25, blob threshold 5.5).
_STRENGTH = DetectionParams().updated(
    learned_weight=0.0, blob_threshold=4.25, adaptive_threshold=True
)
PRESETS: dict[str, DetectionParams] = {
    "default": _STRENGTH.updated(
        ranker=True, adapt_share=True, f1_cut=True, ranker_extent_reach=1.0, reach=1.5
    ),
    "ranker-strict-floor": _STRENGTH.updated(ranker=True, adapt_share=True, f1_cut=True),
    "strength-order": _STRENGTH,
    "ranker-trained-share": _STRENGTH.updated(ranker=True),
    "ranker-half-cut": _STRENGTH.updated(ranker=True, adapt_share=True),
    "fixed-threshold": DetectionParams().updated(learned_weight=0.0, blob_threshold=4.25),
    "session8": DetectionParams(),
    "embedding-only": DetectionParams().updated(density_weight=0.0, n_clusters=3),
}
DEFAULT_PRESET = "default"


def preset(name: str) -> DetectionParams:
    """The preset called ``name``; an unknown name is a CryoetInputError."""
    if name not in PRESETS:
        raise CryoetInputError(
            None, f"unknown detection preset {name!r}: one of {', '.join(PRESETS)}"
        )
    return PRESETS[name]


def preset_name(params: DetectionParams) -> str | None:
    """The name of the first preset equal to ``params``, or None (set by hand)."""
    return next((name for name, values in PRESETS.items() if values == params), None)

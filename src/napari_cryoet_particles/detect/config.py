"""Settings and results of a detection run."""

from dataclasses import dataclass, field, replace

import numpy as np

from napari_cryoet_particles.detect.params import (
    DEFAULT_PRESET,
    PRESETS,
    DetectionParams,
    preset,
)
from napari_cryoet_particles.io.picks import Picks

#: Particle diameter (nm) used when none is given: mid-sized SHREC 2021 proteins (1u6g, 3cf3,
#: 1bxn are 10-13 nm across); small ones (1s3x, 3qm1 ~6 nm) are still found at this spacing.
DEFAULT_DIAMETER_NM = 10.0
#: Smallest and largest particle diameters (nm) searched for. The smallest SHREC 2021 proteins
#: (1s3x, 3qm1) are about 6 nm across, but a search from 5 nm adds a filter scale of 1.4 voxels
#: at 10 Å whose maxima are mostly noise: from 7 nm, F1 rose on all four validation
#: tomograms (docs/detection.md); small particles are still found at the 7-nm scale. 27 nm: a
#: ribosome with room to spare.
DEFAULT_MIN_DIAMETER_NM = 7.0
DEFAULT_MAX_DIAMETER_NM = 27.0
#: Voxel sizes (Å) detection accepts; outside this the header is almost surely wrong.
SUPPORTED_VOXEL_SIZE = (2.0, 40.0)
POLARITIES = ("auto", "dark", "bright")
#: Pick scores are ``sigmoid(combined - blob_threshold)``: the automatic threshold is always 0.5.
AUTO_THRESHOLD = 0.5
#: Candidates down to this detector score are kept for refinement from curation (a mark moves a
#: score by a few logits at most, so nothing below this reaches a threshold of 0.5); the Detect
#: dock detects down to it too, so refining from its result can promote any of them.
CANDIDATE_FLOOR = 0.01


@dataclass
class DetectionConfig:
    """Everything a detection run can be told; the defaults are the ones the CLI uses.

    ``params`` holds every tuned number (:class:`~.params.DetectionParams`, default the
    ``default`` preset of :data:`~.params.PRESETS`; a preset's name is taken too, an unknown one
    is a CryoetInputError); the other fields are the run's options.
    ``threshold`` is the minimum pick score (0-1); ``None`` is the automatic threshold, 0.5
    (scores are ``sigmoid(strength + learned_weight·logit(p) - blob_threshold)``, see
    :func:`~napari_cryoet_particles.detect.scoring.pick_score`); the result's
    ``info["auto_threshold"]`` holds it even when a threshold was given, e.g. for a GUI that
    detects once with a low threshold and filters interactively. Blobs are searched from
    ``min_diameter_nm`` to ``max_diameter_nm``; ``diameter_nm`` is the typical particle size
    the learned map is smoothed for. ``groups`` is the number of particle groups of the picks at
    or above the automatic threshold (``None``: 8, fewer for few picks; 0 or 1 switches grouping
    off). ``bin`` multiplies the model's working voxel size (faster by about bin³, coarser).
    ``voxel_size`` (Å) overrides the tomogram's header. ``polarity`` ``auto`` decides from the
    skewness of the low-passed volume. ``keep_edges``: keep picks whose box (the blob's radius)
    crosses the volume's faces, where a particle is cut and a filter answers on the edge
    itself. ``keep_structures``: keep picks that lie on something that goes on beyond them (a
    filament, a microtubule wall, a membrane) or on gold (:mod:`.structure`).
    ``learned_features``: give each pick the learned values curation refines from (the
    ``probability`` and ``cluster`` features and :attr:`DetectionResult.embeddings`). They need
    the embedding pass, which the default picks do not read (docs/detection.md, "What is
    learned"); with False it runs only when something else reads it (the score map, a learned
    weight, a refined model's head).
    :meth:`with_params` changes tuned numbers by name (the CLI's ``--learned-weight``,
    ``--density-weight``, ``--clusters``); ``learned_weight``, ``blob_threshold``,
    ``density_weight`` and ``n_clusters`` read them.
    """

    diameter_nm: float = DEFAULT_DIAMETER_NM
    threshold: float | None = None
    groups: int | None = None
    bin: int = 1
    voxel_size: float | None = None
    polarity: str = "auto"
    device: str = "auto"
    tile_voxels: int = 8_000_000
    kmeans_samples: int = 40_000
    mask_empty: bool = True
    min_diameter_nm: float = DEFAULT_MIN_DIAMETER_NM
    max_diameter_nm: float = DEFAULT_MAX_DIAMETER_NM
    max_picks: int | None = None
    keep_edges: bool = False
    keep_structures: bool = False
    keep_score_map: bool = True
    learned_features: bool = True
    seed: int = 0
    threads: int | None = None
    params: DetectionParams = PRESETS[DEFAULT_PRESET]

    def __post_init__(self) -> None:
        if isinstance(self.params, str):  # a preset's name
            self.params = preset(self.params)

    def with_params(self, **changes: object) -> "DetectionConfig":
        """A copy whose tuned numbers are changed by name (:meth:`.DetectionParams.updated`)."""
        return replace(self, params=self.params.updated(**changes))

    @property
    def learned_weight(self) -> float:
        return self.params.score.learned_weight

    @property
    def blob_threshold(self) -> float:
        return self.params.score.blob_threshold

    @property
    def density_weight(self) -> float:
        return self.params.learned.density_weight

    @property
    def n_clusters(self) -> int:
        return self.params.learned.n_clusters

    def validated(self) -> "DetectionConfig":
        from napari_cryoet_particles.io.errors import CryoetInputError

        if not np.isfinite(self.diameter_nm) or not 1.0 <= self.diameter_nm <= 200.0:
            raise CryoetInputError(
                None, f"particle diameter {self.diameter_nm} nm is outside 1-200 nm"
            )
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise CryoetInputError(
                None, f"threshold {self.threshold} is outside 0-1 (a pick score)"
            )
        if not (
            np.isfinite(self.min_diameter_nm)
            and np.isfinite(self.max_diameter_nm)
            and 1.0 <= self.min_diameter_nm <= self.max_diameter_nm <= 200.0
        ):
            raise CryoetInputError(
                None,
                f"particle diameters {self.min_diameter_nm}-{self.max_diameter_nm} nm must be "
                "1-200 nm, smallest first",
            )
        if self.groups is not None and not 0 <= self.groups <= 50:
            raise CryoetInputError(None, f"number of groups {self.groups} is outside 0-50")
        if not 1 <= self.bin <= 8:
            raise CryoetInputError(None, f"bin {self.bin} is outside 1-8")
        if self.polarity not in POLARITIES:
            raise CryoetInputError(
                None, f"polarity must be one of {', '.join(POLARITIES)}, got {self.polarity!r}"
            )
        if self.tile_voxels < 16**3:
            raise CryoetInputError(None, f"tile of {self.tile_voxels} voxels is below 16³")
        if not isinstance(self.params, DetectionParams):
            raise CryoetInputError(None, "detection params must be a DetectionParams (a preset)")
        self.params.validated()
        return self


@dataclass
class DetectionResult:
    """Picks in the input tomogram's voxels, the particle score map and how long each stage took.

    ``score_map`` holds the particle probability (0-1) on a grid of ``score_map_voxel_size`` Å
    whose voxel ``i`` is centred on input voxel ``score_map_origin + i * score_map_step``
    (per axis, in input voxels); :func:`score_map_at_input` resamples it onto the input grid.
    ``embeddings``: each pick's embedding pooled over the 2³ coarse voxels around it.
    """

    picks: Picks
    score_map: np.ndarray | None
    score_map_voxel_size: float
    score_map_origin: np.ndarray
    score_map_step: np.ndarray
    input_shape: tuple[int, int, int]
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, object] = field(default_factory=dict)
    embeddings: np.ndarray | None = None
    """(n_picks, C) float32: the learned embedding at each pick, pooled over 2³ coarse voxels."""
    profiles: np.ndarray | None = None
    """(n_picks, shells) float32: each pick's radial profile (:mod:`.describe`)."""
    shapes: np.ndarray | None = None
    """(n_picks, features) float32: each pick's shape descriptor (:mod:`.describe`); NaN rows for
    picks below the automatic threshold, which are not described."""

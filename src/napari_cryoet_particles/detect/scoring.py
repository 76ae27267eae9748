"""Stage 5 of detection: the pick score, the threshold, one pick per object, and the picks left
alone (on tubes, sheets or gold, or crossing the faces).

Candidates are scored by :func:`pick_score` (or rescored by a head learned from curation,
:mod:`.head`), kept above the threshold strongest first, then suppressed by the extent of their
density (:func:`~.candidates.suppress_by_extent`, from each pick's radial profile) and by dense
material joining them to a stronger pick (:mod:`.joined`); picks on structures or at the faces
are dropped last (:mod:`.structure`) unless the config keeps them.
"""

from dataclasses import dataclass, replace

import numpy as np

from napari_cryoet_particles.detect.candidates import Candidates, suppress_by_extent
from napari_cryoet_particles.detect.config import AUTO_THRESHOLD, CANDIDATE_FLOOR, DetectionConfig
from napari_cryoet_particles.detect.describe import (
    profile_extent_nm,
    radial_profiles,
    shape_columns,
    shape_descriptors,
)
from napari_cryoet_particles.detect.head import PickHead, apply_head, candidate_table
from napari_cryoet_particles.detect.joined import suppress_joined
from napari_cryoet_particles.detect.params import ScoreParams
from napari_cryoet_particles.detect.ranker import rank_picks, ranker_applies, ranker_table
from napari_cryoet_particles.detect.stages import Embedded, Prepared
from napari_cryoet_particles.detect.structure import (
    AT_FACES,
    at_faces,
    structure_bin,
    structure_labels,
    structure_volume,
)
from napari_cryoet_particles.detect.threshold import estimate_threshold
from napari_cryoet_particles.detect.volume import WorkingVolume, block_mean
from napari_cryoet_particles.io.units import nm_to_voxels, voxels_to_nm
from napari_cryoet_particles.jobs import CancelToken

#: The learned particle probability is clipped to this range before its logit is taken.
PROBABILITY_CLIP = 1e-4


def pick_score(
    strength: np.ndarray, probability: np.ndarray, learned_weight: float, blob_threshold: float
) -> np.ndarray:
    """Pick score in 0-1: ``sigmoid(strength + w·logit(p) - blob_threshold)``.

    ``strength`` is the blob's robust z (how far its filter response stands out from the
    tomogram's noise), ``p`` the learned particle probability at the blob (k-means on the
    contrastive embedding); the learned term moves blobs that look like the tomogram's
    particles up and noise blobs down. 0.5 is the automatic threshold.
    """
    combined = combined_strength(strength, probability, learned_weight)
    return 1.0 / (1.0 + np.exp(-(combined - blob_threshold)))


def combined_strength(
    strength: np.ndarray, probability: np.ndarray, learned_weight: float
) -> np.ndarray:
    """``strength + w·logit(p)``: what the pick score thresholds."""
    if learned_weight == 0:
        return np.asarray(strength, dtype=float)
    p = np.clip(np.asarray(probability, dtype=float), PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    return np.asarray(strength, dtype=float) + learned_weight * np.log(p / (1 - p))


def profiles_at(work: WorkingVolume, zyx: np.ndarray, cancel: CancelToken | None) -> np.ndarray:
    """Radial profiles (:func:`~.describe.radial_profiles`) of the working volume at ``zyx``."""
    check = None if cancel is None else cancel.check
    return radial_profiles(work.read, work.shape, zyx, work.voxel_size, check=check)


class CandidateProfiles:
    """Radial profiles of the candidates, each read once however many passes ask: the floor, the
    ranker's looser floor and the final picks describe mostly the same candidates."""

    def __init__(self, work: WorkingVolume, found: Candidates, cancel: CancelToken | None):
        self.work, self.found, self.cancel = work, found, cancel
        self.known = np.zeros(len(found), dtype=bool)
        self.values: np.ndarray | None = None

    def at(self, index: np.ndarray) -> np.ndarray:
        """The profiles of the candidates ``index``, reading only those not read before."""
        index = np.asarray(index, dtype=int)
        missing = np.unique(index[~self.known[index]])
        if len(missing):
            read = profiles_at(self.work, self.found.zyx[missing], self.cancel)
            if self.values is None:
                self.values = np.zeros((len(self.found), read.shape[1]), dtype=read.dtype)
            self.values[missing] = read
            self.known[missing] = True
        if self.values is None:  # nothing asked for yet: an empty index
            return profiles_at(self.work, self.found.zyx[index], self.cancel)
        return self.values[index]


def confident_shapes(
    work: WorkingVolume, zyx: np.ndarray, values: np.ndarray, cancel: CancelToken | None
) -> np.ndarray:
    """Shape descriptors (:func:`~.describe.shape_descriptors`) of the picks scoring at least
    :data:`AUTO_THRESHOLD`; NaN rows for the others, which are not described (see ``groups``)."""
    shapes = np.full((len(values), len(shape_columns())), np.nan, dtype=np.float32)
    confident = np.flatnonzero(values >= AUTO_THRESHOLD)
    check = None if cancel is None else cancel.check
    shapes[confident] = shape_descriptors(
        work.read, work.shape, zyx[confident], work.voxel_size, check=check
    )
    return shapes


def _apply_pick_head(
    head_payload: dict,
    found: Candidates,
    values: np.ndarray,
    learned: np.ndarray,
    embeddings: np.ndarray,
    work: WorkingVolume,
    cancel: CancelToken | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rescore candidates with a head learned from curation (:mod:`.refine`): (indices of the
    candidates kept, their new scores, their radial profiles, which the picks reuse); candidates
    below the refine floor are dropped first
    (no head moves them to a pick)."""
    head = PickHead.from_payload(head_payload)
    keep = np.flatnonzero(values >= CANDIDATE_FLOOR)
    kept = found.take(keep)
    profiles = profiles_at(work, kept.zyx, cancel)
    shapes = None
    if set(head.columns) & set(shape_columns()):  # a like head: it scores confident picks only
        shapes = confident_shapes(work, kept.zyx, values[keep], cancel)
    table = candidate_table(
        kept.zyx,
        work.voxel_size,
        values[keep],
        kept.strength,
        voxels_to_nm(kept.radius, work.voxel_size),
        learned[keep],
        profiles,
        embeddings[keep],
        shapes,
    )
    return keep, apply_head(head, values[keep], table), profiles


def _unwanted_labels(
    work: WorkingVolume, found: Candidates, confident: np.ndarray, config: DetectionConfig
) -> np.ndarray:
    """What each pick lies on that makes it unwanted ("" for a wanted pick): its box crosses the
    volume's faces, or it lies on a tube, sheet or gold (:mod:`.structure`); none unless the
    config keeps them."""
    labels = np.full(len(found), "", dtype=object)
    if not config.keep_structures and len(found):
        test = config.params.structure
        factor = structure_bin(work.shape, test.structure_bin)
        binned = block_mean(replace(work, clip=np.inf), factor)  # unclipped: gold stays gold
        structure = structure_volume(binned, work.voxel_size * factor, test.structure_sigma_nm)
        del binned
        points = (found.zyx + 0.5) / factor - 0.5
        labels = structure_labels(structure, points, found.radius / factor, test, confident)
    if not config.keep_edges:
        labels[(labels == "") & at_faces(found.zyx, found.radius, work.shape)] = AT_FACES
    return labels


def _label_counts(labels: np.ndarray) -> dict[str, int]:
    """{what a dropped pick lay on: how many}."""
    names, counts = np.unique(labels[labels != ""].astype(str), return_counts=True)
    return dict(zip(names.tolist(), counts.tolist(), strict=True))


@dataclass
class Peaks:
    """The picks of the peaks stage, strongest first: their score, index into the candidates,
    the candidates themselves (working voxels), learned probability and radial profiles."""

    values: np.ndarray
    picked: np.ndarray
    found: Candidates
    learned: np.ndarray
    profiles: np.ndarray

    def take(self, index: np.ndarray) -> "Peaks":
        return Peaks(
            self.values[index],
            self.picked[index],
            self.found.take(index),
            self.learned[index],
            self.profiles[index],
        )


def find_peaks(
    prep: Prepared,
    config: DetectionConfig,
    found: Candidates,
    embedded: Embedded,
    cancel: CancelToken | None,
) -> Peaks:
    """Stage 5: candidates scored (or rescored by a curation head), above the threshold, one per
    object (extent and joined suppression), without those on structures or at the faces."""
    work, params = prep.work, config.params
    learned = embedded.probability_at_blobs(len(found))
    score = params.score
    values = pick_score(found.strength, learned, score.learned_weight, score.blob_threshold)
    profiles = CandidateProfiles(work, found, cancel)
    if score.adaptive_threshold:
        initial = values
        floor_picks = _floor_picks(work, found, initial, learned, config, profiles, cancel)
        estimate = estimate_threshold(floor_picks.combined, params.candidates.blob_floor)
        prep.info["threshold_estimate"] = None if estimate is None else estimate.to_info()
        centre = score.blob_threshold if estimate is None else estimate.threshold
        values = pick_score(found.strength, learned, score.learned_weight, centre)
        searched = (config.min_diameter_nm, config.max_diameter_nm)
        if score.ranker and estimate is not None and ranker_applies(*searched):
            count = int(np.sum(floor_picks.combined >= centre))
            loose = ranker_config(config)
            if loose is not config:
                floor_picks, centre = _loose_floor(
                    work, found, initial, learned, loose, centre, profiles, cancel
                )
                config = loose  # the final picks keep the ranker's neighbours too
            values = _ranked_values(work, len(found), floor_picks, centre, count, score, prep.info)
    index = np.arange(len(found))
    head_profiles = None
    if prep.head_payload is not None:
        index, values, head_profiles = _apply_pick_head(
            prep.head_payload, found, values, learned, embedded.at_blobs.embedding, work, cancel
        )
    threshold = AUTO_THRESHOLD if config.threshold is None else config.threshold
    order = np.argsort(-values, kind="stable")
    order = order[values[order] >= threshold]
    peaks = _one_per_object(
        work,
        found,
        index[order],
        values[order],
        learned,
        config,
        profiles.at(index[order]) if head_profiles is None else head_profiles[order],
        cancel,
    )
    labels = _unwanted_labels(work, peaks.found, peaks.values >= AUTO_THRESHOLD, config)
    prep.info["dropped"] = _label_counts(labels)
    prep.info["auto_threshold"] = AUTO_THRESHOLD
    prep.info["threshold"] = float(threshold)
    prep.info["n_candidates"] = int(len(order))
    kept = peaks.take(np.flatnonzero(labels == "")[: config.max_picks])
    ranker_record = (prep.info.get("threshold_estimate") or {}).get("ranker")
    if ranker_record is not None:  # the picks that survived suppression, as the user gets them
        ranker_record["picks"] = int(np.sum(kept.values >= AUTO_THRESHOLD))
    return kept


@dataclass
class FloorPicks:
    """The wanted picks down to the floor, strongest first, and their combined strength."""

    peaks: Peaks
    combined: np.ndarray


def _floor_picks(
    work: WorkingVolume,
    found: Candidates,
    values: np.ndarray,
    learned: np.ndarray,
    config: DetectionConfig,
    profiles: CandidateProfiles,
    cancel: CancelToken | None,
) -> FloorPicks:
    """Every pick down to the floor, one per object, none on structures or at the faces: what
    the threshold is read from (:func:`~.threshold.estimate_threshold`) and the ranker ranks.
    The picks above a threshold read from them are the picks a fixed threshold there would
    give: suppression is greedy, strongest first."""
    order = np.argsort(-values, kind="stable")
    order = order[values[order] >= CANDIDATE_FLOOR]
    peaks = _one_per_object(
        work, found, order, values[order], learned, config, profiles.at(order), cancel
    )
    wanted = _unwanted_labels(work, peaks.found, peaks.values >= AUTO_THRESHOLD, config) == ""
    peaks = peaks.take(np.flatnonzero(wanted))
    weight = config.params.score.learned_weight
    return FloorPicks(peaks, combined_strength(peaks.found.strength, peaks.learned, weight))


def ranker_config(config: DetectionConfig) -> DetectionConfig:
    """``config`` with the extent reach of the ranker's picks (``score.ranker_extent_reach``)."""
    reach = config.params.score.ranker_extent_reach
    if reach is None or reach == config.params.peaks.extent_reach:
        return config
    return config.with_params(extent_reach=reach)


def _loose_floor(
    work: WorkingVolume,
    found: Candidates,
    values: np.ndarray,
    learned: np.ndarray,
    loose: DetectionConfig,
    threshold: float,
    profiles: CandidateProfiles,
    cancel: CancelToken | None,
) -> tuple[FloorPicks, float]:
    """The floor picks at the ranker's extent reach (``loose``) and the threshold read from
    them, which the ranker's excess is measured from as in its training table (``threshold``,
    the strict one, where too few peaks tell)."""
    floor = _floor_picks(work, found, values, learned, loose, profiles, cancel)
    estimate = estimate_threshold(floor.combined, loose.params.candidates.blob_floor)
    return floor, threshold if estimate is None else estimate.threshold


def _ranked_values(
    work: WorkingVolume,
    n_candidates: int,
    floor: FloorPicks,
    threshold: float,
    count: int,
    score: ScoreParams,
    info: dict,
) -> np.ndarray:
    """Candidate scores from the pick ranker (:mod:`.ranker`): the floor picks ranked by their
    particle probability, ``count`` of them above 0.5 (fewer when ``score.adapt_share`` refuses
    weak picks, those under ``threshold``); every other candidate 0 (it was suppressed or is
    unwanted). What the ranker did is recorded in ``info["threshold_estimate"]["ranker"]``."""
    picks, combined = floor.peaks, floor.combined  # strongest first, as the ranker reads them
    threads = int(info.get("threads") or 1)
    table = ranker_table(
        work, picks.found.zyx, combined, picks.found.radius, picks.profiles, threshold, threads
    )
    ranked = rank_picks(table, count, adapt_share=score.adapt_share, f1_cut=score.f1_cut)
    info["threshold_estimate"]["ranker"] = ranked.to_info()
    values = np.zeros(n_candidates)
    values[picks.picked] = ranked.score
    return values


def _one_per_object(
    work: WorkingVolume,
    found: Candidates,
    picked: np.ndarray,
    values: np.ndarray,
    learned: np.ndarray,
    config: DetectionConfig,
    profiles: np.ndarray,
    cancel: CancelToken | None,
) -> Peaks:
    """The candidates ``picked`` (strongest first, scored ``values``, radial ``profiles``) after
    extent and joined suppression."""
    found = found.take(picked)
    peaks = Peaks(values, picked, found, learned[picked], profiles)
    extent = nm_to_voxels(
        profile_extent_nm(profiles, config.params.peaks.extent_fraction), work.voxel_size
    )
    keep = suppress_by_extent(found.zyx, found.radius, extent, config.params.peaks.extent_reach)
    keep = keep[
        suppress_joined(
            work.read,
            work.shape,
            found.zyx[keep],
            found.radius[keep],
            work.voxel_size,
            config.params.peaks,
            check=None if cancel is None else cancel.check,
        )
    ]
    return peaks.take(keep)

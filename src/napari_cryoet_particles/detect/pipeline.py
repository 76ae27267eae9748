"""Detection end to end: tomogram → blob candidates → learned particle score → picks with groups.

Stages (each timed in :attr:`DetectionResult.timings`):

1. ``prepare``: check the volume, rescale it to the model's working voxel size (times ``bin``),
   normalise it like the training data, build a coarse overview (block mean over the encoder's
   stride), mask the empty regions outside the sample slab, and decide the contrast polarity
   from the skewness of the low-passed overview (:func:`~.volume.decide_sign`).
2. ``candidates``: blob candidates at several radii (:mod:`.candidates`: multi-scale DoG, one
   per object by size-aware suppression), inside the mask.
3. ``fit``: embed a few randomly placed crops inside the mask, run k-means on sampled voxel
   embeddings and name the particle cluster(s) by darkness (:mod:`.cluster`).
4. ``embed``: stream every tile through the encoder once and keep, at the candidates only, the
   particle probability (interpolated), the cluster id and the embedding pooled over 2³ coarse
   voxels (:mod:`.gather`); the whole probability map only when ``keep_score_map``. No
   whole-tomogram embedding or map is held, so memory stays bounded on huge tomograms.
5. ``peaks``: candidates scored by their strength plus the learned particle probability at the
   blob (:func:`pick_score`), above the threshold; then each pick's radial profile
   (:mod:`.describe`) and a second suppression by the extent of its density, so a large
   particle first found at a small scale does not keep repeat hits; then picks joined to a
   stronger one by dense material are dropped (:mod:`.joined`), so an elongated particle gives one.
6. ``groups``: for the picks at or above the automatic threshold, a shape descriptor (moments of
   the density above the local background, :func:`.describe.shape_descriptors`) and k-means on
   it (:mod:`.groups`; 8 groups unless told); picks below it are in group -1 with no shape (the
   descriptor would cost a second per 5,000 picks on 2 cores, for picks the user does not see by
   default). On validation simulations the groups follow the species better than k-means on the
   radial profile or on the pooled embedding (docs/detection.md). The pooled embedding of each
   pick is :attr:`DetectionResult.embeddings`.

Every tuned number comes from ``config.params`` (:class:`~.params.DetectionParams`, a preset of
:data:`~.params.PRESETS`) and is passed down to the functions that use it.
"""

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from torch import nn

from napari_cryoet_particles.detect.candidates import (
    Candidates,
    blob_radii,
    multiscale_candidates_job,
    suppress_by_extent,
)
from napari_cryoet_particles.detect.cluster import ParticleClusters, fit_particle_clusters
from napari_cryoet_particles.detect.config import (
    AUTO_THRESHOLD,
    CANDIDATE_FLOOR,
    DetectionConfig,
    DetectionResult,
)
from napari_cryoet_particles.detect.describe import (
    profile_extent_nm,
    radial_profiles,
    shape_columns,
    shape_descriptors,
)
from napari_cryoet_particles.detect.gather import PointGather
from napari_cryoet_particles.detect.groups import choose_groups
from napari_cryoet_particles.detect.head import PickHead, apply_head, candidate_table
from napari_cryoet_particles.detect.joined import suppress_joined
from napari_cryoet_particles.detect.params import DetectionParams, preset_name
from napari_cryoet_particles.detect.structure import (
    AT_FACES,
    at_faces,
    structure_bin,
    structure_labels,
    structure_volume,
)
from napari_cryoet_particles.detect.tiling import (
    Tile,
    embed_tile,
    embed_tiles_job,
    encoder_geometry,
    halo_for,
    padded_shape,
    plan_tiles,
    tile_at,
)
from napari_cryoet_particles.detect.trust import detection_warnings
from napari_cryoet_particles.detect.volume import (
    OverviewFilters,
    WorkingVolume,
    block_mean,
    check_volume,
    decide_sign,
    low_pass_box,
    make_working_volume,
    particle_skewness,
    slab_mask,
)
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks import Picks
from napari_cryoet_particles.io.tomogram import Volume
from napari_cryoet_particles.io.units import nm_to_voxels, radius_voxels, voxels_to_nm
from napari_cryoet_particles.jobs import CancelToken, Job, Progress, run_job

#: The learned particle probability is clipped to this range before its logit is taken.
PROBABILITY_CLIP = 1e-4
ModelLike = nn.Module | str | Path | None


def resolve_model(
    model: object, device: torch.device
) -> tuple[nn.Module, float | None, dict | None]:
    """(encoder on ``device``, working voxel size in Å or None, pick head or None) from whatever
    the caller gave (the pick head is a model refined from curation, ``refine --save-model``).

    ``None`` loads the shipped default model; a path loads that checkpoint; a LoadedModel gives
    its encoder and working voxel size; a bare ``nn.Module`` (needs ``stride`` and
    ``receptive_field``) works at its ``working_voxel_size`` attribute, or at the input's
    voxel size if it has none.
    """
    from napari_cryoet_particles.model.checkpoint import (
        LoadedModel,
        load_checkpoint,
        load_default_model,
    )

    if model is None:
        loaded = load_default_model(device=device)
        return loaded.encoder, loaded.working_voxel_size, loaded.pick_head
    if isinstance(model, str | Path):
        loaded = load_checkpoint(model, device=device)
        return loaded.encoder, loaded.working_voxel_size, loaded.pick_head
    if isinstance(model, LoadedModel):
        return model.encoder.to(device), model.working_voxel_size, model.pick_head
    if isinstance(model, nn.Module):
        size = getattr(model, "working_voxel_size", None)
        return model.to(device), None if size is None else float(size), None
    raise TypeError(
        f"model must be a checkpoint path, a LoadedModel or an nn.Module, not {type(model).__name__}"
    )


def working_voxel_size(model_voxel_size: float | None, input_voxel_size: float) -> float:
    """The voxel size (Å) detection works at: the model's, but never finer than the input's.

    A tomogram coarser than the model's voxels is not upsampled: it holds nothing finer, and a
    40 Å tomogram of 100 nm objects upsampled to a 10 Å model is 64 times the voxels for nothing.
    """
    if model_voxel_size is None:
        return input_voxel_size
    return max(model_voxel_size, input_voxel_size)


def _fit_crops(
    mask: np.ndarray,
    full: tuple[int, int, int],
    stride: int,
    halo: int,
    rng: np.random.Generator,
    crops: int,
    crop_size: int,
) -> list[Tile]:
    """``crops`` crops (core side ``crop_size`` working voxels) for fitting k-means, centred on
    random voxels inside the mask (one if the volume is small)."""
    size = stride * math.ceil(crop_size / stride)
    if all(n <= size for n in full):
        return [tile_at(full, stride, halo, (0, 0, 0), size)]
    per_plane = np.count_nonzero(mask.reshape(len(mask), -1), axis=1)
    count = int(per_plane.sum())
    if count == 0:
        flat = rng.choice(mask.size, size=crops, replace=mask.size < crops)
    else:
        ranks = rng.choice(count, size=crops, replace=count < crops)
        flat = np.array([_nth_true(mask, per_plane, int(rank)) for rank in ranks])
    centres = np.column_stack(np.unravel_index(flat, mask.shape))
    return [
        tile_at(full, stride, halo, tuple(int(c) * stride - size // 2 for c in centre), size)
        for centre in centres
    ]


def _nth_true(mask: np.ndarray, per_plane: np.ndarray, rank: int) -> int:
    """``np.flatnonzero(mask)[rank]`` without listing every True voxel (a huge mask's list is
    larger than the mask); ``per_plane``: True voxels per z-plane."""
    ends = np.cumsum(per_plane)
    z = int(np.searchsorted(ends, rank, side="right"))
    before = int(ends[z - 1]) if z else 0
    plane = np.flatnonzero(mask[z])[rank - before]
    return z * mask[0].size + int(plane)


def grid_coordinates(zyx: np.ndarray, stride: int) -> np.ndarray:
    """Working-voxel positions (N, 3) in coarse-grid coordinates (coarse voxel ``i`` centred on ``i``)."""
    return (np.asarray(zyx, dtype=float).reshape(-1, 3) - (stride - 1) / 2.0) / stride


def coarse_cells(zyx: np.ndarray, stride: int, grid: tuple[int, ...]) -> np.ndarray:
    """Index of the coarse (embedding) voxel holding each working-voxel position."""
    cells = np.rint(grid_coordinates(zyx, stride))
    return np.clip(cells, 0, np.asarray(grid) - 1).astype(int)


def pick_score(
    strength: np.ndarray, probability: np.ndarray, learned_weight: float, blob_threshold: float
) -> np.ndarray:
    """Pick score in 0-1: ``sigmoid(strength + w·logit(p) - blob_threshold)``.

    ``strength`` is the blob's robust z (how far its filter response stands out from the
    tomogram's noise), ``p`` the learned particle probability at the blob (k-means on the
    contrastive embedding); the learned term moves blobs that look like the tomogram's
    particles up and noise blobs down. 0.5 is the automatic threshold.
    """
    p = np.clip(np.asarray(probability, dtype=float), PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    combined = np.asarray(strength, dtype=float) + learned_weight * np.log(p / (1 - p))
    return 1.0 / (1.0 + np.exp(-(combined - blob_threshold)))


def _stepped(job, step: int, total: int):
    """Run a sub-job whose reports count steps of the whole job from ``step`` on; return its result."""
    while True:
        try:
            report = next(job)
        except StopIteration as stop:
            return stop.value
        yield Progress(step + report.step, total, report.message)


def _relayed(job, step: int, total: int):
    """Run a sub-job, passing its progress on as one step of ``total``; return its result."""
    while True:
        try:
            report = next(job)
        except StopIteration as stop:
            return stop.value
        yield Progress(step, total, f"{report.message} {report.step}/{report.total}")


def with_density(core: np.ndarray, darkness: np.ndarray, weight: float) -> np.ndarray:
    """Voxel rows (N, C) of an embedding tile (C, z, y, x) or of voxels (C, N), plus the darkness
    when ``weight``."""
    flat = np.moveaxis(core, 0, -1).reshape(-1, core.shape[0])  # a view for channels-last tiles
    if weight <= 0:
        return flat
    return np.concatenate([flat, darkness.reshape(-1, 1).astype(flat.dtype)], axis=1)


def _profiles_at(work: WorkingVolume, zyx: np.ndarray, cancel: CancelToken | None) -> np.ndarray:
    """Radial profiles (:func:`~.describe.radial_profiles`) of the working volume at ``zyx``."""
    check = None if cancel is None else cancel.check
    return radial_profiles(work.read, work.shape, zyx, work.voxel_size, check=check)


def _confident_shapes(
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
    profiles = _profiles_at(work, kept.zyx, cancel)
    shapes = None
    if set(head.columns) & set(shape_columns()):  # a like head: it scores confident picks only
        shapes = _confident_shapes(work, kept.zyx, values[keep], cancel)
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


def _unwanted_picks(
    work: WorkingVolume, found: Candidates, confident: np.ndarray, config: DetectionConfig
) -> tuple[np.ndarray, dict[str, int]]:
    """(indices of the picks kept, {what a dropped pick lay on: how many}): picks whose box crosses
    the volume's faces and picks on tubes, sheets or gold (:mod:`.structure`) go, unless the
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
    names, counts = np.unique(labels[labels != ""].astype(str), return_counts=True)
    return np.flatnonzero(labels == ""), dict(zip(names.tolist(), counts.tolist(), strict=True))


@dataclass
class Prepared:
    """What the prepare stage gives the others: the model on its device, the working volume, its
    coarse grid (``full`` padded working shape, ``grid`` coarse shape, ``valid`` coarse voxels
    inside the volume), the low-passed overview (particles dark) and the mask of the sample."""

    encoder: nn.Module
    device: torch.device
    head_payload: dict | None
    threads: int
    stride: int
    halo: int
    input_size: float
    work: WorkingVolume
    full: tuple[int, int, int]
    grid: tuple[int, int, int]
    valid: tuple[int, int, int]
    overview: np.ndarray
    mask: np.ndarray
    darkness_sigma: float
    info: dict[str, object]


@dataclass
class Embedded:
    """The learned values at the candidates (``at_blobs``) and the whole score map when kept."""

    at_blobs: PointGather
    probability: np.ndarray | None


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


def prepare(volume: Volume, model: ModelLike, config: DetectionConfig) -> Prepared:
    """Stage 1: model, working volume, overview, sample mask and polarity (module docstring)."""
    from napari_cryoet_particles.model.device import (
        configure_threads,
        return_freed_memory_promptly,
        select_device,
    )
    from napari_cryoet_particles.model.encoder import fused_for_inference

    params: DetectionParams = config.params
    threads = configure_threads(config.threads)
    return_freed_memory_promptly()
    device = select_device(config.device)
    encoder, working_size, head_payload = resolve_model(model, device)
    encoder = fused_for_inference(encoder)
    stride, field = encoder_geometry(encoder)
    input_size = check_volume(volume, config.voxel_size, min_size=max(8, stride * 2))
    work = make_working_volume(
        volume, input_size, working_voxel_size(working_size, input_size) * config.bin
    )
    if min(work.shape) < 2 * stride:
        raise CryoetInputError(
            volume.path, f"volume of shape {volume.shape} is too small at the model's voxel size"
        )
    full = padded_shape(work.shape, params.learned.embedding_pool * stride)
    grid = tuple(n // stride for n in full)
    overview = block_mean(work, stride, grid)
    filters = OverviewFilters(overview)
    if config.mask_empty:
        mask = slab_mask(overview, params.prepare, filters=filters)
    else:
        mask = np.ones(grid, dtype=bool)
    skewness = particle_skewness(overview, mask, filters=filters)
    del filters
    work.sign = decide_sign(config.polarity, skewness, params.prepare.polarity_skewness)
    overview *= np.float32(work.sign)
    radius = radius_voxels(config.diameter_nm, work.voxel_size)  # working voxels
    info: dict[str, object] = {
        "input_voxel_size": input_size,
        "working_voxel_size": work.voxel_size,
        "ratio": work.ratio,
        "skewness": skewness,
        "inverted": work.sign < 0,
        "stride": stride,
        "receptive_field": field,
        "threads": threads,
        "device": str(device),
        "masked_fraction": float(1.0 - mask.mean()),
        "preset": preset_name(params),
    }
    return Prepared(
        encoder,
        device,
        head_payload,
        threads,
        stride,
        halo_for(stride, field),
        input_size,
        work,
        full,
        grid,
        tuple(-(-n // stride) for n in work.shape),
        overview,
        mask,
        max(0.5, radius / (params.learned.density_smoothing * stride)),
        info,
    )


def candidates_job(
    prep: Prepared, config: DetectionConfig, cancel: CancelToken | None
) -> Job[Candidates]:
    """Stage 2: blob candidates inside the sample mask (:mod:`.candidates`)."""
    work = prep.work
    params = config.params.candidates
    radii = blob_radii(
        radius_voxels(config.min_diameter_nm, work.voxel_size),
        radius_voxels(config.max_diameter_nm, work.voxel_size),
        params.radius_step,
    )
    prep.info["blob_radii"] = [float(r) for r in radii]
    found = yield from multiscale_candidates_job(
        work.read,
        work.shape,
        radii,
        params,
        None if cancel is None else cancel.check,
        threads=prep.threads,
    )
    inside = prep.mask[tuple(coarse_cells(found.zyx, prep.stride, prep.grid).T)]
    found = found.take(np.flatnonzero(inside))
    prep.info["n_blobs"] = len(found)
    return found


def fit_job(
    prep: Prepared,
    config: DetectionConfig,
    crops: list[Tile],
    rng: np.random.Generator,
    cancel: CancelToken | None,
) -> Job[ParticleClusters]:
    """Stage 3: k-means on voxel embeddings of a few crops inside the mask, particle clusters
    named by darkness (:mod:`.cluster`); yields once per crop."""
    params = config.params.learned
    samples, sample_dark = [], []
    per_crop = max(1, config.kmeans_samples // len(crops))
    for number, crop in enumerate(crops, start=1):
        if cancel is not None:
            cancel.check()
        core = embed_tile(prep.encoder, prep.work.read, prep.work.shape, crop, prep.device)
        darkness = low_pass_box(prep.overview, crop.out, prep.darkness_sigma)
        flat = with_density(core, darkness, params.density_weight)
        where = np.flatnonzero(prep.mask[crop.out])
        if where.size == 0:
            where = np.arange(flat.shape[0])
        where = rng.choice(where, size=min(per_crop, where.size), replace=False)
        samples.append(flat[where])
        sample_dark.append(darkness.ravel()[where])
        yield Progress(number, len(crops), "fitting clusters")
    samples_all = np.concatenate(samples)
    weights = None
    if params.density_weight > 0:
        weights = np.ones(samples_all.shape[1], dtype=np.float32)
        weights[-1] = params.density_weight
    clusters = fit_particle_clusters(
        samples_all, np.concatenate(sample_dark), params, config.seed, weights
    )
    prep.info["particle_clusters"] = clusters.particle.tolist()
    prep.info["cluster_darkness"] = clusters.darkness.tolist()
    prep.info["cluster_sizes"] = clusters.sizes.tolist()
    return clusters


def embed_job(
    prep: Prepared,
    config: DetectionConfig,
    found: Candidates,
    clusters: ParticleClusters,
    tiles: list[Tile],
    cancel: CancelToken | None,
) -> Job[Embedded]:
    """Stage 4: every tile through the encoder once, keeping the learned values at the candidates
    (and the whole score map when ``config.keep_score_map``)."""
    weight = config.params.learned.density_weight
    pool = config.params.learned.embedding_pool
    at_blobs = PointGather(grid_coordinates(found.zyx, prep.stride), prep.grid, pool)
    probability = np.zeros(prep.grid, dtype=np.float32) if config.keep_score_map else None

    def score_tile(tile: Tile, core: np.ndarray) -> None:
        darkness = low_pass_box(prep.overview, tile.out, prep.darkness_sigma)
        if probability is None:
            at_blobs.add_scored(
                tile,
                core,
                lambda local: clusters.assign(
                    with_density(
                        core[(slice(None), *local.T)],
                        darkness[tuple(local.T)],
                        weight,
                    )
                ),
            )
            return
        ids, prob = clusters.assign(with_density(core, darkness, weight))
        prob = prob.reshape(core.shape[1:])
        at_blobs.add(tile, core, prob, ids.reshape(core.shape[1:]))
        probability[tile.out] = prob

    work = prep.work
    yield from embed_tiles_job(
        work.read, work.shape, prep.encoder, tiles, score_tile, prep.device, cancel, "embedding"
    )
    return Embedded(at_blobs, probability)


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
    learned = embedded.at_blobs.probability
    score = params.score
    values = pick_score(found.strength, learned, score.learned_weight, score.blob_threshold)
    index = np.arange(len(found))
    head_profiles = None
    if prep.head_payload is not None:
        index, values, head_profiles = _apply_pick_head(
            prep.head_payload, found, values, learned, embedded.at_blobs.embedding, work, cancel
        )
    threshold = AUTO_THRESHOLD if config.threshold is None else config.threshold
    order = np.argsort(-values, kind="stable")
    order = order[values[order] >= threshold]
    picked = index[order]
    found = found.take(picked)
    if head_profiles is not None:
        profiles = head_profiles[order]
    else:
        profiles = _profiles_at(work, found.zyx, cancel)
    peaks = Peaks(values[order], picked, found, learned[picked], profiles)
    extent = nm_to_voxels(
        profile_extent_nm(profiles, params.peaks.extent_fraction), work.voxel_size
    )
    keep = suppress_by_extent(found.zyx, found.radius, extent, params.peaks.extent_reach)
    keep = keep[
        suppress_joined(
            work.read,
            work.shape,
            found.zyx[keep],
            found.radius[keep],
            work.voxel_size,
            params.peaks,
            check=None if cancel is None else cancel.check,
        )
    ][: config.max_picks]
    peaks = peaks.take(keep)
    wanted, prep.info["dropped"] = _unwanted_picks(
        work, peaks.found, peaks.values >= AUTO_THRESHOLD, config
    )
    prep.info["auto_threshold"] = AUTO_THRESHOLD
    prep.info["threshold"] = float(threshold)
    prep.info["n_candidates"] = int(len(order))
    return peaks.take(wanted)


def detection_result(
    volume: Volume,
    prep: Prepared,
    peaks: Peaks,
    embedded: Embedded,
    shapes: np.ndarray,
    groups: np.ndarray,
    timings: dict[str, float],
) -> DetectionResult:
    """The picks in the input tomogram's voxels with their features, and what goes with them."""
    work, stride = prep.work, prep.stride
    features = pd.DataFrame(
        {
            "score": peaks.values.astype(float),
            "probability": peaks.learned.astype(float),
            "strength": peaks.found.strength.astype(float),
            "radius_nm": voxels_to_nm(peaks.found.radius, work.voxel_size),
            "cluster": embedded.at_blobs.cluster[peaks.picked].astype(int),
            "group": groups.astype(int),
        }
    )  # status and class: Picks adds them at their defaults
    zyx = np.clip(work.to_input(peaks.found.zyx), 0, np.asarray(volume.shape) - 1)
    name = volume.path.stem if volume.path is not None else ""
    probability = embedded.probability
    return DetectionResult(
        picks=Picks(zyx, prep.input_size, features, name),
        score_map=None
        if probability is None
        else probability[tuple(slice(0, n) for n in prep.valid)],
        score_map_voxel_size=work.voxel_size * stride,
        score_map_origin=work.to_input(np.full(3, (stride - 1) / 2.0)),
        score_map_step=np.full(3, stride * work.ratio),
        input_shape=volume.shape,
        timings=timings,
        info=prep.info,
        embeddings=embedded.at_blobs.embedding[peaks.picked].astype(np.float32),
        profiles=peaks.profiles,
        shapes=shapes,
    )


def detect_particles_job(
    volume: Volume,
    model: ModelLike = None,
    config: DetectionConfig | None = None,
    cancel: CancelToken | None = None,
) -> Job[DetectionResult]:
    """Detect particles in ``volume``; yields :class:`Progress`, returns a :class:`DetectionResult`.

    Picks come back in the input tomogram's voxels (zyx), with features ``score``
    (``sigmoid(strength + w·logit(probability) - T)``, 0-1, see :func:`pick_score`; 0.5 is the
    automatic threshold; a head from curation rescores it), ``probability`` (the learned particle
    probability at the blob), ``strength`` (the blob's robust z), ``radius_nm`` (the blob's),
    ``cluster`` (k-means cluster id of the nearest coarse voxel), ``group`` (particle group),
    ``status`` = ``auto``. The stages are the functions above, in this order.
    """
    config = (config or DetectionConfig()).validated()
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    prep = prepare(volume, model, config)
    rng = np.random.default_rng(config.seed)
    learned = config.params.learned
    valid_mask = prep.mask[tuple(slice(0, n) for n in prep.valid)]
    crops = _fit_crops(
        valid_mask, prep.full, prep.stride, prep.halo, rng, learned.fit_crops, learned.fit_crop_size
    )
    tiles = plan_tiles(
        prep.full,
        prep.stride,
        prep.halo,
        config.tile_voxels,
        unit=learned.embedding_pool * prep.stride,
    )
    total = 1 + 1 + len(crops) + len(tiles) + 2
    timings["prepare"] = time.perf_counter() - clock
    yield Progress(1, total, "prepared")

    # Blob candidates first: the embedding pass then keeps the learned maps at them only.
    clock = time.perf_counter()
    found = yield from _relayed(candidates_job(prep, config, cancel), 1, total)
    timings["candidates"] = time.perf_counter() - clock
    clock = time.perf_counter()
    clusters = yield from _stepped(fit_job(prep, config, crops, rng, cancel), 2, total)
    prep.mask = None  # no longer needed: free it before the embedding pass
    timings["fit"] = time.perf_counter() - clock
    clock = time.perf_counter()
    step = 2 + len(crops)
    embedded = yield from _stepped(
        embed_job(prep, config, found, clusters, tiles, cancel), step, total
    )
    step += len(tiles)
    timings["embed"] = time.perf_counter() - clock
    clock = time.perf_counter()
    peaks = find_peaks(prep, config, found, embedded, cancel)
    timings["peaks"] = time.perf_counter() - clock
    step += 1
    yield Progress(step, total, "peaks")

    clock = time.perf_counter()
    shapes = _confident_shapes(prep.work, peaks.found.zyx, peaks.values, cancel)
    confident = np.flatnonzero(peaks.values >= AUTO_THRESHOLD)
    groups = np.full(len(peaks.values), -1, dtype=int)
    groups[confident], prep.info["n_groups"] = choose_groups(
        shapes[confident], config.groups, config.seed
    )
    timings["groups"] = time.perf_counter() - clock
    prep.info["n_picks"] = len(peaks.values)
    prep.info["warnings"] = detection_warnings(prep.info, volume.shape, model)
    yield Progress(step + 1, total, "groups")
    return detection_result(volume, prep, peaks, embedded, shapes, groups, timings)


def detect_particles(
    volume: Volume,
    model: ModelLike = None,
    config: DetectionConfig | None = None,
    cancel: CancelToken | None = None,
) -> DetectionResult:
    """:func:`detect_particles_job` run to completion (no progress reports)."""
    return run_job(detect_particles_job(volume, model, config, cancel))


def score_map_at_input(result: DetectionResult, chunk: int = 16) -> np.ndarray:
    """The score map resampled (linearly) onto the input tomogram's voxel grid, float32."""
    if result.score_map is None:
        raise ValueError("this result kept no score map (keep_score_map=False)")
    shape = result.input_shape
    out = np.empty(shape, dtype=np.float32)
    coords = [
        (np.arange(n) - o) / s
        for n, o, s in zip(shape, result.score_map_origin, result.score_map_step, strict=True)
    ]
    for z0 in range(0, shape[0], chunk):
        zz = coords[0][z0 : z0 + chunk]
        grid = np.meshgrid(zz, coords[1], coords[2], indexing="ij")
        out[z0 : z0 + len(zz)] = ndimage.map_coordinates(
            result.score_map, grid, order=1, mode="nearest"
        )
    return out


__all__ = ["detect_particles", "detect_particles_job", "resolve_model", "score_map_at_input"]

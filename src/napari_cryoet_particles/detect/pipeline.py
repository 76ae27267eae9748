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
   Stages 3 and 4 run only when something reads them (:func:`embedding_needed`): the learned
   features curation refines from (``learned_features``, on unless the caller only wants picks,
   like the CLI's ``detect`` and batch), the score map, a learned term or a refined model's head.
5. ``peaks``: candidates scored by their strength plus the learned particle probability at the
   blob (:func:`~.scoring.pick_score`), above the threshold; then each pick's radial profile
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
)
from napari_cryoet_particles.detect.cluster import ParticleClusters, fit_particle_clusters
from napari_cryoet_particles.detect.config import (
    AUTO_THRESHOLD,
    DetectionConfig,
    DetectionResult,
)
from napari_cryoet_particles.detect.gather import PointGather
from napari_cryoet_particles.detect.groups import choose_groups
from napari_cryoet_particles.detect.params import DetectionParams, preset_name
from napari_cryoet_particles.detect.scoring import Peaks, confident_shapes, find_peaks
from napari_cryoet_particles.detect.stages import Embedded, Prepared
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
from napari_cryoet_particles.io.units import radius_voxels, voxels_to_nm
from napari_cryoet_particles.jobs import CancelToken, Job, Progress, run_job

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


def embedding_needed(config: DetectionConfig, prep: Prepared) -> bool:
    """Whether anything reads the embedding pass: the learned features, the score map, a learned
    term in the pick score or a refined model's head (which scores the pooled embedding)."""
    return (
        config.learned_features
        or config.keep_score_map
        or config.params.reads_the_model
        or prep.head_payload is not None
    )


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
    at_blobs = embedded.at_blobs  # None: the embedding pass was skipped, nothing learned to give
    learned = {}
    if at_blobs is not None:
        learned["probability"] = peaks.learned.astype(float)
    features = pd.DataFrame(
        {
            "score": peaks.values.astype(float),
            **learned,
            "strength": peaks.found.strength.astype(float),
            "radius_nm": voxels_to_nm(peaks.found.radius, work.voxel_size),
            "cluster": -1 if at_blobs is None else at_blobs.cluster[peaks.picked].astype(int),
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
        embeddings=None
        if at_blobs is None
        else at_blobs.embedding[peaks.picked].astype(np.float32),
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
    (``sigmoid(strength + w·logit(probability) - T)``, 0-1, see :func:`~.scoring.pick_score`; 0.5 is the
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
    embedding = embedding_needed(config, prep)
    total = 1 + 1 + (len(crops) + len(tiles) if embedding else 0) + 2
    timings["prepare"] = time.perf_counter() - clock
    yield Progress(1, total, "prepared")

    # Blob candidates first: the embedding pass then keeps the learned maps at them only.
    clock = time.perf_counter()
    found = yield from _relayed(candidates_job(prep, config, cancel), 1, total)
    timings["candidates"] = time.perf_counter() - clock
    step = 2
    embedded = Embedded(None, None)
    if embedding:
        clock = time.perf_counter()
        clusters = yield from _stepped(fit_job(prep, config, crops, rng, cancel), step, total)
        prep.mask = None  # no longer needed: free it before the embedding pass
        timings["fit"] = time.perf_counter() - clock
        clock = time.perf_counter()
        step += len(crops)
        embedded = yield from _stepped(
            embed_job(prep, config, found, clusters, tiles, cancel), step, total
        )
        step += len(tiles)
        timings["embed"] = time.perf_counter() - clock
    else:
        prep.mask = None
    prep.info["learned_features"] = embedding
    clock = time.perf_counter()
    peaks = find_peaks(prep, config, found, embedded, cancel)
    timings["peaks"] = time.perf_counter() - clock
    step += 1
    yield Progress(step, total, "peaks")

    clock = time.perf_counter()
    shapes = confident_shapes(prep.work, peaks.found.zyx, peaks.values, cancel)
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

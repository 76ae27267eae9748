"""Reject a structure: the connected bodies of density a rejected pick lies on.

A user who rejects a pick on a membrane, a vesicle, a filament or a microtubule rejects the
structure, not only that pick: the blob filter answers every few nanometres along it. The
structure is found spatially. The volume (particles positive) is block-averaged to about
``bin_nm`` voxels, low-passed by ``sigma_nm`` and put in robust z units (median, 1.4826·MAD);
the voxels above ``level`` form connected bodies (6-connected, :func:`scipy.ndimage.label`).
At this scale and level the particles of a crowded cell stay separate bodies, about as long as
they are wide, while a membrane, a vesicle's wall or a filament stays one body many particles
long. A body's *span* is the length of a uniform rod with the same spread along its principal
axis, ``sqrt(12 λ_max)``; a body is *extended* when its span is at least ``extended_diameters``
times the largest particle diameter searched.

A rejected pick's body is dropped (its picks with it) when its span is at least
``rejected_diameters`` of the largest diameters; once a rejected pick lies on an extended body,
the picks on **every** extended body are dropped, not only on the rejected one: the rejection
says what the user thinks of structures, and six rejections touch only a few of a cell's
filaments and membranes. A rejection on a particle-sized body (a repeat hit, a background pick)
spreads nothing; a body that holds an accepted or added mark is never dropped.

Chosen on the validation cellular tomograms cell101 and cell102 (6 rejected picks on structures,
6 accepted on proteins; docs/detection.md, "Rejecting a structure"): dropping the picks on the
rejected bodies alone removed at most 34 of 100 and 31 of 122 picks on structures; as built,
refine leaves 31 and 25 (89 and 111 without the tomogram), for 8 and 6 of about 950 true picks.
Larger σ or a lower level merges the crowd's particles into extended bodies (σ 1.75 nm or level
1.75: 13-53 true picks lost); a higher level breaks the thin structures up.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_cryoet_particles.io.units import nm_to_voxels, voxels_to_nm
from napari_cryoet_particles.model.normalize import MAD_TO_SIGMA

#: Planes block-averaged at a time (bounds the memory of a float32 copy of a memory-mapped volume).
CHUNK_PLANES = 16
#: Every how many voxels along each axis the robust statistics sample the smoothed volume.
STATS_STEP = 2


@dataclass(frozen=True)
class BodyParams:
    """The tuned numbers of :func:`picks_on_rejected_structures` (module docstring)."""

    #: Side (nm) of the blocks the volume is averaged over.
    bin_nm: float = 2.0
    #: Gaussian low-pass (nm) before the threshold: about a small particle's radius / 2.
    sigma_nm: float = 1.5
    #: Robust z level of the low-passed volume above which voxels belong to a body.
    level: float = 2.0
    #: A body is extended when its span is at least this many of the largest searched diameters.
    extended_diameters: float = 2.5
    #: A body a rejected pick lies on is dropped when its span is at least this many of them.
    rejected_diameters: float = 1.5
    #: A pick lies on the body (above the level) with the highest density within this (nm).
    reach_nm: float = 2.0


BODY_PARAMS = BodyParams()


@dataclass(frozen=True)
class Bodies:
    """The connected bodies of a volume: ``labels`` on a grid of ``factor`` input voxels per
    side (0: no body), ``density`` the low-passed robust z there, ``span_nm`` per label (index 0
    unused)."""

    labels: np.ndarray
    density: np.ndarray
    span_nm: np.ndarray
    factor: int


def block_average(data: np.ndarray, factor: int, sign: float) -> np.ndarray:
    """``sign`` × the mean over ``factor``³ blocks of ``data`` (the last partial blocks left
    out), as float32, read :data:`CHUNK_PLANES` × ``factor`` planes at a time."""
    nz, ny, nx = (max(1, n // factor) for n in data.shape)
    out = np.empty((nz, ny, nx), dtype=np.float32)
    for z0 in range(0, nz, CHUNK_PLANES):
        z1 = min(nz, z0 + CHUNK_PLANES)
        block = np.asarray(
            data[z0 * factor : z1 * factor, : ny * factor, : nx * factor], dtype=np.float32
        )
        shape = (z1 - z0, factor, ny, factor, nx, factor)
        out[z0:z1] = block.reshape(shape).mean(axis=(1, 3, 5))
    if sign < 0:
        np.negative(out, out=out)
    return out


def robust_z(values: np.ndarray) -> np.ndarray:
    """``values`` in robust z units (median and 1.4826·MAD of a regular sample), in place."""
    sample = values[::STATS_STEP, ::STATS_STEP, ::STATS_STEP].ravel()
    centre = float(np.median(sample))
    scale = MAD_TO_SIGMA * float(np.median(np.abs(sample - centre)))
    if not scale > 0:
        scale = float(sample.std()) or 1.0
    values -= np.float32(centre)
    values /= np.float32(scale)
    return values


def body_spans(labels: np.ndarray, count: int) -> np.ndarray:
    """Per label (0 to ``count``): ``sqrt(12 λ_max)`` of its voxels' coordinate covariance, in
    grid voxels: the length of a uniform rod with the same spread along its principal axis."""
    flat = np.flatnonzero(labels)
    label = labels.ravel()[flat]
    coords = np.unravel_index(flat, labels.shape)
    size = np.bincount(label, minlength=count + 1).astype(float)
    safe = np.maximum(size, 1.0)
    mean = [np.bincount(label, c.astype(float), count + 1) / safe for c in coords]
    cov = np.zeros((count + 1, 3, 3))
    for i in range(3):
        for j in range(i, 3):
            moment = np.bincount(label, coords[i].astype(float) * coords[j], count + 1) / safe
            cov[:, i, j] = cov[:, j, i] = moment - mean[i] * mean[j]
    largest = np.linalg.eigvalsh(cov)[:, -1]
    return np.sqrt(12.0 * np.clip(largest, 0.0, None))


def density_bodies(
    data: np.ndarray, voxel_size: float, particles_dark: bool, params: BodyParams = BODY_PARAMS
) -> Bodies:
    """The :class:`Bodies` of a tomogram ``data`` (voxel size in Å) whose particles are dark
    (``particles_dark``) or bright."""
    factor = max(1, int(round(nm_to_voxels(params.bin_nm, voxel_size))))
    grid = voxel_size * factor
    density = block_average(data, factor, -1.0 if particles_dark else 1.0)
    sigma = max(0.5, nm_to_voxels(params.sigma_nm, grid))
    density = robust_z(ndimage.gaussian_filter(density, sigma, mode="nearest", output=density))
    labels, count = ndimage.label(density > params.level)
    span = voxels_to_nm(body_spans(labels, count), grid)
    return Bodies(labels, density, np.asarray(span, dtype=float), factor)


def bodies_at(bodies: Bodies, zyx: np.ndarray, reach: int) -> np.ndarray:
    """Label of the body each input-voxel point lies on: of the densest body voxel within
    ``reach`` grid voxels of its grid voxel (0: none)."""
    zyx = np.asarray(zyx, dtype=float).reshape(-1, 3)
    if not len(zyx):
        return np.zeros(0, dtype=int)
    shape = np.array(bodies.labels.shape)
    cell = np.round((zyx + 0.5) / bodies.factor - 0.5).astype(int)
    steps = np.arange(-reach, reach + 1)
    offsets = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
    near = np.clip(cell[:, None, :] + offsets[None], 0, shape - 1)
    index = (near[..., 0], near[..., 1], near[..., 2])
    labels = bodies.labels[index]
    density = np.where(labels > 0, bodies.density[index], -np.inf)
    return labels[np.arange(len(zyx)), np.argmax(density, axis=1)].astype(int)


def picks_on_rejected_structures(
    data: np.ndarray,
    voxel_size: float,
    picks_zyx: np.ndarray,
    rejected_zyx: np.ndarray,
    kept_zyx: np.ndarray,
    max_diameter_nm: float,
    particles_dark: bool = True,
    params: BodyParams = BODY_PARAMS,
) -> np.ndarray:
    """Per pick of ``picks_zyx`` (input voxels of ``data``, voxel size in Å): whether it lies on
    a body one of the ``rejected_zyx`` lies on, when that body's span is at least
    ``rejected_diameters`` × ``max_diameter_nm``, or on any extended body once a rejected pick
    lies on one (module docstring). Bodies holding one of ``kept_zyx`` (the accepted and added
    marks) are never dropped, and a rejection on one of them spreads nothing (the marks
    disagree there). All False when no rejected pick lies on a body larger than a particle."""
    picks_zyx = np.asarray(picks_zyx, dtype=float).reshape(-1, 3)
    rejected_zyx = np.asarray(rejected_zyx, dtype=float).reshape(-1, 3)
    none = np.zeros(len(picks_zyx), dtype=bool)
    if not len(picks_zyx) or not len(rejected_zyx):
        return none
    bodies = density_bodies(data, voxel_size, particles_dark, params)
    reach = max(0, int(round(nm_to_voxels(params.reach_nm, voxel_size * bodies.factor))))
    kept = np.append(bodies_at(bodies, kept_zyx, reach), 0)
    rejected = np.setdiff1d(bodies_at(bodies, rejected_zyx, reach), kept)
    extended = bodies.span_nm >= params.extended_diameters * max_diameter_nm
    drop = extended.copy() if extended[rejected].any() else np.zeros_like(extended)
    drop[rejected[bodies.span_nm[rejected] >= params.rejected_diameters * max_diameter_nm]] = True
    drop[kept] = False
    return drop[bodies_at(bodies, picks_zyx, reach)]

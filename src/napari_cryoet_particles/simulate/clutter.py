"""Cellular clutter: density that is not a particle (membranes, actin, microtubules, ice, carbon).

Each function draws one object in its own box of voxels (10 Å, so lengths in nm are voxels) and
returns a :class:`Piece`: the density, the box voxel its truth centre falls in and the sub-voxel
rest. :func:`~.phantom.phantom_job` places the pieces like the other objects (footprints apart,
see ``FOOTPRINT_LEVEL``) and records one truth row per object; for a long object the centre is
the middle of its axis and the occupancy / class mask carry its whole extent.

Densities are in units of densely packed protein (excess potential over vitreous ice), as in
the rest of the phantom. Amorphous carbon has about twice protein's excess potential over ice;
crystalline ice contamination is drawn as dense too: its Bragg reflections leave the objective
aperture, so it images dark, which a linear weak-phase model can only mimic with density.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

#: Lipid bilayer: two head-group layers this far (nm = voxels) either side of the mid-plane.
BILAYER_HALF_SPACING = 1.9
BILAYER_SIGMA = 0.8
HEAD_GROUP_DENSITY = 1.0
#: Membrane patches: diameter (nm) and radius of curvature (nm) of the slightly curved sheet.
MEMBRANE_DIAMETER = (40.0, 150.0)
MEMBRANE_CURVATURE = (150.0, 1000.0)
#: F-actin: a 7 nm thick protein filament.
ACTIN_RADIUS = 3.5
ACTIN_DENSITY = 0.8
ACTIN_LENGTH = (100.0, 400.0)
#: Apparent persistence length (nm) of the drawn paths: gently curved over a few hundred nm.
ACTIN_PERSISTENCE = 1000.0
#: Microtubule: a hollow tube 25 nm across outside, 17 nm inside, with the 4 nm tubulin repeat.
MICROTUBULE_OUTER_RADIUS = 12.5
MICROTUBULE_INNER_RADIUS = 8.5
MICROTUBULE_DENSITY = 0.8
MICROTUBULE_LENGTH = (150.0, 500.0)
MICROTUBULE_PERSISTENCE = 5000.0
MICROTUBULE_REPEAT = 4.0
MICROTUBULE_REPEAT_DEPTH = 0.15
#: Filaments run within this many degrees of the xy plane (the lamella's plane).
MAX_ELEVATION = 20.0
#: Ice contamination: irregular dense blobs this wide (nm).
ICE_DIAMETER = (30.0, 80.0)
ICE_DENSITY = 2.0
#: Carbon edge: a film this thick (nm) over this share of the field of view, on one side.
CARBON_THICKNESS = 20.0
CARBON_SHARE = (0.12, 0.25)
CARBON_DENSITY = 2.0
#: Path and surface sampling (nm): fine enough that the drawn distances are exact to 0.01 nm.
PATH_STEP = 2.0
SAMPLE_STEP = 0.25


@dataclass
class Piece:
    """An object's density in a box; its truth centre is box voxel ``index`` + ``frac``.

    ``radius`` (nm) goes to the truth's ``radius`` column: the filament's or tube's outer
    radius, the patch's or blob's half width, the film's half thickness.
    """

    density: np.ndarray
    index: np.ndarray
    frac: np.ndarray
    radius: float


def bilayer(distance: np.ndarray, mid: float) -> np.ndarray:
    """Density of a lipid bilayer whose mid-surface lies at ``distance == mid``: two Gaussian
    head-group layers (the vesicles' profile)."""
    density = np.zeros_like(distance)
    for shell in (mid - BILAYER_HALF_SPACING, mid + BILAYER_HALF_SPACING):
        density += HEAD_GROUP_DENSITY * np.exp(-0.5 * ((distance - shell) / BILAYER_SIGMA) ** 2)
    return density


def _unit(rng: np.random.Generator) -> np.ndarray:
    vector = rng.normal(size=3)
    return vector / np.linalg.norm(vector)


def _box_for(points: np.ndarray, margin: float, frac: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Box corner (the box voxel of the origin, negated) and shape holding ``points + frac``."""
    low = np.floor(points.min(axis=0) + frac - margin).astype(int)
    high = np.ceil(points.max(axis=0) + frac + margin).astype(int)
    return -low, tuple(int(n) for n in high - low + 1)


def _grid(shape: tuple, index: np.ndarray, frac: np.ndarray) -> list[np.ndarray]:
    """Coordinates (relative to the object's origin) of a box's voxels, per axis, broadcastable."""
    axes = [
        np.arange(n, dtype=np.float32) - np.float32(i + f)
        for n, i, f in zip(shape, index, frac, strict=True)
    ]
    return [axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]]


def membrane_patch(rng: np.random.Generator, gap: int) -> Piece:
    """A slightly curved bilayer sheet 40-150 nm across with an irregular outline.

    The mid-surface is a cap of a sphere of radius 150-1000 nm (either way curved) around its
    apex, the truth centre; the outline's radius wobbles by its 2nd and 3rd harmonics.
    """
    radius = rng.uniform(*MEMBRANE_DIAMETER) / 2
    curvature = rng.uniform(*MEMBRANE_CURVATURE) * rng.choice([-1.0, 1.0])
    normal = _unit(rng)
    u = np.cross(normal, [1.0, 0.0, 0.0] if abs(normal[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    wobble = rng.uniform(0, 2 * np.pi, 2)
    frac = rng.uniform(-0.5, 0.5, 3)
    outline = radius * 1.25
    sag = abs(curvature) - np.sqrt(curvature**2 - min(outline, abs(curvature)) ** 2)
    reach = BILAYER_HALF_SPACING + 3 * BILAYER_SIGMA + 1
    extent = outline * np.sqrt(np.clip(1 - normal**2, 0, 1)) + (sag + reach) * np.abs(normal)
    index, shape = _box_for(np.stack([-extent, extent]), gap + 1, frac)
    z, y, x = _grid(shape, index, frac)
    centre = (curvature * normal).astype(np.float32)
    distance = np.sqrt((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2)
    band = np.abs(distance - abs(curvature)) <= reach
    points = np.stack([c[band] for c in np.broadcast_arrays(z, y, x)], axis=1)
    along_u, along_v = points @ u.astype(np.float32), points @ v.astype(np.float32)
    angle = np.arctan2(along_v, along_u)
    edge = radius * (
        1 + 0.15 * np.cos(2 * angle + wobble[0]) + 0.08 * np.cos(3 * angle + wobble[1])
    )
    lateral = np.sqrt(along_u**2 + along_v**2)
    density = np.zeros(shape, dtype=np.float32)
    density[band] = bilayer(distance[band], abs(curvature)) * np.clip(edge + 0.5 - lateral, 0, 1)
    return Piece(density, index, frac, float(radius))


def random_path(rng: np.random.Generator, length: float, persistence: float) -> np.ndarray:
    """A smooth random polyline ``length`` nm long (vertices every :data:`PATH_STEP` nm) whose
    direction wanders like a worm-like chain of the given persistence length, kept within
    :data:`MAX_ELEVATION` of the xy plane; centred on its middle vertex."""
    steps = max(2, int(round(length / PATH_STEP)))
    max_z = np.sin(np.deg2rad(MAX_ELEVATION))
    azimuth = rng.uniform(0, 2 * np.pi)
    rise = rng.uniform(-max_z, max_z)
    direction = np.array(
        [rise, np.sqrt(1 - rise**2) * np.sin(azimuth), np.sqrt(1 - rise**2) * np.cos(azimuth)]
    )
    bend = np.sqrt(PATH_STEP / persistence)
    directions = []
    for _ in range(steps):
        directions.append(direction)
        direction = direction + bend * rng.normal(size=3)
        direction[0] = np.clip(direction[0], -max_z, max_z)
        direction /= np.linalg.norm(direction)
    vertices = np.concatenate(
        [np.zeros((1, 3)), np.cumsum(np.asarray(directions) * PATH_STEP, axis=0)]
    )
    return vertices - vertices[steps // 2]


def _resample(vertices: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step`` nm along a polyline and their arc length from its middle vertex."""
    segment = np.linalg.norm(np.diff(vertices, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(segment)])
    s = np.arange(0.0, arc[-1] + 1e-9, step)
    points = np.stack([np.interp(s, arc, vertices[:, k]) for k in range(3)], axis=1)
    return points, s - arc[(len(vertices) - 1) // 2]


def tube(
    vertices: np.ndarray,
    outer: float,
    inner: float,
    density: float,
    frac: np.ndarray,
    gap: int,
    repeat: float = 0.0,
    depth: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A tube along a polyline: ``density`` between radii ``inner`` and ``outer`` (anti-aliased
    edges; ``inner == 0`` gives a solid filament), modulated along the axis by
    ``1 + depth cos(2π s / repeat)``. Returns the box and the box voxel of the path's middle."""
    points, arc = _resample(vertices, SAMPLE_STEP)
    reach = outer + 1.0
    index, shape = _box_for(points, reach + gap + 1, frac)
    # voxels near the path: cubes around points every reach / 2, which hold the reach's ball
    near_path = np.zeros(shape, dtype=bool)
    half = int(np.ceil(reach)) + 1
    for centre in np.round(points[:: max(1, int(reach / 2 / SAMPLE_STEP))] + frac + index):
        low = np.maximum(centre.astype(int) - half, 0)
        near_path[
            tuple(slice(a, b) for a, b in zip(low, centre.astype(int) + half + 1, strict=True))
        ] = True
    candidates = np.argwhere(near_path)
    distance, nearest = cKDTree(points).query(candidates - index - frac, distance_upper_bound=reach)
    near = np.isfinite(distance)
    distance, nearest, candidates = distance[near], nearest[near], candidates[near]
    value = density * np.clip(outer + 0.5 - distance, 0, 1)
    if inner > 0:
        value *= np.clip(distance - (inner - 0.5), 0, 1)
    if repeat > 0 and depth > 0:
        value *= 1 + depth * np.cos(2 * np.pi * arc[nearest] / repeat)
    box = np.zeros(shape, dtype=np.float32)
    box[tuple(candidates.T)] = value
    return box, index


def actin(rng: np.random.Generator, gap: int) -> Piece:
    """An actin filament: 7 nm thick, 100-400 nm long, gently curved."""
    vertices = random_path(rng, rng.uniform(*ACTIN_LENGTH), ACTIN_PERSISTENCE)
    frac = rng.uniform(-0.5, 0.5, 3)
    box, index = tube(vertices, ACTIN_RADIUS, 0.0, ACTIN_DENSITY, frac, gap)
    return Piece(box, index, frac, ACTIN_RADIUS)


def microtubule(rng: np.random.Generator, gap: int) -> Piece:
    """A microtubule: hollow, 25 / 17 nm across, 150-500 nm long, nearly straight, with a faint
    4 nm axial repeat."""
    vertices = random_path(rng, rng.uniform(*MICROTUBULE_LENGTH), MICROTUBULE_PERSISTENCE)
    frac = rng.uniform(-0.5, 0.5, 3)
    box, index = tube(
        vertices,
        MICROTUBULE_OUTER_RADIUS,
        MICROTUBULE_INNER_RADIUS,
        MICROTUBULE_DENSITY,
        frac,
        gap,
        MICROTUBULE_REPEAT,
        MICROTUBULE_REPEAT_DEPTH,
    )
    return Piece(box, index, frac, MICROTUBULE_OUTER_RADIUS)


def ice_blob(rng: np.random.Generator, gap: int) -> Piece:
    """Ice contamination: a dense lumpy ball 30-80 nm across (its radius wobbles by a smooth
    random field of 18 % standard deviation)."""
    radius = rng.uniform(*ICE_DIAMETER) / 2
    frac = rng.uniform(-0.5, 0.5, 3)
    reach = radius * 1.6 + 1
    index, shape = _box_for(np.array([[-reach] * 3, [reach] * 3]), gap + 1, frac)
    field = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), radius / 3)
    field /= max(float(field.std()), 1e-12)
    z, y, x = _grid(shape, index, frac)
    distance = np.sqrt(z**2 + y**2 + x**2)
    edge = radius * (1 + 0.18 * field)
    density = (ICE_DENSITY * np.clip(edge + 0.5 - distance, 0, 1)).astype(np.float32)
    return Piece(density, index, frac, float(radius))


def carbon_edge(
    rng: np.random.Generator, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, float]:
    """The carbon support film at the edge of the hole: a dense film :data:`CARBON_THICKNESS`
    nm thick covering 12-25 % of the field of view on one side (y or x, low or high), with a
    gently wavy edge. Returns the density over the whole volume, its truth centre (the middle
    of the covered part) and its half thickness."""
    nz, ny, nx = shape
    axis = int(rng.integers(1, 3))
    high_side = bool(rng.integers(0, 2))
    across, along = (ny, nx) if axis == 1 else (nx, ny)
    width = rng.uniform(*CARBON_SHARE) * across
    wave = (
        width
        * 0.15
        * np.sin(
            2 * np.pi * np.arange(along) / rng.uniform(0.5, 1.5) / along + rng.uniform(0, 2 * np.pi)
        )
    )
    thickness = min(CARBON_THICKNESS, nz / 2)
    middle = rng.uniform(thickness / 2, nz - thickness / 2)
    depth = np.arange(across, dtype=float)
    if high_side:
        depth = depth[::-1]
    cover = np.clip((width + wave)[None, :] + 0.5 - depth[:, None], 0, 1)  # (across, along)
    if axis == 2:
        cover = cover.T
    slab = np.clip(thickness / 2 + 0.5 - np.abs(np.arange(nz) - middle), 0, 1)
    density = (CARBON_DENSITY * slab[:, None, None] * cover[None]).astype(np.float32)
    centre = np.array([middle, (ny - 1) / 2, (nx - 1) / 2])
    centre[axis] = width / 2 if not high_side else across - 1 - width / 2
    return density, centre, thickness / 2

"""What a pick sits on: a compact object, or a part of something that goes on beyond it (a
filament, a microtubule wall, a membrane), gold, or the volume's faces.

A blob filter answers wherever density is locally convex — on a particle, but as well on every
few nanometres of a filament, a microtubule wall or a membrane. What tells them apart is what the
density does *beyond* the pick: a particle ends within a few of its radii, a tube or a sheet goes
on. For each pick and each of ``directions`` directions (and its opposite), the low-passed
density (particles positive) is read at ``continuation_reach`` radii on both sides; the weakest
of those readings is that direction's *continuation*, as a fraction of the density at the pick. Its
largest value over the directions is about 1 on a straight tube or a flat sheet (along the axis,
within the sheet) and about 0 on a particle, which has ended there on at least one side. Taking
the weakest reading, not the mean, is what keeps particles in a crowd: a neighbour fills some of
the distances on one side, rarely all of them on both sides.

Gold is much denser than protein (about ten times): a pick whose low-passed density is many times
a typical confident pick's is a bead. A pick whose box crosses the volume's faces is a cut particle, or the
filter answering on the face itself.

Everything runs on a block mean of the working volume (``structure_bin`` voxels per side, twice
that beyond :data:`STRUCTURE_BIN_VOXELS` working voxels), low-passed (the cues are at the scale
of the objects, several nanometres), so it costs one small filtered copy and a few
interpolations per pick. The numbers are :class:`~.params.StructureParams`; docs/detection.md
has what they measured.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_cryoet_particles.detect.params import StructureParams
from napari_cryoet_particles.io.coords import face_distance
from napari_cryoet_particles.io.units import nm_to_voxels

#: Beyond this many working voxels the structure volume's block mean is twice as coarse, so its
#: two float32 copies stay under 1/16 of the working volume's size: on a 1024×1024×500 tomogram a
#: 2× block mean and its low-pass would take 0.5 GB, more than the detection's whole budget allows.
STRUCTURE_BIN_VOXELS = 2**27


#: Labels of what a pick sits on (empty: a compact object of its own).
ON_STRUCTURE = "tube or sheet"
ON_GOLD = "gold"
AT_FACES = "faces"


@dataclass(frozen=True)
class StructureMeasures:
    """Per pick: ``along`` the largest continuation over the directions (a fraction of the density
    at the pick), ``density`` the low-passed density at the pick (robust z units of the working
    volume)."""

    along: np.ndarray
    density: np.ndarray


def structure_bin(shape: tuple[int, ...], factor: int) -> int:
    """Working voxels per side of a structure-volume voxel for a working volume of ``shape``:
    ``factor``, or twice it beyond :data:`STRUCTURE_BIN_VOXELS`."""
    return factor if np.prod(shape, dtype=float) <= STRUCTURE_BIN_VOXELS else 2 * factor


def structure_volume(binned: np.ndarray, voxel_size: float, sigma_nm: float) -> np.ndarray:
    """The binned working volume (particles dark) made particle-positive and low-passed by
    ``sigma_nm``; ``voxel_size`` is the binned volume's (Å). ``binned`` (float32) is overwritten."""
    sigma = max(0.5, nm_to_voxels(sigma_nm, voxel_size))
    binned = np.negative(binned, out=binned if binned.dtype == np.float32 else None)
    return ndimage.gaussian_filter(binned.astype(np.float32, copy=False), sigma, mode="nearest")


def _sample(volume: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``volume`` at (N, 3) points (edge values beyond the faces)."""
    return ndimage.map_coordinates(volume, points.T, order=1, mode="nearest")


def antipodal_directions(count: int) -> np.ndarray:
    """``count`` unit vectors (zyx) spread evenly over a half sphere (a Fibonacci lattice): with
    their opposites, every direction of space is within about 90°/√count of one of them."""
    index = np.arange(count) + 0.5
    z = index / count  # cos of the polar angle, 0-1: one half sphere
    angle = np.pi * (1 + 5**0.5) * index
    ring = np.sqrt(1 - z**2)
    return np.column_stack([z, ring * np.sin(angle), ring * np.cos(angle)])


def structure_measures(
    volume: np.ndarray,
    points: np.ndarray,
    radius: np.ndarray,
    reach: tuple[float, ...],
    directions: int,
) -> StructureMeasures:
    """:class:`StructureMeasures` of picks at ``points`` (voxels of ``volume``, the output of
    :func:`structure_volume`) whose blob radii are ``radius`` (same voxels).

    For each direction ``u`` of :func:`antipodal_directions`, the density is read at ``reach``
    radii from the pick along ``+u`` and along ``-u``; the weakest reading is that direction's
    continuation. ``along`` is the largest continuation over the directions (a tube's axis, any
    direction within a sheet), as a fraction of the density at the pick.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    units = antipodal_directions(directions)
    if len(points) == 0:
        empty = np.zeros(0)
        return StructureMeasures(empty, empty)
    centre = _sample(volume, points)
    step = np.maximum(1.0, np.asarray(radius, dtype=float))
    sides = np.empty((len(points), len(units)))
    for k, unit in enumerate(units):
        weakest = np.full(len(points), np.inf)
        for distance in (sign * t for sign in (1.0, -1.0) for t in reach):
            offset = (distance * step)[:, None] * unit
            weakest = np.minimum(weakest, _sample(volume, points + offset))
        sides[:, k] = weakest
    along = sides.max(axis=1) / np.maximum(centre, 1e-6)
    return StructureMeasures(along=along, density=centre)


def at_faces(zyx: np.ndarray, radius: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Whether each pick's box (``radius`` voxels around ``zyx``) crosses the volume's faces."""
    return face_distance(zyx, shape) < np.asarray(radius, dtype=float).reshape(-1)


def structure_labels(
    structure: np.ndarray,
    points: np.ndarray,
    radius: np.ndarray,
    test: StructureParams,
    confident: np.ndarray | None = None,
) -> np.ndarray:
    """:data:`ON_STRUCTURE`, :data:`ON_GOLD` or "" for picks at ``points`` with blob radii ``radius``
    (voxels of ``structure``, the output of :func:`structure_volume`).

    A pick lies on a structure when the density keeps more than ``test.continuation`` of the
    pick's at every distance of ``test.continuation_reach`` radii on both sides along some
    direction; it is gold when its density is more than ``test.gold_ratio`` times a typical
    confident pick's (their ``test.gold_percentile``). Gold is judged against the density of the
    ``confident`` picks (a mask; default all): picks down to a low threshold are mostly noise,
    whose density would make any particle look like gold.
    """
    measures = structure_measures(
        structure, points, radius, test.continuation_reach, test.directions
    )
    labels = np.full(len(measures.density), "", dtype=object)
    if not len(labels):
        return labels
    reference = (
        measures.density
        if confident is None or not confident.any()
        else measures.density[confident]
    )
    typical = float(np.percentile(np.clip(reference, 0, None), test.gold_percentile))
    gold = measures.density > test.gold_ratio * max(typical, 1e-6)
    labels[measures.along > test.continuation] = ON_STRUCTURE
    labels[gold] = ON_GOLD
    return labels

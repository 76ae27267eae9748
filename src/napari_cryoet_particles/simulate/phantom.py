"""The noise-free phantom: proteins from real density maps, lipid vesicles, gold fiducials and,
on request, cellular clutter (membranes, actin, microtubules, ice, a carbon edge: ``clutter.py``).

Densities are excess scattering potential over vitreous ice in units of densely packed protein
(protein about 1, lipid head groups 1, gold :data:`GOLD_DENSITY`); the solvent is 0. Each object
is drawn as a small "stamp" (its density in a cube around it) that is pasted into the volume; the
stamp's footprint (density above :data:`~.structures.FOOTPRINT_LEVEL`) defines the object's
voxels in the particle-id map (``occupancy``) and the class map.

Rotations: a ZXZ Euler triple ``(rot_z1, rot_x, rot_z2)`` in degrees is read as scipy's intrinsic
``Rotation.from_euler("ZXZ", ...)`` acting on (x, y, z) coordinates; the map is turned actively
by it about its centre of mass. Layout files from elsewhere may mean another convention: their
orientations are then different but still exactly recorded, since the truth is what was drawn.
"""

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial.transform import Rotation

from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks import Picks, read_shrec_locations
from napari_cryoet_particles.jobs import CancelToken, Progress
from napari_cryoet_particles.simulate import clutter
from napari_cryoet_particles.simulate.clutter import (
    BILAYER_HALF_SPACING,
    BILAYER_SIGMA,
    bilayer,
)
from napari_cryoet_particles.simulate.structures import (
    ACTIN,
    CARBON,
    CLUTTER_CLASSES,
    FIDUCIAL,
    FOOTPRINT_LEVEL,
    ICE,
    MEMBRANE,
    MICROTUBULE,
    NON_PROTEIN_CLASSES,
    PROTEIN_CLASSES,
    VESICLE,
    VOXEL_SIZE,
    Structure,
    canonical_class,
    class_index,
    load_structures,
)

#: SHREC 2021 model: 1451 proteins, 5 vesicles and 10 fiducials in 512 x 512 x 200 voxels.
SHREC_SHAPE = (200, 512, 512)
SHREC_COUNTS = {"particles": 1451, "vesicles": 5, "fiducials": 10}
#: A real SHREC 2021 ground-truth layout shipped with the package (see ``data/README.md``).
LAYOUTS = Path(__file__).resolve().parents[1] / "data" / "layouts"
SHREC2021_LAYOUT = LAYOUTS / "shrec2021_model_particle_locations.txt"
#: Excess potential of gold over ice relative to protein's (about 25 V against 2.5 V).
GOLD_DENSITY = 10.0
ANGLE_COLUMNS = ("rot_z1", "rot_x", "rot_z2")


@dataclass(frozen=True)
class LayoutOptions:
    """How a random layout is drawn. ``None`` counts follow the SHREC 2021 crowding."""

    classes: tuple[str, ...] = PROTEIN_CLASSES
    n_particles: int | None = None
    n_vesicles: int | None = None
    n_fiducials: int | None = None
    vesicle_radius: tuple[float, float] = (12.0, 25.0)
    fiducial_radius: float = 5.0
    #: Minimum empty voxels between two objects' footprints.
    gap: int = 1
    #: Random positions tried per object before it is left out (the volume is full).
    max_tries: int = 100
    #: Multiplies the SHREC 2021 crowding of proteins when ``n_particles`` is None.
    crowding: float = 1.0
    #: Cellular clutter (``clutter.py``), drawn before everything else.
    n_membranes: int = 0
    n_actin: int = 0
    n_microtubules: int = 0
    n_ice: int = 0
    carbon_edge: bool = False
    #: Draw the proteins (so the rest of the scene and the noise level are the same), then take
    #: them out: a protein-free control matched to the scene with proteins.
    remove_proteins: bool = False

    def counts(self, shape: tuple[int, int, int]) -> dict[str, int]:
        scale = float(np.prod(shape)) / float(np.prod(SHREC_SHAPE))
        given = {
            "particles": self.n_particles,
            "vesicles": self.n_vesicles,
            "fiducials": self.n_fiducials,
        }
        crowding = {"particles": self.crowding}
        return {
            key: int(round(SHREC_COUNTS[key] * scale * crowding.get(key, 1.0)))
            if value is None
            else int(value)
            for key, value in given.items()
        }

    def clutter_counts(self) -> dict[str, int]:
        """Objects of each clutter class, in the order they are drawn (largest first)."""
        return {
            CARBON: int(self.carbon_edge),
            ICE: self.n_ice,
            MEMBRANE: self.n_membranes,
            MICROTUBULE: self.n_microtubules,
            ACTIN: self.n_actin,
        }


@dataclass
class Phantom:
    """The noise-free volume and its exact truth.

    ``truth`` lists every object (vesicles, fiducials and clutter too) in zyx voxels with the
    features ``class``, ``rot_z1``, ``rot_x``, ``rot_z2`` (degrees, NaN for anything but
    proteins) and ``radius`` (voxels); ``occupancy`` holds 1 + the object's row in ``truth``, 0
    elsewhere. ``reference`` is the density the noise level (``snr``) refers to when it is not
    ``density``: the scene without its clutter, but with any proteins ``remove_proteins`` took
    out of ``density``.
    """

    density: np.ndarray
    occupancy: np.ndarray
    class_mask: np.ndarray
    truth: Picks
    info: dict[str, float] = field(default_factory=dict)
    reference: np.ndarray | None = None


@dataclass
class Stamp:
    """An object's density in a small box; ``centre`` is the object's centre in box voxels.

    ``index`` is the box voxel the object's centre falls in: the middle of a cube unless given.
    """

    density: np.ndarray
    centre: np.ndarray
    index: np.ndarray | None = None

    @property
    def half(self) -> int | np.ndarray:
        return self.density.shape[0] // 2 if self.index is None else self.index


def rotation_zyx(angles_deg: np.ndarray) -> np.ndarray:
    """3x3 matrix acting on zyx vectors for a ZXZ Euler triple (see the module docstring)."""
    xyz = Rotation.from_euler("ZXZ", np.asarray(angles_deg, dtype=float), degrees=True).as_matrix()
    return xyz[::-1, ::-1].copy()


def random_angles(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random orientation as a ZXZ Euler triple in degrees."""
    quaternion = rng.normal(size=4)
    return Rotation.from_quat(quaternion / np.linalg.norm(quaternion)).as_euler("ZXZ", degrees=True)


def protein_stamp(structure: Structure, angles_deg: np.ndarray, frac: np.ndarray) -> Stamp:
    """The map turned by the Euler triple, its centre of mass at ``half + frac`` in the cube."""
    half = int(np.ceil(structure.radius)) + 1
    size = 2 * half + 1
    centre = half + np.asarray(frac, dtype=float)
    matrix = rotation_zyx(angles_deg).T
    density = ndimage.affine_transform(
        structure.density,
        matrix,
        offset=structure.centre - matrix @ centre,
        output_shape=(size, size, size),
        order=1,
        cval=0.0,
    )
    return Stamp(np.maximum(density, 0.0, out=density), centre)


def _distances(half: int, centre: np.ndarray) -> np.ndarray:
    axis = np.arange(2 * half + 1, dtype=np.float32)
    dz, dy, dx = (axis - np.float32(c) for c in centre)
    return np.sqrt(dz[:, None, None] ** 2 + dy[None, :, None] ** 2 + dx[None, None, :] ** 2)


def vesicle_stamp(radius: float, frac: np.ndarray) -> Stamp:
    """A hollow lipid bilayer sphere: two Gaussian head-group shells around ``radius``."""
    half = int(np.ceil(radius + BILAYER_HALF_SPACING + 3 * BILAYER_SIGMA)) + 1
    centre = half + np.asarray(frac, dtype=float)
    return Stamp(bilayer(_distances(half, centre), radius), centre)


def fiducial_stamp(radius: float, frac: np.ndarray) -> Stamp:
    """A gold bead: a uniform, very dense ball with a one-voxel anti-aliased edge."""
    half = int(np.ceil(radius)) + 2
    centre = half + np.asarray(frac, dtype=float)
    r = _distances(half, centre)
    return Stamp(GOLD_DENSITY * np.clip(radius + 0.5 - r, 0.0, 1.0), centre)


def _box(
    origin: np.ndarray, sizes: tuple[int, ...], shape: tuple[int, int, int]
) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """Slices of the volume and of a box at ``origin`` for their overlap (None if disjoint)."""
    volume, cube = [], []
    for start, size, n in zip(origin, sizes, shape, strict=True):
        low, high = max(int(start), 0), min(int(start) + size, n)
        if low >= high:
            return None
        volume.append(slice(low, high))
        cube.append(slice(low - int(start), high - int(start)))
    return tuple(volume), tuple(cube)


class _Canvas:
    """The volume being drawn: density, particle ids and classes; with ``reference``, also the
    density the noise level refers to (see :class:`Phantom`)."""

    def __init__(self, shape: tuple[int, int, int], n_objects: int, reference: bool = False):
        self.shape = shape
        self.density = np.zeros(shape, dtype=np.float32)
        id_type = np.int16 if n_objects < np.iinfo(np.int16).max else np.int32
        self.occupancy = np.zeros(shape, dtype=id_type)
        self.class_mask = np.zeros(shape, dtype=np.int8)
        self.reference = np.zeros(shape, dtype=np.float32) if reference else None

    def fits(self, stamp: Stamp, origin: np.ndarray, grown: np.ndarray) -> bool:
        """True if the grown footprint meets no other object's voxels."""
        boxes = _box(origin, stamp.density.shape, self.shape)
        if boxes is None:
            return True
        volume, cube = boxes
        return not np.any(grown[cube] & (self.occupancy[volume] != 0))

    def paste(
        self,
        stamp: Stamp,
        origin: np.ndarray,
        object_id: int,
        class_id: int,
        seen: bool = True,
        referred: bool = True,
    ) -> None:
        """Add the density (if ``seen``) and to the reference (if ``referred``); claim the
        voxels where this object is denser than what was there."""
        boxes = _box(origin, stamp.density.shape, self.shape)
        if boxes is None:
            return
        volume, cube = boxes
        density = stamp.density[cube]
        claim = (density > FOOTPRINT_LEVEL) & (density > self.density[volume])
        self.occupancy[volume][claim] = object_id
        self.class_mask[volume][claim] = class_id
        if seen:
            self.density[volume] += density
        if referred and self.reference is not None:
            self.reference[volume] += density


def _stamp_for(kind: str, angles: np.ndarray, radius: float, frac: np.ndarray) -> Stamp:
    if kind == VESICLE:
        return vesicle_stamp(radius, frac)
    if kind == FIDUCIAL:
        return fiducial_stamp(radius, frac)
    return protein_stamp(load_structures()[kind], angles, frac)


def read_layout(path: str | Path, shape: tuple[int, int, int] = SHREC_SHAPE) -> Picks:
    """Read a SHREC ``particle_locations.txt`` (``CLASS X Y Z rotZ1 rotX rotZ2``, voxels) as a layout.

    Class names are normalised (``4V94_fixed`` -> ``4V94``); vesicle radii, absent from the
    format, are set later from the room around each vesicle. Every centre must lie inside
    ``shape`` (zyx).
    """
    path = Path(path)
    layout = read_shrec_locations(path, voxel_size=VOXEL_SIZE)
    if len(layout) == 0:
        raise CryoetInputError(path, "the layout lists no particles")
    layout.features["class"] = [canonical_class(name, path) for name in layout.features["class"]]
    drawn = sorted(set(layout.features["class"]) & set(CLUTTER_CLASSES))
    if drawn:
        raise CryoetInputError(
            path, f"lists {', '.join(drawn)}: cellular clutter is drawn at random, not placed"
        )
    outside = layout.outside(shape)
    if np.any(outside):
        raise CryoetInputError(
            path,
            f"{int(outside.sum())} of {len(layout)} centres lie outside a volume of "
            f"{shape[2]} x {shape[1]} x {shape[0]} voxels (x y z); give a larger size",
        )
    return layout


def _room_radius(
    layout: Picks, index: int, radii: np.ndarray, bounds: tuple[float, float]
) -> float:
    """The largest vesicle radius in ``bounds`` whose membrane crosses no neighbour.

    Neighbours may end up inside the vesicle; if every radius crosses one, the radius crossing
    the fewest is taken.
    """
    distance = np.linalg.norm(layout.zyx - layout.zyx[index], axis=1)
    reach = radii + BILAYER_HALF_SPACING + 2 * BILAYER_SIGMA + 1.0
    others = np.arange(len(distance)) != index
    low, high = distance[others] - reach[others], distance[others] + reach[others]
    candidates = np.arange(bounds[1], bounds[0] - 1e-9, -0.5)
    crossings = [int(np.sum((low < r) & (r < high))) for r in candidates]
    return float(candidates[int(np.argmin(crossings))])


def complete_layout(layout: Picks, rng: np.random.Generator, options: LayoutOptions) -> Picks:
    """Fill in what a layout file leaves open: missing angles and vesicle/fiducial radii."""
    features = layout.features.copy()
    classes = [canonical_class(name) for name in features["class"]]
    features["class"] = classes
    for column in ANGLE_COLUMNS:
        if column not in features:
            features[column] = np.nan
    structures = load_structures()
    radii = np.array(
        [structures[c].radius if c in structures else options.fiducial_radius for c in classes]
    )
    given = (
        features["radius"].to_numpy(dtype=float)
        if "radius" in features
        else np.full(len(classes), np.nan)
    )
    for i, kind in enumerate(classes):
        angles = features.loc[i, list(ANGLE_COLUMNS)].to_numpy(dtype=float)
        if kind in (VESICLE, FIDUCIAL):
            features.loc[i, list(ANGLE_COLUMNS)] = np.nan
            if np.isfinite(given[i]):
                radii[i] = given[i]
            elif kind == VESICLE:
                radii[i] = _room_radius(layout, i, radii, options.vesicle_radius)
        elif not np.all(np.isfinite(angles)):
            features.loc[i, list(ANGLE_COLUMNS)] = random_angles(rng)
    features["radius"] = radii
    return Picks(layout.zyx.copy(), VOXEL_SIZE, features, layout.tomogram)


def _random_order(
    options: LayoutOptions, counts: dict[str, int], rng: np.random.Generator
) -> list[str]:
    """Vesicles, then fiducials, then proteins (as balanced over the classes as the count allows)."""
    if not options.classes:
        raise CryoetInputError(None, "no particle classes to draw")
    classes = [canonical_class(c) for c in options.classes]
    if any(c in NON_PROTEIN_CLASSES for c in classes):
        raise CryoetInputError(
            None, "classes must be proteins; vesicles, fiducials and clutter have their own counts"
        )
    n = counts["particles"]
    proteins = list(np.repeat(classes, n // len(classes))) + list(
        rng.choice(classes, n % len(classes), replace=False)
    )
    return (
        [VESICLE] * counts["vesicles"]
        + [FIDUCIAL] * counts["fiducials"]
        + [str(c) for c in proteins]
    )


def _largest_first(kinds: list[str]) -> list[str]:
    """Vesicles, then fiducials, then proteins largest first (the order they are placed in)."""
    structures = load_structures()
    first = {VESICLE: -2e3, FIDUCIAL: -1e3}
    size_order = np.argsort([first.get(k) or -structures[k].radius for k in kinds], kind="stable")
    return [kinds[i] for i in size_order]


def _random_pose(
    kind: str, rng: np.random.Generator, options: LayoutOptions
) -> tuple[np.ndarray, float, np.ndarray]:
    """(angles, radius, sub-voxel offset) of an object of a random layout."""
    structures = load_structures()
    angles = random_angles(rng) if kind in structures else np.full(3, np.nan)
    if kind == VESICLE:
        radius = float(rng.uniform(*options.vesicle_radius))
    elif kind == FIDUCIAL:
        radius = float(options.fiducial_radius * rng.uniform(0.9, 1.1))
    else:
        radius = structures[kind].radius
    return angles, radius, rng.uniform(-0.5, 0.5, 3)


def phantom_job(
    shape: tuple[int, int, int],
    rng: np.random.Generator,
    layout: Picks | None = None,
    options: LayoutOptions | None = None,
    cancel: CancelToken | None = None,
    clutter_rng: np.random.Generator | None = None,
) -> Generator[Progress, None, Phantom]:
    """Draw a phantom; yields ``Progress(done, total, "phantom")`` as objects are placed.

    Without ``layout``, objects get random orientations and random positions that keep their
    footprints ``options.gap`` voxels apart (clutter, then vesicles, then fiducials, then
    proteins largest first; an object that finds no room in ``options.max_tries`` tries is left
    out). With a ``layout`` (see :func:`read_layout`) objects go exactly where it says; clutter
    needs a random layout. Clutter is drawn from ``clutter_rng`` (default ``rng``), so a scene
    with clutter keeps the same clutter whatever its proteins.
    """
    options = options or LayoutOptions()
    cancel = cancel or CancelToken()
    shape = tuple(int(n) for n in shape)  # type: ignore[assignment]
    if len(shape) != 3 or min(shape) < 1:
        raise CryoetInputError(
            None, f"volume size must be three positive numbers (z y x), got {shape}"
        )
    structures = load_structures()
    clutter_counts = options.clutter_counts()
    n_clutter = sum(clutter_counts.values())
    if layout is not None and n_clutter:
        raise CryoetInputError(
            None, "cellular clutter is drawn at random: it cannot be added to a layout file"
        )
    if layout is not None:
        layout = complete_layout(layout, rng, options)
        kinds = list(layout.features["class"])
        fixed = layout.zyx
    else:
        kinds, fixed = _largest_first(_random_order(options, options.counts(shape), rng)), None
    canvas = _Canvas(
        shape, n_clutter + len(kinds), reference=n_clutter > 0 or options.remove_proteins
    )
    placed_zyx, placed_rows, skipped = [], [], 0
    total = n_clutter + len(kinds)
    structure = np.ones((3, 3, 3), dtype=bool) if options.gap > 0 else None
    if n_clutter:
        skipped += yield from _place_clutter(
            canvas,
            clutter_counts,
            clutter_rng or rng,
            options,
            (placed_zyx, placed_rows),
            total,
            cancel,
        )
    report_every = max(1, len(kinds) // 50)
    for i, kind in enumerate(kinds):
        if i % report_every == 0:
            cancel.check()
            yield Progress(n_clutter + i, total, "phantom")
        if fixed is not None:
            row = layout.features.iloc[i]
            angles = row[list(ANGLE_COLUMNS)].to_numpy(dtype=float)
            radius = float(row["radius"])
            target = np.round(fixed[i])
            frac = fixed[i] - target
        else:
            angles, radius, frac = _random_pose(kind, rng, options)
        stamp = _stamp_for(kind, angles, radius, frac)
        if fixed is None:
            room = _find_room(canvas, stamp, frac, rng, options, structure)
            if room is None:
                skipped += 1
                continue
            target = room
        object_id = len(placed_zyx) + 1
        canvas.paste(
            stamp,
            target.astype(int) - stamp.half,
            object_id,
            class_index(kind),
            seen=not (options.remove_proteins and kind in structures),
        )
        placed_zyx.append(target + frac)
        placed_rows.append(
            {"class": kind, **dict(zip(ANGLE_COLUMNS, angles, strict=True)), "radius": radius}
        )
    yield Progress(total, total, "phantom")
    truth = _truth(placed_zyx, placed_rows)
    if fixed is None and len(truth):
        truth, canvas.occupancy = _shuffle_proteins(truth, canvas.occupancy, rng)
    info = {"n_objects": float(len(truth)), "n_left_out": float(skipped)}
    if options.remove_proteins:
        truth = _remove_proteins(truth, canvas)
        info["n_proteins_removed"] = info["n_objects"] - len(truth)
        info["n_objects"] = float(len(truth))
    return Phantom(
        canvas.density, canvas.occupancy, canvas.class_mask, truth, info, canvas.reference
    )


def _find_room(
    canvas: _Canvas,
    stamp: Stamp,
    frac: np.ndarray,
    rng: np.random.Generator,
    options: LayoutOptions,
    structure: np.ndarray | None,
) -> np.ndarray | None:
    """A random position (voxel) for the stamp's centre voxel where its footprint, grown by
    ``options.gap``, meets no other object; None after ``options.max_tries`` tries."""
    footprint = stamp.density > FOOTPRINT_LEVEL
    grown = (
        ndimage.binary_dilation(footprint, structure, iterations=options.gap)
        if structure is not None
        else footprint
    )
    # centres stay within [0, n - 1] on every axis
    low = (frac < 0).astype(int)
    high = np.asarray(canvas.shape) - (frac > 0).astype(int)
    for _ in range(options.max_tries):
        target = rng.integers(low, high).astype(float)
        if canvas.fits(stamp, target - stamp.half, grown):
            return target
    return None


_CLUTTER_PIECES = {
    ICE: clutter.ice_blob,
    MEMBRANE: clutter.membrane_patch,
    MICROTUBULE: clutter.microtubule,
    ACTIN: clutter.actin,
}


def _place_clutter(
    canvas: _Canvas,
    counts: dict[str, int],
    rng: np.random.Generator,
    options: LayoutOptions,
    placed: tuple[list, list],
    total: int,
    cancel: CancelToken,
) -> Generator[Progress, None, int]:
    """Draw and place the clutter (not in the noise reference); returns how many found no room."""
    structure = np.ones((3, 3, 3), dtype=bool) if options.gap > 0 else None
    skipped, done = 0, 0
    for kind, count in counts.items():
        for _ in range(count):
            cancel.check()
            yield Progress(done, total, "phantom")
            done += 1
            if kind == CARBON:
                density, centre, radius = clutter.carbon_edge(rng, canvas.shape)
                stamp, origin = Stamp(density, centre, np.zeros(3, dtype=int)), np.zeros(3, int)
            else:
                piece = _CLUTTER_PIECES[kind](rng, options.gap)
                stamp = Stamp(piece.density, piece.index + piece.frac, piece.index)
                target = _find_room(canvas, stamp, piece.frac, rng, options, structure)
                if target is None:
                    skipped += 1
                    continue
                origin = target.astype(int) - piece.index
                centre, radius = target + piece.frac, piece.radius
            canvas.paste(stamp, origin, len(placed[0]) + 1, class_index(kind), referred=False)
            placed[0].append(np.asarray(centre, dtype=float))
            placed[1].append(
                {"class": kind, **dict.fromkeys(ANGLE_COLUMNS, np.nan), "radius": float(radius)}
            )
    return skipped


def _remove_proteins(truth: Picks, canvas: _Canvas) -> Picks:
    """Drop the proteins from the truth and the id and class maps (their density was never
    added), renumbering the remaining objects."""
    keep = np.isin(truth.features["class"].to_numpy(), NON_PROTEIN_CLASSES)
    new_id = np.zeros(len(truth) + 1, dtype=canvas.occupancy.dtype)
    new_id[1:][keep] = np.arange(1, int(keep.sum()) + 1, dtype=canvas.occupancy.dtype)
    removed = (canvas.occupancy > 0) & (new_id[canvas.occupancy] == 0)
    canvas.class_mask[removed] = 0
    canvas.occupancy = new_id[canvas.occupancy]
    features = truth.features[keep].reset_index(drop=True)
    return Picks(truth.zyx[keep], truth.voxel_size, features, truth.tomogram)


def _truth(zyx: list[np.ndarray], rows: list[dict]) -> Picks:
    features = pd.DataFrame(rows, columns=["class", *ANGLE_COLUMNS, "radius"])
    features["score"] = 1.0
    return Picks(np.asarray(zyx, dtype=float).reshape(-1, 3), VOXEL_SIZE, features)


def _shuffle_proteins(
    truth: Picks, occupancy: np.ndarray, rng: np.random.Generator
) -> tuple[Picks, np.ndarray]:
    """List proteins in random order (they were drawn largest first) and renumber the id map."""
    classes = truth.features["class"].to_numpy()
    first = int(np.sum(np.isin(classes, NON_PROTEIN_CLASSES)))
    order = np.concatenate([np.arange(first), first + rng.permutation(len(truth) - first)])
    new_id = np.zeros(len(truth) + 1, dtype=occupancy.dtype)
    new_id[order + 1] = np.arange(1, len(truth) + 1, dtype=occupancy.dtype)
    shuffled = Picks(
        truth.zyx[order], truth.voxel_size, truth.features.iloc[order].reset_index(drop=True)
    )
    return shuffled, new_id[occupancy]

"""Where false picks land: on which kind of clutter, at the volume's faces, or in background.

A score says how many picks are false; this says what fooled the picker. Each false pick gets
one site, the first that applies of:

1. ``outside volume``: its rounded position is outside the tomogram;
2. a clutter kind by name (``vesicle``, ``fiducial``, ``membrane``...): a voxel of that class lies
   within one voxel (6-connected, as the SHREC rule's one-voxel dilation of the id map) of its
   rounded position in the class mask, or it hit a truth particle of that class;
3. ``faces``: nearer a face of the volume than half its box (the pick's radius);
4. ``outside sample``: outside a given sample mask (e.g. the ice slab), when one is given;
5. ``background``.

Beside that, over **all** picks: how many lie on clutter (by the same one-voxel test), and how
many lie within a few voxels of a face. Positions are zyx voxels of the class mask's volume.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from napari_cryoet_particles.evaluate.localization import clutter_classes
from napari_cryoet_particles.evaluate.radii import class_key
from napari_cryoet_particles.io.coords import face_distance
from napari_cryoet_particles.io.picks import Picks
from napari_cryoet_particles.io.units import DEFAULT_VOXEL_SIZE, nm_to_voxels, resolve_voxel_size

OUTSIDE_VOLUME = "outside volume"
FACES = "faces"
OUTSIDE_SAMPLE = "outside sample"
BACKGROUND = "background"
#: A pick's box radius (nm) when it has no ``radius_nm`` feature.
DEFAULT_BOX_RADIUS_NM = 5.0
#: The plain "near a face" count: picks nearer a face than this many voxels.
FACE_MARGIN = 3.0
#: A voxel and its six face neighbours.
_CROSS = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])


def outside_volume(zyx: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Per position: its rounded index lies outside a volume of ``shape``."""
    index = np.rint(np.asarray(zyx, dtype=float).reshape(-1, 3))
    return np.any((index < 0) | (index >= np.asarray(shape[:3])), axis=1)


def near_faces(zyx: np.ndarray, shape: tuple[int, ...], margin: float | np.ndarray) -> np.ndarray:
    """Per position: inside the volume and nearer a face than ``margin`` voxels (one number or
    one per position)."""
    near = face_distance(zyx, shape) < np.asarray(margin, dtype=float)
    return near & ~outside_volume(zyx, shape)


def _lookup(volume: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``volume`` at integer ``points`` (..., 3), and whether each point is inside."""
    shape = np.asarray(volume.shape[:3])
    inside = np.all((points >= 0) & (points < shape), axis=-1)
    clipped = np.clip(points, 0, shape - 1)
    values = np.asarray(volume[clipped[..., 0], clipped[..., 1], clipped[..., 2]])
    return values, inside


def clutter_at(
    zyx: np.ndarray,
    class_mask: np.ndarray,
    class_names: Mapping[int, str],
    clutter: Iterable[str],
) -> np.ndarray:
    """Per position, the clutter class key within one voxel of it in ``class_mask``, '' if none.

    The voxel itself decides when it is clutter; else the largest clutter value among its six
    neighbours (SHREC's grey dilation keeps the largest value too).
    """
    keys = {class_key(c) for c in clutter}
    named = {int(v): class_key(n) for v, n in class_names.items() if class_key(n) in keys}
    zyx = np.asarray(zyx, dtype=float).reshape(-1, 3)
    out = np.full(len(zyx), "", dtype=object)
    if not named or not len(zyx):
        return out
    points = np.rint(zyx).astype(int)[:, None, :] + _CROSS[None]
    values, inside = _lookup(class_mask, points)
    values = np.where(inside, np.rint(values).astype(int), 0)
    is_clutter = np.isin(values, list(named))
    nearest = np.where(is_clutter[:, 0], values[:, 0], np.where(is_clutter, values, -1).max(axis=1))
    for value, key in named.items():
        out[nearest == value] = key
    return out


def box_radii(picks: Picks, box_radius: float | None = None) -> np.ndarray:
    """Half a box per pick, in voxels: ``box_radius``, else the pick's ``radius_nm`` feature, else
    :data:`DEFAULT_BOX_RADIUS_NM` (nm converted with the picks' voxel size, 10 Å if unknown)."""
    if box_radius is not None:
        return np.full(len(picks), float(box_radius))
    voxel_size = resolve_voxel_size(picks.voxel_size, default=DEFAULT_VOXEL_SIZE, warn=False)
    default = nm_to_voxels(DEFAULT_BOX_RADIUS_NM, voxel_size)
    if "radius_nm" not in picks.features:
        return np.full(len(picks), default)
    radius_nm = np.asarray(picks.features["radius_nm"], dtype=float)
    radii = nm_to_voxels(radius_nm, voxel_size)
    return np.where(np.isfinite(radii) & (radii > 0), radii, default)


@dataclass
class Landing:
    """Where the false picks of a set landed (per pick and counted), and how many of all picks
    lie on clutter or near a face. Per-pick arrays have one entry per pick; ``site`` is '' for
    picks that are not false."""

    site: np.ndarray
    on_clutter: np.ndarray
    near_faces: np.ndarray
    clutter: tuple[str, ...]
    face_margin: float
    box_radius: np.ndarray
    has_sample_mask: bool = False

    @property
    def n_picks(self) -> int:
        return len(self.site)

    @property
    def n_false(self) -> int:
        return int(np.count_nonzero(self.site != ""))

    @property
    def sites(self) -> tuple[str, ...]:
        """Every site a false pick can get here, in order of precedence (reversed for the last)."""
        optional = (OUTSIDE_SAMPLE,) if self.has_sample_mask else ()
        return (*self.clutter, FACES, *optional, OUTSIDE_VOLUME, BACKGROUND)

    @property
    def counts(self) -> dict[str, int]:
        """False picks per site (every site, zeros too)."""
        return {s: int(np.count_nonzero(self.site == s)) for s in self.sites}

    @property
    def clutter_counts(self) -> dict[str, int]:
        """All picks (false or not) per clutter kind they lie on."""
        return {c: int(np.count_nonzero(self.on_clutter == c)) for c in self.clutter}

    @property
    def n_on_clutter(self) -> int:
        return int(np.count_nonzero(self.on_clutter != ""))

    @property
    def n_near_faces(self) -> int:
        return int(np.count_nonzero(self.near_faces))

    def fraction(self, count: int) -> float:
        """``count`` as a fraction of all picks (0 when there are none)."""
        return count / self.n_picks if self.n_picks else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "n_picks": self.n_picks,
            "n_false": self.n_false,
            "clutter": list(self.clutter),
            "false_sites": {
                s: {"count": c, "fraction_of_picks": self.fraction(c)}
                for s, c in self.counts.items()
            },
            "on_clutter": {
                "count": self.n_on_clutter,
                "fraction_of_picks": self.fraction(self.n_on_clutter),
                "by_kind": self.clutter_counts,
            },
            "near_faces": {
                "margin_voxels": self.face_margin,
                "count": self.n_near_faces,
                "fraction_of_picks": self.fraction(self.n_near_faces),
            },
            "box_radius_voxels_median": (
                float(np.median(self.box_radius)) if len(self.box_radius) else None
            ),
        }


def landing_sites(
    picks: Picks,
    false: np.ndarray,
    shape: tuple[int, ...],
    *,
    class_mask: np.ndarray | None = None,
    class_names: Mapping[int, str] | None = None,
    clutter: Iterable[str] | None = None,
    hit_class: np.ndarray | None = None,
    box_radius: float | None = None,
    sample_mask: np.ndarray | None = None,
    face_margin: float = FACE_MARGIN,
) -> Landing:
    """Label each false pick (``false``: one boolean per pick) by where it landed (module docstring).

    ``picks`` are in voxels of the volume of ``shape`` (and of ``class_mask`` / ``sample_mask``,
    boolean, True inside the sample). ``clutter``: the clutter class keys (default: every class
    of ``class_names`` that is not a protein, :func:`clutter_classes`). ``hit_class``: per pick,
    the class of the truth particle it hit ('' none), so that a hit on a clutter particle counts
    as on clutter without a class mask. ``box_radius``: half a box in voxels (default
    :func:`box_radii`).
    """
    false = np.asarray(false, dtype=bool).reshape(-1)
    if len(false) != len(picks):
        raise ValueError(f"{len(picks)} picks but {len(false)} false flags")
    names = dict(class_names or {})
    kinds = tuple(
        sorted({class_key(c) for c in clutter})
        if clutter is not None
        else clutter_classes(names.values())
    )
    zyx = picks.zyx
    on_clutter = np.full(len(picks), "", dtype=object)
    if class_mask is not None and names:
        on_clutter = clutter_at(zyx, class_mask, names, kinds)
    if hit_class is not None:
        hit = np.array([class_key(c) for c in np.asarray(hit_class, dtype=str)], dtype=object)
        by_hit = (on_clutter == "") & np.isin(hit, kinds)
        on_clutter[by_hit] = hit[by_hit]
    radii = box_radii(picks, box_radius)
    site = np.full(len(picks), "", dtype=object)
    site[false] = BACKGROUND
    if sample_mask is not None:
        inside_mask, inside = _lookup(sample_mask, np.rint(zyx).astype(int))
        site[false & inside & ~inside_mask.astype(bool)] = OUTSIDE_SAMPLE
    site[false & near_faces(zyx, shape, radii)] = FACES
    site[false & (on_clutter != "")] = on_clutter[false & (on_clutter != "")]
    site[false & outside_volume(zyx, shape)] = OUTSIDE_VOLUME
    return Landing(
        site=site.astype(str),
        on_clutter=on_clutter.astype(str),
        near_faces=near_faces(zyx, shape, face_margin),
        clutter=kinds,
        face_margin=float(face_margin),
        box_radius=radii,
        has_sample_mask=sample_mask is not None,
    )


def class_names_from_masks(
    occupancy: np.ndarray, class_mask: np.ndarray, truth_classes: Iterable[object], chunk: int = 16
) -> dict[int, str]:
    """Names of the class-mask values, for a class mask that comes without ``class_names.txt``
    (the SHREC 2021 release): each value is named after the truth class (row ``id - 1`` of the
    truth) whose particles' voxels in ``occupancy`` carry it most. Read ``chunk`` planes at a time.
    """
    classes = np.asarray([str(c) for c in truth_classes], dtype=object)
    unique, class_index = np.unique(classes, return_inverse=True)
    n_classes = max(len(unique), 1)
    counts = np.zeros(0, dtype=np.int64)
    for z in range(0, occupancy.shape[0], chunk):
        ids = np.rint(np.asarray(occupancy[z : z + chunk])).astype(np.int64).ravel()
        values = np.rint(np.asarray(class_mask[z : z + chunk])).astype(np.int64).ravel()
        keep = (ids > 0) & (ids <= len(classes)) & (values > 0)
        code = values[keep] * n_classes + class_index[ids[keep] - 1]
        found = np.bincount(code)
        if len(found) > len(counts):
            found[: len(counts)] += counts
            counts = found
        else:
            counts[: len(found)] += found
    table = np.pad(counts, (0, (-len(counts)) % n_classes)).reshape(-1, n_classes)
    return {
        int(value): str(unique[np.argmax(row)])
        for value, row in enumerate(table)
        if value > 0 and row.any()
    }

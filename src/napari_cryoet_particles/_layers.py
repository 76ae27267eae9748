"""napari layers and the core objects (Volume, Picks), without Qt: the one home of the helpers
that the reader, writer, sample data and every dock share.

* building layers: :func:`tomogram_layer_data`, :func:`picks_layer_data`, :func:`truth_layer_data`;
* reading them back: :func:`volume_of`, :func:`voxel_size_of`, :func:`picks_from_layer`;
* which layer is what: :func:`is_image`, :func:`is_points`, :func:`is_picks_layer`,
  :func:`is_truth_layer`;
* changing a picks layer (statuses, threshold, status filter, colours): :func:`set_status` and
  friends, which recolour the layer, update what it shows and emit ``picks_events(layer).changed``
  so the Curate, Metrics and Export docks refresh;
* the view: :func:`show_slab`, :func:`centre_on`;
* a copick run as layers: :func:`copick_run_layers`.

The metadata keys below are the contract between them:

* image layers: ``metadata["voxel_size"]`` (Å, ``None`` when the file states none),
  ``metadata["path"]``, ``metadata["role"] == "tomogram"``; ``scale`` is ``(voxel_size,) * 3``,
  or for an unknown voxel size the one detection assumes (:func:`display_voxel_size`).
* points layers: data in zyx voxels of their tomogram, ``scale`` the same as the tomogram's,
  ``features`` with ``score, cluster, status, class``; ``metadata["role"]`` is ``"picks"`` or
  ``"truth"``, ``metadata["score_threshold"]`` hides low-score picks through ``shown``.
* layers of a copick run (both kinds): ``metadata["copick_config"]`` and ``metadata["copick_run"]``.
"""

import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from psygnal import Signal

from napari_cryoet_particles.io import Picks, Volume
from napari_cryoet_particles.io.picks import ADDED_FEATURES, PICK_STATUSES, standard_features
from napari_cryoet_particles.io.units import DEFAULT_VOXEL_SIZE, resolve_voxel_size

#: Border colours of the pick statuses (RGBA).
STATUS_COLORS: dict[str, tuple[float, float, float, float]] = {
    "auto": (1.0, 1.0, 1.0, 1.0),
    "accepted": (0.2, 0.9, 0.2, 1.0),
    "rejected": (0.95, 0.15, 0.15, 1.0),
    "added": (0.1, 0.8, 1.0, 1.0),
}
#: Voxels sampled to estimate contrast limits (never a full pass over a large memory map).
CONTRAST_SAMPLE_VOXELS = 2_000_000
#: Marker diameter used when nothing tells the particle size (Å).
DEFAULT_PARTICLE_DIAMETER = 120.0
COLOR_MODES = ("score", "group", "status", "class")


# ---------------------------------------------------------------------------------------------
# Tomograms


def sample_for_contrast(data: Any, max_voxels: int = CONTRAST_SAMPLE_VOXELS) -> np.ndarray:
    """A strided sample of a 3D array (memory map or dask) of at most about ``max_voxels``."""
    shape = np.asarray(data.shape[-3:], dtype=float)
    stride = max(1, int(np.ceil((np.prod(shape) / max_voxels) ** (1 / 3))))
    sample = data[..., ::stride, ::stride, ::stride]
    return np.asarray(sample, dtype=np.float32)


def contrast_limits(data: Any, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """Percentile contrast limits from a sample of the data."""
    sample = sample_for_contrast(data)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return (0.0, 1.0)
    lo, hi = (float(v) for v in np.percentile(sample, [low, high]))
    if hi <= lo:
        hi = lo + 1.0
    return (lo, hi)


def display_voxel_size(voxel_size: float | None) -> float:
    """The scale (Å per voxel) a layer is shown at: its voxel size, or when that is unknown the
    one detection and training assume, so picks found in it land on it."""
    return resolve_voxel_size(voxel_size, default=DEFAULT_VOXEL_SIZE, warn=False)


def tomogram_layer_data(
    data: Any, voxel_size: float | None, name: str, path: Path | str | None = None, binning: int = 1
) -> tuple[Any, dict[str, Any], str]:
    """An image LayerDataTuple: the data itself (never copied), scale = voxel size in Å; an
    unknown voxel size stays ``None`` in the metadata (see :func:`display_voxel_size`)."""
    kwargs = {
        "name": name,
        "scale": (display_voxel_size(voxel_size),) * 3,
        "contrast_limits": contrast_limits(data),
        "metadata": {
            "role": "tomogram",
            "voxel_size": None if voxel_size is None else float(voxel_size),
            "path": None if path is None else str(path),
            "binning": int(binning),
        },
    }
    return (data, kwargs, "image")


def volume_layer_data(volume: Volume, name: str | None = None) -> tuple[Any, dict[str, Any], str]:
    path = volume.path
    return tomogram_layer_data(
        volume.data, volume.voxel_size, name or (path.stem if path else "tomogram"), path
    )


def is_image(layer: Any) -> bool:
    """A 3D grey-level image that is a tomogram (not a score map)."""
    from napari.layers import Image

    return (
        isinstance(layer, Image)
        and layer.ndim == 3
        and not layer.rgb
        and layer.metadata.get("role") != "score_map"
    )


def voxel_size_of(layer: Any) -> float | None:
    """The voxel size (Å) of a layer, ``None`` when unknown (see :func:`stated_voxel_size`)."""
    return stated_voxel_size(layer.metadata, layer.scale)


def stated_voxel_size(
    metadata: dict[str, Any] | None, scale: Iterable[float] | None
) -> float | None:
    """The voxel size (Å) a layer's metadata states (``None`` there: unknown), else its scale;
    a scale of 1, napari's default for a layer opened without one, says nothing."""
    metadata = metadata or {}
    if "voxel_size" in metadata:
        size = metadata["voxel_size"]
        return float(size) if size else None
    scale = list(scale) if scale is not None else []
    return float(scale[-1]) if scale and float(scale[-1]) != 1.0 else None


def volume_of(layer: Any) -> Volume:
    """The core Volume behind an image layer (its data is not copied)."""
    path = layer.metadata.get("path")
    return Volume(
        data=layer.data,
        voxel_size=voxel_size_of(layer),
        path=Path(path) if path else Path(layer.name),
    )


# ---------------------------------------------------------------------------------------------
# Picks


def normalise_features(features: pd.DataFrame | None, n: int) -> pd.DataFrame:
    """A layer's features table with the standard pick features (the schema of
    :func:`napari_cryoet_particles.io.picks.standard_features`)."""
    return standard_features(features, n)


def categorical_colors(values: Iterable[Any]) -> dict[Any, tuple[float, float, float, float]]:
    """One colour (tab10, then tab20) per distinct value, in sorted order."""
    distinct = sorted({v for v in values}, key=str)
    cmap = colormaps["tab10" if len(distinct) <= 10 else "tab20"]
    return {v: tuple(float(c) for c in cmap(i % cmap.N)) for i, v in enumerate(distinct)}


def score_colors(scores: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """RGBA per score, scaled over the finite scores; missing scores grey."""
    scores = np.asarray(scores, dtype=float)
    colors = np.tile(np.array([[0.6, 0.6, 0.6, 1.0]]), (len(scores), 1))
    finite = np.isfinite(scores)
    if finite.any():
        lo, hi = float(scores[finite].min()), float(scores[finite].max())
        span = hi - lo if hi > lo else 1.0
        colors[finite] = colormaps[cmap]((scores[finite] - lo) / span)
    return colors


#: Face opacity of pick markers: the density under a marker stays visible; the border (status) is opaque.
FACE_ALPHA = 0.45


def face_colors(features: pd.DataFrame, mode: str) -> np.ndarray:
    """RGBA per pick for a colouring mode: ``score``, ``group`` (cluster), ``status`` or ``class``."""
    colors = _mode_colors(features, mode)
    if len(colors):
        colors = np.array(colors, dtype=float)
        colors[:, 3] = FACE_ALPHA
    return colors


def _mode_colors(features: pd.DataFrame, mode: str) -> np.ndarray:
    n = len(features)
    if n == 0:
        return np.zeros((0, 4))
    if mode == "score":
        return score_colors(features["score"].to_numpy(dtype=float))
    column = mode
    if mode == "group":
        column = "group" if "group" in features else "cluster"
    if column == "status":
        return np.array([STATUS_COLORS.get(s, STATUS_COLORS["auto"]) for s in features["status"]])
    values = features[column].tolist()
    mapping = categorical_colors(values)
    return np.array([mapping[v] for v in values])


def border_colors(features: pd.DataFrame) -> np.ndarray:
    if len(features) == 0:
        return np.zeros((0, 4))
    return np.array([STATUS_COLORS.get(s, STATUS_COLORS["auto"]) for s in features["status"]])


def shown_mask(
    features: pd.DataFrame, threshold: float | None = None, statuses: Iterable[str] | None = None
) -> np.ndarray:
    """Which picks to show: score at or above ``threshold`` (picks the user added always pass)
    and, when ``statuses`` is given, status among them."""
    n = len(features)
    mask = np.ones(n, dtype=bool)
    status = features["status"].astype(str).to_numpy() if n else np.array([], dtype=str)
    if threshold is not None and n:
        scores = features["score"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            mask &= (scores >= threshold) | ~np.isfinite(scores) | (status == "added")
    if statuses is not None:
        mask &= np.isin(status, list(statuses))
    return mask


def picks_layer_data(
    picks: Picks,
    name: str,
    role: str = "picks",
    diameter_angstrom: float | None = None,
    color_by: str = "score",
    tomogram_shape: tuple[int, int, int] | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> tuple[np.ndarray, dict[str, Any], str]:
    """A points LayerDataTuple for picks: zyx voxels, scale = voxel size, marker = particle size."""
    features = normalise_features(picks.features, len(picks))
    scale = display_voxel_size(picks.voxel_size)
    size_voxels = (diameter_angstrom or DEFAULT_PARTICLE_DIAMETER) / scale
    metadata = {
        "role": role,
        "voxel_size": picks.voxel_size,
        "tomogram": picks.tomogram,
        "tomogram_shape": None if tomogram_shape is None else tuple(int(s) for s in tomogram_shape),
        "color_by": color_by,
        "score_threshold": None,
        "status_filter": None,
        "diameter_angstrom": float(diameter_angstrom or DEFAULT_PARTICLE_DIAMETER),
    }
    metadata.update(extra_metadata or {})
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": (scale,) * 3,
        "features": features,
        "size": size_voxels,
        "face_color": face_colors(features, color_by) if len(features) else "white",
        "border_color": border_colors(features) if len(features) else "white",
        "border_width": 0.12,
        "projection_mode": "rescale_spherical",
        "opacity": 0.9,
        "metadata": metadata,
    }
    return (np.asarray(picks.zyx, dtype=float), kwargs, "points")


def truth_diameter_angstrom(
    truth: Picks | None, occupancy: np.ndarray | None, voxel_size: float | None
) -> float:
    """Marker size (Å) for ground truth: a ``diameter`` feature (voxels) if the truth has one,
    else the equivalent-sphere diameter of the median particle in the occupancy mask, else
    :data:`DEFAULT_PARTICLE_DIAMETER`."""
    size = display_voxel_size(voxel_size)
    if truth is not None and "diameter" in truth.features:
        diameters = truth.features["diameter"].to_numpy(dtype=float)
        if np.isfinite(diameters).any():
            return float(np.nanmedian(diameters)) * size
    if occupancy is not None:
        counts = _label_sizes(occupancy)
        if counts.size:
            return float(2 * (3 * np.median(counts) / (4 * np.pi)) ** (1 / 3)) * size
    return DEFAULT_PARTICLE_DIAMETER


def _label_sizes(labels: np.ndarray, slab_voxels: int = 16_000_000) -> np.ndarray:
    """Voxel count of every non-zero label, read a slab at a time."""
    step = max(1, slab_voxels // max(1, int(np.prod(labels.shape[1:]))))
    total = np.zeros(1, dtype=np.int64)
    for start in range(0, labels.shape[0], step):
        slab = np.asarray(labels[start : start + step]).ravel()
        slab = slab[slab > 0].astype(np.int64)
        if slab.size:
            counts = np.bincount(slab)
            if counts.size > total.size:
                counts[: total.size] += total
                total = counts
            else:
                total[: counts.size] += counts
    return total[1:][total[1:] > 0]


def truth_layer_data(
    truth: Picks,
    name: str,
    diameter_angstrom: float | None = None,
    tomogram_shape: tuple[int, int, int] | None = None,
) -> tuple[np.ndarray, dict[str, Any], str]:
    """Ground truth as points: face colour by class through a categorical colour cycle; marker
    size from a per-particle ``radius`` feature (voxels) when the truth has one."""
    data, kwargs, layer_type = picks_layer_data(
        truth,
        name,
        role="truth",
        diameter_angstrom=diameter_angstrom,
        tomogram_shape=tomogram_shape,
        color_by="class",
    )
    features = kwargs["features"]
    if "radius" in features:  # per-particle radius in voxels (the simulator's truth has it)
        radius = features["radius"].to_numpy(dtype=float)
        kwargs["size"] = np.where(np.isfinite(radius) & (radius > 0), 2 * radius, kwargs["size"])
    classes = features["class"]
    mapping = categorical_colors(classes)
    kwargs["face_color"] = "class"
    kwargs["face_color_cycle"] = [mapping[c] for c in sorted(mapping, key=str)] or ["white"]
    kwargs["border_color"] = "white"
    kwargs["symbol"] = "ring"
    kwargs["opacity"] = 0.6
    return data, kwargs, layer_type


def picks_from_points(
    data: np.ndarray,
    features: pd.DataFrame | None,
    scale: Iterable[float] | None,
    metadata: dict[str, Any] | None = None,
    mask: np.ndarray | None = None,
) -> Picks:
    """Picks from a points layer's data (zyx voxels), features, scale and metadata."""
    data = np.asarray(data, dtype=float).reshape(-1, 3)
    metadata = metadata or {}
    features = normalise_features(features, len(data))
    voxel_size = stated_voxel_size(metadata, scale)
    picks = Picks(data, voxel_size, features, str(metadata.get("tomogram") or ""))
    return picks if mask is None else picks.subset(np.asarray(mask))


def picks_from_layer(layer: Any, which: str = "shown") -> Picks:
    """The picks of a napari Points layer.

    ``which``: ``"all"`` every point; ``"shown"`` the points above the score threshold and
    status filter; ``"not_rejected"`` shown and not rejected; ``"accepted"`` accepted or added.
    """
    features = normalise_features(layer.features, len(layer.data))
    status = features["status"].to_numpy()
    threshold = layer.metadata.get("score_threshold")
    above = shown_mask(features, threshold)
    masks = {
        "all": np.ones(len(features), dtype=bool),
        "shown": np.asarray(layer.shown, dtype=bool),
        "above_threshold": above,
        "not_rejected": above & (status != "rejected"),
        "accepted": np.isin(status, ["accepted", "added"]),
    }
    if which not in masks:
        raise ValueError(f"which must be one of {', '.join(masks)}, got {which!r}")
    return picks_from_points(layer.data, features, layer.scale, layer.metadata, masks[which])


def status_counts(features: pd.DataFrame) -> dict[str, int]:
    counts = (
        features["status"].astype(str).value_counts() if len(features) else pd.Series(dtype=int)
    )
    return {status: int(counts.get(status, 0)) for status in PICK_STATUSES}


# ---------------------------------------------------------------------------------------------
# Changing a picks layer


class PicksEvents:
    """``changed(layer)``: statuses, threshold or filter of a picks layer changed."""

    changed = Signal(object)


#: One :class:`PicksEvents` per layer, gone with the layer (so two viewers never cross-talk).
_EVENTS: "weakref.WeakKeyDictionary[Any, PicksEvents]" = weakref.WeakKeyDictionary()


def picks_events(layer: Any) -> PicksEvents:
    """The change events of one picks layer."""
    events = _EVENTS.get(layer)
    if events is None:
        events = _EVENTS[layer] = PicksEvents()
    return events


def is_points(layer: Any) -> bool:
    from napari.layers import Points

    return isinstance(layer, Points)


def is_picks_layer(layer: Any) -> bool:
    """A Points layer that is not ground truth."""
    return is_points(layer) and layer.metadata.get("role") != "truth"


def is_truth_layer(layer: Any) -> bool:
    return is_points(layer) and layer.metadata.get("role") == "truth"


def refresh(layer: Any, emit: bool = True) -> None:
    """Recolour (face by the layer's colour mode, border by status) and re-apply the filters."""
    features = normalise_features(layer.features, len(layer.data))
    if len(features):
        mode = layer.metadata.get("color_by", "score")
        if layer.metadata.get("role") != "truth":
            layer.face_color = face_colors(features, mode)
            layer.border_color = border_colors(features)
    layer.shown = shown_mask(
        features, layer.metadata.get("score_threshold"), layer.metadata.get("status_filter")
    )
    if emit:
        picks_events(layer).changed.emit(layer)


def set_features(
    layer: Any, indices: Iterable[int], values: dict[str, Any], emit: bool = True
) -> None:
    """Set feature columns of some points (a new table, so napari emits its features event)."""
    indices = np.fromiter((int(i) for i in indices), dtype=int)
    if indices.size == 0:
        return
    features = normalise_features(layer.features, len(layer.data))
    for column, value in values.items():
        if column not in features:
            features[column] = np.nan
        features.loc[indices, column] = value
    layer.features = features
    refresh(layer, emit=emit)


def set_status(layer: Any, indices: Iterable[int], status: str) -> None:
    if status not in PICK_STATUSES:
        raise ValueError(f"status must be one of {PICK_STATUSES}, got {status!r}")
    set_features(layer, indices, {"status": status})


def set_threshold(layer: Any, threshold: float | None) -> None:
    layer.metadata["score_threshold"] = None if threshold is None else float(threshold)
    refresh(layer)


def set_status_filter(layer: Any, statuses: Iterable[str] | None) -> None:
    layer.metadata["status_filter"] = None if statuses is None else list(statuses)
    refresh(layer)


def set_color_mode(layer: Any, mode: str) -> None:
    layer.metadata["color_by"] = mode
    refresh(layer, emit=False)


def mark_user_added(event: Any) -> None:
    """napari ``layer.events.data`` callback: points the user adds get ``status=added``.

    napari gives a new point the features of the selected point (its "current" values), so
    without this an added point would inherit e.g. ``accepted`` and a detection score.
    ``Points.add`` reports the new points with negative indices; replacing the whole data
    (non-negative indices) is not a user addition.
    """
    action = getattr(event, "action", None)
    if str(getattr(action, "value", action)) != "added":
        return
    indices = [
        i for i in getattr(event, "data_indices", ()) if isinstance(i, int | np.integer) and i < 0
    ]
    if not indices:
        return
    layer = event.source
    n = len(layer.data)
    set_features(layer, [n + i for i in indices], ADDED_FEATURES)


def watch_additions(layer: Any) -> None:
    """Connect :func:`mark_user_added` to a picks layer once."""
    if not layer.metadata.get("_watching_additions"):
        layer.events.data.connect(mark_user_added)
        layer.metadata["_watching_additions"] = True


#: How the Curate dock's Next / Previous walk the picks: the dock's text -> :func:`navigation_order`'s.
REVIEW_ORDERS = {"least certain first": "uncertain", "highest score first": "score"}


def navigation_order(layer: Any, order: str = "score") -> np.ndarray:
    """Indices of the shown points, added points last (in order). ``order`` ``"score"``: highest
    score first; ``"uncertain"``: score nearest the layer's score threshold (the detector's
    automatic threshold when the layer has none) first. Marks on those picks are the ones that
    change the picks and teach a refinement; the confident ones are nearly all particles."""
    from napari_cryoet_particles.detect.config import AUTO_THRESHOLD

    features = normalise_features(layer.features, len(layer.data))
    shown = np.flatnonzero(np.asarray(layer.shown, dtype=bool))
    scores = features["score"].to_numpy(dtype=float)[shown]
    if order == "uncertain":
        threshold = layer.metadata.get("score_threshold")
        centre = AUTO_THRESHOLD if threshold is None else float(threshold)
        key = np.nan_to_num(np.abs(scores - centre), nan=np.inf)
    else:
        key = -np.nan_to_num(scores, nan=-np.inf)
    return shown[np.lexsort((shown, key))]


def camera(viewer: Any) -> Any:
    """The viewer's camera (``viewer.scene.camera`` from napari 0.9 on, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def show_slab(viewer: Any, half_thickness: float) -> None:
    """Show points within ``half_thickness`` (world units, Å) of the slice on the axes that are
    not displayed: a particle is seen on every slice that cuts it (its marker shrinks with the
    distance, for points layers in ``rescale_spherical`` projection mode)."""
    dims = viewer.dims
    displayed = set(dims.displayed)
    margins = tuple(
        0.0 if axis in displayed else max(0.0, float(half_thickness)) for axis in range(dims.ndim)
    )
    dims.margin_left = margins
    dims.margin_right = margins


def centre_on(viewer: Any, layer: Any, index: int) -> None:
    """Move the view to a point: the slice through it and the camera centred on it."""
    world = np.asarray(layer.data_to_world(layer.data[index]), dtype=float)
    displayed = list(viewer.dims.displayed)
    for axis in range(viewer.dims.ndim):
        if axis not in displayed:
            viewer.dims.set_point(axis, world[axis])
    camera(viewer).center = tuple(world[displayed])
    layer.selected_data = {int(index)}


# ---------------------------------------------------------------------------------------------
# copick runs


def copick_run_layers(
    config: str | Path,
    run: str,
    tomo_type: str | None = None,
    voxel_size: float | None = None,
    picks_role: str = "truth",
) -> list[tuple[Any, dict[str, Any], str]]:
    """A copick run as layers: its tomogram (lazy OME-Zarr) and one Points layer per picks set
    (``picks_role`` ``truth`` for Metrics, or ``picks`` to curate). The layers' metadata name the
    project and run, so picks can be written back into it."""
    from napari_cryoet_particles.io.copick_project import (
        open_project,
        picks_sets,
        read_run_picks,
        read_run_tomogram,
    )

    root = open_project(config)
    volume = read_run_tomogram(root, run, tomo_type, voxel_size, config)
    copick = {"copick_config": str(config), "copick_run": run}
    image = tomogram_layer_data(volume.data, volume.voxel_size, run, volume.path)
    image[1]["metadata"].update(copick)
    layers: list[tuple[Any, dict[str, Any], str]] = [image]
    for found in picks_sets(root, run):
        picks = read_run_picks(
            root,
            run,
            display_voxel_size(volume.voxel_size),
            found.object_name,
            found.user_id,
            found.session_id,
        )
        name = f"{run} {found.object_name} ({found.user_id}/{found.session_id})"
        target = root.get_object(found.object_name)
        radius = getattr(target, "radius", None)
        make = truth_layer_data if picks_role == "truth" else picks_layer_data
        data, kwargs, kind = make(
            picks,
            name,
            diameter_angstrom=2 * radius if radius else None,
            tomogram_shape=volume.shape,
        )
        kwargs["metadata"].update(copick)
        layers.append((data, kwargs, kind))
    return layers

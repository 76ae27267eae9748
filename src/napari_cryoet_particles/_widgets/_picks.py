"""Operations on a picks Points layer shared by the dock widgets (no Qt here).

Every change of statuses, threshold or status filter goes through these functions, which
recolour the layer, update what it shows and emit :data:`EVENTS.changed` so the Curate, Metrics
and Export docks refresh.
"""

from collections.abc import Iterable
from typing import Any

import numpy as np
from psygnal import Signal

from napari_cryoet_particles._widgets._layers import (
    border_colors,
    face_colors,
    normalise_features,
    shown_mask,
)
from napari_cryoet_particles.io.picks import PICK_STATUSES


class _PicksEvents:
    """``changed(layer)``: statuses, threshold or filter of a picks layer changed."""

    changed = Signal(object)


EVENTS = _PicksEvents()
ADDED_FEATURES = {"status": "added", "score": np.nan, "cluster": -1, "class": ""}


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
        EVENTS.changed.emit(layer)


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


def navigation_order(layer: Any) -> np.ndarray:
    """Indices of the shown points, highest score first (added points last, in order)."""
    features = normalise_features(layer.features, len(layer.data))
    shown = np.flatnonzero(np.asarray(layer.shown, dtype=bool))
    scores = features["score"].to_numpy(dtype=float)[shown]
    order = np.lexsort((shown, -np.nan_to_num(scores, nan=-np.inf)))
    return shown[order]


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

"""State that the docks of one napari viewer share: the model the Train dock holds, and the
detection run behind each picks layer.

Each viewer has its own :class:`ViewerState` (:func:`viewer_state`), so two viewers in one
Python session never see each other's model; it goes away with the viewer.
"""

import weakref
from typing import Any

from psygnal import Signal


class ModelState:
    """The model trained or loaded in the Train dock, offered to the Detect dock.

    ``changed(label)`` is emitted when it changes; ``model`` is a ``LoadedModel`` (or ``None``).
    """

    changed = Signal(str)

    def __init__(self) -> None:
        self.model: Any = None
        self.label = ""

    def set(self, model: Any, label: str) -> None:
        self.model = model
        self.label = label
        self.changed.emit(label)


class DetectionResults:
    """The ``DetectionResult`` behind each picks layer the Detect dock (or a refinement) made.

    The Curate dock refines from its candidates, embeddings and profiles in well under a second
    instead of detecting again. Held per layer and dropped with it.
    """

    def __init__(self) -> None:
        self._by_layer: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def set(self, layer: Any, result: Any) -> None:
        self._by_layer[layer] = result

    def get(self, layer: Any) -> Any:
        """The layer's detection result, or ``None``."""
        return self._by_layer.get(layer)


class ViewerState:
    """Everything the docks of one viewer share."""

    def __init__(self) -> None:
        self.models = ModelState()
        self.detections = DetectionResults()


_STATES: dict[int, ViewerState] = {}


def viewer_state(viewer: Any) -> ViewerState:
    """The shared state of ``viewer``'s docks (made on first use, dropped with the viewer).

    Pass the real viewer (:func:`~._common.real_viewer`), not napari's proxy of it.
    """
    key = id(viewer)
    state = _STATES.get(key)
    if state is None:
        state = _STATES[key] = ViewerState()
        weakref.finalize(viewer, _STATES.pop, key, None)
    return state

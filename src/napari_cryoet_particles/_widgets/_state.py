"""State that the docks of one napari viewer share: the model the Train dock holds.

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


class ViewerState:
    """Everything the docks of one viewer share."""

    def __init__(self) -> None:
        self.models = ModelState()


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

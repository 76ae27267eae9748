"""State shared between docks of one napari session: the model the Train dock holds."""

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


MODELS = ModelState()

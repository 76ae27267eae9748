"""Curate dock: accept / reject / add / delete picks with keyboard shortcuts bound on the layer."""

from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from napari_cryoet_particles._widgets._common import (
    LayerSelector,
    button,
    heading,
    persist,
    real_viewer,
    show_info,
)
from napari_cryoet_particles._widgets._layers import (
    centre_on,
    is_picks_layer,
    navigation_order,
    normalise_features,
    picks_events,
    set_status,
    set_status_filter,
    show_slab,
    status_counts,
    watch_additions,
)
from napari_cryoet_particles.io.picks import PICK_STATUSES
from napari_cryoet_particles.io.units import nm_to_angstrom

#: Action -> (key bound on the picks layer, button text, tooltip).
SHORTCUTS: dict[str, tuple[str, str, str]] = {
    "accept": ("y", "Accept", "Mark the selected pick(s) accepted"),
    "reject": ("x", "Reject", "Mark the selected pick(s) rejected"),
    "reset": ("u", "Reset", "Set the selected pick(s) back to auto"),
    "previous": ("b", "◀ Previous", "Go to the previous pick (higher score)"),
    "next": ("n", "Next ▶", "Go to the next pick (lower score)"),
    "add": ("i", "Add at cursor", "Add a pick where the mouse cursor is"),
    "delete": ("d", "Delete", "Delete the selected pick(s)"),
}
#: Extra width (px) beyond a key button's text, so no style squeezes the text to its border.
BUTTON_MARGIN = 12


class CurateWidget(QWidget):
    """Review picks one by one; every change updates counts, colours, metrics and export."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = real_viewer(napari_viewer)
        self.current: int | None = None
        self._bound_layer: Any = None
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Curate picks"))
        self.selector = LayerSelector(self.viewer, is_picks_layer)
        layout.addWidget(self.selector)
        self.counts = QLabel("")
        self.counts.setWordWrap(True)
        layout.addWidget(self.counts)

        # Two columns and the spin box on its own line: the dock stays narrow without the
        # buttons' texts being squeezed.
        grid = QGridLayout()
        self.buttons = {}
        positions = {
            "accept": (0, 0),
            "reject": (0, 1),
            "reset": (1, 0),
            "delete": (1, 1),
            "previous": (2, 0),
            "next": (2, 1),
            "add": (3, 0),
        }
        for action, (key, text, tip) in SHORTCUTS.items():
            widget = button(f"{text} [{key.upper()}]", getattr(self, action), tip)
            widget.setMinimumWidth(widget.sizeHint().width() + BUTTON_MARGIN)
            self.buttons[action] = widget
            grid.addWidget(widget, *positions[action])
        layout.addLayout(grid)

        layout.addWidget(QLabel("Show picks with status:"))
        filters = QGridLayout()
        self.filters = {}
        for index, status in enumerate(PICK_STATUSES):
            box = QCheckBox(status)
            box.setChecked(True)
            box.toggled.connect(self.apply_filter)
            self.filters[status] = box
            filters.addWidget(box, index // 2, index % 2)
        layout.addLayout(filters)
        slab_label = QLabel("Show picks within ± this distance of the slice:")
        slab_label.setWordWrap(True)
        layout.addWidget(slab_label)
        slab_row = QHBoxLayout()
        self.slab = QDoubleSpinBox()
        self.slab.setRange(0.0, 100.0)
        self.slab.setDecimals(1)
        self.slab.setValue(5.0)
        self.slab.setSuffix(" nm")
        self.slab.setMinimumWidth(self.slab.sizeHint().width())
        self.slab.setToolTip("Picks this close to the slice are drawn, shrinking with the distance")
        self.slab.valueChanged.connect(self.apply_slab)
        slab_row.addWidget(self.slab)
        slab_row.addStretch(1)
        layout.addLayout(slab_row)
        self.current_label = QLabel("")
        self.current_label.setWordWrap(True)
        layout.addWidget(self.current_label)
        help_text = ", ".join(
            f"{key.upper()} {text.strip('◀▶ ').lower()}" for key, text, _ in SHORTCUTS.values()
        )
        hint = QLabel(
            f"Keys on the picks layer: {help_text}. napari's own: Delete removes, P adds by click."
        )
        hint.setWordWrap(True)
        layout.addWidget(hint)
        layout.addStretch(1)

        persist("curate", {"slab": self.slab})
        self.selector.layerChanged.connect(self.set_layer)
        self.selector.picksChanged.connect(self._on_picks_changed)
        self.set_layer(self.selector.layer())

    # -- layer binding --------------------------------------------------------------------------

    @property
    def layer(self) -> Any:
        return self._bound_layer

    def set_layer(self, layer: Any) -> None:
        """Bind the curation keys on ``layer`` (and unbind them from the previous one)."""
        previous = self._bound_layer
        if previous is layer:
            self.update_counts()
            return
        if previous is not None:
            for key, _, _ in SHORTCUTS.values():
                previous.bind_key(key, None, overwrite=True)
            previous.events.data.disconnect(self._on_data)
        self._bound_layer = layer
        self.current = None
        if layer is not None:
            for action, (key, _, _) in SHORTCUTS.items():
                layer.bind_key(key, self._key_handler(action), overwrite=True)
            watch_additions(layer)
            layer.events.data.connect(self._on_data)
            statuses = layer.metadata.get("status_filter")
            for status, box in self.filters.items():
                box.blockSignals(True)
                box.setChecked(statuses is None or status in statuses)
                box.blockSignals(False)
            self.viewer.layers.selection.active = layer
        self.update_counts()

    def _key_handler(self, action: str) -> Callable[[Any], None]:
        def handler(layer: Any) -> None:
            getattr(self, action)()

        handler.__name__ = f"cryoet_{action}"
        handler.__doc__ = SHORTCUTS[action][2]
        return handler

    def _on_data(self, event: Any = None) -> None:
        try:
            self.update_counts()
        except RuntimeError:
            return

    def _on_picks_changed(self, layer: Any) -> None:
        if layer is self._bound_layer:
            self.update_counts()

    # -- actions --------------------------------------------------------------------------------

    def targets(self) -> list[int]:
        """The selected points, else the current pick."""
        layer = self._bound_layer
        if layer is None:
            return []
        selected = sorted(int(i) for i in layer.selected_data)
        if selected:
            return selected
        if self.current is not None and self.current < len(layer.data):
            return [self.current]
        return []

    def _set(self, status: str) -> None:
        indices = self.targets()
        if not indices:
            show_info("Select a pick first (click it, or N for the next one)")
            return
        set_status(self._bound_layer, indices, status)

    def accept(self) -> None:
        self._set("accepted")

    def reject(self) -> None:
        self._set("rejected")

    def reset(self) -> None:
        self._set("auto")

    def _step(self, direction: int) -> None:
        layer = self._bound_layer
        if layer is None or len(layer.data) == 0:
            return
        order = navigation_order(layer)
        if order.size == 0:
            show_info("No picks shown (check the threshold and status filter)")
            return
        if self.current is None or self.current not in order:
            position = 0 if direction > 0 else len(order) - 1
        else:
            position = (int(np.flatnonzero(order == self.current)[0]) + direction) % len(order)
        self.go_to(int(order[position]))

    def next(self) -> None:
        self._step(+1)

    def previous(self) -> None:
        self._step(-1)

    def go_to(self, index: int) -> None:
        """Make ``index`` the current pick: select it, move to its slice, centre the view."""
        self.current = index
        centre_on(self.viewer, self._bound_layer, index)
        self.update_counts()

    def add(self) -> None:
        """Add a pick at the mouse cursor (in the picks layer's voxels)."""
        layer = self._bound_layer
        if layer is None:
            return
        position = np.asarray(self.viewer.cursor.position, dtype=float)
        if position.size != layer.ndim:
            position = np.asarray(self.viewer.dims.point, dtype=float)
        layer.add(np.asarray(layer.world_to_data(position), dtype=float))
        self.current = len(layer.data) - 1

    def delete(self) -> None:
        layer = self._bound_layer
        indices = self.targets()
        if layer is None or not indices:
            return
        layer.selected_data = set(indices)
        layer.remove_selected()
        self.current = None
        picks_events(layer).changed.emit(layer)

    def apply_slab(self, *_: Any) -> None:
        show_slab(self.viewer, nm_to_angstrom(float(self.slab.value())))

    def apply_filter(self, *_: Any) -> None:
        layer = self._bound_layer
        if layer is None:
            return
        chosen = [status for status, box in self.filters.items() if box.isChecked()]
        set_status_filter(layer, None if len(chosen) == len(PICK_STATUSES) else chosen)

    # -- display --------------------------------------------------------------------------------

    def update_counts(self) -> None:
        layer = self._bound_layer
        if layer is None:
            self.counts.setText("No picks layer: run Detect or open picks.")
            self.current_label.setText("")
            return
        features = normalise_features(layer.features, len(layer.data))
        counts = status_counts(features)
        shown = int(np.count_nonzero(layer.shown)) if len(layer.data) else 0
        parts = " · ".join(f"{status} {count}" for status, count in counts.items())
        self.counts.setText(f"{parts} — {len(features)} picks, {shown} shown")
        if self.current is not None and self.current < len(features):
            row = features.iloc[self.current]
            score = "—" if not np.isfinite(row["score"]) else f"{row['score']:.3f}"
            self.current_label.setText(
                f"Current pick #{self.current}: score {score}, group {row['cluster']}, status {row['status']}"
            )
        else:
            self.current_label.setText("")

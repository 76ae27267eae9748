"""Curate dock: accept / reject / add / delete picks with keyboard shortcuts bound on the layer;
then teach the detector from those marks ("Refine from my marks") or from a few selected picks
("Find more like the selected picks"): the new picks arrive as a new layer to curate again."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from napari_cryoet_particles._layers import (
    REVIEW_ORDERS,
    centre_on,
    is_image,
    is_picks_layer,
    navigation_order,
    normalise_features,
    picks_events,
    picks_from_layer,
    picks_layer_data,
    set_status,
    set_status_filter,
    show_slab,
    status_counts,
    volume_of,
    watch_additions,
)
from napari_cryoet_particles._widgets._common import (
    JobOutcome,
    JobRow,
    LayerSelector,
    SizeRange,
    ask_checkpoint_path,
    ask_to_replace,
    button,
    checkpoint_destination,
    heading,
    persist,
    real_viewer,
    remember,
    report_error,
    set_enabled,
    show_info,
)
from napari_cryoet_particles._widgets._state import viewer_state
from napari_cryoet_particles.detect.config import DEFAULT_MAX_DIAMETER_NM, DEFAULT_MIN_DIAMETER_NM
from napari_cryoet_particles.io import CryoetInputError, Picks
from napari_cryoet_particles.io.picks import PICK_STATUSES
from napari_cryoet_particles.io.units import angstrom_to_nm, nm_to_angstrom

#: Action -> (key bound on the picks layer, button text, tooltip).
SHORTCUTS: dict[str, tuple[str, str, str]] = {
    "accept": ("y", "Accept", "Mark the selected pick(s) accepted"),
    "reject": ("x", "Reject", "Mark the selected pick(s) rejected"),
    "reset": ("u", "Reset", "Set the selected pick(s) back to auto"),
    "previous": ("b", "◀ Previous", "Go to the previous pick (in the order chosen below)"),
    "next": ("n", "Next ▶", "Go to the next pick (in the order chosen below)"),
    "add": ("i", "Add at cursor", "Add a pick where the mouse cursor is"),
    "select_group": (
        "g",
        "Select group",
        "Select every shown pick in the current pick's group: examples for "
        "'Find more like the selected picks'",
    ),
    "delete": ("d", "Delete", "Delete the selected pick(s)"),
}
#: Extra width (px) beyond a key button's text, so no style squeezes the text to its border.
BUTTON_MARGIN = 12
#: Suffix of the layer a refinement makes, by kind (refine from the marks / more like these).
NEW_LAYER_SUFFIX = {False: "refined", True: "like"}
NO_EXAMPLES = (
    "Select a few picks of the kind you want first (click, Shift+click), or accept some: "
    "they are the examples"
)


def like_query(picks: Picks, selected: list[int]) -> Picks:
    """The picks as "more like these" sees them: the ``selected`` ones are the examples (accepted;
    points the user added stay added, which makes the search a reference search over the whole
    tomogram) and other accepted or added picks go back to auto (they may be of another kind);
    rejected picks stay rejected. Without a selection the accepted and added picks are the
    examples."""
    if not selected:
        return picks
    status = picks.features["status"].astype(str).to_numpy().copy()
    chosen = np.where(status[selected] == "added", "added", "accepted")
    status[np.isin(status, ("accepted", "added"))] = "auto"
    status[selected] = chosen
    query = picks.subset(np.arange(len(picks)))
    query.features["status"] = status
    return query


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
            "select_group": (4, 0),
        }
        for action, (key, text, tip) in SHORTCUTS.items():
            widget = button(f"{text} [{key.upper()}]", getattr(self, action), tip)
            widget.setMinimumWidth(widget.sizeHint().width() + BUTTON_MARGIN)
            self.buttons[action] = widget
            grid.addWidget(widget, *positions[action])
        layout.addLayout(grid)
        order_row = QHBoxLayout()
        order_row.addWidget(QLabel("Next / previous:"))
        self.review_order = QComboBox()
        self.review_order.addItems(list(REVIEW_ORDERS))
        self.review_order.setToolTip(
            "Least certain first: the picks scored nearest the threshold, where your marks change "
            "the picks and teach a refinement; highest score first: the most confident picks"
        )
        order_row.addWidget(self.review_order)
        order_row.addStretch(1)
        layout.addLayout(order_row)

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

        self._add_teach_rows(layout)
        layout.addStretch(1)

        persist(
            "curate",
            {
                "slab": self.slab,
                "review_order": self.review_order,
                **self.size_range.persisted("diameters"),
            },
        )
        self.selector.layerChanged.connect(self.set_layer)
        self.selector.picksChanged.connect(self._on_picks_changed)
        self.set_layer(self.selector.layer())

    def _add_teach_rows(self, layout: QVBoxLayout) -> None:
        layout.addWidget(heading("Teach the detector"))
        self.refine_button = button(
            "Refine from my marks",
            self.refine,
            "Learn from the accepted, added (particles) and rejected (not) picks and pick again: "
            "the new picks arrive as a new layer, your marks kept",
        )
        self.like_button = button(
            "Find more like the selected picks",
            self.find_like,
            "The selected picks (else the accepted and added ones) are examples of one kind: a "
            "new layer holds every pick like them. Points you added (I) where nothing was picked "
            "are searched for over the whole tomogram, at their own size",
        )
        self.save_model_button = button(
            "Save refined model…",
            self._browse_save_model,
            "Save the model with what the last refinement learned: `cryoet-particles detect "
            "--model FILE` (or the Detect dock) then scores picks with it",
        )
        self.save_model_button.setEnabled(False)
        self.last_head: Any = None
        self._add_size_row(layout)
        layout.addWidget(self.refine_button)
        layout.addWidget(self.like_button)
        layout.addWidget(self.save_model_button)
        self.job = JobRow()
        layout.addWidget(self.job)

    def _add_size_row(self, layout: QVBoxLayout) -> None:
        """The sizes searched when refining must detect again, and by the search for added points
        (``refine --diameters``)."""
        label = QLabel("Particle size, when refining detects again or searches for added points:")
        label.setWordWrap(True)
        layout.addWidget(label)
        self.size_range = SizeRange(DEFAULT_MIN_DIAMETER_NM, DEFAULT_MAX_DIAMETER_NM)
        self.size_range.setToolTip(
            "Picks opened from a file are refined by detecting again in their tomogram, searching "
            "this range; picks of a Detect run are refined from its candidates (its range). "
            "Added points that lie on no candidate are searched for up to this range's largest size"
        )
        layout.addWidget(self.size_range)

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

    def select_group(self) -> list[int]:
        """Select the shown picks of the current (or first selected) pick's group; their indices."""
        layer = self._bound_layer
        targets = self.targets()
        if layer is None or not targets:
            show_info("Go to a pick first (N / B, or click one)")
            return []
        features = normalise_features(layer.features, len(layer.data))
        if "group" not in features:
            show_info("These picks have no groups (detect them again to group them by shape)")
            return []
        groups = features["group"].to_numpy()
        group = groups[targets[0]]
        if not np.isfinite(group) or group < 0:
            show_info(
                "This pick has no group: only picks at or above the automatic threshold are "
                "grouped by shape"
            )
            return []
        members = np.flatnonzero((groups == group) & np.asarray(layer.shown, dtype=bool))
        layer.selected_data = {int(i) for i in members}
        show_info(
            f"{len(members)} picks of group {int(group)} selected: 'Find more like the selected "
            "picks' takes them as examples"
        )
        return [int(i) for i in members]

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
        order = navigation_order(layer, REVIEW_ORDERS[self.review_order.currentText()])
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

    # -- teaching the detector ------------------------------------------------------------------

    def refine(self) -> bool:
        """Refine from the layer's marks; returns whether a job started."""
        return self._start_refine(like=False)

    def find_like(self) -> bool:
        """Find more picks like the selected ones (else the accepted ones)."""
        return self._start_refine(like=True)

    def _start_refine(self, like: bool) -> bool:
        layer = self._bound_layer
        if layer is None:
            show_info("No picks layer: run Detect or open picks first")
            return False
        curated = picks_from_layer(layer, "all")
        if like:
            curated = like_query(curated, sorted(int(i) for i in layer.selected_data))
            if not curated.features["status"].isin(("accepted", "added")).any():
                show_info(NO_EXAMPLES)
                return False
        what = "Find more like these" if like else "Refine"

        def make_job(cancel):
            from napari_cryoet_particles.detect.refine import (
                RefineConfig,
                check_curated,
                refine_job,
                uses_examples,
            )

            result, volume = self._candidates(layer)
            shape = result.input_shape if result is not None else volume.shape
            check_curated(curated, shape, need_positive=like)
            detection = self._detection_config(
                layer, sized=result is None or uses_examples(curated, like)
            )
            config = RefineConfig(detection=detection, like_accepted=like)
            model = viewer_state(self.viewer).models.model
            return refine_job(volume, curated, model, config, cancel=cancel, result=result)

        set_enabled([self.refine_button, self.like_button], False)
        started = self.job.start(
            make_job, lambda outcome: self._refined(outcome, layer, like), what=what
        )
        set_enabled([self.refine_button, self.like_button], not started)
        return started

    def _candidates(self, layer: Any) -> tuple[Any, Any]:
        """(the Detect dock's result for ``layer``, the tomogram's volume when open: for a
        rejected structure to drop its picks, and for more like added points to search the
        tomogram itself) when there is a result, else (None, the volume of the tomogram the picks
        are on) to detect in again."""
        result = viewer_state(self.viewer).detections.get(layer)
        image = self._tomogram_of(layer)
        if result is not None and result.embeddings is not None and result.profiles is not None:
            return result, None if image is None else volume_of(image)
        if image is None:
            raise CryoetInputError(
                None,
                f"open the tomogram {layer.name} is on (or run Detect): refining detects in it",
            )
        return None, volume_of(image)

    def _tomogram_of(self, layer: Any) -> Any:
        """The image layer the picks belong to: by name, else by shape, else the only one."""
        images = [other for other in self.viewer.layers if is_image(other)]
        name = layer.metadata.get("tomogram")
        shape = layer.metadata.get("tomogram_shape")
        for match in (
            lambda image: bool(name) and image.name == name,
            lambda image: shape is not None and tuple(image.data.shape) == tuple(shape),
        ):
            found = [image for image in images if match(image)]
            if found:
                return found[0]
        return images[0] if len(images) == 1 else None

    def _detection_config(self, layer: Any, sized: bool) -> Any:
        """The detection settings of a refinement: the ``default`` preset, the marker size as the
        typical diameter and, when ``sized`` (it detects again, or more like added points may search
        the tomogram by reference), the dock's size range (``refine --diameter --diameters``)."""
        from napari_cryoet_particles.detect import DetectionConfig
        from napari_cryoet_particles.detect.params import DEFAULT_PRESET

        config = DetectionConfig(params=DEFAULT_PRESET)
        diameter = layer.metadata.get("diameter_angstrom")
        if diameter:
            config.diameter_nm = angstrom_to_nm(float(diameter))
        if sized:
            config.min_diameter_nm, config.max_diameter_nm = self.size_range.diameters()
        return config

    def _refined(self, outcome: JobOutcome, source: Any, like: bool) -> None:
        from napari_cryoet_particles.detect.refine import unlike_examples_warning

        set_enabled([self.refine_button, self.like_button], True)
        if outcome.result is None:
            return
        layer = self.add_refined_layer(outcome.result, source, like)
        self.last_head = outcome.result.head
        self.save_model_button.setEnabled(self.last_head is not None)
        counts = status_counts(normalise_features(layer.features, len(layer.data)))
        kept = ", ".join(f"{n} {status}" for status, n in counts.items() if n and status != "auto")
        message = f"{len(layer.data)} picks in {layer.name!r} ({kept} kept): curate them again"
        warning = unlike_examples_warning(outcome.result.info)
        show_info(f"{message}. Note: {warning}" if warning else message)

    def _browse_save_model(self) -> None:
        path = ask_checkpoint_path(self, "Save refined model", "curate/last_folder", "refined.pt")
        if path:
            self.save_refined_model(path)

    def save_refined_model(self, path: str | Path) -> Path | None:
        """Write the model (the Train dock's, else the shipped one) with the last refinement's
        head to ``path`` (asks before replacing a file)."""
        from napari_cryoet_particles.detect.refine import save_refined_model

        if self.last_head is None:
            show_info("Refine first: there is nothing learned to save yet")
            return None
        destination = checkpoint_destination(path, lambda target: ask_to_replace(self, target))
        if destination is None:
            return None
        path, overwrite = destination
        model = viewer_state(self.viewer).models.model
        try:
            saved = save_refined_model(path, self.last_head, model, overwrite=overwrite)
        except (CryoetInputError, OSError) as error:
            report_error(error, "Saving the refined model")
            return None
        remember("curate/last_folder", str(path.parent))
        show_info(f"Saved the refined model to {saved}")
        return saved

    def add_refined_layer(self, outcome: Any, source: Any, like: bool) -> Any:
        """A new picks layer from a refinement, on the same grid as ``source``."""
        metadata = source.metadata
        picks = outcome.picks.in_voxels_of(picks_from_layer(source, "all").voxel_size)
        picks.tomogram = str(metadata.get("tomogram") or picks.tomogram)
        kind = NEW_LAYER_SUFFIX[like]
        data, kwargs, _ = picks_layer_data(
            picks,
            f"{source.name} {kind}",
            diameter_angstrom=metadata.get("diameter_angstrom"),
            color_by=metadata.get("color_by", "score"),
            tomogram_shape=metadata.get("tomogram_shape")
            or (outcome.detection.input_shape if outcome.detection is not None else None),
            extra_metadata={"source": kind, "refine": dict(outcome.info)},
        )
        kwargs["scale"] = tuple(source.scale)
        kwargs["translate"] = tuple(source.translate)
        for key in ("copick_config", "copick_run"):
            if key in metadata:
                kwargs["metadata"][key] = metadata[key]
        layer = self.viewer.add_points(data, **kwargs)
        if outcome.detection is not None:
            viewer_state(self.viewer).detections.set(layer, outcome.detection)
        watch_additions(layer)
        return layer

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
            group = row["group"] if "group" in features else row.get("cluster", "—")
            self.current_label.setText(
                f"Current pick #{self.current}: score {score}, group {group}, status {row['status']}"
            )
        else:
            self.current_label.setText("")

"""Export dock: picks to any format of the registry (CSV, RELION 4 / 5 STAR, copick JSON, SHREC
txt; atomic writes), or into the copick run the tomogram came from."""

from pathlib import Path
from typing import Any

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from napari_cryoet_particles._layers import is_points, picks_from_layer
from napari_cryoet_particles._widgets._common import (
    LayerSelector,
    ask_to_replace,
    button,
    heading,
    persist,
    real_viewer,
    remember,
    report_error,
    show_info,
)
from napari_cryoet_particles.io import CryoetInputError
from napari_cryoet_particles.io.picks import PICKS_FORMATS, PicksFormat, write_picks
from napari_cryoet_particles.io.units import voxel_size_text

#: Display name -> picks format (the registry's, in its order).
FORMATS: dict[str, PicksFormat] = {fmt.label: fmt for fmt in PICKS_FORMATS}
#: Display name -> ``which`` argument of :func:`picks_from_layer`.
SELECTIONS: dict[str, str] = {
    "All picks above the threshold": "above_threshold",
    "All but rejected": "not_rejected",
    "Accepted and added only": "accepted",
    "Every point (ignore threshold)": "all",
}


def tomogram_layer_for(viewer: Any, layer: Any) -> Any:
    """The image layer a picks layer belongs to (the one named in its metadata), if open."""
    name = layer.metadata.get("tomogram") or ""
    for candidate in viewer.layers:
        if (
            candidate.name == name
            and getattr(candidate, "data", None) is not None
            and candidate.ndim == 3
            and candidate is not layer
        ):
            return candidate
    return None


def tomogram_shape_for(viewer: Any, layer: Any) -> tuple[int, int, int] | None:
    """The shape of the tomogram a picks layer belongs to (its metadata, else the image layer of
    the same name)."""
    shape = layer.metadata.get("tomogram_shape")
    if shape:
        return tuple(int(s) for s in shape)  # type: ignore[return-value]
    image = tomogram_layer_for(viewer, layer)
    return None if image is None else tuple(int(s) for s in image.data.shape)  # type: ignore[return-value]


def copick_target_for(viewer: Any, layer: Any) -> tuple[str, str] | None:
    """(copick config, run) the picks layer's tomogram came from, if it came from one."""
    for source in (layer, tomogram_layer_for(viewer, layer)):
        if source is not None and source.metadata.get("copick_config"):
            return source.metadata["copick_config"], source.metadata["copick_run"]
    return None


class ExportWidget(QWidget):
    """Write the picks of a Points layer to a file, asking before replacing an existing one."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = real_viewer(napari_viewer)
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Export picks"))
        form = QFormLayout()
        self.selector = LayerSelector(self.viewer, is_points)
        form.addRow("Picks layer", self.selector)
        self.format = QComboBox()
        self.format.addItems(list(FORMATS))
        form.addRow("Format", self.format)
        self.which = QComboBox()
        self.which.addItems(list(SELECTIONS))
        form.addRow("Which picks", self.which)
        layout.addLayout(form)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        layout.addWidget(button("Export…", self._browse, "Choose a file and write the picks"))
        layout.addWidget(heading("Into the copick run"))
        copick_form = QFormLayout()
        self.copick_run = QLabel("")
        self.copick_run.setWordWrap(True)
        copick_form.addRow("Run", self.copick_run)
        self.copick_object = QComboBox()
        copick_form.addRow("Object", self.copick_object)
        self.copick_session = QLineEdit("1")
        self.copick_session.setToolTip(
            "copick session id (0 means picks made by a tool; a person's curation is another)"
        )
        copick_form.addRow("Session", self.copick_session)
        layout.addLayout(copick_form)
        self.copick_button = button(
            "Write to copick", self.export_to_copick, "Store the picks as a copick picks set"
        )
        layout.addWidget(self.copick_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)

        persist(
            "export",
            {"format": self.format, "which": self.which, "copick_session": self.copick_session},
        )
        self.selector.layerChanged.connect(self.update_summary)
        self.which.currentTextChanged.connect(self.update_summary)
        self.selector.picksChanged.connect(self.update_summary)
        self.update_summary()

    def selected_picks(self):
        layer = self.selector.layer()
        if layer is None:
            return None
        return picks_from_layer(layer, SELECTIONS[self.which.currentText()])

    def update_summary(self, *_: Any) -> None:
        picks = self.selected_picks()
        self._update_copick()
        if picks is None:
            self.summary.setText("No points layer to export.")
            return
        self.summary.setText(
            f"{len(picks)} picks will be written ({voxel_size_text(picks.voxel_size)})."
        )

    def _update_copick(self) -> None:
        """Offer the copick run of the selected layer's tomogram, with the project's objects."""
        from napari_cryoet_particles.io.copick_project import open_project

        layer = self.selector.layer()
        target = None if layer is None else copick_target_for(self.viewer, layer)
        self.copick_button.setEnabled(target is not None)
        self.copick_object.setEnabled(target is not None)
        if target is None:
            self.copick_run.setText("— (the tomogram is not from a copick project)")
            return
        config, run = target
        self.copick_run.setText(f"{run} of {Path(config).name}")
        current = self.copick_object.currentText()
        try:
            objects = [o.name for o in open_project(config).pickable_objects]
        except CryoetInputError as error:
            self.copick_run.setText(str(error))
            return
        self.copick_object.clear()
        self.copick_object.addItems(objects)
        if current in objects:
            self.copick_object.setCurrentText(current)

    def export_to_copick(self, overwrite: bool | None = None) -> str | None:
        """Store the selected picks in the layer's copick run (user cryoet-particles); asks
        before replacing an existing set. Returns where, or ``None`` if not written."""
        from napari_cryoet_particles.io.copick_project import (
            check_can_write_run_picks,
            open_project,
            write_run_picks,
        )

        layer = self.selector.layer()
        target = None if layer is None else copick_target_for(self.viewer, layer)
        if target is None:
            show_info("The picks' tomogram is not from a copick project")
            return None
        config, run = target
        name, session = self.copick_object.currentText(), self.copick_session.text().strip()
        try:
            root = open_project(config)
            try:
                check_can_write_run_picks(root, run, name, session, overwrite=bool(overwrite))
            except CryoetInputError:
                if overwrite is not None or not self.confirm_overwrite(
                    Path(f"{run}/{name} session {session}")
                ):
                    self.status.setText(f"Not written: {name} picks of session {session} exist.")
                    return None
            picks = self.selected_picks()
            picks.tomogram = run
            where = write_run_picks(root, run, picks, name, session, overwrite=True)
        except (CryoetInputError, OSError, ValueError) as error:
            self.status.setText(report_error(error, "Export to copick"))
            return None
        self.status.setText(f"Wrote {len(picks)} picks to {where}")
        show_info(f"Wrote {len(picks)} picks to {where}")
        return where

    def _browse(self) -> None:
        layer = self.selector.layer()
        if layer is None:
            show_info("No points layer to export")
            return
        fmt = FORMATS[self.format.currentText()]
        suffix, file_filter = fmt.suffix, fmt.file_filter
        folder = Path(remember("export/last_folder") or Path.home())
        stem = layer.name.replace(" ", "_")
        suggestion = folder / ("particle_locations.txt" if suffix == ".txt" else f"{stem}{suffix}")
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export picks",
            str(suggestion),
            file_filter,
            options=QFileDialog.DontConfirmOverwrite,
        )
        if path:
            self.export_to(path)

    def confirm_overwrite(self, path: Path) -> bool:
        return ask_to_replace(self, path)

    def export_to(self, path: str | Path) -> Path | None:
        """Write the selected picks to ``path`` in the chosen format; ``None`` if not written."""
        path = Path(path)
        layer = self.selector.layer()
        if layer is None:
            show_info("No points layer to export")
            return None
        fmt = FORMATS[self.format.currentText()]
        if path.suffix.lower() != fmt.suffix:
            path = path.with_name(path.name + fmt.suffix)
        overwrite = False
        if path.exists():
            if not self.confirm_overwrite(path):
                self.status.setText(f"Not written: {path.name} exists.")
                return None
            overwrite = True
        picks = self.selected_picks()
        try:
            written = write_picks(
                path,
                picks,
                fmt.name,
                overwrite=overwrite,
                shape_zyx=tomogram_shape_for(self.viewer, layer),
            )
        except (CryoetInputError, OSError, ValueError) as error:
            self.status.setText(report_error(error, "Export"))
            return None
        remember("export/last_folder", str(path.parent))
        self.status.setText(f"Wrote {len(picks)} picks to {written}")
        show_info(f"Wrote {len(picks)} picks to {written.name}")
        return written

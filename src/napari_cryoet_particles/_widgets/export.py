"""Export dock: picks to CSV, RELION 4 / 5 STAR, copick JSON or SHREC txt (atomic writes)."""

from pathlib import Path
from typing import Any

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

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
from napari_cryoet_particles._widgets._layers import is_points, picks_from_layer
from napari_cryoet_particles.io import (
    CryoetInputError,
    write_copick_json,
    write_csv,
    write_shrec_locations,
    write_star,
)

#: Display name -> (file suffix, file dialog filter).
FORMATS: dict[str, tuple[str, str]] = {
    "CSV (voxels + Å)": (".csv", "CSV (*.csv)"),
    "RELION 4 STAR (voxels)": (".star", "STAR (*.star)"),
    "RELION 5 STAR (centred Å)": (".star", "STAR (*.star)"),
    "copick JSON (Å)": (".json", "JSON (*.json)"),
    "SHREC particle_locations.txt": (".txt", "Text (*.txt)"),
}
#: Display name -> ``which`` argument of :func:`picks_from_layer`.
SELECTIONS: dict[str, str] = {
    "All picks above the threshold": "above_threshold",
    "All but rejected": "not_rejected",
    "Accepted and added only": "accepted",
    "Every point (ignore threshold)": "all",
}


def tomogram_shape_for(viewer: Any, layer: Any) -> tuple[int, int, int] | None:
    """The shape of the tomogram a picks layer belongs to (its metadata, else the image layer of
    the same name)."""
    shape = layer.metadata.get("tomogram_shape")
    if shape:
        return tuple(int(s) for s in shape)  # type: ignore[return-value]
    name = layer.metadata.get("tomogram") or ""
    for candidate in viewer.layers:
        if (
            candidate.name == name
            and getattr(candidate, "data", None) is not None
            and candidate.ndim == 3
        ):
            return tuple(int(s) for s in candidate.data.shape)  # type: ignore[return-value]
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
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)

        persist("export", {"format": self.format, "which": self.which})
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
        if picks is None:
            self.summary.setText("No points layer to export.")
            return
        self.summary.setText(
            f"{len(picks)} picks will be written ({picks.voxel_size:.4g} Å voxels)."
        )

    def _browse(self) -> None:
        layer = self.selector.layer()
        if layer is None:
            show_info("No points layer to export")
            return
        suffix, file_filter = FORMATS[self.format.currentText()]
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
        suffix, _ = FORMATS[self.format.currentText()]
        if path.suffix.lower() != suffix:
            path = path.with_name(path.name + suffix)
        overwrite = False
        if path.exists():
            if not self.confirm_overwrite(path):
                self.status.setText(f"Not written: {path.name} exists.")
                return None
            overwrite = True
        picks = self.selected_picks()
        fmt = self.format.currentText()
        try:
            if suffix == ".csv":
                written = write_csv(path, picks, overwrite=overwrite)
            elif fmt.startswith("RELION"):
                version = 5 if fmt.startswith("RELION 5") else 4
                shape = tomogram_shape_for(self.viewer, layer) if version == 5 else None
                if version == 5 and shape is None:
                    raise CryoetInputError(
                        path, "RELION 5 centred coordinates need the tomogram's shape; open it"
                    )
                written = write_star(path, picks, version, shape, overwrite=overwrite)
            elif suffix == ".json":
                written = write_copick_json(path, picks, overwrite=overwrite)
            else:
                written = write_shrec_locations(path, picks, overwrite=overwrite)
        except (CryoetInputError, OSError, ValueError) as error:
            self.status.setText(report_error(error, "Export"))
            return None
        remember("export/last_folder", str(path.parent))
        self.status.setText(f"Wrote {len(picks)} picks to {written}")
        show_info(f"Wrote {len(picks)} picks to {written.name}")
        return written

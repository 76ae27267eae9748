"""Detect dock: run particle detection on a tomogram layer; filter the picks by score instantly."""

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from napari_cryoet_particles._layers import (
    COLOR_MODES,
    is_image,
    picks_layer_data,
    set_color_mode,
    set_threshold,
    show_slab,
    volume_of,
    voxel_size_of,
    watch_additions,
)
from napari_cryoet_particles._widgets._common import (
    DeviceBox,
    JobOutcome,
    JobRow,
    LayerSelector,
    SizeRange,
    button,
    heading,
    persist,
    real_viewer,
    remember,
    show_info,
    show_warning,
)
from napari_cryoet_particles._widgets._state import viewer_state
from napari_cryoet_particles.detect.config import (
    AUTO_THRESHOLD,
    CANDIDATE_FLOOR,
    DEFAULT_DIAMETER_NM,
    DEFAULT_MAX_DIAMETER_NM,
    DEFAULT_MIN_DIAMETER_NM,
)
from napari_cryoet_particles.detect.params import DEFAULT_PRESET, PRESETS
from napari_cryoet_particles.detect.threshold import estimate_text
from napari_cryoet_particles.io import CryoetInputError
from napari_cryoet_particles.io.units import nm_to_angstrom

MODEL_DEFAULT = "Shipped default model"
MODEL_TRAINED = "Model from the Train dock"
MODEL_FILE = "Checkpoint file"
#: Detection keeps candidates down to ``CANDIDATE_FLOOR`` (detect/config.py; below any threshold
#: the slider starts at) so that the slider hides or shows them instantly and "Refine from my
#: marks" can promote any of them; the picks at the automatic threshold, where the slider
#: starts, are the CLI's.


class DetectWidget(QWidget):
    """Model, particle diameter and size range, groups, device → Run; picks appear as a Points
    layer."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = real_viewer(napari_viewer)
        self.models = viewer_state(self.viewer).models
        self.picks_layer: Any = None
        self.score_layer: Any = None
        self.last_result: Any = None
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Detect particles"))
        form = QFormLayout()
        self.selector = LayerSelector(self.viewer, is_image)
        form.addRow("Tomogram", self.selector)
        self._add_model_rows(form)
        self._add_size_rows(form)
        self._add_option_rows(form)
        layout.addLayout(form)
        self.run_button = button("Run", self.run, "Detect particles in the selected tomogram")
        layout.addWidget(self.run_button)
        self.job = JobRow()
        layout.addWidget(self.job)
        self._add_picks_rows(layout)
        layout.addStretch(1)

        persist(
            "detect",
            {
                "model": self.model,
                "model_path": self.model_path,
                "diameter": self.diameter,
                **self.size_range.persisted("diameters"),
                "groups": self.groups,
                "binning": self.binning,
                "device": self.device,
                "score_map": self.score_map,
                "preset": self.preset,
                "keep_edges": self.keep_edges,
                "keep_structures": self.keep_structures,
                "auto_threshold": self.auto_threshold,
                "color_by": self.color_by,
            },
        )
        self.model.currentTextChanged.connect(self._model_choice)
        self.threshold.valueChanged.connect(self._threshold_changed)
        self.color_by.currentTextChanged.connect(self._color_changed)
        self._model_choice(self.model.currentText())
        self.models.changed.connect(self._model_held)

    # -- building the rows ----------------------------------------------------------------------

    def _add_model_rows(self, form: QFormLayout) -> None:
        self.model = QComboBox()
        self.model.addItems([MODEL_DEFAULT, MODEL_TRAINED, MODEL_FILE])
        form.addRow("Model", self.model)
        file_row = QHBoxLayout()
        file_row.setContentsMargins(0, 0, 0, 0)
        self.model_path = QLineEdit()
        self.model_path.setPlaceholderText("checkpoint .pt")
        file_row.addWidget(self.model_path, 1)
        file_row.addWidget(button("…", self._browse_model, "Choose a checkpoint file"))
        self.model_file_row = QWidget()
        self.model_file_row.setLayout(file_row)
        form.addRow("", self.model_file_row)

    def _add_size_rows(self, form: QFormLayout) -> None:
        """The typical diameter and, independent of it as on the command line (``--diameter``,
        ``--diameters MIN MAX``), the range of sizes searched."""
        self.diameter = QDoubleSpinBox()
        self.diameter.setRange(*SizeRange.LIMITS_NM)
        self.diameter.setDecimals(1)
        self.diameter.setSuffix(" nm")
        self.diameter.setValue(DEFAULT_DIAMETER_NM)
        self.diameter.setToolTip("Typical particle diameter: sets the pick spacing and marker size")
        form.addRow("Particle diameter", self.diameter)
        self.size_range = SizeRange(DEFAULT_MIN_DIAMETER_NM, DEFAULT_MAX_DIAMETER_NM)
        self.size_range.setToolTip(
            "Blobs from the smallest to the largest diameter are searched: widen it for large "
            "objects (e.g. 80-120 nm virus-like particles)"
        )
        form.addRow("Particle size", self.size_range)

    def _add_option_rows(self, form: QFormLayout) -> None:
        self.groups = QSpinBox()
        self.groups.setRange(0, 12)
        self.groups.setSpecialValueText("auto")
        self.groups.setToolTip(
            "Number of particle groups (k-means on each pick's shape) of the picks above the "
            "automatic threshold; auto: 8, fewer for few picks; 1: off"
        )
        form.addRow("Groups", self.groups)
        self.binning = QSpinBox()
        self.binning.setRange(1, 8)
        self.binning.setToolTip("Work on a binned volume: about bin³ faster, coarser")
        form.addRow("Extra binning", self.binning)
        self.device = DeviceBox()
        form.addRow("Device", self.device)
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.setCurrentText(DEFAULT_PRESET)
        self.preset.setToolTip(
            "The tuned numbers of detection, as the command line's --preset (detect/params.py; "
            "docs/detection.md says what each preset is)"
        )
        form.addRow("Preset", self.preset)
        self.score_map = QCheckBox("Add the score map as an image layer")
        form.addRow("", self.score_map)
        self.keep_edges = QCheckBox("Keep picks at the volume's faces")
        self.keep_edges.setToolTip(
            "Picks whose box crosses the volume's faces are cut particles or the filter answering "
            "on the face itself; they are left out unless ticked (as --keep-edges)"
        )
        form.addRow("", self.keep_edges)
        self.keep_structures = QCheckBox("Keep picks on filaments, membranes and gold")
        self.keep_structures.setToolTip(
            "Picks on something that goes on beyond them (a filament, a microtubule wall, a "
            "membrane) or on gold are left out unless ticked (as --keep-structures)"
        )
        form.addRow("", self.keep_structures)

    def _add_picks_rows(self, layout: QVBoxLayout) -> None:
        layout.addWidget(heading("Picks"))
        form = QFormLayout()
        self.threshold = QLabeledDoubleSlider(Qt.Horizontal)
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setDecimals(2)
        self.threshold.setValue(AUTO_THRESHOLD)
        self.threshold.setToolTip("Show picks with a score at or above this (no recomputation)")
        form.addRow("Score threshold", self.threshold)
        self.auto_threshold = QCheckBox("Start at the automatic threshold of each run")
        self.auto_threshold.setChecked(True)
        self.auto_threshold.setToolTip(
            "After each detection, move the slider to the threshold the CLI would use "
            "(Otsu split of the candidate peak scores)"
        )
        form.addRow("", self.auto_threshold)
        self.color_by = QComboBox()
        self.color_by.addItems(list(COLOR_MODES))
        form.addRow("Colour by", self.color_by)
        layout.addLayout(form)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)

    def _model_held(self, label: str) -> None:
        """A model trained or loaded in the Train dock becomes Detect's choice."""
        try:
            self.model.setCurrentText(MODEL_TRAINED)
            self.model.setToolTip(f"Train dock: {label}")
        except RuntimeError:
            self.models.changed.disconnect(self._model_held)

    # -- settings -------------------------------------------------------------------------------

    def _model_choice(self, text: str) -> None:
        self.model_file_row.setVisible(text == MODEL_FILE)

    def _browse_model(self) -> None:
        start = self.model_path.text() or remember("train/last_folder") or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Model checkpoint", str(start), "Checkpoints (*.pt);;All (*)"
        )
        if path:
            self.model_path.setText(path)
            self.model.setCurrentText(MODEL_FILE)

    def chosen_model(self) -> Any:
        """``None`` (shipped default), a checkpoint path or the Train dock's LoadedModel."""
        choice = self.model.currentText()
        if choice == MODEL_FILE:
            text = self.model_path.text().strip()
            if not text:
                raise CryoetInputError(None, "choose a checkpoint file for the model")
            return Path(text)
        if choice == MODEL_TRAINED:
            if self.models.model is None:
                raise CryoetInputError(
                    None, "the Train dock holds no model yet: train or load one there"
                )
            return self.models.model
        return None

    def config(self) -> Any:
        from napari_cryoet_particles.detect import DetectionConfig

        groups = self.groups.value()
        smallest, largest = self.size_range.diameters()
        config = DetectionConfig(
            params=self.preset.currentText(),
            diameter_nm=float(self.diameter.value()),
            min_diameter_nm=smallest,
            max_diameter_nm=largest,
            threshold=min(CANDIDATE_FLOOR, float(self.threshold.value())),
            groups=None if groups == 0 else (0 if groups == 1 else groups),
            bin=int(self.binning.value()),
            device=self.device.currentText(),
            keep_edges=self.keep_edges.isChecked(),
            keep_structures=self.keep_structures.isChecked(),
            keep_score_map=True,
        )
        return config

    # -- running --------------------------------------------------------------------------------

    def run(self) -> bool:
        """Start detection on the selected tomogram; returns whether a job started."""
        layer = self.selector.layer()
        if layer is None:
            show_info("Open a tomogram first (Tomogram dock)")
            return False
        try:
            from napari_cryoet_particles.detect import detect_particles_job
        except ImportError as error:
            show_info(f"Detection is not available in this installation ({error})")
            return False
        volume = volume_of(layer)

        def make_job(cancel):
            return detect_particles_job(volume, self.chosen_model(), self.config(), cancel=cancel)

        self.run_button.setEnabled(False)
        started = self.job.start(
            make_job, lambda outcome: self._done(outcome, layer), what="Detection"
        )
        self.run_button.setEnabled(not started)
        return started

    def _done(self, outcome: JobOutcome, layer: Any) -> None:
        self.run_button.setEnabled(True)
        if outcome.result is None:
            return
        for warning in outcome.result.info.get("warnings", []):
            show_warning(f"Detection: {warning}")
        if layer not in self.viewer.layers:
            show_info(f"{layer.name} was removed during detection; its picks are kept")
        self.show_result(outcome.result, layer)

    def show_result(self, result: Any, image: Any) -> Any:
        """Add (or replace) the picks layer and the optional score-map layer for ``image``."""
        self.last_result = result
        picks = result.picks.in_voxels_of(voxel_size_of(image))
        picks.tomogram = image.name
        diameter_nm = float(self.diameter.value())
        data, kwargs, _ = picks_layer_data(
            picks,
            f"{image.name} picks",
            diameter_angstrom=nm_to_angstrom(diameter_nm),
            color_by=self.color_by.currentText(),
            tomogram_shape=tuple(int(n) for n in image.data.shape),
            extra_metadata={
                "source": "detect",
                "timings": dict(result.timings),
                "threshold_estimate": result.info.get("threshold_estimate"),
            },
        )
        # on the image's grid, whatever voxel size detection had to assume for it
        scale = float(image.scale[-1])
        kwargs["scale"] = (scale,) * 3
        kwargs["translate"] = tuple(image.translate)
        for old in [self.picks_layer, self.score_layer]:
            if old is not None and old in self.viewer.layers:
                self.viewer.layers.remove(old)
        self.score_layer = None
        if self.score_map.isChecked() and result.score_map is not None:
            self.score_layer = self.viewer.add_image(
                result.score_map,
                name=f"{image.name} score map",
                scale=tuple(np.asarray(result.score_map_step) * scale),
                translate=tuple(
                    np.asarray(image.translate) + np.asarray(result.score_map_origin) * scale
                ),
                colormap="inferno",
                blending="additive",
                opacity=0.4,
                contrast_limits=(0.0, 1.0),
                metadata={"role": "score_map", "voxel_size": float(result.score_map_voxel_size)},
            )
        layer = self.viewer.add_points(data, **kwargs)
        viewer_state(self.viewer).detections.set(layer, result)
        watch_additions(layer)
        show_slab(self.viewer, nm_to_angstrom(diameter_nm) / 2)  # ± one radius, in Å
        self.picks_layer = layer
        if self.auto_threshold.isChecked() and "auto_threshold" in result.info:
            self.threshold.setValue(float(result.info["auto_threshold"]))
        set_threshold(layer, float(self.threshold.value()))
        self._summarise()
        return layer

    # -- instant filtering and colours ----------------------------------------------------------

    def _threshold_changed(self, value: float) -> None:
        layer = self.picks_layer
        if layer is None or layer not in self.viewer.layers:
            return
        set_threshold(layer, float(value))
        self._summarise()

    def _color_changed(self, mode: str) -> None:
        layer = self.picks_layer
        if layer is not None and layer in self.viewer.layers:
            set_color_mode(layer, mode)

    def _summarise(self) -> None:
        layer = self.picks_layer
        if layer is None:
            self.summary.setText("")
            return
        shown = int(np.count_nonzero(layer.shown))
        timings = layer.metadata.get("timings") or {}
        total = sum(timings.values())
        text = f"{shown} of {len(layer.data)} picks at score ≥ {self.threshold.value():.2f}"
        if total:
            text += f" (detection took {total:.1f} s)"
        estimate = estimate_text(layer.metadata.get("threshold_estimate"))
        if estimate:
            text += f"; 0.5 is the {estimate}"
        self.summary.setText(text)

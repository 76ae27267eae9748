"""Train dock: self-supervised training on the open tomograms, with a live loss plot.

Training writes its checkpoint to a working file of this napari session; when it ends (or is
cancelled: the partial model is kept) the model goes to the Detect dock, and "Save checkpoint…"
copies it where the user wants. A checkpoint file or the shipped default model can be loaded
instead of training.
"""

import shutil
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_cryoet_particles._layers import is_image, volume_of
from napari_cryoet_particles._widgets._common import (
    DeviceBox,
    JobOutcome,
    JobRow,
    ask_checkpoint_path,
    ask_to_replace,
    button,
    checkpoint_destination,
    heading,
    persist,
    real_viewer,
    remember,
    report_error,
    show_info,
)
from napari_cryoet_particles._widgets._state import viewer_state
from napari_cryoet_particles.io import CryoetInputError
from napari_cryoet_particles.io.atomic import atomic_write

START_FROM = ("scratch", "shipped default model", "model held here")
#: Redraw the loss plot at most this often (s): drawing is slow next to a tiny training step.
PLOT_INTERVAL = 0.5


def spin(
    low: float, high: float, value: float, step: float = 0.1, decimals: int = 2
) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    return box


class LossPlot(QWidget):
    """A small matplotlib plot of the loss terms against the step."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4.0, 2.4), layout="constrained")
        self.axes = self.figure.add_subplot()
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(180)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.history: dict[str, list[tuple[int, float]]] = {}
        self._drawn = 0.0
        self.clear()

    def clear(self) -> None:
        self.history = {}
        self.axes.clear()
        self.axes.set(xlabel="step", ylabel="loss", title="Training loss")
        self.canvas.draw()

    def add(self, step: int, values: dict[str, float], force: bool = False) -> None:
        for name, value in values.items():
            if name != "crops_per_s":
                self.history.setdefault(name, []).append((step, float(value)))
        if force or time.monotonic() - self._drawn >= PLOT_INTERVAL:
            self.redraw()

    def redraw(self) -> None:
        self._drawn = time.monotonic()
        self.axes.clear()
        for name, points in self.history.items():
            steps, values = zip(*points, strict=True)
            self.axes.plot(steps, values, label=name, linewidth=2.0 if name == "loss" else 1.0)
        self.axes.set(xlabel="step", ylabel="loss", title="Training loss")
        if self.history:
            self.axes.legend(fontsize=7, loc="best", framealpha=0.6)
        self.canvas.draw()


class TrainWidget(QWidget):
    """Choose tomograms and settings, train, watch the loss; or load a model for Detect."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = real_viewer(napari_viewer)
        self.models = viewer_state(self.viewer).models
        self._work_dir: Path | None = None
        self.checkpoint: Path | None = None
        layout = QVBoxLayout(self)

        layout.addWidget(heading("Model for Detect"))
        self._add_model_rows(layout)
        layout.addWidget(heading("Train on tomograms (no labels)"))
        self.tomograms = QListWidget()
        self.tomograms.setMaximumHeight(90)
        self.tomograms.setToolTip("Tick the tomograms to learn from")
        layout.addWidget(self.tomograms)
        self._add_settings(layout)
        self._add_loss_weights(layout)
        self._add_augmentation(layout)
        self.start_button = button("Start training", self.start)
        layout.addWidget(self.start_button)
        self.job = JobRow()
        layout.addWidget(self.job)
        self.plot = LossPlot()
        layout.addWidget(self.plot)
        layout.addStretch(1)

        persist(
            "train",
            {
                "steps": self.steps,
                "crop_size": self.crop_size,
                "batch_size": self.batch_size,
                "start_from": self.start_from,
                "device": self.device,
                "loss_ntxent": self.w_ntxent,
                "loss_dense": self.w_dense,
                "loss_pixel": self.w_pixel,
                "loss_spatial": self.w_spatial,
                "a_noise": self.a_noise,
                "a_contrast": self.a_contrast,
                "a_blur": self.a_blur,
                "a_rotation": self.a_rotation,
                "a_scale": self.a_scale,
            },
        )
        events = self.viewer.layers.events
        for emitter in (events.inserted, events.removed, events.changed):
            emitter.connect(self.refresh_tomograms)
        self.models.changed.connect(self._model_changed)
        self.refresh_tomograms()
        self._model_changed(self.models.label)

    def _add_model_rows(self, layout: QVBoxLayout) -> None:
        """The model Detect uses: its name; load, use the shipped one, save."""
        self.model_label = QLabel("")
        self.model_label.setWordWrap(True)
        layout.addWidget(self.model_label)
        model_row = QHBoxLayout()
        model_row.addWidget(button("Load checkpoint…", self._browse_checkpoint))
        model_row.addWidget(button("Use shipped model", self.use_default_model))
        self.save_button = button("Save checkpoint…", self._browse_save, "Save the trained model")
        self.save_button.setEnabled(False)
        model_row.addWidget(self.save_button)
        layout.addLayout(model_row)

    def _add_settings(self, layout: QVBoxLayout) -> None:
        """Steps, crop and batch size, the model to start from, the device."""
        form = QFormLayout()
        self.steps = QSpinBox()
        self.steps.setRange(1, 1_000_000)
        self.steps.setValue(150)
        form.addRow("Steps", self.steps)
        self.crop_size = QSpinBox()
        self.crop_size.setRange(16, 128)
        self.crop_size.setSingleStep(8)
        self.crop_size.setValue(32)
        self.crop_size.setSuffix(" voxels")
        form.addRow("Crop size", self.crop_size)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(2, 256)
        self.batch_size.setValue(16)
        form.addRow("Batch size", self.batch_size)
        self.start_from = QComboBox()
        self.start_from.addItems(list(START_FROM))
        form.addRow("Start from", self.start_from)
        self.device = DeviceBox()
        form.addRow("Device", self.device)
        layout.addLayout(form)

    def _add_loss_weights(self, layout: QVBoxLayout) -> None:
        losses = QGroupBox("Loss weights")
        loss_form = QFormLayout(losses)
        losses.setToolTip(
            "NT-Xent alone measured best for detection (docs/model.md); 0 switches a term off"
        )
        self.w_ntxent = spin(0, 10, 1.0)
        self.w_dense = spin(0, 10, 0.0)
        self.w_dense.setToolTip("Voxel-level NT-Xent between matched voxels of the two views")
        self.w_pixel = spin(0, 10, 0.0)
        self.w_pixel.setToolTip("Pixel-propagation consistency (PixPro) with a momentum encoder")
        self.w_spatial = spin(0, 10, 0.0)
        self.w_spatial.setToolTip(
            "Spatial organization (3D puzzle): cross-entropy and KL terms, each this weight"
        )
        loss_form.addRow("NT-Xent (instance)", self.w_ntxent)
        loss_form.addRow("Dense voxel NT-Xent", self.w_dense)
        loss_form.addRow("Pixel consistency", self.w_pixel)
        loss_form.addRow("Spatial organization", self.w_spatial)
        layout.addWidget(losses)

    def _add_augmentation(self, layout: QVBoxLayout) -> None:
        augment = QGroupBox("Augmentation strengths")
        augment_form = QFormLayout(augment)
        self.a_noise = spin(0, 2, 0.3, 0.05)
        self.a_contrast = spin(0, 2, 0.4, 0.05)
        self.a_blur = spin(0, 4, 1.2, 0.1)
        self.a_rotation = spin(0, 180, 15.0, 5, 0)
        self.a_scale = spin(0, 0.9, 0.2, 0.05)
        augment_form.addRow("Noise (max σ)", self.a_noise)
        augment_form.addRow("Contrast (±)", self.a_contrast)
        augment_form.addRow("Blur (max σ, voxels)", self.a_blur)
        augment_form.addRow("Rotation (max °)", self.a_rotation)
        augment_form.addRow("Scale (±)", self.a_scale)
        layout.addWidget(augment)

    def work_dir(self) -> Path:
        """This dock's folder for training checkpoints, made on first use, removed with the dock
        (or at exit): "Save checkpoint…" copies a model out of it."""
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="cryoet-particles-train-"))
            weakref.finalize(self, shutil.rmtree, self._work_dir, ignore_errors=True)
        return self._work_dir

    # -- tomogram list --------------------------------------------------------------------------

    def refresh_tomograms(self, *_: Any) -> None:
        try:
            checked = {
                self.tomograms.item(i).text()
                for i in range(self.tomograms.count())
                if self.tomograms.item(i).checkState() == Qt.Checked
            }
            known = {self.tomograms.item(i).text() for i in range(self.tomograms.count())}
        except RuntimeError:  # widget closed
            return
        self.tomograms.clear()
        for layer in self.viewer.layers:
            if is_image(layer):
                item = QListWidgetItem(layer.name)
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.Checked if layer.name in checked or layer.name not in known else Qt.Unchecked
                )
                self.tomograms.addItem(item)

    def chosen_layers(self) -> list[Any]:
        names = {
            self.tomograms.item(i).text()
            for i in range(self.tomograms.count())
            if self.tomograms.item(i).checkState() == Qt.Checked
        }
        return [layer for layer in self.viewer.layers if layer.name in names and is_image(layer)]

    # -- configuration --------------------------------------------------------------------------

    def train_config(self) -> Any:
        from napari_cryoet_particles.model.augment import AugmentConfig
        from napari_cryoet_particles.model.train import TrainConfig

        contrast = float(self.a_contrast.value())
        scale = float(self.a_scale.value())
        blur = float(self.a_blur.value())
        augment = AugmentConfig(
            crop_size=int(self.crop_size.value()),
            scale_range=(1.0 - scale, 1.0 / (1.0 - scale)),
            max_angle=float(self.a_rotation.value()),
            contrast_range=(1.0 / (1.0 + contrast), 1.0 + contrast),
            blur_probability=0.5 if blur > 0 else 0.0,
            blur_sigma_range=(min(0.3, blur), blur),
            noise_std_range=(0.0, float(self.a_noise.value())),
        )
        spatial = float(self.w_spatial.value())
        return TrainConfig(
            steps=int(self.steps.value()),
            batch_size=int(self.batch_size.value()),
            checkpoint_every=max(1, min(100, int(self.steps.value()))),
            loss_weights={
                "ntxent": float(self.w_ntxent.value()),
                "dense": float(self.w_dense.value()),
                "pixel": float(self.w_pixel.value()),
                "puzzle_ce": spatial,
                "puzzle_kl": spatial,
            },
            augment=augment,
        )

    # -- training -------------------------------------------------------------------------------

    def start(self) -> bool:
        layers = self.chosen_layers()
        if not layers:
            show_info("Tick at least one tomogram to train on (open one in the Tomogram dock)")
            return False
        try:
            from napari_cryoet_particles.model.train import train_job
        except ImportError as error:
            show_info(f"Training is not available in this installation ({error})")
            return False
        volumes = [volume_of(layer) for layer in layers]
        out = self.work_dir() / f"model-{time.strftime('%Y%m%d-%H%M%S')}.pt"
        start = self.start_from.currentText()
        init: Any = None
        if start == "shipped default model":
            init = "default"
        elif start == "model held here":
            if self.models.model is None or getattr(self.models.model, "path", None) is None:
                show_info(
                    "No model is held here yet: load a checkpoint first, or start from scratch"
                )
                return False
            init = self.models.model.path
        device = self.device.currentText()

        def make_job(cancel):
            # model/train.py still calls its cancel argument ``token`` (to be renamed ``cancel``)
            return train_job(
                volumes, out, self.train_config(), device=device, init=init, cancel=cancel
            )

        self.plot.clear()
        self.start_button.setEnabled(False)
        started = self.job.start(
            make_job,
            lambda outcome: self._done(outcome, out),
            on_progress=lambda report: self.plot.add(report.step, report.values),
            what="Training",
        )
        self.start_button.setEnabled(not started)
        return started

    def _done(self, outcome: JobOutcome, out: Path) -> None:
        self.start_button.setEnabled(True)
        self.plot.redraw()
        if outcome.error is not None or not out.exists():
            return
        from napari_cryoet_particles.model import load_checkpoint

        loaded = load_checkpoint(out)
        self.checkpoint = out
        step = (loaded.training_state or {}).get("step")
        state = "cancelled" if outcome.cancelled else "trained"
        label = f"{state} here" + (f" (step {step})" if step is not None else "")
        self.models.set(loaded, label)
        self.save_button.setEnabled(True)

    # -- models ---------------------------------------------------------------------------------

    def _model_changed(self, label: str) -> None:
        try:
            self.model_label.setText(
                f"Held: {label}"
                if label
                else "No model held: the Detect dock uses the shipped model."
            )
        except RuntimeError:
            self.models.changed.disconnect(self._model_changed)

    def _browse_checkpoint(self) -> None:
        start = remember("train/last_folder") or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Load checkpoint", str(start), "Checkpoints (*.pt);;All (*)"
        )
        if path:
            self.load_checkpoint(path)

    def load_checkpoint(self, path: str | Path) -> Any:
        from napari_cryoet_particles.model import load_checkpoint

        path = Path(path)
        try:
            loaded = load_checkpoint(path)
        except CryoetInputError as error:
            report_error(error)
            return None
        remember("train/last_folder", str(path.parent))
        self.checkpoint = path
        self.models.set(loaded, f"checkpoint {path.name}")
        self.save_button.setEnabled(True)
        return loaded

    def use_default_model(self) -> Any:
        from napari_cryoet_particles.model import load_default_model

        try:
            loaded = load_default_model()
        except CryoetInputError as error:
            report_error(error)
            return None
        self.models.set(loaded, "the shipped default model")
        return loaded

    def _browse_save(self) -> None:
        if self.checkpoint is None:
            return
        path = ask_checkpoint_path(self, "Save checkpoint", "train/last_folder", "model.pt")
        if path:
            self.save_checkpoint(path)

    def confirm_overwrite(self, path: Path) -> bool:
        return ask_to_replace(self, path)

    def save_checkpoint(self, path: str | Path) -> Path | None:
        """Copy the held checkpoint to ``path`` atomically (asks before replacing a file)."""
        if self.checkpoint is None:
            return None
        destination = checkpoint_destination(path, self.confirm_overwrite)
        if destination is None:
            return None
        path, overwrite = destination
        try:
            with atomic_write(path, overwrite=overwrite) as tmp:
                shutil.copyfile(self.checkpoint, tmp)
        except (CryoetInputError, OSError) as error:
            report_error(error, "Saving the checkpoint")
            return None
        remember("train/last_folder", str(path.parent))
        show_info(f"Saved the model to {path}")
        return path

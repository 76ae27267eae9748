"""Qt building blocks shared by the dock widgets: job row, layer selector, settings, messages."""

import logging
import os
import time
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QSettings, Qt, Signal
from qtpy.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_cryoet_particles._layers import picks_events
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.jobs import CancelToken, JobCancelled, Progress

LOG = logging.getLogger("napari_cryoet_particles")
SETTINGS_ENV = "NAPARI_CRYOET_PARTICLES_SETTINGS"
ORGANISATION = "napari-cryoet-particles"


# ---------------------------------------------------------------------------------------------
# The viewer


def real_viewer(viewer: Any) -> Any:
    """The viewer behind napari's ``PublicOnlyProxy``.

    napari hands dock widgets a proxy that wraps every attribute it returns in a new proxy, so a
    layer got through it (``viewer.add_points(...)``) is not ``is``-identical to the same layer
    arriving in an event; the docks compare layers by identity, so they keep the real viewer.
    """
    import wrapt

    while isinstance(viewer, wrapt.ObjectProxy):
        viewer = viewer.__wrapped__
    return viewer


def available_devices() -> list[str]:
    """The torch devices to offer (``auto`` first); ``auto, cpu`` without the model package."""
    try:
        from napari_cryoet_particles.model.device import available_devices as devices
    except ImportError:
        return ["auto", "cpu"]
    return devices()


class DeviceBox(QComboBox):
    """The device choice: ``auto`` and ``cpu`` (plus a stored choice) until the list is first
    opened, then every device of the machine. Asking which devices exist imports torch, which a
    dock should not pay for when it is built (napari builds docks at start-up)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.addItems(["auto", "cpu"])
        self._probed = False

    def offer(self, name: str) -> None:
        """Add ``name`` (e.g. a stored choice) if it is not in the list yet."""
        if name and self.findText(name) < 0:
            self.addItem(name)

    def showPopup(self) -> None:  # noqa: N802 (Qt's name)
        if not self._probed:
            self._probed = True
            for name in available_devices():
                self.offer(name)
        super().showPopup()


# ---------------------------------------------------------------------------------------------
# Particle size range


class SizeRange(QWidget):
    """The smallest and largest particle diameters searched (nm), the command line's
    ``--diameters MIN MAX``: two spin boxes of 1-200 nm (``DetectionConfig``'s limits).

    Either box may be set past the other while editing; :meth:`diameters`, read when a job
    starts, refuses that order with a message saying so.
    """

    LIMITS_NM = (1.0, 200.0)

    def __init__(self, smallest: float, largest: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.smallest = self._box(smallest, "Smallest particle diameter searched")
        self.largest = self._box(largest, "Largest particle diameter searched")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.smallest)
        row.addWidget(QLabel("to"))
        row.addWidget(self.largest)
        row.addStretch(1)

    def _box(self, value: float, tooltip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(*self.LIMITS_NM)
        box.setDecimals(1)
        box.setSuffix(" nm")
        box.setValue(value)
        box.setToolTip(tooltip)
        return box

    def diameters(self) -> tuple[float, float]:
        """(smallest, largest) in nm; bad input (smallest above largest) raises CryoetInputError."""
        smallest, largest = float(self.smallest.value()), float(self.largest.value())
        if smallest > largest:
            raise CryoetInputError(
                None,
                f"particle size: the smallest ({smallest:g} nm) is larger than the largest "
                f"({largest:g} nm): swap them",
            )
        return smallest, largest

    def persisted(self, key: str) -> dict[str, QWidget]:
        """The boxes for :func:`persist`, under ``KEY_min`` and ``KEY_max``."""
        return {f"{key}_min": self.smallest, f"{key}_max": self.largest}


# ---------------------------------------------------------------------------------------------
# Settings (persist between napari sessions)


def settings() -> QSettings:
    """The plugin's QSettings; ``$NAPARI_CRYOET_PARTICLES_SETTINGS`` names an INI file instead
    (tests use it so they never touch the user's settings)."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.IniFormat)
    return QSettings(ORGANISATION, ORGANISATION)


def _value_of(widget: QWidget) -> Any:
    if isinstance(widget, QComboBox):
        return widget.currentText()
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QSpinBox | QDoubleSpinBox):
        return widget.value()
    if isinstance(widget, QLineEdit):
        return widget.text()
    raise TypeError(f"cannot persist a {type(widget).__name__}")


def _restore(widget: QWidget, value: Any) -> None:
    if value is None:
        return
    try:
        if isinstance(widget, DeviceBox):
            widget.offer(str(value))
        if isinstance(widget, QComboBox):
            index = widget.findText(str(value))
            if index >= 0:
                widget.setCurrentIndex(index)
        elif isinstance(widget, QCheckBox):
            widget.setChecked(str(value).lower() in ("true", "1"))
        elif isinstance(widget, QSpinBox):
            widget.setValue(int(float(value)))
        elif isinstance(widget, QDoubleSpinBox):
            widget.setValue(float(value))
        elif isinstance(widget, QLineEdit):
            widget.setText(str(value))
    except (TypeError, ValueError):
        LOG.debug("ignoring stored setting %r for %s", value, widget)


def persist(group: str, widgets: dict[str, QWidget]) -> None:
    """Restore each widget's value from the settings, and store it whenever it changes."""
    store = settings()
    for key, widget in widgets.items():
        _restore(widget, store.value(f"{group}/{key}"))

    def saver(key: str, widget: QWidget) -> Callable[..., None]:
        def save(*_: Any) -> None:
            s = settings()
            s.setValue(f"{group}/{key}", _value_of(widget))
            s.sync()

        return save

    for key, widget in widgets.items():
        save = saver(key, widget)
        if isinstance(widget, QComboBox):
            widget.currentTextChanged.connect(save)
        elif isinstance(widget, QCheckBox):
            widget.toggled.connect(save)
        elif isinstance(widget, QSpinBox | QDoubleSpinBox):
            widget.valueChanged.connect(save)
        elif isinstance(widget, QLineEdit):
            widget.editingFinished.connect(save)


def remember(key: str, value: Any = None) -> Any:
    """Store ``value`` under ``key`` (if given) and return the stored value."""
    store = settings()
    if value is not None:
        store.setValue(key, value)
        store.sync()
    return store.value(key)


# ---------------------------------------------------------------------------------------------
# Messages


def report_error(error: BaseException, what: str = "") -> str:
    """Show an error as a napari notification (no traceback for bad input); return the text."""
    if isinstance(error, CryoetInputError):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}"
        LOG.error("%s failed:\n%s", what or "job", "".join(traceback.format_exception(error)))
    if what:
        text = f"{what}: {text}"
    show_error(text)
    return text


# ---------------------------------------------------------------------------------------------
# Layer selector


class LayerSelector(QComboBox):
    """A combo box of the viewer's layers that pass ``accept``, kept in sync with the layer list.

    A newly inserted matching layer becomes the selection; ``layerChanged(layer or None)`` is
    emitted whenever the selected layer changes, ``picksChanged(layer)`` whenever the statuses,
    threshold or status filter of the selected layer change (see
    :func:`~napari_cryoet_particles._layers.picks_events`).
    """

    layerChanged = Signal(object)
    picksChanged = Signal(object)

    def __init__(self, viewer: Any, accept: Callable[[Any], bool], parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = viewer
        self._accept = accept
        self._current: Any = None
        self._followed: Any = None
        self._watched: set[int] = set()
        self.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        events = viewer.layers.events
        for emitter in (events.inserted, events.removed, events.moved, events.changed):
            emitter.connect(self.refresh)
        self.currentIndexChanged.connect(self._picked)
        self.refresh()

    def layers(self) -> list[Any]:
        return [layer for layer in self.viewer.layers if self._accept(layer)]

    def layer(self) -> Any:
        return self._current

    def set_layer(self, layer: Any) -> None:
        self._current = layer
        self.refresh()

    def refresh(self, event: Any = None) -> None:
        try:
            self.count()
        except RuntimeError:  # the Qt widget is gone; the viewer still held the callback
            return
        layers = self.layers()
        for layer in self.viewer.layers:
            if id(layer) not in self._watched:
                layer.events.name.connect(self.refresh)
                self._watched.add(id(layer))
        previous = self._current
        if getattr(event, "type", "") == "inserted" and self._accept(event.value):
            self._current = event.value
        if self._current not in layers:
            self._current = layers[0] if layers else None
        self.blockSignals(True)
        self.clear()
        self.addItems([layer.name for layer in layers])
        self.setCurrentIndex(layers.index(self._current) if self._current is not None else -1)
        self.blockSignals(False)
        if self._current is not previous:
            self._changed()

    def _picked(self, index: int) -> None:
        layers = self.layers()
        layer = layers[index] if 0 <= index < len(layers) else None
        if layer is not self._current:
            self._current = layer
            self._changed()

    def _changed(self) -> None:
        if self._followed is not None:
            picks_events(self._followed).changed.disconnect(self._relay_picks, missing_ok=True)
        self._followed = self._current
        if self._current is not None:
            picks_events(self._current).changed.connect(self._relay_picks)
        self.layerChanged.emit(self._current)

    def _relay_picks(self, layer: Any) -> None:
        try:
            self.picksChanged.emit(layer)
        except RuntimeError:  # the Qt widget is gone
            picks_events(layer).changed.disconnect(self._relay_picks, missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Long jobs


@dataclass
class JobOutcome:
    """How a job ended: ``result`` on success, else ``cancelled`` or an ``error`` text."""

    result: Any = None
    cancelled: bool = False
    error: str | None = None


def ask_checkpoint_path(parent: QWidget, title: str, folder_key: str, name: str) -> str:
    """A file dialog for saving a checkpoint, starting in the folder remembered under
    ``folder_key``; "" when cancelled. Replacing is asked later (:func:`checkpoint_destination`)."""
    start = Path(remember(folder_key) or Path.home()) / name
    path, _ = QFileDialog.getSaveFileName(
        parent, title, str(start), "Checkpoints (*.pt)", options=QFileDialog.DontConfirmOverwrite
    )
    return path


def checkpoint_destination(
    path: str | Path, confirm: Callable[[Path], bool]
) -> tuple[Path, bool] | None:
    """``path`` with a ``.pt`` suffix and whether it replaces a file; None when it exists and
    ``confirm`` says not to replace it."""
    path = Path(path)
    if path.suffix != ".pt":
        path = path.with_name(path.name + ".pt")
    overwrite = path.exists()
    if overwrite and not confirm(path):
        return None
    return path, overwrite


def ask_to_replace(parent: QWidget, path: Path) -> bool:
    """Ask before replacing an existing file (No is the default answer)."""
    path = Path(path)
    answer = QMessageBox.question(
        parent,
        "Replace file?",
        f"{path.name} already exists in {path.parent}. Replace it?",
        QMessageBox.Yes | QMessageBox.No,
        QMessageBox.No,
    )
    return answer == QMessageBox.Yes


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _guarded(job: Generator[Progress, None, Any], cancel: CancelToken, what: str):
    """Run ``job`` inside the worker thread; turn every ending into a :class:`JobOutcome` so
    napari never shows a raw traceback."""
    try:
        result = yield from job
    except JobCancelled:
        return JobOutcome(cancelled=True)
    except CryoetInputError as error:
        return JobOutcome(error=str(error))
    except Exception as error:  # noqa: BLE001 - shown to the user as a notification
        LOG.error("%s failed:\n%s", what, traceback.format_exc())
        return JobOutcome(error=f"{type(error).__name__}: {error}")
    if cancel.cancelled:
        return JobOutcome(cancelled=True)
    return JobOutcome(result=result)


class JobRow(QWidget):
    """A progress bar, a status line with ETA and a Cancel button driving one job at a time.

    ``start(make_job, on_done, on_progress)``: ``make_job(cancel)`` returns a job generator
    yielding :class:`~napari_cryoet_particles.jobs.Progress` that checks ``cancel`` (every job of
    the package takes its :class:`~napari_cryoet_particles.jobs.CancelToken` under that name);
    it runs in napari's ``thread_worker``. ``on_done(outcome)`` runs in the GUI thread.
    """

    finished = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel("idle")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self.cancel_token: CancelToken | None = None
        self.worker: Any = None
        self._started = 0.0
        self._what = ""
        self.last_outcome: JobOutcome | None = None

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(
        self,
        make_job: Callable[[CancelToken], Generator[Progress, None, Any]],
        on_done: Callable[[JobOutcome], None],
        on_progress: Callable[[Progress], None] | None = None,
        what: str = "job",
    ) -> bool:
        """Start a job unless one is running; returns whether it started."""
        from napari.qt.threading import create_worker

        if self.running:
            show_warning(f"{self._what} is still running; cancel it first")
            return False
        self.cancel_token = CancelToken()
        self._what = what
        try:
            job = make_job(self.cancel_token)
        except Exception as error:  # noqa: BLE001 - bad settings: shown as a notification
            self.status.setText(report_error(error, what))
            return False
        self._started = time.monotonic()
        self.bar.setRange(0, 0)
        self.status.setText(f"{what}: starting…")
        self.cancel_button.setEnabled(True)
        worker = create_worker(_guarded, job, self.cancel_token, what, _start_thread=False)

        def progressed(report: Progress) -> None:
            self._show_progress(report)
            if on_progress is not None:
                on_progress(report)

        def returned(outcome: JobOutcome) -> None:
            self._finish(outcome, on_done)

        worker.yielded.connect(progressed)
        worker.returned.connect(returned)
        self.worker = worker
        worker.start()
        return True

    def cancel(self) -> None:
        if self.cancel_token is not None:
            self.cancel_token.cancel()
            self.status.setText(f"{self._what}: cancelling…")
            self.cancel_button.setEnabled(False)

    def _show_progress(self, report: Progress) -> None:
        total = max(int(report.total), 0)
        step = min(max(int(report.step), 0), total) if total else 0
        if total:
            self.bar.setRange(0, total)
            self.bar.setValue(step)
        elapsed = time.monotonic() - self._started
        text = f"{self._what}: {report.message}" if report.message else self._what
        if total and step:
            remaining = elapsed / step * (total - step)
            text += f" — {step}/{total}, {format_seconds(elapsed)} elapsed, ETA {format_seconds(remaining)}"
        if report.values:
            text += " — " + ", ".join(f"{k} {v:.4g}" for k, v in report.values.items())
        self.status.setText(text)

    def _finish(self, outcome: JobOutcome, on_done: Callable[[JobOutcome], None]) -> None:
        self.worker = None
        self.last_outcome = outcome
        self.cancel_button.setEnabled(False)
        elapsed = format_seconds(time.monotonic() - self._started)
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if outcome.error is None and not outcome.cancelled else 0)
        if outcome.cancelled:
            self.status.setText(f"{self._what}: cancelled after {elapsed}")
            show_info(f"{self._what} cancelled")
        elif outcome.error is not None:
            self.status.setText(f"{self._what} failed: {outcome.error}")
            show_error(f"{self._what} failed: {outcome.error}")
        else:
            self.status.setText(f"{self._what}: done in {elapsed}")
        try:
            on_done(outcome)
        except Exception as error:  # noqa: BLE001
            report_error(error, self._what)
        self.finished.emit(outcome)


def button(text: str, slot: Callable[..., Any], tooltip: str = "") -> QPushButton:
    widget = QPushButton(text)
    widget.clicked.connect(lambda *_: slot())
    if tooltip:
        widget.setToolTip(tooltip)
    return widget


def heading(text: str) -> QLabel:
    label = QLabel(f"<b>{text}</b>")
    label.setTextFormat(Qt.RichText)
    return label


def set_enabled(widgets: list[QAbstractButton | QWidget], enabled: bool) -> None:
    for widget in widgets:
        widget.setEnabled(enabled)

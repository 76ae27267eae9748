"""Metrics dock: score the picks against a ground-truth layer, live as the user curates.

The numbers come from :mod:`napari_cryoet_particles.evaluate` exactly as ``cryoet-particles
evaluate`` computes them (same rule choice, radius table, skip list and curves, or the CZII
challenge score of ``--metric czii``); the picks scored are those above the score threshold that
are not rejected (added picks included).
"""

from typing import Any

import numpy as np
import pandas as pd
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_cryoet_particles._layers import (
    is_picks_layer,
    is_truth_layer,
    picks_from_layer,
)
from napari_cryoet_particles._widgets._common import LayerSelector, heading, persist, real_viewer
from napari_cryoet_particles.evaluate.czii import CZII_PARTICLES
from napari_cryoet_particles.io import CryoetInputError

RULES = {"auto": "auto", "SHREC (particle-id map)": "shrec", "distance (hit radius)": "distance"}
METRICS = {"localization (precision, recall, F1)": "localization", "CZII challenge (F4)": "czii"}
RADIUS_TABLES = ("auto", "shrec2021", "shrec2019")
RECOMPUTE_DELAY_MS = 150


def table_widget(frame: pd.DataFrame, index_name: str = "") -> QTableWidget:
    """A read-only QTableWidget showing a DataFrame (index as the first column)."""
    columns = [index_name or str(frame.index.name or ""), *[str(c) for c in frame.columns]]
    widget = QTableWidget(len(frame), len(columns))
    widget.setHorizontalHeaderLabels(columns)
    widget.verticalHeader().setVisible(False)
    for row, index in enumerate(frame.index):
        widget.setItem(row, 0, QTableWidgetItem(str(index)))
    for col, name in enumerate(frame.columns, start=1):
        for row, value in enumerate(frame[name].tolist()):  # per column: integers stay integers
            if isinstance(value, float):
                text = "—" if not np.isfinite(value) else f"{value:.3f}"
            else:
                text = str(value)
            widget.setItem(row, col, QTableWidgetItem(text))
    widget.setEditTriggers(QTableWidget.NoEditTriggers)
    widget.resizeColumnsToContents()
    height = (
        widget.horizontalHeader().height() + sum(widget.rowHeight(r) for r in range(len(frame))) + 4
    )
    widget.setMinimumHeight(min(height, 420))
    widget.setMaximumHeight(max(height, 60))
    return widget


def _discard(widget: QWidget) -> None:
    """Take a widget off screen now (``deleteLater`` alone leaves it drawn until the event loop
    runs its deferred deletions)."""
    widget.hide()
    widget.setParent(None)
    widget.deleteLater()


def stacked_curves(figure: Any, width: float = 4.6) -> Any:
    """Re-arrange the side-by-side precision-recall and ROC panels one above the other (a dock is
    narrow)."""
    axes = figure.axes[:2]
    if len(axes) == 2:
        grid = figure.add_gridspec(2, 1)
        for index, ax in enumerate(axes):
            ax.set_subplotspec(grid[index])
        figure.set_size_inches(width, 2 * width * 0.8)
    return figure


class MetricsWidget(QWidget):
    """Precision / recall / F1, per-class recall, confusion and group tables, PR and ROC curves."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = real_viewer(napari_viewer)
        self.report: dict[str, Any] = {}
        self._id_cache: tuple[int, Any] | None = None
        self._watched: set[int] = set()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        content = QWidget()
        scroll.setWidget(content)
        outer.addWidget(scroll)
        layout = QVBoxLayout(content)
        layout.addWidget(heading("Metrics against ground truth"))
        self.notice = QLabel("")
        self.notice.setWordWrap(True)
        layout.addWidget(self.notice)
        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.body)
        form = QFormLayout()
        self.metric = QComboBox()
        self.metric.addItems(list(METRICS))
        form.addRow("Metric", self.metric)
        self.truth_selector = LayerSelector(self.viewer, is_truth_layer)
        form.addRow("Truth", self.truth_selector)
        self.picks_selector = LayerSelector(self.viewer, is_picks_layer)
        form.addRow("Picks", self.picks_selector)
        self.rule = QComboBox()
        self.rule.addItems(list(RULES))
        form.addRow("Rule", self.rule)
        self.radius = QDoubleSpinBox()
        self.radius.setRange(0.0, 500.0)
        self.radius.setDecimals(1)
        self.radius.setSpecialValueText("per class")
        self.radius.setSuffix(" voxels")
        self.radius.setToolTip(
            "Distance rule: hit radius for every class (per class: from the radius table)"
        )
        form.addRow("Hit radius", self.radius)
        self.radius_table = QComboBox()
        self.radius_table.addItems(list(RADIUS_TABLES))
        form.addRow("Radius table", self.radius_table)
        self.skip = QLineEdit()
        self.skip.setPlaceholderText("e.g. 4V94,vesicle or shrec2021")
        form.addRow("Skip classes", self.skip)
        self.pred_type = QComboBox()
        self.pred_type.setEditable(True)
        self.pred_type.addItems([p.name for p in CZII_PARTICLES])
        self.pred_type.setToolTip(
            "CZII: the particle type of picks that have none (label-free picks)"
        )
        form.addRow("Type of untyped picks", self.pred_type)
        body.addLayout(form)

        self.headline = QLabel("")
        self.headline.setWordWrap(True)
        body.addWidget(self.headline)
        self.tables = QVBoxLayout()
        body.addLayout(self.tables)
        self.canvas: Any = None
        self.canvas_holder = QVBoxLayout()
        body.addLayout(self.canvas_holder)
        layout.addStretch(1)

        persist(
            "metrics",
            {
                "rule": self.rule,
                "radius": self.radius,
                "radius_table": self.radius_table,
                "skip": self.skip,
                "metric": self.metric,
                "pred_type": self.pred_type,
            },
        )
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RECOMPUTE_DELAY_MS)
        self._timer.timeout.connect(self.recompute)
        for signal in (
            self.rule.currentTextChanged,
            self.radius_table.currentTextChanged,
            self.metric.currentTextChanged,
            self.pred_type.currentTextChanged,
        ):
            signal.connect(self.schedule)
        self.radius.valueChanged.connect(self.schedule)
        self.skip.editingFinished.connect(self.schedule)
        self.truth_selector.layerChanged.connect(self._layers_changed)
        self.picks_selector.layerChanged.connect(self._layers_changed)
        self.picks_selector.picksChanged.connect(self.schedule)
        self._layers_changed()

    # -- triggers -------------------------------------------------------------------------------

    def schedule(self, *_: Any) -> None:
        try:
            self._timer.start()
        except RuntimeError:  # widget closed
            return

    def _layers_changed(self, *_: Any) -> None:
        truth = self.truth_selector.layer()
        picks = self.picks_selector.layer()
        for layer in (truth, picks):
            if layer is not None and id(layer) not in self._watched:
                layer.events.data.connect(self.schedule)
                self._watched.add(id(layer))
        has_truth = truth is not None
        self.body.setEnabled(has_truth)
        if not has_truth:
            self.notice.setText(
                "No ground truth layer: open a SHREC folder or the sample (Tomogram dock)."
            )
        elif picks is None:
            self.notice.setText("No picks layer yet: run Detect.")
        else:
            self.notice.setText("")
        self.schedule()

    # -- computing ------------------------------------------------------------------------------

    def _id_map(self, truth_layer: Any) -> Any:
        """The truth's particle-id map dilated by one voxel, as the SHREC rule does (cached)."""
        occupancy = truth_layer.metadata.get("occupancy")
        if occupancy is None:
            return None
        if self._id_cache is None or self._id_cache[0] != id(occupancy):
            from napari_cryoet_particles.evaluate import dilate_ids

            self._id_cache = (id(occupancy), dilate_ids(np.asarray(occupancy), 1))
        return self._id_cache[1]

    def evaluate(self) -> dict[str, Any] | None:
        """Score the shown, not rejected picks; ``None`` when there is nothing to score."""
        from napari_cryoet_particles.evaluate.report import TruthData, evaluate_data, parse_skip

        truth_layer = self.truth_selector.layer()
        picks_layer = self.picks_selector.layer()
        if truth_layer is None or picks_layer is None:
            return None
        truth = picks_from_layer(truth_layer, "all")
        pred = picks_from_layer(picks_layer, "not_rejected")
        if METRICS[self.metric.currentText()] == "czii":
            return {"czii": self.czii(truth, pred)}
        rule = RULES[self.rule.currentText()]
        id_map = self._id_map(truth_layer) if rule in ("auto", "shrec") else None
        shape = truth_layer.metadata.get("tomogram_shape")
        table = self.radius_table.currentText()
        report = evaluate_data(
            TruthData(truth, id_map, None if shape is None else tuple(shape)),
            pred,
            rule=rule,
            radius=self.radius.value() or None,
            radius_table=None if table == "auto" else table,
            skip=parse_skip(self.skip.text()),
            dilate=0,
        )
        return {
            "result": report.result,
            "truth": truth,
            "pred": pred,
            "curves": report.curves,
            "groups": report.groups,
        }

    def czii(self, truth: Any, pred: Any) -> Any:
        """The CZII score of one tomogram's picks; untyped picks get the chosen type."""
        from napari_cryoet_particles.evaluate.czii import czii_score

        classes = pred.features["class"].astype(str)
        pred.features["class"] = classes.where(classes != "", self.pred_type.currentText())
        return czii_score({"": truth}, {"": pred})

    def recompute(self) -> None:
        try:
            report = self.evaluate()
        except (CryoetInputError, ValueError) as error:
            self.report = {}
            self.headline.setText(f"Cannot score: {error}")
            self._clear()
            return
        self.report = report or {}
        self._clear()
        if not report:
            self.headline.setText("")
            return
        self._show(report)

    # -- display --------------------------------------------------------------------------------

    def _clear(self) -> None:
        while self.tables.count():
            item = self.tables.takeAt(0)
            if item.widget() is not None:
                _discard(item.widget())
        if self.canvas is not None:
            self.canvas_holder.removeWidget(self.canvas)
            _discard(self.canvas)
            self.canvas = None

    def _show_czii(self, result: Any) -> None:
        text = (
            f"<b>CZII score {result.score:.3f}</b> (F{result.beta:g} weighted over types; "
            "the challenge's winner scored 0.788 on real tomograms)"
        )
        for warning in result.warnings:
            text += f"<br><i>{warning}</i>"
        self.headline.setText(text)
        self.tables.addWidget(QLabel("Per particle type"))
        self.tables.addWidget(table_widget(result.per_type.set_index("type"), "type"))

    def _show(self, report: dict[str, Any]) -> None:
        if "czii" in report:
            self._show_czii(report["czii"])
            return
        result = report["result"]
        rule = "SHREC rule" if result.rule == "shrec" else "distance rule"
        text = (
            f"<b>F1 {result.f1:.3f}</b> · precision {result.precision:.3f} · recall {result.recall:.3f}"
            f"<br>{rule}: TP {result.tp}, FP {result.fp}, FN {result.fn} "
            f"({result.n_pred} picks, {result.n_truth} particles"
            + (f", {result.n_duplicate} duplicates" if result.n_duplicate else "")
            + ")"
        )
        if report["curves"] is not None:
            c = report["curves"]
            text += f"<br>AP {c.average_precision:.3f} · ROC AUC {c.roc_auc:.3f} · best F1 {c.best_f1:.3f} at score ≥ {c.best_threshold:.3g}"
        for warning in result.warnings:
            text += f"<br><i>{warning}</i>"
        self.headline.setText(text)

        if len(result.per_class):
            per_class = result.per_class
            if "class" in per_class:
                per_class = per_class.set_index("class")
            self.tables.addWidget(QLabel("Per class"))
            self.tables.addWidget(table_widget(per_class, "class"))
        confusion = pd.DataFrame(
            np.asarray(result.confusion),
            index=pd.Index(["particle", "background"], name="truth \\ picked"),
            columns=["particle", "background"],
        )
        self.tables.addWidget(QLabel("Binary confusion (true negatives undefined)"))
        self.tables.addWidget(table_widget(confusion))
        if report["groups"] is not None:
            groups = report["groups"]
            self.tables.addWidget(QLabel(f"Groups vs classes (ARI {groups.ari:.3f})"))
            self.tables.addWidget(table_widget(groups.table))
        if report["curves"] is not None:
            from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg

            from napari_cryoet_particles.evaluate import plot_ranking_curves

            figure = stacked_curves(plot_ranking_curves(report["curves"]))
            self.canvas = FigureCanvasQTAgg(figure)
            self.canvas.setMinimumHeight(560)
            self.canvas.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
            self.canvas_holder.addWidget(self.canvas)
            self.canvas.draw()

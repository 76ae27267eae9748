"""Tomogram dock: open an MRC file, a SHREC folder or the sample; see shape, voxel size, values."""

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from napari_cryoet_particles._widgets._common import (
    JobOutcome,
    JobRow,
    LayerSelector,
    button,
    heading,
    persist,
    real_viewer,
    remember,
    report_error,
    show_info,
)
from napari_cryoet_particles._widgets._layers import is_image, sample_for_contrast, voxel_size_of

PLUGIN = "napari-cryoet-particles"
BINNINGS = ("1", "2", "3", "4", "8")
TOMOGRAM_FILTER = "Tomograms (*.mrc *.rec *.map *.MRC *.REC *.MAP);;All files (*)"


def binned_lazy(data: Any, factor: int) -> Any:
    """Mean over ``factor``³ blocks as a lazy dask array: a memory-mapped file stays on disk and
    only the slices napari shows are computed."""
    import dask.array as da

    chunk_z = max(factor, (16 // factor) * factor)
    array = da.from_array(data, chunks=(chunk_z, *data.shape[1:]))
    return da.coarsen(
        np.mean, array.astype(np.float32), {0: factor, 1: factor, 2: factor}, trim_excess=True
    )


def storage_of(data: Any) -> str:
    if isinstance(data, np.memmap):
        return "memory-mapped file"
    if type(data).__module__.startswith("dask"):
        return "lazy (computed per slice)"
    return "in memory"


class TomogramWidget(QWidget):
    """Open tomograms and inspect the selected one (shape, voxel size, value range, storage)."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = real_viewer(napari_viewer)
        layout = QVBoxLayout(self)

        layout.addWidget(heading("Open"))
        buttons = QHBoxLayout()
        buttons.addWidget(button("File…", self._browse_file, "Open an MRC / REC / MAP tomogram"))
        buttons.addWidget(
            button(
                "SHREC folder…",
                self._browse_folder,
                "A folder holding reconstruction.mrc (+ truth)",
            )
        )
        buttons.addWidget(
            button("Sample", self.open_sample, "Simulate a small tomogram with truth (a few s)")
        )
        layout.addLayout(buttons)
        self.job = JobRow()
        self.job.setVisible(False)  # shown once the sample is simulated
        layout.addWidget(self.job)
        self.sample_layers: list[Any] = []
        binning_row = QHBoxLayout()
        self.binning = QComboBox()
        self.binning.addItems(BINNINGS)
        self.binning.setToolTip(
            "Bin new tomograms on opening (mean over n³ voxels, computed lazily)"
        )
        binning_row.addWidget(QLabel("Binning on open"))
        binning_row.addWidget(self.binning)
        binning_row.addStretch(1)
        binning_row.addWidget(
            button("Bin selected", self.bin_selected, "Add a binned copy of the selected tomogram")
        )
        layout.addLayout(binning_row)

        layout.addWidget(heading("Tomogram"))
        self.selector = LayerSelector(self.viewer, is_image)
        layout.addWidget(self.selector)
        form = QFormLayout()
        self.labels = {
            key: QLabel("—")
            for key in ("shape", "voxel", "range", "contrast", "mean", "dtype", "storage", "path")
        }
        for key, text in (
            ("shape", "Shape (z, y, x)"),
            ("voxel", "Voxel size"),
            ("range", "Values"),
            ("contrast", "0.5–99.5 %"),
            ("mean", "Mean"),
            ("dtype", "Data type"),
            ("storage", "Storage"),
            ("path", "File"),
        ):
            self.labels[key].setWordWrap(True)
            form.addRow(text, self.labels[key])
        layout.addLayout(form)
        voxel_row = QHBoxLayout()
        self.voxel_size = QDoubleSpinBox()
        self.voxel_size.setRange(0.1, 1000.0)
        self.voxel_size.setDecimals(3)
        self.voxel_size.setSuffix(" Å")
        self.voxel_size.setToolTip(
            "Override the voxel size of the selected tomogram (e.g. header says 0)"
        )
        voxel_row.addWidget(QLabel("Set voxel size"))
        voxel_row.addWidget(self.voxel_size)
        voxel_row.addWidget(button("Apply", self.apply_voxel_size))
        layout.addLayout(voxel_row)
        layout.addStretch(1)

        persist("tomogram", {"binning": self.binning})
        self.selector.layerChanged.connect(self.show_layer)
        self.viewer.layers.selection.events.active.connect(self._follow_active)
        self.show_layer(self.selector.layer())

    # -- opening --------------------------------------------------------------------------------

    def _browse_file(self) -> None:
        start = remember("tomogram/last_folder") or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open tomogram", str(start), TOMOGRAM_FILTER)
        if path:
            self.open_path(path)

    def _browse_folder(self) -> None:
        start = remember("tomogram/last_folder") or str(Path.home())
        path = QFileDialog.getExistingDirectory(self, "Open SHREC folder", str(start))
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> list[Any]:
        """Open a tomogram file or SHREC folder with this plugin's reader (binned if asked)."""
        path = Path(path)
        remember("tomogram/last_folder", str(path.parent if path.is_file() else path))
        try:
            layers = self.viewer.open(str(path), plugin=PLUGIN)
        except Exception as error:  # noqa: BLE001 - napari raises its own errors for unreadable paths
            report_error(error, f"Opening {path.name}")
            return []
        self._bin_new(layers)
        return layers

    def open_sample(self) -> bool:
        """Simulate the sample in a worker thread (progress bar, Cancel): napari stays usable.

        Its layers are added when the job is done (:attr:`sample_layers`); returns whether the
        job started.
        """
        from napari_cryoet_particles._sample_data import sample_data_job

        self.job.setVisible(True)
        return self.job.start(sample_data_job, self._sample_done, what="Simulating the sample")

    def _sample_done(self, outcome: JobOutcome) -> None:
        if outcome.result is None:
            return
        from napari.layers import Layer

        self.sample_layers = [
            self.viewer.add_layer(Layer.create(data, kwargs, kind))
            for data, kwargs, kind in outcome.result
        ]

    def _bin_new(self, layers: list[Any]) -> None:
        factor = int(self.binning.currentText())
        if factor <= 1:
            return
        for layer in layers:
            if is_image(layer):
                self._bin_in_place(layer, factor)
        self.show_layer(self.selector.layer())

    # -- binning and voxel size -----------------------------------------------------------------

    def _bin_in_place(self, layer: Any, factor: int) -> None:
        limits = tuple(layer.contrast_limits)
        voxel = voxel_size_of(layer) * factor
        layer.data = binned_lazy(layer.data, factor)
        layer.scale = (voxel,) * 3
        layer.translate = np.asarray(layer.translate) + (factor - 1) / 2 * voxel / factor
        layer.contrast_limits = limits
        layer.metadata["voxel_size"] = voxel
        layer.metadata["binning"] = int(layer.metadata.get("binning", 1)) * factor

    def bin_selected(self) -> Any:
        """Add a binned copy of the selected tomogram (the original stays)."""
        layer = self.selector.layer()
        factor = int(self.binning.currentText())
        if layer is None:
            show_info("Open a tomogram first")
            return None
        if factor <= 1:
            show_info("Choose a binning factor above 1")
            return None
        source_voxel = voxel_size_of(layer)
        voxel = source_voxel * factor
        metadata = {
            **{k: v for k, v in layer.metadata.items() if not k.startswith("_")},
            "voxel_size": voxel,
            "binning": int(layer.metadata.get("binning", 1)) * factor,
        }
        new = self.viewer.add_image(
            binned_lazy(layer.data, factor),
            name=f"{layer.name} bin{factor}",
            scale=(voxel,) * 3,
            translate=tuple(np.asarray(layer.translate) + (factor - 1) / 2 * source_voxel),
            contrast_limits=tuple(layer.contrast_limits),
            metadata=metadata,
        )
        return new

    def apply_voxel_size(self) -> None:
        layer = self.selector.layer()
        if layer is None:
            return
        size = float(self.voxel_size.value())
        layer.scale = (size,) * 3
        layer.metadata["voxel_size"] = size
        layer.metadata["voxel_size_from_header"] = True
        self.show_layer(layer)

    # -- display --------------------------------------------------------------------------------

    def _follow_active(self, event: Any = None) -> None:
        try:
            active = self.viewer.layers.selection.active
            if active is not None and is_image(active):
                self.selector.set_layer(active)
        except RuntimeError:  # widget closed
            return

    def show_layer(self, layer: Any) -> None:
        if layer is None:
            for label in self.labels.values():
                label.setText("—")
            return
        data = layer.data
        voxel = voxel_size_of(layer)
        shape = tuple(int(n) for n in data.shape)
        size_nm = ", ".join(f"{n * voxel / 10:.0f}" for n in shape)
        self.labels["shape"].setText(f"{shape[0]} × {shape[1]} × {shape[2]} voxels ({size_nm} nm)")
        header = layer.metadata.get("voxel_size_from_header", True)
        binning = int(layer.metadata.get("binning", 1))
        voxel_text = f"{voxel:.4g} Å"
        if binning > 1:
            voxel_text += f" (bin {binning})"
        if not header:
            voxel_text += " — not in the header, set it below"
        self.labels["voxel"].setText(voxel_text)
        sample = sample_for_contrast(data, max_voxels=500_000)
        sample = sample[np.isfinite(sample)]
        if sample.size:
            lo, hi = np.percentile(sample, [0.5, 99.5])
            self.labels["range"].setText(f"{sample.min():.3g} to {sample.max():.3g}")
            self.labels["contrast"].setText(f"{lo:.3g} to {hi:.3g}")
            self.labels["mean"].setText(f"{sample.mean():.3g}")
            for key in ("range", "contrast", "mean"):
                self.labels[key].setToolTip(
                    "From a strided sample of the voxels (a large file is never read in full)"
                )
        self.labels["dtype"].setText(str(data.dtype))
        nbytes = int(np.prod(shape)) * np.dtype(data.dtype).itemsize
        self.labels["storage"].setText(f"{storage_of(data)}, {nbytes / 1e6:.1f} MB")
        self.labels["path"].setText(str(layer.metadata.get("path") or "—"))
        self.voxel_size.setValue(voxel)

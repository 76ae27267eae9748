"""Tomogram dock: open an MRC or OME-Zarr file, a SHREC folder, a copick run, a picks file or the
sample; see shape, voxel size, values."""

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
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from napari_cryoet_particles._layers import (
    copick_run_layers,
    display_voxel_size,
    is_image,
    picks_layer_data,
    sample_for_contrast,
    truth_layer_data,
    voxel_size_of,
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
from napari_cryoet_particles.io.picks import picks_suffixes
from napari_cryoet_particles.io.units import voxels_to_nm

PLUGIN = "napari-cryoet-particles"
BINNINGS = ("1", "2", "3", "4", "8")
TOMOGRAM_FILTER = "Tomograms (*.mrc *.rec *.map *.MRC *.REC *.MAP);;All files (*)"
COPICK_FILTER = "copick project (*.json);;All files (*)"
PICKS_ROLES = {"as truth (Metrics)": "truth", "as picks to curate": "picks"}


def binned_lazy(data: Any, factor: int) -> Any:
    """Mean over ``factor``³ blocks as a lazy dask array: a memory-mapped file stays on disk and
    only the slices napari shows are computed."""
    import dask.array as da

    chunk_z = max(factor, (16 // factor) * factor)
    array = da.from_array(data, chunks=(chunk_z, *data.shape[1:]))
    return da.coarsen(
        np.mean, array.astype(np.float32), {0: factor, 1: factor, 2: factor}, trim_excess=True
    )


def binned_metadata(layer: Any, factor: int) -> dict[str, Any]:
    """The voxel size (still ``None`` when unknown) and binning of a layer binned by ``factor``."""
    voxel = voxel_size_of(layer)
    return {
        "voxel_size": None if voxel is None else voxel * factor,
        "binning": int(layer.metadata.get("binning", 1)) * factor,
    }


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
        self.sample_layers: list[Any] = []
        self._copick_root: Any = None
        self._copick_config: Path | None = None
        self._tomogram_choices: list[Any] = []
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Open"))
        self._add_open_buttons(layout)
        self.job = JobRow()
        self.job.setVisible(False)  # shown once the sample is simulated
        layout.addWidget(self.job)
        self._add_copick_panel(layout)
        self._add_picks_options(layout)
        self._add_binning_row(layout)
        layout.addWidget(heading("Tomogram"))
        self.selector = LayerSelector(self.viewer, is_image)
        layout.addWidget(self.selector)
        self._add_tomogram_info(layout)
        self._add_voxel_size_row(layout)
        layout.addStretch(1)

        persist("tomogram", {"binning": self.binning, "picks_role": self.picks_role})
        self.selector.layerChanged.connect(self.show_layer)
        self.viewer.layers.selection.events.active.connect(self._follow_active)
        self.show_layer(self.selector.layer())

    def _add_open_buttons(self, layout: QVBoxLayout) -> None:
        """File, SHREC folder, sample; OME-Zarr, copick project, picks file."""
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
        more = QHBoxLayout()
        more.addWidget(
            button("OME-Zarr…", self._browse_zarr, "Open an OME-Zarr tomogram folder (.zarr)")
        )
        more.addWidget(
            button("copick project…", self._browse_copick, "Open a run of a copick project")
        )
        more.addWidget(
            button(
                "Picks file…",
                self._browse_picks,
                "Open picks (CSV, STAR, copick JSON, SHREC txt) on the selected tomogram",
            )
        )
        layout.addLayout(more)

    def _add_copick_panel(self, layout: QVBoxLayout) -> None:
        """The run and tomogram of an opened copick project (hidden until one is)."""
        self.copick_panel = QWidget()
        copick_form = QFormLayout(self.copick_panel)
        copick_form.setContentsMargins(0, 0, 0, 0)
        self.copick_path = QLabel("")
        self.copick_path.setWordWrap(True)
        copick_form.addRow("Project", self.copick_path)
        self.copick_run = QComboBox()
        self.copick_run.currentTextChanged.connect(self._list_copick_tomograms)
        copick_form.addRow("Run", self.copick_run)
        self.copick_tomogram = QComboBox()
        copick_form.addRow("Tomogram", self.copick_tomogram)
        copick_form.addRow(button("Open run", self.open_copick_run, "Its tomogram and picks"))
        self.copick_panel.setVisible(False)
        layout.addWidget(self.copick_panel)

    def _add_picks_options(self, layout: QVBoxLayout) -> None:
        """How a picks file is opened: as truth or as picks, and how to read a STAR file."""
        picks_form = QFormLayout()
        self.picks_role = QComboBox()
        self.picks_role.addItems(list(PICKS_ROLES))
        picks_form.addRow("Open picks", self.picks_role)
        self.star_tomogram = QLineEdit()
        self.star_tomogram.setPlaceholderText("rlnTomoName, if the STAR has several")
        picks_form.addRow("STAR tomogram", self.star_tomogram)
        self.star_pixel_size = QDoubleSpinBox()
        self.star_pixel_size.setRange(0.0, 1000.0)
        self.star_pixel_size.setDecimals(3)
        self.star_pixel_size.setSuffix(" Å")
        self.star_pixel_size.setSpecialValueText("from the file")
        self.star_pixel_size.setToolTip(
            "Pixel size of a STAR file's rlnCoordinateX/Y/Z when the file does not say it"
        )
        picks_form.addRow("STAR pixel size", self.star_pixel_size)
        layout.addLayout(picks_form)

    def _add_binning_row(self, layout: QVBoxLayout) -> None:
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

    def _add_tomogram_info(self, layout: QVBoxLayout) -> None:
        """What the selected tomogram is: shape, voxel size, values, storage, file."""
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

    def _add_voxel_size_row(self, layout: QVBoxLayout) -> None:
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

    def _browse_zarr(self) -> None:
        start = remember("tomogram/last_folder") or str(Path.home())
        path = QFileDialog.getExistingDirectory(self, "Open OME-Zarr tomogram", str(start))
        if path:
            self.open_path(path)

    def _browse_copick(self) -> None:
        start = remember("tomogram/last_folder") or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "copick project", str(start), COPICK_FILTER)
        if path:
            self.load_copick_project(path)

    def _browse_picks(self) -> None:
        start = remember("tomogram/last_folder") or str(Path.home())
        patterns = " ".join(f"*{suffix}" for suffix in picks_suffixes())
        path, _ = QFileDialog.getOpenFileName(
            self, "Open picks", str(start), f"Picks ({patterns});;All files (*)"
        )
        if path:
            self.open_picks(path)

    # -- copick ---------------------------------------------------------------------------------

    def load_copick_project(self, path: str | Path) -> bool:
        """Read a copick project config and list its runs."""
        from napari_cryoet_particles.io.copick_project import open_project, run_names

        try:
            root = open_project(path)
            names = run_names(root)
        except Exception as error:  # noqa: BLE001 - copick raises many kinds
            report_error(error, "Opening the copick project")
            return False
        remember("tomogram/last_folder", str(Path(path).parent))
        self._copick_root, self._copick_config = root, Path(path)
        self.copick_path.setText(f"{Path(path).name} ({len(names)} runs)")
        self.copick_run.blockSignals(True)
        self.copick_run.clear()
        self.copick_run.addItems(names)
        self.copick_run.blockSignals(False)
        self._list_copick_tomograms()
        self.copick_panel.setVisible(True)
        return True

    def _list_copick_tomograms(self, *_: Any) -> None:
        from napari_cryoet_particles.io.copick_project import get_run, tomogram_choices

        self.copick_tomogram.clear()
        self._tomogram_choices = []
        if self._copick_root is None or not self.copick_run.currentText():
            return
        choices = tomogram_choices(get_run(self._copick_root, self.copick_run.currentText()))
        self._tomogram_choices = choices
        self.copick_tomogram.addItems([c.label for c in choices])

    def open_copick_run(self) -> list[Any]:
        """Open the chosen run: its tomogram, and its picks sets as Points layers."""
        if self._copick_config is None or not self._tomogram_choices:
            show_info("Open a copick project with a tomogram first")
            return []
        choice = self._tomogram_choices[max(self.copick_tomogram.currentIndex(), 0)]
        try:
            layer_data = copick_run_layers(
                self._copick_config,
                self.copick_run.currentText(),
                choice.tomo_type,
                choice.voxel_size,
                PICKS_ROLES[self.picks_role.currentText()],
            )
        except Exception as error:  # noqa: BLE001
            report_error(error, "Opening the copick run")
            return []
        layers = [self._add(data, kwargs, kind) for data, kwargs, kind in layer_data]
        self._bin_new(layers)
        return layers

    def _add(self, data: Any, kwargs: dict[str, Any], kind: str) -> Any:
        return getattr(self.viewer, f"add_{kind}")(data, **kwargs)

    def open_picks(self, path: str | Path) -> Any:
        """Open a picks file on the selected tomogram (its voxel size and shape)."""
        from napari_cryoet_particles.io.picks import read_picks

        layer = self.selector.layer()
        if layer is None:
            show_info("Open the tomogram the picks belong to first")
            return None
        path = Path(path)
        voxel = voxel_size_of(layer)
        shape = tuple(int(n) for n in layer.data.shape)
        try:
            picks = read_picks(
                path,
                voxel_size=voxel,
                star_pixel_size=self.star_pixel_size.value() or None,
                tomogram=self.star_tomogram.text().strip() or None,
                shape_zyx=shape,
            )
        except Exception as error:  # noqa: BLE001
            report_error(error, f"Opening {path.name}")
            return None
        remember("tomogram/last_folder", str(path.parent))
        picks.tomogram = picks.tomogram or layer.name
        role = PICKS_ROLES[self.picks_role.currentText()]
        make = truth_layer_data if role == "truth" else picks_layer_data
        data, kwargs, kind = make(picks, f"{path.stem} {role}", tomogram_shape=shape)
        outside = int(picks.outside(shape).sum())
        if outside:
            show_info(f"{outside} of {len(picks)} picks fall outside {layer.name}")
        return self._add(data, kwargs, kind)

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
        metadata = binned_metadata(layer, factor)
        scale = float(layer.scale[-1])
        layer.data = binned_lazy(layer.data, factor)
        layer.scale = (scale * factor,) * 3
        layer.translate = np.asarray(layer.translate) + (factor - 1) / 2 * scale
        layer.contrast_limits = limits
        layer.metadata.update(metadata)

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
        scale = float(layer.scale[-1])
        metadata = {
            **{k: v for k, v in layer.metadata.items() if not k.startswith("_")},
            **binned_metadata(layer, factor),
        }
        new = self.viewer.add_image(
            binned_lazy(layer.data, factor),
            name=f"{layer.name} bin{factor}",
            scale=(scale * factor,) * 3,
            translate=tuple(np.asarray(layer.translate) + (factor - 1) / 2 * scale),
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
        shown = float(layer.scale[-1])
        shape = tuple(int(n) for n in data.shape)
        size_nm = ", ".join(f"{voxels_to_nm(n, shown):.0f}" for n in shape)
        self.labels["shape"].setText(f"{shape[0]} × {shape[1]} × {shape[2]} voxels ({size_nm} nm)")
        binning = int(layer.metadata.get("binning", 1))
        if voxel is None:
            voxel_text = f"not in the header: taken as {display_voxel_size(None):g} Å"
        else:
            voxel_text = f"{voxel:.4g} Å" + (f" (bin {binning})" if binning > 1 else "")
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
        self.voxel_size.setValue(display_voxel_size(voxel))

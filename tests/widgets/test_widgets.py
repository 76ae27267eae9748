"""Dock widgets on a ViewerModel (no canvas): Tomogram, Export, Curate."""

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_cryoet_particles._layers import (
    camera,
    navigation_order,
    picks_layer_data,
    set_threshold,
)
from napari_cryoet_particles.io import Picks, read_csv, read_star
from napari_cryoet_particles.simulate import sample_dataset_job

SCORES = [0.9, 0.2, 0.6, 0.4, 0.8]


@pytest.fixture
def viewer(qtbot):
    from napari.components import ViewerModel
    from napari.plugins import _initialize_plugins

    _initialize_plugins()  # a full napari.Viewer does this; the reader is found through npe2
    return ViewerModel()


def add_picks(viewer, voxel: float = 10.0, shape=(12, 20, 24)):
    zyx = np.array([[2, 3, 4], [5, 10, 15], [9, 17, 20], [6, 6, 6], [3, 12, 8]], dtype=float)
    features = pd.DataFrame({"score": SCORES, "cluster": [0, 1, 0, 1, 0]})
    picks = Picks(zyx, voxel, features, "tomo")
    data, kwargs, _ = picks_layer_data(picks, "tomo picks", tomogram_shape=shape)
    return viewer.add_points(data, **kwargs)


# ---------------------------------------------------------------------------------------------
# Tomogram


def test_tomogram_widget_opens_file_and_shows_info(qtbot, viewer, tiny_tomogram: Path) -> None:
    from napari_cryoet_particles._widgets.tomogram import TomogramWidget

    widget = TomogramWidget(viewer)
    qtbot.addWidget(widget)
    [layer] = widget.open_path(tiny_tomogram)
    assert isinstance(layer.data, np.memmap)
    assert widget.selector.layer() is layer
    assert "12 × 20 × 24" in widget.labels["shape"].text()
    assert widget.labels["voxel"].text().startswith("7.5 Å")
    assert "memory-mapped" in widget.labels["storage"].text()
    assert widget.voxel_size.value() == pytest.approx(7.5)


def test_tomogram_widget_binning_stays_lazy(qtbot, viewer, tiny_tomogram: Path) -> None:
    from napari_cryoet_particles._widgets.tomogram import TomogramWidget

    widget = TomogramWidget(viewer)
    qtbot.addWidget(widget)
    [layer] = widget.open_path(tiny_tomogram)
    widget.binning.setCurrentText("2")
    binned = widget.bin_selected()
    assert binned.data.shape == (6, 10, 12)
    assert type(binned.data).__module__.startswith("dask")
    assert tuple(binned.scale) == (15.0, 15.0, 15.0)
    expected = np.asarray(layer.data[:2, :2, :2]).mean()
    assert float(binned.data[0, 0, 0].compute()) == pytest.approx(expected, rel=1e-5)
    # the binned voxel (0,0,0) sits at the centre of the 2x2x2 block it averages
    np.testing.assert_allclose(
        binned.data_to_world((0, 0, 0)), layer.data_to_world((0.5, 0.5, 0.5))
    )
    # binning on open, remembered for the next session
    [opened] = widget.open_path(tiny_tomogram)
    assert opened.data.shape == (6, 10, 12)
    again = TomogramWidget(viewer)
    qtbot.addWidget(again)
    assert again.binning.currentText() == "2"


def test_tomogram_widget_opens_shrec_folder_and_sample(
    qtbot, viewer, shrec_folder: Path, monkeypatch
) -> None:
    from napari.layers import Points

    from napari_cryoet_particles import _sample_data
    from napari_cryoet_particles._widgets.tomogram import TomogramWidget

    threads: list[bool] = []

    def small_sample(cancel=None):
        threads.append(threading.current_thread() is threading.main_thread())
        return (yield from sample_dataset_job(shape=(32, 48, 48), cancel=cancel))

    monkeypatch.setattr(_sample_data, "sample_dataset_job", small_sample)
    widget = TomogramWidget(viewer)
    qtbot.addWidget(widget)
    layers = widget.open_path(shrec_folder)
    assert [type(layer).__name__ for layer in layers] == ["Image", "Points"]
    with qtbot.waitSignal(widget.job.finished, timeout=120_000):
        assert widget.open_sample()
        assert widget.sample_layers == []  # napari stays responsive while it simulates
    assert threads == [False]  # simulated in the worker thread, not the GUI's
    assert any(
        isinstance(layer, Points) and layer.name == "truth" for layer in widget.sample_layers
    )
    assert widget.selector.layer().name == "sample tomogram"


def test_tomogram_without_voxel_size_stays_unknown_until_set(qtbot, viewer, tmp_path: Path) -> None:
    import mrcfile

    from napari_cryoet_particles._layers import volume_of, voxel_size_of
    from napari_cryoet_particles._widgets.tomogram import TomogramWidget

    path = tmp_path / "nosize.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((8, 10, 12), np.float32))
        mrc.voxel_size = 0
    widget = TomogramWidget(viewer)
    qtbot.addWidget(widget)
    [layer] = widget.open_path(path)
    assert voxel_size_of(layer) is None and volume_of(layer).voxel_size is None
    assert tuple(layer.scale) == (10.0, 10.0, 10.0)  # shown as detection will take it
    assert widget.labels["voxel"].text() == "not in the header: taken as 10 Å"
    assert widget.voxel_size.value() == pytest.approx(10.0)
    widget.binning.setCurrentText("2")
    binned = widget.bin_selected()
    assert voxel_size_of(binned) is None and tuple(binned.scale) == (20.0, 20.0, 20.0)
    widget.selector.set_layer(layer)
    widget.voxel_size.setValue(8.0)
    widget.apply_voxel_size()
    assert voxel_size_of(layer) == 8.0 and tuple(layer.scale) == (8.0, 8.0, 8.0)
    assert widget.labels["voxel"].text() == "8 Å"


def test_tomogram_info_lines_fit_a_narrow_dock(qtbot, viewer, tiny_tomogram: Path) -> None:
    from napari_cryoet_particles._widgets.tomogram import TomogramWidget

    widget = TomogramWidget(viewer)
    qtbot.addWidget(widget)
    widget.open_path(tiny_tomogram)
    widget.resize(300, widget.sizeHint().height())
    widget.show()
    qtbot.waitExposed(widget)
    for key in ("voxel", "range", "contrast", "mean", "dtype", "storage"):
        label = widget.labels[key]
        assert label.text() != "—"
        assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width(), key


def test_tomogram_widget_reports_bad_file(qtbot, viewer, tmp_path: Path, monkeypatch) -> None:
    from napari_cryoet_particles import _reader
    from napari_cryoet_particles._widgets import tomogram

    messages: list[str] = []
    monkeypatch.setattr(_reader, "_warn", messages.append)
    monkeypatch.setattr(
        tomogram, "report_error", lambda error, what: messages.append(f"{what}: {error}")
    )
    widget = tomogram.TomogramWidget(viewer)
    qtbot.addWidget(widget)
    bad = tmp_path / "bad.mrc"
    bad.write_bytes(b"\0" * 100)
    assert widget.open_path(bad) == []
    assert any("bad.mrc" in m for m in messages)
    assert len(viewer.layers) == 0


# ---------------------------------------------------------------------------------------------
# Export


def test_export_csv_and_star_respect_threshold_and_status(qtbot, viewer, tmp_path: Path) -> None:
    from napari_cryoet_particles._layers import set_status
    from napari_cryoet_particles._widgets.export import ExportWidget

    layer = add_picks(viewer)
    widget = ExportWidget(viewer)
    qtbot.addWidget(widget)
    set_threshold(layer, 0.5)
    set_status(layer, [0], "accepted")
    set_status(layer, [2], "rejected")
    assert "3 picks" in widget.summary.text()

    widget.format.setCurrentText("CSV (voxels + Å)")
    written = widget.export_to(tmp_path / "picks")
    assert written == tmp_path / "picks.csv"
    picks = read_csv(written)
    assert sorted(picks.scores) == [0.6, 0.8, 0.9]
    assert picks.voxel_size == 10.0

    widget.which.setCurrentText("Accepted and added only")
    widget.format.setCurrentText("RELION 5 STAR (centred Å)")
    star = widget.export_to(tmp_path / "accepted.star")
    picks = read_star(star, shape_zyx=(12, 20, 24))
    np.testing.assert_allclose(picks.zyx, layer.data[[0]], atol=1e-4)

    widget.format.setCurrentText("RELION 4 STAR (voxels)")
    widget.confirm_overwrite = lambda path: False
    assert widget.export_to(star) is None
    assert read_star(star, shape_zyx=(12, 20, 24)).zyx.shape == (1, 3)
    asked: list[Path] = []
    widget.confirm_overwrite = lambda path: asked.append(path) or True
    widget.which.setCurrentText("Every point (ignore threshold)")
    assert widget.export_to(star) == star
    assert asked == [star]
    assert len(read_star(star)) == 5


def test_export_shrec_and_copick(qtbot, viewer, tmp_path: Path) -> None:
    from napari_cryoet_particles._widgets.export import ExportWidget
    from napari_cryoet_particles.io import read_copick_json, read_shrec_locations

    layer = add_picks(viewer)
    widget = ExportWidget(viewer)
    qtbot.addWidget(widget)
    widget.format.setCurrentText("SHREC particle_locations.txt")
    txt = widget.export_to(tmp_path / "particle_locations.txt")
    np.testing.assert_allclose(read_shrec_locations(txt, 10.0).zyx, layer.data)
    widget.format.setCurrentText("copick JSON (Å)")
    picks = read_copick_json(widget.export_to(tmp_path / "picks.json"))
    np.testing.assert_allclose(picks.zyx, layer.data, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Curate


def test_curate_navigation_status_and_counts(qtbot, viewer) -> None:
    from napari_cryoet_particles._widgets.curate import CurateWidget

    layer = add_picks(viewer)
    widget = CurateWidget(viewer)
    qtbot.addWidget(widget)
    assert widget.layer is layer
    assert viewer.layers.selection.active is layer
    assert widget.review_order.currentText() == "least certain first"
    scores = layer.features["score"].to_numpy()
    borderline = np.argsort(np.abs(scores - 0.5), kind="stable")
    assert navigation_order(layer, "uncertain").tolist() == borderline.tolist()
    widget.next()
    assert widget.current == borderline[0]
    widget.current = None
    widget.review_order.setCurrentText("highest score first")
    widget.next()  # highest score first
    assert widget.current == 0 and layer.selected_data == {0}
    assert viewer.dims.point[0] == pytest.approx(20.0)  # z = 2 voxels of 10 Å
    assert tuple(camera(viewer).center[-2:]) == pytest.approx((30.0, 40.0))
    widget.accept()
    widget.next()
    assert widget.current == 4
    widget.reject()
    widget.previous()
    assert widget.current == 0
    statuses = layer.features["status"].tolist()
    assert statuses == ["accepted", "auto", "auto", "auto", "rejected"]
    assert "accepted 1" in widget.counts.text() and "rejected 1" in widget.counts.text()
    # border colours follow the status
    np.testing.assert_allclose(layer.border_color[0], (0.2, 0.9, 0.2, 1.0))

    widget.slab.setValue(3.0)  # ± 3 nm around the slice, on the z axis only
    assert viewer.dims.margin_left == (30.0, 0.0, 0.0) == viewer.dims.margin_right
    assert layer.projection_mode == "rescale_spherical"

    widget.filters["rejected"].setChecked(False)
    assert not layer.shown[4] and layer.shown[:4].all()
    set_threshold(layer, 0.5)
    assert layer.shown.tolist() == [True, False, True, False, False]
    layer.selected_data = set()
    widget.current = None
    widget.next()
    widget.next()
    widget.next()
    assert widget.current == 0  # wraps around the shown picks (0.9, 0.6)


def test_curate_keys_bound_on_layer_and_added_points(qtbot, viewer) -> None:
    from napari_cryoet_particles._widgets.curate import SHORTCUTS, CurateWidget

    layer = add_picks(viewer)
    widget = CurateWidget(viewer)
    qtbot.addWidget(widget)
    bound = {str(k).lower() for k in layer.keymap}
    assert {key for key, _, _ in SHORTCUTS.values()} <= bound
    layer.selected_data = {1}
    layer.keymap[next(k for k in layer.keymap if str(k).lower() == "y")](layer)
    assert layer.features["status"][1] == "accepted"

    # napari copies the selected point's features to a new point: we mark it "added"
    layer.selected_data = {1}
    layer.add(np.array([4.0, 4.0, 4.0]))
    row = layer.features.iloc[-1]
    assert row["status"] == "added" and np.isnan(row["score"]) and row["cluster"] == -1
    set_threshold(layer, 0.95)
    assert layer.shown[-1]  # added picks are never hidden by the score threshold
    assert "added 1" in widget.counts.text()

    viewer.cursor.position = (50.0, 60.0, 70.0)
    widget.add()
    np.testing.assert_allclose(layer.data[-1], (5.0, 6.0, 7.0))
    assert layer.features["status"].iloc[-1] == "added"
    widget.delete()
    assert len(layer.data) == 6


def test_curate_key_buttons_keep_their_text_in_a_narrow_dock(qtbot, viewer) -> None:
    from napari_cryoet_particles._widgets.curate import CurateWidget

    add_picks(viewer)
    widget = CurateWidget(viewer)
    qtbot.addWidget(widget)
    assert widget.minimumSizeHint().width() <= 260
    widget.resize(widget.minimumSizeHint().width(), widget.sizeHint().height())
    widget.show()
    qtbot.waitExposed(widget)
    for action, button in widget.buttons.items():
        text_width = button.fontMetrics().horizontalAdvance(button.text())
        assert button.width() >= text_width + 8, action


# ---------------------------------------------------------------------------------------------
# Docks of one viewer share state; two viewers do not


def test_the_held_model_is_per_viewer(qtbot) -> None:
    from napari.components import ViewerModel

    from napari_cryoet_particles._widgets._state import viewer_state
    from napari_cryoet_particles._widgets.detect import MODEL_DEFAULT, MODEL_TRAINED, DetectWidget

    first, second = ViewerModel(), ViewerModel()
    docks = {}
    for viewer in (first, second):
        docks[viewer] = DetectWidget(viewer)
        qtbot.addWidget(docks[viewer])
        docks[viewer].model.setCurrentText(MODEL_DEFAULT)
    held = object()
    viewer_state(first).models.set(held, "trained here")
    assert docks[first].model.currentText() == MODEL_TRAINED
    assert docks[first].chosen_model() is held
    assert docks[second].model.currentText() == MODEL_DEFAULT
    assert viewer_state(second).models.model is None


def test_picks_changes_reach_the_docks_showing_that_layer_only(qtbot, viewer) -> None:
    from napari.components import ViewerModel

    from napari_cryoet_particles._layers import set_status
    from napari_cryoet_particles._widgets.export import ExportWidget

    first = add_picks(viewer)
    other_viewer = ViewerModel()
    other = add_picks(other_viewer)
    here, there = ExportWidget(viewer), ExportWidget(other_viewer)
    qtbot.addWidget(here)
    qtbot.addWidget(there)
    assert here.selector.layer() is first and there.selector.layer() is other
    with (
        qtbot.assertNotEmitted(there.selector.picksChanged),
        qtbot.waitSignal(here.selector.picksChanged) as blocker,
    ):
        set_status(first, [0], "rejected")
    assert blocker.args == [first]
    second = add_picks(viewer)  # a new picks layer becomes the selection
    assert here.selector.layer() is second
    with qtbot.assertNotEmitted(here.selector.picksChanged):
        set_status(first, [1], "accepted")


# ---------------------------------------------------------------------------------------------
# Metrics


def test_metrics_match_evaluate_and_follow_curation(
    qtbot, viewer, shrec_folder: Path, tmp_path: Path
) -> None:
    from napari_cryoet_particles._layers import set_status
    from napari_cryoet_particles._widgets.metrics import MetricsWidget
    from napari_cryoet_particles._writer import write_points
    from napari_cryoet_particles.evaluate.report import evaluate_files

    widget = MetricsWidget(viewer)
    qtbot.addWidget(widget)
    assert not widget.body.isEnabled()
    viewer.open(str(shrec_folder), plugin="napari-cryoet-particles")
    assert widget.body.isEnabled()
    # two picks on truth particles (rows 0 and 1), one near row 2 but 5 voxels off, one far away
    zyx = np.array([[2.0, 3.0, 4.5], [5.0, 10.0, 15.0], [9.0, 12.0, 20.0], [0.0, 19.0, 0.0]])
    features = pd.DataFrame({"score": [0.9, 0.8, 0.7, 0.6], "cluster": [0, 1, 0, 1]})
    data, kwargs, _ = picks_layer_data(
        Picks(zyx, 10.0, features, "model_0"), "picks", tomogram_shape=(12, 20, 24)
    )
    layer = viewer.add_points(data, **kwargs)
    widget.radius.setValue(2.0)
    widget.recompute()
    result = widget.report["result"]
    assert (result.tp, result.fp, result.fn) == (2, 2, 1)

    csv = tmp_path / "picks.csv"
    write_points(str(csv), layer.data, layer._get_state())
    expected = evaluate_files(shrec_folder, csv, radius=2.0)
    assert result.summary() == expected.result.summary()
    assert widget.report["curves"].to_dict() == expected.curves.to_dict()
    assert f"F1 {expected.result.f1:.3f}" in widget.headline.text()

    set_status(layer, [1], "rejected")  # curation: the metrics follow (after the debounce)
    qtbot.waitUntil(lambda: widget.report and widget.report["result"].tp == 1, timeout=3000)
    set_threshold(layer, 0.75)
    qtbot.waitUntil(lambda: widget.report["result"].n_pred == 1, timeout=3000)
    assert widget.canvas is None or widget.canvas.figure is not None

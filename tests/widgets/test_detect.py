"""Detect dock on a ViewerModel with a tiny untrained model (detection runs in a worker thread)."""

import time
from pathlib import Path

import numpy as np
import pytest

from napari_cryoet_particles._layers import tomogram_layer_data
from napari_cryoet_particles.detect.config import CANDIDATE_FLOOR


@pytest.fixture
def viewer(qtbot):
    from napari.components import ViewerModel

    return ViewerModel()


def blob_volume(shape=(24, 48, 48), n=12, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    volume = rng.normal(0, 0.3, shape).astype(np.float32)
    grid = np.indices(shape, dtype=np.float32)
    for centre in rng.uniform(4, np.asarray(shape) - 4, size=(n, 3)):
        d2 = sum((grid[a] - centre[a]) ** 2 for a in range(3))
        volume -= np.exp(-d2 / 8).astype(np.float32)
    return volume


def make_widget(qtbot, viewer, model: Path):
    from napari_cryoet_particles._widgets.detect import MODEL_FILE, DetectWidget

    data, kwargs, _ = tomogram_layer_data(blob_volume(), 10.0, "blobs")
    image = viewer.add_image(data, **kwargs)
    widget = DetectWidget(viewer)
    qtbot.addWidget(widget)
    widget.model.setCurrentText(MODEL_FILE)
    widget.model_path.setText(str(model))
    widget.diameter.setValue(6.0)
    widget.groups.setValue(2)
    widget.device.setCurrentText("cpu")
    return widget, image


def test_detect_adds_picks_and_threshold_filters_instantly(qtbot, viewer, tiny_model: Path) -> None:
    widget, image = make_widget(qtbot, viewer, tiny_model)
    widget.score_map.setChecked(True)
    with qtbot.waitSignal(widget.job.finished, timeout=120_000) as blocker:
        assert widget.run()
    outcome = blocker.args[0]
    assert outcome.error is None and not outcome.cancelled
    auto = outcome.result.info["auto_threshold"]
    assert widget.threshold.value() == pytest.approx(auto, abs=0.01)  # the CLI's threshold
    layer = widget.picks_layer
    assert layer.name == "blobs picks" and layer in viewer.layers
    assert tuple(layer.scale) == tuple(image.scale)
    assert {"score", "group", "status", "class", "cluster"} <= set(layer.features.columns)
    assert set(layer.features["status"]) == {"auto"}
    assert layer.size[0] == pytest.approx(6.0)  # 6 nm diameter = 6 voxels of 1 nm
    scores = layer.features["score"].to_numpy()
    assert scores.min() >= CANDIDATE_FLOOR - 1e-9  # candidates kept for the slider and refine

    widget.threshold.setValue(0.0)
    assert layer.shown.all()
    cut = float(np.median(scores))
    widget.threshold.setValue(cut)
    np.testing.assert_array_equal(layer.shown, scores >= widget.threshold.value())
    assert layer.metadata["score_threshold"] == pytest.approx(cut, abs=0.01)
    assert len(layer.data) == len(scores)  # nothing recomputed or dropped
    assert "picks at score" in widget.summary.text()

    widget.color_by.setCurrentText("group")
    groups = layer.features["group"].to_numpy()
    first, second = np.flatnonzero(groups == groups[0])[:1], np.flatnonzero(groups != groups[0])[:1]
    assert len(second), "two groups were asked for"
    assert not np.allclose(layer.face_color[first], layer.face_color[second])

    score_layer = widget.score_layer
    assert score_layer is not None and score_layer.name == "blobs score map"
    # the score map covers the tomogram: its last voxel is within one step of the volume's end
    end = np.asarray(score_layer.data_to_world(np.asarray(score_layer.data.shape) - 1))
    image_end = np.asarray(image.data_to_world(np.asarray(image.data.shape) - 1))
    assert np.all(np.abs(end - image_end) <= 2 * 10.0)


def test_a_tomogram_without_voxel_size_is_detected_at_10_angstrom_as_in_the_cli(
    qtbot, viewer, tiny_model: Path
) -> None:
    from napari_cryoet_particles._layers import picks_from_layer, voxel_size_of

    widget, image = make_widget(qtbot, viewer, tiny_model)
    viewer.layers.remove(image)
    data, kwargs, _ = tomogram_layer_data(blob_volume(), None, "no size")
    image = viewer.add_image(data, **kwargs)
    widget.selector.set_layer(image)
    with qtbot.waitSignal(widget.job.finished, timeout=120_000) as blocker:
        assert widget.run()
    outcome = blocker.args[0]
    assert outcome.error is None and not outcome.cancelled  # not refused as a 1 Å tomogram
    assert outcome.result.info["input_voxel_size"] == 10.0
    layer = widget.picks_layer
    assert tuple(layer.scale) == tuple(image.scale) == (10.0, 10.0, 10.0)
    assert picks_from_layer(layer, "all").voxel_size == 10.0  # the assumption, stated in exports
    assert voxel_size_of(image) is None  # the tomogram's own size is still unknown


def test_detect_cancel_stops_quickly(qtbot, viewer, tiny_model: Path) -> None:
    widget, _ = make_widget(qtbot, viewer, tiny_model)
    with qtbot.waitSignal(widget.job.finished, timeout=60_000) as blocker:
        assert widget.run()
        started = time.monotonic()
        widget.job.cancel()
    assert blocker.args[0].cancelled
    assert time.monotonic() - started < 5.0
    assert widget.picks_layer is None
    assert "cancelled" in widget.job.status.text()


def test_detect_reports_bad_model_without_traceback(
    qtbot, viewer, tmp_path: Path, monkeypatch
) -> None:
    from napari_cryoet_particles._widgets import _common

    errors: list[str] = []
    monkeypatch.setattr(_common, "show_error", errors.append)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    widget, _ = make_widget(qtbot, viewer, bad)
    with qtbot.waitSignal(widget.job.finished, timeout=60_000) as blocker:
        widget.run()
    assert blocker.args[0].error is not None
    assert len(errors) == 1 and "bad.pt" in errors[0] and "Traceback" not in errors[0]
    assert widget.run_button.isEnabled()


def test_preset_defaults_to_the_cli_and_can_be_switched(qtbot, viewer, tiny_model: Path) -> None:
    from napari_cryoet_particles.cli import build_parser, detection_config
    from napari_cryoet_particles.detect.params import DEFAULT_PRESET, PRESETS

    widget, _ = make_widget(qtbot, viewer, tiny_model)
    assert [widget.preset.itemText(i) for i in range(widget.preset.count())] == list(PRESETS)
    assert widget.preset.currentText() == DEFAULT_PRESET
    cli = detection_config(build_parser().parse_args(["detect", "t.mrc", "--out", "p.csv"]))
    assert widget.config().params == cli.params == PRESETS[DEFAULT_PRESET]
    widget.preset.setCurrentText("embedding-only")
    config = widget.config()
    assert config.params == PRESETS["embedding-only"]
    assert (config.density_weight, config.n_clusters) == (0.0, 3)
    with qtbot.waitSignal(widget.job.finished, timeout=120_000) as blocker:
        assert widget.run()
    outcome = blocker.args[0]
    assert outcome.error is None and not outcome.cancelled
    assert len(outcome.result.info["cluster_sizes"]) == 3
    assert outcome.result.info["preset"] == "embedding-only"
    assert widget.picks_layer is not None and len(widget.picks_layer.data) > 0


def test_detection_finishing_after_its_tomogram_was_removed_keeps_the_picks(
    qtbot, viewer, tiny_model: Path, monkeypatch
) -> None:
    from napari_cryoet_particles._widgets import detect

    notices: list[str] = []
    monkeypatch.setattr(detect, "show_info", notices.append)
    widget, image = make_widget(qtbot, viewer, tiny_model)
    with qtbot.waitSignal(widget.job.finished, timeout=120_000) as blocker:
        assert widget.run()
        viewer.layers.remove(image)
    assert blocker.args[0].error is None
    assert widget.picks_layer in viewer.layers and len(widget.picks_layer.data) > 0
    assert tuple(widget.picks_layer.scale) == tuple(image.scale)
    assert len(notices) == 1 and "blobs" in notices[0]
    assert widget.run_button.isEnabled()


def test_building_the_detect_and_train_docks_does_not_import_torch(tmp_path: Path) -> None:
    """napari builds docks at start-up: torch (and scikit-learn) load when a job runs, not then."""
    import os
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from qtpy.QtWidgets import QApplication\n"
        "app = QApplication.instance() or QApplication([])\n"
        "from napari.components import ViewerModel\n"
        "from napari_cryoet_particles._widgets.detect import DetectWidget\n"
        "from napari_cryoet_particles._widgets.train import TrainWidget\n"
        "DetectWidget(ViewerModel()), TrainWidget(ViewerModel())\n"
        "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))\n"
    )
    env = dict(os.environ, NAPARI_CRYOET_PARTICLES_SETTINGS=str(tmp_path / "settings.ini"))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_device_list_is_probed_when_opened_and_keeps_a_stored_choice(qtbot) -> None:
    from napari_cryoet_particles._widgets._common import DeviceBox, _restore

    box = DeviceBox()
    qtbot.addWidget(box)
    assert [box.itemText(i) for i in range(box.count())] == ["auto", "cpu"]
    _restore(box, "cuda:1")
    assert box.currentText() == "cuda:1"
    box.showPopup()
    box.hidePopup()
    assert box.findText("auto") == 0 and box.findText("cpu") == 1 and box._probed


def captured_jobs(monkeypatch) -> list:
    """Replace detection with a job that records its config and returns nothing."""
    import napari_cryoet_particles.detect as detect_package

    configs: list = []

    def fake_job(volume, model, config, cancel=None):
        configs.append(config)
        return
        yield

    monkeypatch.setattr(detect_package, "detect_particles_job", fake_job)
    return configs


def test_size_range_reaches_the_config_as_the_cli_does(
    qtbot, viewer, tiny_model: Path, monkeypatch
) -> None:
    from napari_cryoet_particles.cli import build_parser, detection_config

    configs = captured_jobs(monkeypatch)
    widget, _ = make_widget(qtbot, viewer, tiny_model)
    widget.diameter.setValue(100.0)
    widget.size_range.smallest.setValue(80.0)
    widget.size_range.largest.setValue(120.0)
    with qtbot.waitSignal(widget.job.finished, timeout=30_000):
        assert widget.run()
    [config] = configs
    args = build_parser().parse_args(
        ["detect", "t.mrc", "--out", "p.csv", "--diameter", "100", "--diameters", "80", "120"]
    )
    cli = detection_config(args)
    assert (config.min_diameter_nm, config.max_diameter_nm) == (80.0, 120.0)
    assert (config.min_diameter_nm, config.max_diameter_nm, config.diameter_nm) == (
        cli.min_diameter_nm,
        cli.max_diameter_nm,
        cli.diameter_nm,
    )
    assert widget.picks_layer is None and widget.run_button.isEnabled()


def test_size_range_in_the_wrong_order_says_so_and_starts_no_job(
    qtbot, viewer, tiny_model: Path, monkeypatch
) -> None:
    from napari_cryoet_particles._widgets import _common

    errors: list[str] = []
    monkeypatch.setattr(_common, "show_error", errors.append)
    configs = captured_jobs(monkeypatch)
    widget, _ = make_widget(qtbot, viewer, tiny_model)
    widget.size_range.smallest.setValue(30.0)
    widget.size_range.largest.setValue(20.0)
    assert not widget.run()
    assert configs == [] and not widget.job.running
    assert len(errors) == 1 and "smallest (30 nm) is larger than the largest (20 nm)" in errors[0]
    assert "smallest" in widget.job.status.text()
    assert widget.run_button.isEnabled()


def test_size_range_defaults_to_the_cli_and_is_remembered(qtbot, viewer) -> None:
    from napari_cryoet_particles._widgets.detect import DetectWidget
    from napari_cryoet_particles.detect import DetectionConfig

    widget = DetectWidget(viewer)
    qtbot.addWidget(widget)
    defaults = DetectionConfig()
    assert widget.size_range.diameters() == (defaults.min_diameter_nm, defaults.max_diameter_nm)
    assert widget.diameter.value() == defaults.diameter_nm  # independent, as --diameter
    widget.size_range.smallest.setValue(80.0)
    widget.size_range.largest.setValue(120.0)
    again = DetectWidget(viewer)
    qtbot.addWidget(again)
    assert again.size_range.diameters() == (80.0, 120.0)
    assert again.diameter.value() == defaults.diameter_nm


def test_keep_edges_and_structures_reach_the_config_as_the_cli_does(
    qtbot, viewer, tiny_model: Path, monkeypatch
) -> None:
    from napari_cryoet_particles.cli import build_parser, detection_config

    configs = captured_jobs(monkeypatch)
    widget, _ = make_widget(qtbot, viewer, tiny_model)
    assert not widget.keep_edges.isChecked() and not widget.keep_structures.isChecked()
    widget.keep_edges.setChecked(True)
    widget.keep_structures.setChecked(True)
    with qtbot.waitSignal(widget.job.finished, timeout=30_000):
        assert widget.run()
    [config] = configs
    args = build_parser().parse_args(
        ["detect", "t.mrc", "--out", "p.csv", "--keep-edges", "--keep-structures"]
    )
    cli = detection_config(args)
    assert (config.keep_edges, config.keep_structures) == (True, True)
    assert (cli.keep_edges, cli.keep_structures) == (True, True)
    assert not detection_config(build_parser().parse_args(["detect", "t.mrc"])).keep_edges

"""Train dock on a ViewerModel: a few tiny training steps in the worker thread, live loss, save."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from napari_cryoet_particles._layers import tomogram_layer_data


@pytest.fixture
def viewer(qtbot):
    from napari.components import ViewerModel

    return ViewerModel()


@pytest.fixture
def widget(qtbot, viewer):
    from napari_cryoet_particles._widgets.train import TrainWidget

    volume = np.random.default_rng(0).normal(size=(32, 48, 48)).astype(np.float32)
    data, kwargs, _ = tomogram_layer_data(volume, 10.0, "noise")
    viewer.add_image(data, **kwargs)
    widget = TrainWidget(viewer)
    qtbot.addWidget(widget)
    widget.steps.setValue(3)
    widget.batch_size.setValue(2)
    widget.crop_size.setValue(16)
    widget.device.setCurrentText("cpu")
    widget.start_from.setCurrentText("scratch")
    return widget


@pytest.mark.slow
def test_train_runs_plots_and_hands_model_to_detect(qtbot, viewer, widget, tmp_path: Path) -> None:
    from napari_cryoet_particles._widgets._state import viewer_state
    from napari_cryoet_particles._widgets.detect import MODEL_TRAINED, DetectWidget
    from napari_cryoet_particles.model import load_checkpoint

    detect = DetectWidget(viewer)
    qtbot.addWidget(detect)
    assert [widget.tomograms.item(i).text() for i in range(widget.tomograms.count())] == ["noise"]
    widget.w_pixel.setValue(0.5)
    config = widget.train_config()
    set_by_dock = {"ntxent": 1.0, "dense": 0.0, "pixel": 0.5, "puzzle_ce": 0.0, "puzzle_kl": 0.0}
    assert {name: config.loss_weights[name] for name in set_by_dock} == set_by_dock
    assert config.augment.crop_size == 16
    assert widget._work_dir is None  # no temporary folder until something is trained
    with qtbot.waitSignal(widget.job.finished, timeout=180_000) as blocker:
        assert widget.start()
    outcome = blocker.args[0]
    assert outcome.error is None and not outcome.cancelled
    assert outcome.result.path.parent == widget.work_dir()
    assert outcome.result.steps == 3
    assert len(widget.plot.history["loss"]) == 3
    models = viewer_state(viewer).models
    assert models.model is not None and "trained here" in models.label
    assert detect.model.currentText() == MODEL_TRAINED
    assert "ETA" in widget.job.status.text() or "done" in widget.job.status.text()

    saved = widget.save_checkpoint(tmp_path / "mine")
    assert saved == tmp_path / "mine.pt"
    assert load_checkpoint(saved).config.training["steps"] == 3
    widget.confirm_overwrite = lambda path: False
    assert widget.save_checkpoint(saved) is None


def test_train_cancel_keeps_partial_model(qtbot, viewer, widget) -> None:
    from napari_cryoet_particles._widgets._state import viewer_state

    widget.steps.setValue(10_000)
    with qtbot.waitSignal(widget.job.finished, timeout=60_000) as blocker:
        assert widget.start()
        qtbot.waitUntil(lambda: len(widget.plot.history.get("loss", [])) >= 1, timeout=60_000)
        widget.job.cancel()
    assert blocker.args[0].cancelled
    assert "cancelled here" in viewer_state(viewer).models.label


def test_train_bad_checkpoint_is_a_notification(qtbot, widget, tmp_path: Path, monkeypatch) -> None:
    from napari_cryoet_particles._widgets import _common

    errors: list[str] = []
    monkeypatch.setattr(_common, "show_error", errors.append)
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x00" * 10)
    assert widget.load_checkpoint(bad) is None
    assert len(errors) == 1 and "broken.pt" in errors[0]


def test_dock_defaults_are_the_training_defaults(qtbot, viewer) -> None:
    """A fresh dock trains exactly like ``cryoet-particles train`` (the measured default recipe)."""
    from napari_cryoet_particles._widgets.train import TrainWidget
    from napari_cryoet_particles.model.train import TrainConfig

    widget = TrainWidget(viewer)
    qtbot.addWidget(widget)
    config, default = widget.train_config(), TrainConfig()
    assert config.steps == default.steps
    assert config.batch_size == default.batch_size
    assert config.loss_weights == default.loss_weights
    # the dock's contrast box is symmetric in log scale: 1/1.4-1.4 instead of 0.7-1.4
    assert config.augment.contrast_range == pytest.approx(default.augment.contrast_range, abs=0.02)
    same_contrast = replace(config.augment, contrast_range=default.augment.contrast_range)
    assert same_contrast == default.augment

"""The docks on a copick project: open a run, detect on its tomogram, write the picks back into
the run (read again through the copick API), score them with the CZII metric; picks files."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import COPICK_SHAPE, COPICK_TRUTH_USER, make_copick_project


@pytest.fixture
def viewer(qtbot):
    from napari.components import ViewerModel

    return ViewerModel()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_copick_project(tmp_path_factory.mktemp("copick_docks"))


def test_copick_run_detect_and_write_back(qtbot, viewer, project: Path, tiny_model: Path) -> None:
    import copick

    from napari_cryoet_particles._widgets.detect import MODEL_FILE, DetectWidget
    from napari_cryoet_particles._widgets.export import ExportWidget
    from napari_cryoet_particles._widgets.metrics import METRICS, MetricsWidget
    from napari_cryoet_particles._widgets.tomogram import TomogramWidget

    tomogram = TomogramWidget(viewer)
    qtbot.addWidget(tomogram)
    assert tomogram.load_copick_project(project)
    assert [tomogram.copick_run.itemText(i) for i in range(2)] == ["TS_1", "TS_2"]
    tomogram.copick_run.setCurrentText("TS_2")
    assert tomogram.copick_tomogram.currentText() == "wbp @ 10 Å"
    image, truth = tomogram.open_copick_run()
    assert image.name == "TS_2" and image.data.shape == COPICK_SHAPE
    assert truth.metadata["role"] == "truth" and len(truth.data) == 4
    assert truth.name == f"TS_2 ribosome ({COPICK_TRUTH_USER}/0)"

    detect = DetectWidget(viewer)
    qtbot.addWidget(detect)
    detect.model.setCurrentText(MODEL_FILE)
    detect.model_path.setText(str(tiny_model))
    detect.device.setCurrentText("cpu")
    with qtbot.waitSignal(detect.job.finished, timeout=120_000) as blocker:
        assert detect.run()
    assert blocker.args[0].error is None
    picks_layer = detect.picks_layer

    export = ExportWidget(viewer)
    qtbot.addWidget(export)
    export.selector.set_layer(picks_layer)
    assert export.copick_button.isEnabled()
    assert "TS_2 of project.json" in export.copick_run.text()
    export.copick_object.setCurrentText("ribosome")
    export.copick_session.setText("dock")
    expected = export.selected_picks()
    assert export.export_to_copick() is not None
    [stored] = (
        copick.from_file(str(project))
        .get_run("TS_2")
        .get_picks(object_name="ribosome", user_id="cryoet-particles", session_id="dock")
    )
    np.testing.assert_allclose(
        stored.full_positions(), expected.zyx[:, ::-1] * expected.voxel_size, atol=1e-3
    )
    assert export.export_to_copick(overwrite=False) is None  # exists: not replaced unasked
    assert "exist" in export.status.text()

    metrics = MetricsWidget(viewer)
    qtbot.addWidget(metrics)
    metrics.truth_selector.set_layer(truth)
    metrics.picks_selector.set_layer(picks_layer)
    metrics.metric.setCurrentText(next(k for k, v in METRICS.items() if v == "czii"))
    metrics.pred_type.setCurrentText("ribosome")
    metrics.recompute()
    result = metrics.report["czii"]
    row = result.per_type.set_index("type").loc["ribosome"]
    assert row["tp"] + row["fn"] == 4 and row["tp"] + row["fp"] == len(expected)
    assert "CZII score" in metrics.headline.text()


def test_picks_file_opens_on_the_selected_tomogram(
    qtbot, viewer, project: Path, tmp_path: Path
) -> None:
    import pandas as pd
    import starfile

    from napari_cryoet_particles._widgets.tomogram import TomogramWidget

    tomogram = TomogramWidget(viewer)
    qtbot.addWidget(tomogram)
    tomogram.load_copick_project(project)
    tomogram.open_copick_run()
    star = tmp_path / "picks.star"
    starfile.write(
        {
            "particles": pd.DataFrame(
                {
                    "rlnCoordinateX": [40.0, 80.0],
                    "rlnCoordinateY": [20.0, 40.0],
                    "rlnCoordinateZ": [8.0, 16.0],
                    "rlnTomoName": ["TS_1", "TS_2"],
                }
            )
        },
        star,
    )
    assert tomogram.open_picks(star) is None  # no pixel size: refused, not read as 1 Å
    tomogram.star_pixel_size.setValue(5.0)
    assert tomogram.open_picks(star) is None  # two tomograms: say which
    tomogram.star_tomogram.setText("TS_2")
    layer = tomogram.open_picks(star)
    np.testing.assert_allclose(layer.data, [[8.0, 20.0, 40.0]])
    assert layer.metadata["role"] == "truth"

"""End to end in a real napari window: sample → detect → curate with keys → metrics → export."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile

PLUGIN = "napari-cryoet-particles"

pytestmark = pytest.mark.xvfb


def write_sample_folder(folder: Path, image, truth_layer) -> Path:
    """The sample as a SHREC folder, to score it with ``cryoet-particles evaluate``'s function."""
    from napari_cryoet_particles._layers import picks_from_layer
    from napari_cryoet_particles.io import write_shrec_locations, write_tomogram

    folder.mkdir()
    write_tomogram(
        folder / "reconstruction.mrc", np.asarray(image.data), image.metadata["voxel_size"]
    )
    write_shrec_locations(folder / "particle_locations.txt", picks_from_layer(truth_layer, "all"))
    occupancy = np.asarray(truth_layer.metadata["occupancy"]).astype(np.int16)
    write_tomogram(folder / "occupancy_mask.mrc", occupancy, image.metadata["voxel_size"])
    return folder


def key(qtbot, viewer, text: str) -> None:
    """A real key press on the canvas, as napari receives it from Qt."""
    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, text)


@pytest.mark.slow
def test_sample_detect_curate_metrics_export(
    make_napari_viewer, qtbot, tiny_model: Path, tmp_path: Path
) -> None:
    from napari_cryoet_particles._widgets.detect import MODEL_FILE
    from napari_cryoet_particles.evaluate.report import evaluate_files
    from napari_cryoet_particles.io import read_csv

    viewer = make_napari_viewer(show=True)
    docks = {
        name: viewer.window.add_plugin_dock_widget(PLUGIN, name)[1]
        for name in ("Tomogram", "Detect", "Curate", "Metrics", "Export")
    }
    with qtbot.waitSignal(docks["Tomogram"].job.finished, timeout=120_000):
        assert docks["Tomogram"].open_sample()
    image, truth = docks["Tomogram"].sample_layers
    assert tuple(image.scale) == (10.0,) * 3 and truth.metadata["role"] == "truth"

    detect = docks["Detect"]
    assert detect.selector.layer() is image
    detect.model.setCurrentText(MODEL_FILE)
    detect.model_path.setText(str(tiny_model))
    detect.diameter.setValue(8.0)
    detect.groups.setValue(2)
    detect.device.setCurrentText("cpu")
    with qtbot.waitSignal(detect.job.finished, timeout=180_000) as blocker:
        assert detect.run()
    assert blocker.args[0].error is None
    picks = detect.picks_layer
    assert picks in viewer.layers and len(picks.data) > 3
    detect.threshold.setValue(float(np.quantile(picks.features["score"], 0.5)))
    shown = np.flatnonzero(picks.shown)
    assert 0 < len(shown) < len(picks.data)

    curate = docks["Curate"]
    assert curate.layer is picks
    assert viewer.layers.selection.active is picks
    key(qtbot, viewer, "n")  # the least certain pick: scored nearest the slider's threshold
    first = curate.current
    scores = picks.features["score"].to_numpy()[shown]
    threshold = picks.metadata["score_threshold"]
    assert first == shown[np.argmin(np.abs(scores - threshold))]
    assert viewer.dims.point[0] == pytest.approx(
        picks.data_to_world(picks.data[first])[0], abs=10.0
    )
    key(qtbot, viewer, "y")
    key(qtbot, viewer, "n")
    second = curate.current
    picks.selected_data = set()
    key(qtbot, viewer, "x")
    status = picks.features["status"]
    assert status[first] == "accepted" and status[second] == "rejected"
    assert "accepted 1" in curate.counts.text() and "rejected 1" in curate.counts.text()

    metrics = docks["Metrics"]
    qtbot.waitUntil(lambda: bool(metrics.report), timeout=5000)
    qtbot.wait(300)  # let the debounced recompute after the last key settle
    panel = metrics.report["result"]
    assert panel.rule == "shrec"

    export = docks["Export"]
    export.selector.set_layer(picks)
    export.which.setCurrentText("All but rejected")
    export.format.setCurrentText("CSV (voxels + Å)")
    csv = export.export_to(tmp_path / "picks.csv")
    table = pd.read_csv(csv)
    kept = np.flatnonzero(picks.shown & (status.to_numpy() != "rejected"))
    np.testing.assert_allclose(
        table[["z", "y", "x"]].to_numpy(), picks.data[kept], atol=1e-3
    )  # %.6g
    np.testing.assert_allclose(table["x_angstrom"], table["x"] * 10.0, rtol=1e-5)
    assert read_csv(csv).features["status"].tolist().count("accepted") == 1

    folder = write_sample_folder(tmp_path / "sample", image, truth)
    expected = evaluate_files(folder, csv)
    got, want = panel.summary(), expected.result.summary()
    assert got.pop("mean_distance") == pytest.approx(
        want.pop("mean_distance"), abs=1e-4
    )  # CSV keeps 6 digits
    assert got == want
    assert f"F1 {expected.result.f1:.3f}" in metrics.headline.text()

    export.which.setCurrentText("Accepted and added only")
    export.format.setCurrentText("RELION 4 STAR (voxels)")
    star = starfile.read(export.export_to(tmp_path / "accepted.star"))
    star = star["particles"] if isinstance(star, dict) else star
    assert len(star) == 1
    np.testing.assert_allclose(
        star[["rlnCoordinateZ", "rlnCoordinateY", "rlnCoordinateX"]].to_numpy()[0],
        picks.data[first],
        atol=1e-3,
    )
    assert star["rlnImagePixelSize"].iloc[0] == pytest.approx(10.0)
    assert star["rlnTomoName"].iloc[0] == image.name

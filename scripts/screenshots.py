"""Screenshots of each dock widget in use: docs/images/widget_<name>.png.

Opens a real napari window (needs an X display; without one, a private Xvfb is started when the
``Xvfb`` program exists), opens the sample, trains a few steps, detects, curates a few picks,
refines from them, and captures the window with one dock shown at a time.

    python scripts/screenshots.py [--out docs/images] [--model model.pt] [--train-steps 30]
                                  [--only refine ...]

``--only`` takes some of the screenshots (names as in widget_<name>.png) and skips the training
when the Train dock's is not among them and a model to detect with is there.

Detection uses ``--model``, else the shipped default model, else the model the Train dock just
trained (a few steps only: the picks then show the widgets, not the method's accuracy).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PLUGIN = "napari-cryoet-particles"
DOCKS = ("Tomogram", "Train", "Detect", "Curate", "Metrics", "Export")
SHOTS = (
    "tomogram",
    "train",
    "detect",
    "curate",
    "metrics",
    "metrics_curves",
    "export",
    "refine",
    "vlp",
)
#: Rows of the real sample's VLP centres added by hand in the "vlp" shot.
VLP_EXAMPLES = [0, 4, 8]


def rerun_under_xvfb(argv: list[str]) -> None:
    """Without an X display, run this script again under ``xvfb-run`` (Debian package xvfb)."""
    if os.environ.get("DISPLAY"):
        return
    if not shutil.which("xvfb-run"):
        sys.exit(
            "screenshots need an X display: install xvfb (apt-get install xvfb) or set DISPLAY"
        )
    command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, __file__, *argv]
    os.execvp(command[0], command)


def wait_for(job, app, timeout: float = 600.0) -> None:
    """Let the Qt event loop run until a dock's job has finished."""
    deadline = time.monotonic() + timeout
    while job.running and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.05)
    if job.running:
        raise RuntimeError("job did not finish in time")
    settle(app)


def settle(app, seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def mark_near_threshold(picks, truth, n: int = 3, reach: float = 5.0) -> None:
    """Mark picks as a user would: of those nearest the score threshold, ``n`` on a particle
    accepted and ``n`` on none rejected (told by the truth, ``reach`` voxels); the rest auto."""
    from scipy.spatial import cKDTree

    from napari_cryoet_particles._layers import set_status

    scores = picks.features["score"].to_numpy(dtype=float)
    threshold = picks.metadata.get("score_threshold") or 0.5
    distance, _ = cKDTree(np.asarray(truth.data)).query(np.asarray(picks.data))
    order = np.argsort(np.abs(scores - threshold), kind="stable")
    set_status(picks, range(len(scores)), "auto")
    set_status(picks, [i for i in order if distance[i] <= reach][:n], "accepted")
    set_status(picks, [i for i in order if distance[i] > reach][:n], "rejected")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--model", type=Path, default=None, help="checkpoint for Detect")
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument(
        "--only", nargs="+", choices=SHOTS, default=list(SHOTS), help="screenshots to take"
    )
    args = parser.parse_args(argv)
    rerun_under_xvfb(sys.argv[1:] if argv is None else argv)
    # Fresh dock and napari settings, so the screenshots show the defaults the script sets.
    settings = Path(tempfile.mkdtemp()) / "settings.ini"
    os.environ["NAPARI_CRYOET_PARTICLES_SETTINGS"] = str(settings)
    os.environ["NAPARI_CONFIG"] = str(
        settings.parent / "napari.yaml"
    )  # leave the user's napari settings alone
    try:
        return run(args)
    finally:
        shutil.rmtree(settings.parent, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    import napari
    from napari._qt import qt_main_window
    from qtpy.QtWidgets import QApplication, QScrollArea

    from napari_cryoet_particles._layers import centre_on
    from napari_cryoet_particles._widgets.detect import MODEL_DEFAULT, MODEL_FILE, MODEL_TRAINED
    from napari_cryoet_particles.model import default_model_path

    args.out.mkdir(parents=True, exist_ok=True)
    qt_main_window.SHOW_QT_WARNING = False  # napari's Qt warning toast would cover the canvas
    viewer = napari.Viewer(show=True, title="napari-cryoet-particles")
    app = QApplication.instance()
    window = viewer.window._qt_window
    window.resize(1600, 1000)
    docks = {}
    for name in DOCKS:
        # tabified: stacked docks would add up their heights and grow the window past 1000 px
        dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=name != DOCKS[0])
        docks[name] = (dock, widget)
    window.resize(1600, 1000)

    def shoot(name: str, shot: str = "") -> Path | None:
        shot = shot or name.lower()
        if shot not in args.only:
            return None
        for other, (dock, _) in docks.items():
            dock.setVisible(other == name)
        settle(app, 0.8)
        path = args.out / f"widget_{shot}.png"
        viewer.screenshot(str(path), canvas_only=False, flash=False)
        print(f"wrote {path}")
        return path

    tomogram = docks["Tomogram"][1]
    tomogram.open_sample()
    wait_for(tomogram.job, app)
    image, truth = tomogram.sample_layers
    viewer.dims.set_point(0, image.data_to_world((image.data.shape[0] // 2, 0, 0))[0])
    tomogram.show_layer(image)
    shoot("Tomogram")

    train = docks["Train"][1]
    train.steps.setValue(args.train_steps)
    train.batch_size.setValue(4)
    train.crop_size.setValue(24)
    train.device.setCurrentText("auto")
    train.start_from.setCurrentText("scratch")
    if "train" in args.only or (args.model is None and not default_model_path().exists()):
        train.start()
        wait_for(train.job, app)
    shoot("Train")

    detect = docks["Detect"][1]
    if args.model is not None:
        detect.model.setCurrentText(MODEL_FILE)
        detect.model_path.setText(str(args.model))
    elif default_model_path().exists():
        detect.model.setCurrentText(MODEL_DEFAULT)
    else:
        detect.model.setCurrentText(MODEL_TRAINED)
    detect.diameter.setValue(10.0)
    detect.groups.setValue(0)
    detect.score_map.setChecked(True)
    detect.run()
    wait_for(detect.job, app)
    detect.color_by.setCurrentText("score")
    truth.visible = False
    shoot("Detect")

    curate = docks["Curate"][1]
    picks = detect.picks_layer
    for action in ("next", "accept", "next", "accept", "next", "reject", "next"):
        getattr(curate, action)()
    if curate.current is not None:
        centre_on(viewer, picks, curate.current)
    viewer.reset_view()
    detect.score_layer.visible = False
    truth.visible = True
    shoot("Curate")

    metrics = docks["Metrics"][1]
    metrics.recompute()
    shoot("Metrics")
    scroll = metrics.findChild(QScrollArea)
    scroll.verticalScrollBar().setValue(scroll.verticalScrollBar().maximum())
    shoot("Metrics", "metrics_curves")

    export = docks["Export"][1]
    export.selector.set_layer(picks)
    export.which.setCurrentText("All but rejected")
    export.format.setCurrentText("RELION 5 STAR (centred Å)")
    export.export_to(Path(tempfile.mkdtemp()) / "sample_picks.star")
    shoot("Export")

    # last, as the refined layer becomes every dock's choice: Refine from a few marks
    curate.selector.set_layer(picks)
    mark_near_threshold(picks, truth)
    curate.refine()
    wait_for(curate.job, app)
    picks.visible = False
    truth.visible = False
    refined = curate.layer
    accepted = np.flatnonzero(refined.features["status"] == "accepted")
    middle = np.abs(np.asarray(refined.data)[accepted, 0] - image.data.shape[0] / 2)
    curate.go_to(int(accepted[np.argmin(middle)]))
    viewer.reset_view()
    shoot("Curate", "refine")
    if "vlp" in args.only:
        shoot_vlp(viewer, app, curate, docks, shoot)
    viewer.close()
    return 0


def shoot_vlp(viewer, app, curate, docks, shoot) -> None:
    """The real HIV-1 VLP sample: three centres added by hand, then More like these at 80-120 nm
    finds the others (the objects the detector does not propose: hollow shells' centres)."""
    from napari_cryoet_particles._layers import picks_layer_data
    from napari_cryoet_particles._sample_data import (
        REAL_SAMPLE_NAME,
        make_real_sample_data,
        real_sample,
    )
    from napari_cryoet_particles.io import Picks

    viewer.layers.clear()
    (image_data, image_kwargs, _), (truth_data, truth_kwargs, _) = make_real_sample_data()
    image = viewer.add_image(image_data, **image_kwargs)
    truth = viewer.add_points(truth_data, **truth_kwargs)
    volume, centres = real_sample()
    marks = Picks(centres.zyx[VLP_EXAMPLES], volume.voxel_size, None, REAL_SAMPLE_NAME)
    marks.features["status"] = "added"
    data, kwargs, _ = picks_layer_data(marks, "my VLP centres", tomogram_shape=volume.shape)
    added = viewer.add_points(data, **kwargs)
    curate.selector.set_layer(added)
    curate.size_range.smallest.setValue(80.0)
    curate.size_range.largest.setValue(120.0)
    added.selected_data = set(range(len(VLP_EXAMPLES)))
    curate.find_like()
    wait_for(curate.job, app)
    added.visible = False
    truth.visible = True
    middle = float(np.median(centres.zyx[:, 0]))
    viewer.dims.set_point(0, image.data_to_world((middle, 0, 0))[0])
    viewer.reset_view()
    shoot("Curate", "vlp")


if __name__ == "__main__":
    sys.exit(main())

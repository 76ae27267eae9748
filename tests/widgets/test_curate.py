"""Curate dock teaching the detector: Refine from my marks, Find more like the selected picks."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from napari_cryoet_particles._layers import (
    picks_layer_data,
    set_status,
    tomogram_layer_data,
)
from napari_cryoet_particles._widgets._state import viewer_state
from tests.cli.test_refine import SHAPE, blob_tomogram

REACH = 3.0


@dataclass
class Scene:
    volume: np.ndarray
    centres: np.ndarray
    result: object  # DetectionResult with candidates down to a low score


@pytest.fixture(scope="module")
def scene(tiny_model: Path) -> Scene:
    from napari_cryoet_particles.detect import DetectionConfig, detect_particles
    from napari_cryoet_particles.io import Volume

    volume, centres = blob_tomogram()
    config = DetectionConfig(
        diameter_nm=4.0, threshold=0.05, threads=1, device="cpu", keep_edges=True
    )  # a small volume: most misses to reject lie near its faces
    return Scene(volume, centres, detect_particles(Volume(volume, 10.0), tiny_model, config))


@pytest.fixture
def viewer(qtbot):
    from napari.components import ViewerModel

    return ViewerModel()


def detected(qtbot, viewer, scene: Scene):
    """The blob tomogram and the Detect dock's picks layer for it (its result cached)."""
    from napari_cryoet_particles._widgets.detect import DetectWidget

    data, kwargs, _ = tomogram_layer_data(scene.volume, 10.0, "blobs")
    image = viewer.add_image(data, **kwargs)
    detect = DetectWidget(viewer)
    qtbot.addWidget(detect)
    detect.diameter.setValue(4.0)
    layer = detect.show_result(scene.result, image)
    return image, layer


def curate_dock(qtbot, viewer):
    from napari_cryoet_particles._widgets.curate import CurateWidget

    widget = CurateWidget(viewer)
    qtbot.addWidget(widget)
    return widget


def hits_and_misses(layer, centres: np.ndarray) -> tuple[list[int], list[int]]:
    """Indices of the picks on a blob and of those on none, highest score first."""
    distance, _ = cKDTree(centres).query(np.asarray(layer.data))
    order = np.argsort(-layer.features["score"].to_numpy(), kind="stable")
    return (
        [int(i) for i in order if distance[i] <= REACH],
        [int(i) for i in order if distance[i] > REACH],
    )


def positions(layer, status: str) -> np.ndarray:
    return np.asarray(layer.data)[layer.features["status"].to_numpy() == status]


def run(qtbot, widget, start) -> object:
    with qtbot.waitSignal(widget.job.finished, timeout=60_000) as blocker:
        assert start()
    return blocker.args[0]


def test_refine_adds_a_layer_that_keeps_the_marks(qtbot, viewer, scene: Scene) -> None:
    _, layer = detected(qtbot, viewer, scene)
    widget = curate_dock(qtbot, viewer)
    hits, misses = hits_and_misses(layer, scene.centres)
    set_status(layer, hits[:3], "accepted")
    set_status(layer, misses[:3], "rejected")
    outcome = run(qtbot, widget, widget.refine)
    assert outcome.error is None and not outcome.cancelled
    assert outcome.result.detection is scene.result  # the Detect dock's candidates: no detecting
    refined = viewer.layers["blobs picks refined"]
    assert widget.layer is refined  # curated next, with the same keys
    assert tuple(refined.scale) == tuple(layer.scale)
    for status in ("accepted", "rejected"):  # the same marks, in whatever order
        np.testing.assert_allclose(
            np.unique(positions(refined, status), axis=0),
            np.unique(positions(layer, status), axis=0),
        )
    assert refined.shown.all()  # a kept mark is never hidden by a threshold
    assert "accepted 3" in widget.counts.text() and "rejected 3" in widget.counts.text()
    assert widget.refine_button.isEnabled()

    # refining the refined layer uses the same candidates again
    set_status(refined, [int(np.flatnonzero(refined.features["status"] == "auto")[0])], "rejected")
    outcome = run(qtbot, widget, widget.refine)
    assert outcome.result.detection is scene.result
    assert "blobs picks refined refined" in viewer.layers


def test_save_refined_model_holds_what_refine_learned(
    qtbot, viewer, scene: Scene, tiny_model, tmp_path
) -> None:
    from napari_cryoet_particles._widgets._state import viewer_state
    from napari_cryoet_particles.detect.head import PickHead
    from napari_cryoet_particles.model.checkpoint import load_checkpoint

    _, layer = detected(qtbot, viewer, scene)
    widget = curate_dock(qtbot, viewer)
    assert not widget.save_model_button.isEnabled()
    assert widget.save_refined_model(tmp_path / "nothing.pt") is None
    hits, misses = hits_and_misses(layer, scene.centres)
    set_status(layer, hits[:3], "accepted")
    set_status(layer, misses[:3], "rejected")
    run(qtbot, widget, widget.refine)
    assert widget.save_model_button.isEnabled()
    viewer_state(viewer).models.set(load_checkpoint(tiny_model), "tiny")
    saved = widget.save_refined_model(tmp_path / "refined")
    assert saved == tmp_path / "refined.pt"
    head = PickHead.from_payload(load_checkpoint(saved).pick_head)
    assert head.kind == "refine" and head.n_positive == 3 and head.n_negative == 3


def test_find_more_like_the_selected_picks(qtbot, viewer, scene: Scene) -> None:
    _, layer = detected(qtbot, viewer, scene)
    widget = curate_dock(qtbot, viewer)
    hits, misses = hits_and_misses(layer, scene.centres)
    set_status(layer, [misses[0]], "accepted")  # an earlier mark of another kind: not an example
    layer.selected_data = set(hits[:3])
    outcome = run(qtbot, widget, widget.find_like)
    assert outcome.error is None and outcome.result.info["kind"] == "like"
    like = viewer.layers["blobs picks like"]
    np.testing.assert_allclose(
        np.sort(positions(like, "accepted"), axis=0),
        np.sort(np.asarray(layer.data)[hits[:3]], axis=0),
    )
    assert layer.features["status"][hits[0]] == "auto"  # the source layer is left as it was


def test_an_added_example_among_detected_ones_keeps_the_like_head(
    qtbot, viewer, scene: Scene
) -> None:
    """A point the user added on a detected object, beside accepted picks: the dock compares
    shapes among the Detect run's candidates instead of searching the volume by reference."""
    _, layer = detected(qtbot, viewer, scene)
    widget = curate_dock(qtbot, viewer)
    hits, _ = hits_and_misses(layer, scene.centres)
    set_status(layer, [hits[3]], "added")
    layer.selected_data = set(hits[:4])
    outcome = run(qtbot, widget, widget.find_like)
    assert outcome.error is None and outcome.result.info["kind"] == "like"
    assert outcome.result.detection is scene.result  # no detection again
    assert len(positions(viewer.layers["blobs picks like"], "added")) == 1


def test_select_a_group_then_find_more_like_it(qtbot, viewer, scene: Scene) -> None:
    _, layer = detected(qtbot, viewer, scene)
    widget = curate_dock(qtbot, viewer)
    groups = layer.features["group"].to_numpy()
    shown = np.asarray(layer.shown, dtype=bool)
    widget.go_to(int(np.flatnonzero((groups >= 0) & shown)[0]))
    group = groups[widget.current]
    members = widget.select_group()
    assert members and set(members) == set(np.flatnonzero((groups == group) & shown).tolist())
    assert layer.selected_data == set(members)
    outcome = run(qtbot, widget, widget.find_like)
    assert outcome.error is None and outcome.result.info["n_positive"] == len(members)
    widget.set_layer(layer)  # the dock moved on to the new layer
    widget.go_to(int(np.flatnonzero(groups < 0)[0]))
    layer.selected_data = set()
    assert widget.select_group() == []  # below the automatic threshold: no group, a message


def test_cancel_stops_a_refine_that_detects_again(qtbot, viewer, scene: Scene, tiny_model) -> None:
    from napari_cryoet_particles.io import Picks
    from napari_cryoet_particles.model import load_checkpoint

    data, kwargs, _ = tomogram_layer_data(scene.volume, 10.0, "blobs")
    viewer.add_image(data, **kwargs)
    viewer_state(viewer).models.set(load_checkpoint(tiny_model), "tiny")
    picks = Picks(scene.centres[:4], 10.0, None, "blobs")
    picks.features["status"] = ["accepted", "accepted", "rejected", "auto"]
    data, kwargs, _ = picks_layer_data(picks, "opened picks", tomogram_shape=SHAPE)
    viewer.add_points(data, **kwargs)  # picks from a file: no detection cached for them
    widget = curate_dock(qtbot, viewer)
    with qtbot.waitSignal(widget.job.finished, timeout=60_000) as blocker:
        assert widget.refine()
        widget.job.cancel()
    assert blocker.args[0].cancelled
    assert [layer.name for layer in viewer.layers] == ["blobs", "opened picks"]
    assert widget.refine_button.isEnabled() and widget.like_button.isEnabled()


def test_refine_without_marks_or_examples_says_what_to_do(
    qtbot, viewer, scene: Scene, monkeypatch
) -> None:
    from napari_cryoet_particles._widgets import _common, curate

    errors: list[str] = []
    notices: list[str] = []
    monkeypatch.setattr(_common, "show_error", errors.append)
    monkeypatch.setattr(curate, "show_info", notices.append)
    detected(qtbot, viewer, scene)
    widget = curate_dock(qtbot, viewer)
    assert not widget.refine()
    assert len(errors) == 1 and "no pick is marked" in errors[0]
    assert not widget.find_like()
    assert notices == [curate.NO_EXAMPLES]
    assert len(viewer.layers) == 2 and not widget.job.running
    assert widget.refine_button.isEnabled()


def opened_picks(viewer, scene: Scene) -> object:
    """The blob tomogram and picks "from a file" (no detection held for them), 4 nm markers."""
    from napari_cryoet_particles.io import Picks

    data, kwargs, _ = tomogram_layer_data(scene.volume, 10.0, "blobs")
    viewer.add_image(data, **kwargs)
    picks = Picks(scene.centres[:4], 10.0, None, "blobs")
    picks.features["status"] = ["accepted", "accepted", "rejected", "auto"]
    data, kwargs, _ = picks_layer_data(
        picks, "opened picks", diameter_angstrom=40.0, tomogram_shape=SHAPE
    )
    return viewer.add_points(data, **kwargs)


def captured_refinements(monkeypatch) -> list:
    """Replace refinement with a job that records its config and returns nothing."""
    from napari_cryoet_particles.detect import refine

    configs: list = []

    def fake_job(volume, curated, model=None, config=None, cancel=None, result=None):
        configs.append((config, result))
        return
        yield

    monkeypatch.setattr(refine, "refine_job", fake_job)
    return configs


def test_refine_that_detects_again_searches_the_size_range(
    qtbot, viewer, scene: Scene, monkeypatch
) -> None:
    from napari_cryoet_particles._widgets import _common

    errors: list[str] = []
    monkeypatch.setattr(_common, "show_error", errors.append)
    configs = captured_refinements(monkeypatch)
    opened_picks(viewer, scene)
    widget = curate_dock(qtbot, viewer)
    widget.size_range.smallest.setValue(80.0)
    widget.size_range.largest.setValue(120.0)
    run(qtbot, widget, widget.refine)
    [(config, result)] = configs
    assert result is None  # detects again: as `refine --diameter 4 --diameters 80 120`
    detection = config.detection
    assert (detection.min_diameter_nm, detection.max_diameter_nm) == (80.0, 120.0)
    assert detection.diameter_nm == pytest.approx(4.0)

    widget.size_range.largest.setValue(20.0)
    assert not widget.refine()
    assert len(configs) == 1 and not widget.job.running
    assert len(errors) == 1 and "smallest (80 nm) is larger than the largest (20 nm)" in errors[0]
    assert widget.refine_button.isEnabled()

    again = curate_dock(qtbot, viewer)
    remembered = (again.size_range.smallest.value(), again.size_range.largest.value())
    assert remembered == (80.0, 20.0)  # as left: refused when a refinement starts


def test_refining_a_detect_run_ignores_the_docks_size_range(
    qtbot, viewer, scene: Scene, monkeypatch
) -> None:
    configs = captured_refinements(monkeypatch)
    _, layer = detected(qtbot, viewer, scene)
    widget = curate_dock(qtbot, viewer)
    widget.size_range.smallest.setValue(30.0)
    widget.size_range.largest.setValue(20.0)  # not used: the Detect run's candidates are
    hits, misses = hits_and_misses(layer, scene.centres)
    set_status(layer, hits[:2], "accepted")
    set_status(layer, misses[:2], "rejected")
    run(qtbot, widget, widget.refine)
    [(_, result)] = configs
    assert result is scene.result


def vlps_and_added_points(qtbot, viewer, real_tomograms):
    """The real HIV-1 VLP tomogram (40 Å) with points added at three of its nine VLP centres,
    where the detector proposes nothing (hollow shells); the dock's size range 80-120 nm."""
    import pandas as pd

    from napari_cryoet_particles.io import Picks
    from napari_cryoet_particles.io.tomogram import read_tomogram

    volume = read_tomogram(real_tomograms["hiv"])
    table = pd.read_csv(real_tomograms["hiv_centres"])
    centres = table[["z_px40", "y_px40", "x_px40"]].to_numpy()
    data, kwargs, _ = tomogram_layer_data(volume.data, 40.0, "tomo_40A")
    viewer.add_image(data, **kwargs)
    picks = Picks(centres[[0, 4, 8]], 40.0, None, "tomo_40A")
    picks.features["status"] = "added"
    data, kwargs, _ = picks_layer_data(picks, "my points", tomogram_shape=volume.shape)
    layer = viewer.add_points(data, **kwargs)
    widget = curate_dock(qtbot, viewer)
    widget.size_range.smallest.setValue(80.0)
    widget.size_range.largest.setValue(120.0)
    return widget, layer, centres, table["radius_px40"].to_numpy()


def test_more_like_added_points_finds_objects_the_detector_does_not_propose(
    qtbot, viewer, real_tomograms
) -> None:
    widget, layer, centres, radius = vlps_and_added_points(qtbot, viewer, real_tomograms)
    layer.selected_data = {0, 1, 2}
    outcome = run(qtbot, widget, widget.find_like)
    assert outcome.error is None and outcome.result.info["kind"] == "reference"
    like = viewer.layers["my points like"]
    assert len(positions(like, "added")) == 3  # the examples stay, as added points
    distance, _ = cKDTree(np.asarray(like.data)).query(centres)
    assert np.sum(distance <= radius / 2) >= 8
    assert len(like.data) <= 30
    assert not widget.save_model_button.isEnabled()  # nothing learned to save


def test_cancel_stops_more_like_added_points(qtbot, viewer, real_tomograms) -> None:
    widget, layer, _, _ = vlps_and_added_points(qtbot, viewer, real_tomograms)
    with qtbot.waitSignal(widget.job.finished, timeout=60_000) as blocker:
        assert widget.find_like()
        widget.job.cancel()
    assert blocker.args[0].cancelled
    assert [layer.name for layer in viewer.layers] == ["tomo_40A", "my points"]
    assert widget.like_button.isEnabled()

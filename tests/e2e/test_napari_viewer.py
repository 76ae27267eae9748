"""The plugin inside a real napari window (needs an X display: run under xvfb-run)."""

from pathlib import Path

import numpy as np
import pytest

PLUGIN = "napari-cryoet-particles"

pytestmark = pytest.mark.xvfb


def test_reader_in_real_viewer(make_napari_viewer, tiny_tomogram: Path, shrec_folder: Path) -> None:
    from napari.layers import Image, Points

    viewer = make_napari_viewer(show=True)
    [image] = viewer.open(str(tiny_tomogram), plugin=PLUGIN)
    assert isinstance(image, Image)
    assert tuple(image.scale) == (7.5, 7.5, 7.5)
    assert isinstance(image.data, np.memmap)

    layers = viewer.open(str(shrec_folder), plugin=PLUGIN)
    [truth] = [layer for layer in layers if isinstance(layer, Points)]
    assert truth.name == "model_0 truth"
    assert tuple(truth.scale) == (10.0, 10.0, 10.0)
    # one point per truth line, where the file says (CLASS X Y Z, voxels; napari data is zyx)
    lines = (shrec_folder / "particle_locations.txt").read_text().split()
    rows = np.array(lines, dtype=object).reshape(3, -1)
    xyz = rows[:, 1:4].astype(float)
    assert truth.data.shape == (3, 3)
    np.testing.assert_allclose(truth.data, xyz[:, ::-1])
    world = np.array([truth.data_to_world(p) for p in truth.data])
    np.testing.assert_allclose(world, xyz[:, ::-1] * 10.0)
    assert truth.features["class"].tolist() == rows[:, 0].tolist()

    # the canvas really draws: moving to a truth point's slice puts it in view
    viewer.dims.set_point(0, world[1, 0])
    viewer.window._qt_viewer.canvas.native.update()
    assert 1 in set(truth._view_indices)
    screenshot = viewer.screenshot(canvas_only=True, flash=False)
    assert screenshot.ndim == 3 and screenshot[..., :3].std() > 0

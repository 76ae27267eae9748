"""Shared test fixtures: tiny tomograms and SHREC folders on disk, isolated GUI settings.

GUI tests need an X display. Without one (no ``$DISPLAY``), a private Xvfb server is started for
the test session when the ``Xvfb`` program exists (Debian: ``apt-get install xvfb``); otherwise
Qt falls back to its offscreen platform, where the widget tests run but the tests marked ``xvfb``
(a real napari window with an OpenGL canvas) fail with a clear message.
"""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_cryoet_particles.io import Picks, write_shrec_locations, write_tomogram

TINY_SHAPE = (12, 20, 24)
_XVFB: subprocess.Popen | None = None


def _start_xvfb() -> str | None:
    """Start ``Xvfb`` on a free display (it reports the number itself); return ``:N``."""
    global _XVFB
    read_end, write_end = os.pipe()
    try:
        _XVFB = subprocess.Popen(
            [
                "Xvfb",
                "-displayfd",
                str(write_end),
                "-screen",
                "0",
                "1600x1000x24",
                "-nolisten",
                "tcp",
            ],
            pass_fds=(write_end,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    finally:
        os.close(write_end)
    with os.fdopen(read_end) as pipe:
        number = pipe.readline().strip()
    return f":{number}" if number else None


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM"):
        return
    display = _start_xvfb() if shutil.which("Xvfb") else None
    if display:
        os.environ["DISPLAY"] = display
    else:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _XVFB is not None:
        _XVFB.terminate()
        _XVFB.wait(timeout=10)


@pytest.fixture(autouse=True)
def _needs_display(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("xvfb") and not os.environ.get("DISPLAY"):
        pytest.fail(
            "this test opens a real napari window: install Xvfb (apt-get install xvfb) or run under xvfb-run"
        )


@pytest.fixture(autouse=True)
def _isolated_gui_settings(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Widgets persist settings; point them at a throw-away file instead of the user's."""
    settings = tmp_path_factory.mktemp("settings") / "settings.ini"
    monkeypatch.setenv("NAPARI_CRYOET_PARTICLES_SETTINGS", str(settings))


@pytest.fixture
def tiny_tomogram(tmp_path: Path) -> Path:
    """A 12x20x24 float32 MRC with a 7.5 Å voxel size in its header."""
    data = np.random.default_rng(1).normal(size=TINY_SHAPE).astype(np.float32)
    return write_tomogram(tmp_path / "tiny.mrc", data, 7.5)


@pytest.fixture
def shrec_folder(tmp_path: Path) -> Path:
    """A SHREC-style folder: 12x20x24 reconstruction (10 Å) and three truth lines."""
    folder = tmp_path / "model_0"
    folder.mkdir()
    data = np.random.default_rng(2).normal(size=TINY_SHAPE).astype(np.float32)
    write_tomogram(folder / "reconstruction.mrc", data, 10.0)
    truth = Picks(
        np.array([[2.0, 3.0, 4.0], [5.0, 10.0, 15.0], [9.0, 17.0, 20.0]]),
        10.0,
        pd.DataFrame({"class": ["1s3x", "4v94", "1s3x"]}),
    )
    write_shrec_locations(folder / "particle_locations.txt", truth)
    return folder


#: The test data (``tests/data/README.md``), for test modules in any folder below ``tests/``.
DATA = Path(__file__).resolve().parent / "data"
REAL_TOMOGRAMS = DATA / "real_tomograms"


@pytest.fixture(scope="session")
def real_tomograms() -> dict[str, Path]:
    """Paths of the vendored real volumes and annotations (``tests/data/README.md``): ``hiv``
    (40 Å), ``hiv_centres``, ``hiv_lattice``, ``mt13`` and ``mt14`` (10.52 Å, no particles)."""
    hiv, mt = REAL_TOMOGRAMS / "hiv_vlp_empiar10164", REAL_TOMOGRAMS / "microtubules_cylindra"
    return {
        "hiv": hiv / "tomo_40A.mrc",
        "hiv_centres": hiv / "vlp_centers_derived.csv",
        "hiv_lattice": hiv / "gag_lattice_points.csv",
        "mt13": mt / "13pf_MT_10.52A.mrc",
        "mt14": mt / "14pf_MT_10.52A.mrc",
    }


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained checkpoint: for tests about the GUI and the pipeline, not the learning."""
    import torch

    from napari_cryoet_particles.model import (
        DenseEncoder,
        EncoderConfig,
        ModelConfig,
        save_checkpoint,
    )

    torch.manual_seed(0)
    encoder = DenseEncoder(
        EncoderConfig(stride=2, width=4, depth=1, dilations=(1,), embedding_dim=4)
    )
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    return save_checkpoint(
        path, encoder, ModelConfig(encoder=encoder.config, working_voxel_size=10.0)
    )


COPICK_RUNS = ("TS_1", "TS_2")
COPICK_SHAPE = (24, 48, 48)
COPICK_TRUTH_USER = "curation"


def make_copick_project(folder: Path) -> Path:
    """A local copick project: two runs, each a simulated tomogram (10 Å, OME-Zarr, 2 levels)
    with its proteins as ``ribosome`` truth picks of user ``curation``, session 0."""
    import copick
    from copick.models import PickableObject

    from napari_cryoet_particles.simulate import SimulationConfig, simulate

    objects = [
        PickableObject(name="ribosome", is_particle=True, label=1, radius=150.0),
        PickableObject(name="apo-ferritin", is_particle=True, label=2, radius=60.0),
    ]
    config = folder / "project.json"
    root = copick.new_config(str(config), str(folder / "overlay"), pickable_objects=objects)
    for seed, name in enumerate(COPICK_RUNS, start=1):
        result = simulate(
            SimulationConfig(
                shape=COPICK_SHAPE, seed=seed, n_particles=4, n_vesicles=0, n_fiducials=0
            )
        )
        run = root.new_run(name)
        run.new_voxel_spacing(10.0).new_tomogram("wbp").from_numpy(result.reconstruction, levels=2)
        xyz_angstrom = result.phantom.truth.zyx[:, ::-1] * 10.0
        run.new_picks("ribosome", "0", COPICK_TRUTH_USER).from_numpy(xyz_angstrom)
    return config

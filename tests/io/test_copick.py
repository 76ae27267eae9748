"""A small local copick project: two runs with OME-Zarr tomograms from the simulator and truth
picks; detection through the CLI writes picks back, read again through the copick API."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from napari_cryoet_particles.cli import EXIT_USAGE, main
from napari_cryoet_particles.io import CryoetInputError, read_csv
from napari_cryoet_particles.io.copick_project import (
    USER_ID,
    is_copick_config,
    open_project,
    picks_sets,
    read_run_picks,
    read_run_tomogram,
    write_run_picks,
)
from tests.conftest import COPICK_RUNS as RUNS
from tests.conftest import COPICK_SHAPE as SHAPE
from tests.conftest import COPICK_TRUTH_USER as TRUTH_USER
from tests.conftest import make_copick_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_copick_project(tmp_path_factory.mktemp("copick"))


def test_config_is_recognised_by_content(project: Path, tmp_path: Path) -> None:
    assert is_copick_config(project)
    renamed = tmp_path / "anything.cfg"
    renamed.write_text(project.read_text())
    assert is_copick_config(renamed)
    picks_json = tmp_path / "picks.json"
    picks_json.write_text(json.dumps({"points": []}))
    assert not is_copick_config(picks_json)


def test_run_tomogram_is_read_lazily_at_its_spacing(project: Path) -> None:
    import zarr

    root = open_project(project)
    volume = read_run_tomogram(root, "TS_2")
    assert isinstance(volume.data, zarr.Array)
    assert volume.shape == SHAPE and volume.voxel_size == 10.0
    assert volume.path.name == "wbp.zarr"
    with pytest.raises(CryoetInputError, match=r"no tomogram of type 'denoised'.*wbp @ 10 Å"):
        read_run_tomogram(root, "TS_2", tomo_type="denoised")
    with pytest.raises(CryoetInputError, match=r"no run 'TS_9'.*TS_1, TS_2"):
        read_run_tomogram(root, "TS_9")


def test_truth_picks_read_in_voxels(project: Path) -> None:
    root = open_project(project)
    truth = read_run_picks(root, "TS_1", 10.0, user_id=TRUTH_USER)
    assert len(truth) == 4 and set(truth.features["class"]) == {"ribosome"}
    assert not truth.outside(SHAPE).any()
    assert truth.tomogram == "TS_1"


@pytest.mark.slow
def test_detect_cli_writes_picks_back_into_the_run(
    project: Path, tiny_model: Path, tmp_path: Path, capsys
) -> None:
    import copick

    out = tmp_path / "picks.csv"
    args = ["detect", str(project), "--run", "TS_1", "--model", str(tiny_model), "--quiet"]
    assert main([*args, "--out", str(out), "--to-copick", "ribosome", "--session-id", "7"]) == 0
    assert "copick run 'TS_1'" in capsys.readouterr().out
    csv = read_csv(out)
    [written] = (
        copick.from_file(str(project))
        .get_run("TS_1")
        .get_picks(object_name="ribosome", user_id=USER_ID, session_id="7")
    )
    positions = written.full_positions()
    assert len(positions) == len(csv) > 0
    np.testing.assert_allclose(positions, csv.zyx[:, ::-1] * 10.0, atol=1e-3)
    np.testing.assert_allclose(written.scores(), csv.scores, atol=1e-5)
    # the same set again is refused before detecting, unless --overwrite
    assert main([*args, "--to-copick", "ribosome", "--session-id", "7"]) == EXIT_USAGE
    assert "has ribosome picks of cryoet-particles/7 already" in capsys.readouterr().err
    assert main([*args, "--to-copick", "ribosome", "--session-id", "7", "--overwrite"]) == 0
    assert main([*args, "--to-copick", "not-an-object"]) == EXIT_USAGE
    assert "objects: ribosome, apo-ferritin" in capsys.readouterr().err
    assert main(["detect", str(project), "--out", str(tmp_path / "x.csv")]) == EXIT_USAGE
    assert "needs --run RUN" in capsys.readouterr().err


def test_written_picks_keep_orientation_and_scores(project: Path, tmp_path: Path) -> None:
    import copick

    from napari_cryoet_particles.io import Picks

    root = open_project(project)
    picks = Picks(
        np.array([[3.0, 4.0, 5.0]]),
        10.0,
        features=None,
        tomogram="TS_2",
    )
    picks.features["score"] = 0.75
    picks.features["rlnAngleRot"], picks.features["rlnAngleTilt"] = 30.0, 60.0
    picks.features["rlnAnglePsi"] = -45.0
    write_run_picks(root, "TS_2", picks, "apo-ferritin", session_id="orient")
    [stored] = (
        copick.from_file(str(project))
        .get_run("TS_2")
        .get_picks(object_name="apo-ferritin", session_id="orient")
    )
    assert stored.trust_orientation
    back = read_run_picks(open_project(project), "TS_2", 10.0, object_name="apo-ferritin")
    np.testing.assert_allclose(back.zyx, picks.zyx)
    np.testing.assert_allclose(
        back.features[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]],
        [[30.0, 60.0, -45.0]],
        atol=1e-6,
    )
    assert back.scores.tolist() == [0.75]
    assert any(s.session_id == "orient" for s in picks_sets(root, "TS_2"))


def test_czii_metric_over_the_runs_of_a_project(project: Path, capsys) -> None:
    """The truth scored against itself: 1 for the ribosome, 0 for the absent apo-ferritin."""
    args = ["evaluate", "--metric", "czii", "--truth", str(project), "--pred", str(project)]
    users = ["--truth-user", TRUTH_USER, "--pred-user", TRUTH_USER]
    assert main([*args, *users]) == 0
    out = capsys.readouterr().out
    assert "(2 tomograms; challenge winner 0.788)" in out
    # ribosome F4 1 with weight 1 of 7 in total
    assert re.search(r"score .*: 0\.1429", out)


@pytest.mark.slow
def test_batch_over_every_run(project: Path, tiny_model: Path, tmp_path: Path, capsys) -> None:
    import copick

    argv = ["batch", str(project), "--out-dir", str(tmp_path), "--model", str(tiny_model)]
    argv += ["--to-copick", "ribosome", "--session-id", "batch", "--quiet"]
    code = main(argv)
    assert code == 0, capsys.readouterr().err
    root = copick.from_file(str(project))
    for name in RUNS:
        csv = read_csv(tmp_path / f"{name}_picks.csv")
        [stored] = root.get_run(name).get_picks(user_id=USER_ID, session_id="batch")
        assert len(stored.points) == len(csv)
    # the manifest knows each run's OME-Zarr folder: a second run resumes without any work and
    # stores the picks again (it replaces the sets its first run wrote, without --overwrite)
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    assert "2 of 2 tomograms done (2 by an earlier run)" in capsys.readouterr().out
    assert main(argv) == 2  # without --resume or --overwrite nothing is replaced
    assert "has ribosome picks of cryoet-particles/batch already" in capsys.readouterr().err

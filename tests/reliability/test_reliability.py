"""What a new user sees when things go wrong: every row of docs/reliability.md has a test here
(or names the test elsewhere that backs it)."""

import dataclasses
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import mrcfile
import numpy as np
import pytest

from napari_cryoet_particles import jobs
from napari_cryoet_particles.cli import main
from napari_cryoet_particles.detect import DetectionConfig, detect_particles
from napari_cryoet_particles.detect.trust import picks_warning
from napari_cryoet_particles.io import CryoetInputError, Volume, read_tomogram, write_tomogram
from napari_cryoet_particles.io.atomic import atomic_write
from napari_cryoet_particles.io.errors import CryoetWriteError

BLOB_SHAPE = (24, 48, 48)


def blob_volume(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    volume = rng.normal(0, 0.3, BLOB_SHAPE).astype(np.float32)
    grid = np.indices(BLOB_SHAPE, dtype=np.float32)
    for centre in rng.uniform(4, np.asarray(BLOB_SHAPE) - 4, size=(12, 3)):
        d2 = sum((grid[a] - centre[a]) ** 2 for a in range(3))
        volume -= np.exp(-d2 / 8).astype(np.float32)
    return volume


@pytest.fixture
def blobs(tmp_path: Path) -> Path:
    return write_tomogram(tmp_path / "blobs.mrc", blob_volume(), 10.0)


def _writable(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


@pytest.fixture
def unwritable(tmp_path: Path):
    """A folder in which the operating system refuses to create files.

    A mode-555 folder for ordinary users; root ignores modes, so for root: /sys, where the
    kernel refuses new files to everyone.
    """
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder if not _writable(folder) else Path("/sys")
    folder.chmod(0o755)


def never_run(*args, **kwargs):
    raise AssertionError("the work started although the output could not be written")


def one_line_error(capsys, code: int, *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("cryoet-particles ") and ": error: " in err
    for word in words:
        assert word in err, err
    return err


# -- every output is checked before any work ------------------------------------------------


def test_detect_into_an_unwritable_folder_fails_before_detecting(
    blobs, unwritable, tiny_model, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(jobs, "run_job_with_bar", never_run)
    code = main(
        ["detect", str(blobs), "--out", str(unwritable / "p.csv"), "--model", str(tiny_model)]
    )
    one_line_error(capsys, code, "cannot write in this folder")


def test_detect_unknown_suffix_and_existing_output_fail_before_detecting(
    blobs, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(jobs, "run_job_with_bar", never_run)
    one_line_error(capsys, main(["detect", str(blobs), "--out", str(tmp_path / "p.xlsx")]), ".xlsx")
    existing = tmp_path / "p.csv"
    existing.write_text("x,y,z\n")
    code = main(["detect", str(blobs), "--out", str(existing)])
    one_line_error(capsys, code, "exists already", "--overwrite")
    code = main(["detect", str(blobs), "--out", str(tmp_path / "missing" / "p.csv")])
    one_line_error(capsys, code, "does not exist")
    code = main(["detect", str(blobs), "--out", str(tmp_path / "q.csv"), "--score-map", "s.png"])
    one_line_error(capsys, code, "score map")


def test_evaluate_json_into_an_unwritable_folder_fails_before_scoring(
    shrec_folder, tmp_path, unwritable, capsys, monkeypatch
) -> None:
    from napari_cryoet_particles.evaluate import report

    monkeypatch.setattr(report, "evaluate_data", never_run)
    pred = shrec_folder / "particle_locations.txt"
    argv = ["evaluate", "--truth", str(shrec_folder), "--pred", str(pred)]
    one_line_error(capsys, main([*argv, "--json", str(unwritable / "m.json")]), "cannot write")
    one_line_error(capsys, main([*argv, "--json", str(tmp_path / "m.txt")]), "'.txt'")
    one_line_error(capsys, main([*argv, "--plots", str(unwritable / "plots")]), "not writable")


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "--out", "{ro}/sim"],
        ["train", "{tomo}", "--out", "{ro}/model.pt"],
        ["batch", "{tomo}", "--out-dir", "{ro}/batch"],
        ["benchmark", "--out", "{ro}/benchmarks.md"],
        ["convert", "{tomo}", "{ro}/picks.star"],
    ],
    ids=["simulate", "train", "batch", "benchmark", "convert"],
)
def test_every_command_checks_its_output_before_working(
    argv, blobs, unwritable, capsys, monkeypatch
) -> None:
    from napari_cryoet_particles.batch import run as batch
    from napari_cryoet_particles.io import picks
    from napari_cryoet_particles.model import train

    monkeypatch.setattr(jobs, "run_job_with_bar", never_run)
    monkeypatch.setattr(train, "Trainer", never_run)
    monkeypatch.setattr(batch, "_client", never_run)
    monkeypatch.setattr(picks, "read_picks", never_run)
    filled = [a.format(ro=unwritable, tomo=blobs) for a in argv]
    code = main(filled)
    one_line_error(capsys, code, str(unwritable))


@pytest.fixture(scope="module")
def copick_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import make_copick_project

    return make_copick_project(tmp_path_factory.mktemp("copick"))


@pytest.mark.parametrize(
    "argv",
    [
        ["detect", "{project}", "--run", "TS_1", "--to-copick", "ribosome"],
        ["batch", "{project}", "--out-dir", "{tmp}/out", "--to-copick", "ribosome"],
    ],
    ids=["detect", "batch"],
)
def test_copick_write_back_is_checked_before_working(
    argv, copick_project, tmp_path, tiny_model, capsys, monkeypatch
) -> None:
    """A run whose Picks folder cannot be written (root ignores modes: the check is patched to
    answer as a read-only mount would, for the project's overlay only)."""
    from napari_cryoet_particles.batch import run as batch
    from napari_cryoet_particles.io import atomic

    overlay = copick_project.parent / "overlay"
    real = atomic._why_not_writable
    monkeypatch.setattr(
        atomic,
        "_why_not_writable",
        lambda folder: "Permission denied" if overlay in Path(folder).parents else real(folder),
    )
    monkeypatch.setattr(jobs, "run_job_with_bar", never_run)
    monkeypatch.setattr(batch, "_client", never_run)
    filled = [a.format(project=copick_project, tmp=tmp_path) for a in argv]
    code = main([*filled, "--model", str(tiny_model)])
    one_line_error(capsys, code, "TS_1/Picks", "cannot write in this folder")


def test_score_map_may_be_an_ome_zarr_folder(tmp_path, unwritable) -> None:
    from napari_cryoet_particles.io.atomic import check_output_file

    store = write_tomogram(tmp_path / "score.zarr", blob_volume(), 10.0)
    assert store.is_dir()
    suffixes = (".mrc", ".zarr")
    assert check_output_file(store, True, suffixes, "score map") == store
    with pytest.raises(CryoetInputError, match="exists already"):
        check_output_file(store, False, suffixes, "score map")
    with pytest.raises(CryoetWriteError, match="cannot write in"):
        write_tomogram(unwritable / "score.zarr", blob_volume(), 10.0)


def test_train_refuses_an_unknown_checkpoint_suffix(blobs, tmp_path, capsys) -> None:
    code = main(["train", str(blobs), "--out", str(tmp_path / "model.h5")])
    one_line_error(capsys, code, "'.h5'", ".pt")


# -- voxel sizes ------------------------------------------------------------------------------


def _with_header_voxel_size(path: Path, size: float) -> Path:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(blob_volume())
        mrc.voxel_size = size
    return path


@pytest.mark.parametrize("header", [0.05, 2000.0, 50.0])
def test_voxel_size_option_wins_over_an_implausible_header(header, tmp_path, tiny_model, capsys):
    tomogram = _with_header_voxel_size(tmp_path / "odd.mrc", header)
    out = tmp_path / "picks.csv"
    base = ["detect", str(tomogram), "--out", str(out), "--model", str(tiny_model), "--quiet"]
    base += ["--groups", "0"]
    assert main(base) == 2
    assert "voxel size" in capsys.readouterr().err
    assert main([*base, "--voxel-size", "10"]) == 0, capsys.readouterr().err
    assert read_tomogram(tomogram, voxel_size=10.0).voxel_size == 10.0


def test_missing_header_voxel_size_is_one_plain_warning_line(tmp_path, tiny_model, capsys):
    tomogram = _with_header_voxel_size(tmp_path / "nosize.mrc", 0.0)
    argv = ["detect", str(tomogram), "--out", str(tmp_path / "p.csv"), "--model", str(tiny_model)]
    code = main([*argv, "--groups", "0"])
    err = capsys.readouterr().err
    assert code == 0
    lines = [line for line in err.splitlines() if "warning" in line.lower()]
    assert any(
        line.strip().startswith("cryoet-particles detect: warning: ") and "assuming 10 Å" in line
        for line in lines
    ), err
    assert "UserWarning" not in err and ".py:" not in err


def test_voxel_size_option_gives_a_headerless_tomogram_its_size_once(tmp_path, tiny_model, capsys):
    from napari_cryoet_particles.io import read_csv

    tomogram = _with_header_voxel_size(tmp_path / "nosize.mrc", 0.0)
    out = tmp_path / "p.csv"
    argv = ["detect", str(tomogram), "--out", str(out), "--model", str(tiny_model)]
    assert main([*argv, "--groups", "0", "--voxel-size", "12", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "assuming" not in err, err
    assert read_csv(out).voxel_size == 12.0


# -- unfinished training runs ----------------------------------------------------------------


def _interrupt_training_at(monkeypatch, step: int) -> None:
    from napari_cryoet_particles.model.train import Trainer

    real_step = Trainer.step

    def step_or_interrupt(self):
        if self.step_index == step:
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(Trainer, "step", step_or_interrupt)


def test_interrupted_training_says_where_the_resumable_file_is_and_detect_warns(
    blobs, tmp_path, capsys, monkeypatch
) -> None:
    from napari_cryoet_particles.model.checkpoint import load_checkpoint

    out = tmp_path / "model.pt"
    _interrupt_training_at(monkeypatch, 2)
    small = ["--steps", "4", "--batch-size", "2", "--crop-size", "16", "--threads", "1"]
    code = main(["train", str(blobs), "--out", str(out), *small])
    err = capsys.readouterr().err
    assert code == 130
    assert f"interrupted at step 2 of 4: {out}" in err and "--resume" in err
    loaded = load_checkpoint(out)
    assert not loaded.complete and loaded.steps_done == (2, 4)

    picks = tmp_path / "picks.csv"
    detect = ["detect", str(blobs), "--out", str(picks), "--model", str(out), "--groups", "0"]
    assert main([*detect, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: the model" in err and "unfinished training run" in err and "step 2 of 4" in err

    monkeypatch.undo()
    assert main(["train", str(blobs), "--out", str(out), "--resume", "--threads", "1"]) == 0
    assert load_checkpoint(out).complete
    assert main([*detect, "--quiet", "--overwrite"]) == 0
    assert "unfinished" not in capsys.readouterr().err


def _disk_full_on_torch_save(monkeypatch) -> None:
    """``torch.save`` as it fails on a full disk: part of the file written, then a RuntimeError
    naming a zip member (torch's stream writer does not raise OSError)."""
    from napari_cryoet_particles.model import checkpoint

    def full(payload, path) -> None:
        Path(path).write_bytes(b"PK\x03\x04 partial")
        raise RuntimeError(
            "[enforce fail at inline_container.cc:595] . unexpected pos 64 vs 0\n"
            "PytorchStreamWriter failed writing file data/0: file write failed"
        )

    monkeypatch.setattr(checkpoint.torch, "save", full)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda folder: SimpleNamespace(free=0))


def test_disk_full_while_saving_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    from napari_cryoet_particles.model import DenseEncoder, EncoderConfig, ModelConfig
    from napari_cryoet_particles.model.checkpoint import save_checkpoint

    encoder = DenseEncoder(EncoderConfig(width=4, depth=1, dilations=(1,), embedding_dim=4))
    config = ModelConfig(encoder=encoder.config)
    path = save_checkpoint(tmp_path / "m.pt", encoder, config)
    before = path.read_bytes()
    _disk_full_on_torch_save(monkeypatch)
    with pytest.raises(CryoetWriteError, match="no space left on the device") as error:
        save_checkpoint(path, encoder, config, overwrite=True)
    assert "\n" not in str(error.value) and "nothing was replaced" in str(error.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_train_on_a_full_disk_is_a_one_line_error(blobs, tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "model.pt"
    out.write_bytes(b"the previous model")
    _disk_full_on_torch_save(monkeypatch)
    small = ["--steps", "2", "--batch-size", "2", "--crop-size", "16", "--threads", "1"]
    code = main(["train", str(blobs), "--out", str(out), "--overwrite", *small])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]  # the lines before are the progress bar
    assert last.startswith("cryoet-particles train: error: ") and str(out) in last
    assert "writing the checkpoint failed, nothing was replaced (no space left" in last
    assert out.read_bytes() == b"the previous model"
    assert not list(tmp_path.glob("*.part"))


def test_checkpoints_without_the_flag_are_judged_by_their_training_state(tmp_path) -> None:
    import torch

    from napari_cryoet_particles.model import DenseEncoder, EncoderConfig, ModelConfig
    from napari_cryoet_particles.model.checkpoint import load_checkpoint, save_checkpoint

    encoder = DenseEncoder(EncoderConfig(width=4, depth=1, dilations=(1,), embedding_dim=4))
    config = ModelConfig(encoder=encoder.config, training={"steps": 10})
    path = save_checkpoint(tmp_path / "m.pt", encoder, config, training_state={"step": 3})
    payload = torch.load(path, weights_only=True)
    del payload["complete"]  # as written before the flag existed
    torch.save(payload, path)
    assert not load_checkpoint(path).complete
    path = save_checkpoint(tmp_path / "final.pt", encoder, config)
    assert load_checkpoint(path).complete


def test_detect_dock_shows_the_warnings_as_notifications(monkeypatch) -> None:
    from types import SimpleNamespace

    from napari_cryoet_particles._widgets import detect as dock

    shown: list[str] = []
    monkeypatch.setattr(dock, "show_warning", shown.append)
    layer = object()
    widget = SimpleNamespace(
        run_button=SimpleNamespace(setEnabled=lambda enabled: None),
        show_result=lambda result, layer: None,
        viewer=SimpleNamespace(layers=[layer]),
    )
    result = SimpleNamespace(info={"warnings": ["the model m.pt is an unfinished training run"]})
    dock.DetectWidget._done(widget, dock.JobOutcome(result=result), layer)
    assert shown == ["Detection: the model m.pt is an unfinished training run"]


# -- picks not to be trusted -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.float16, np.float32])
def test_detection_on_pure_noise_says_the_picks_are_not_to_be_trusted(dtype, tiny_model):
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    data = (
        rng.integers(info.min, info.max, BLOB_SHAPE, endpoint=True).astype(dtype)
        if info
        else rng.normal(size=BLOB_SHAPE).astype(dtype)
    )
    result = detect_particles(Volume(data, 10.0), tiny_model, DetectionConfig(groups=0))
    assert any("not to be trusted" in w for w in result.info["warnings"]), result.info["skewness"]


def test_detection_with_particles_has_no_trust_warning(tiny_model) -> None:
    result = detect_particles(Volume(blob_volume(), 10.0), tiny_model, DetectionConfig(groups=0))
    assert len(result.picks) and result.info["warnings"] == []


def test_trust_limit_follows_the_noise_spread_and_a_floor() -> None:
    info = {"ratio": 1.0, "stride": 4, "masked_fraction": 0.0}
    small, huge = (64, 128, 128), (500, 1024, 1024)
    assert picks_warning({**info, "skewness": 0.3}, small)  # within 3 standard errors of noise
    assert picks_warning({**info, "skewness": -2.6}, small) is None
    assert picks_warning({**info, "skewness": 0.2}, huge)  # below the floor however large
    assert picks_warning({**info, "skewness": -0.5}, huge) is None


# -- batch summary ------------------------------------------------------------------------------


def test_batch_summary_names_no_picks_file_for_a_failed_tomogram(blobs, tiny_model, tmp_path):
    import pandas as pd

    from napari_cryoet_particles.batch.run import SUMMARY_NAME, batch_detect_job

    broken = tmp_path / "broken.mrc"
    broken.write_text("not a tomogram" * 50)
    out = tmp_path / "out"
    job = batch_detect_job(
        [blobs, broken], out, tiny_model, DetectionConfig(groups=0), processes=False
    )
    items = jobs.run_job(job)
    summary = pd.read_csv(out / SUMMARY_NAME, keep_default_na=False)
    assert summary["picks_file"].tolist() == [str(out / "blobs_picks.csv"), ""]
    assert items[1].error and not (out / "broken_picks.csv").exists()


def test_batch_names_the_inputs_that_share_a_file_name(blobs, tmp_path, capsys) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    twin = other / blobs.name
    twin.write_bytes(blobs.read_bytes())
    code = main(["batch", str(blobs), str(twin), "--out-dir", str(tmp_path / "out")])
    one_line_error(capsys, code, str(blobs), str(twin))


# -- bad input files --------------------------------------------------------------------------


def test_four_dimensional_mrc_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stack.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((2, 3, 4, 5), dtype=np.float32))
    with pytest.raises(CryoetInputError, match="expected a 3D tomogram"):
        read_tomogram(path)


@pytest.mark.parametrize(
    ("mode", "dtype", "message"),
    [
        (4, np.complex64, "unsupported data type complex64"),
        (3, np.complex64, "Unrecognised mode '3'"),
        (101, np.uint8, "Unrecognised mode '101'"),
    ],
)
def test_unsupported_mrc_modes_are_refused(mode, dtype, message, tmp_path: Path) -> None:
    path = tmp_path / f"mode{mode}.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.ones((16, 32, 32), dtype=dtype))
        mrc.header.mode = mode
    with pytest.raises(CryoetInputError, match=message):
        detect_particles(read_tomogram(path))


def test_star_without_coordinates_says_so_once(tmp_path: Path) -> None:
    from napari_cryoet_particles.io import read_star

    path = tmp_path / "angles.star"
    path.write_text("data_particles\n\nloop_\n_rlnTomoName #1\n_rlnAngleRot #2\ntomo 10\n")
    with pytest.raises(CryoetInputError) as error:
        read_star(path)
    assert str(error.value).count(str(path)) == 1 and "no rlnCoordinateX/Y/Z" in str(error.value)


def test_multi_line_library_errors_become_one_line(tmp_path: Path) -> None:
    """copick's pydantic errors span lines; the message keeps the field and the problem."""
    from napari_cryoet_particles.io.copick_project import open_project

    path = tmp_path / "project.json"
    path.write_text('{"config_type": "filesystem", "pickable_objects": [], "overlay_root": null}')
    with pytest.raises(CryoetInputError) as error:
        open_project(path)
    message = str(error.value)
    assert "\n" not in message and "overlay_root" in message and "errors.pydantic" not in message


def test_damaged_ome_zarr_chunks_and_metadata_are_one_line_errors(tmp_path: Path) -> None:
    store = write_tomogram(tmp_path / "t.zarr", blob_volume(), 10.0)
    (store / "0" / "0" / "0" / "0").write_bytes(b"not blosc")
    with pytest.raises(CryoetInputError, match="chunks of level '0' cannot be decoded"):
        read_tomogram(store)
    (store / "0" / ".zarray").write_text('{"zarr_format": 2, "shape": [1]}')
    with pytest.raises(CryoetInputError, match="level '0' has damaged metadata"):
        read_tomogram(store)


def test_copick_json_without_points_is_refused(tmp_path: Path) -> None:
    from napari_cryoet_particles.io import read_copick_json

    path = tmp_path / "picks.json"
    path.write_text('{"pickable_object_name": "ribosome", "user_id": "me"}')
    with pytest.raises(CryoetInputError, match="points"):
        read_copick_json(path)


# -- writes that fail half-way -------------------------------------------------------------------


def test_disk_full_while_writing_leaves_the_old_file_and_no_temporary(
    blobs, tiny_model, tmp_path, capsys, monkeypatch
) -> None:
    """The temporary file is a link to /dev/full: the kernel answers every write with ENOSPC."""
    from napari_cryoet_particles.io import atomic

    real_mkstemp = tempfile.mkstemp

    def full_disk(**kwargs):
        fd, name = real_mkstemp(**kwargs)
        os.close(fd)
        os.unlink(name)
        os.symlink("/dev/full", name)
        return os.open(name, os.O_WRONLY), name

    real_chmod = os.chmod
    monkeypatch.setattr(atomic.tempfile, "mkstemp", full_disk)
    monkeypatch.setattr(
        atomic.os, "chmod", lambda p, m: None if Path(p).is_symlink() else real_chmod(p, m)
    )
    out = tmp_path / "picks.csv"
    out.write_text("the previous picks\n")
    argv = ["detect", str(blobs), "--out", str(out), "--model", str(tiny_model), "--overwrite"]
    argv += ["--groups", "0"]
    one_line_error(
        capsys, main([*argv, "--quiet"]), "No space left on device", "nothing was replaced"
    )
    assert out.read_text() == "the previous picks\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blobs.mrc", "picks.csv"]
    with pytest.raises(CryoetWriteError), atomic_write(tmp_path / "new.txt") as tmp:
        tmp.write_text("x" * 100_000)
    assert not (tmp_path / "new.txt").exists()


# -- Ctrl-C in each command ------------------------------------------------------------------------


def interrupted_after(reports: int):
    """A stand-in for the CLI's job runner: the user presses Ctrl-C after ``reports`` reports."""

    def run(job, description, disable=False):
        for _ in range(reports):
            next(job)
        raise KeyboardInterrupt

    return run


def press_ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("argv", "output"),
    [
        (["simulate", "--out", "{tmp}/sim", "--size", "16", "32", "32"], "sim/reconstruction.mrc"),
        (["detect", "{tomo}", "--out", "{tmp}/p.csv", "--model", "{model}"], "p.csv"),
        (
            ["evaluate", "--truth", "{shrec}", "--pred", "{tmp}/p.csv", "--json", "{tmp}/m.json"],
            "m.json",
        ),
    ],
    ids=["simulate", "detect", "evaluate"],
)
def test_ctrl_c_exits_130_and_leaves_no_output(
    argv, output, blobs, tiny_model, shrec_folder, tmp_path, capsys, monkeypatch
) -> None:
    from napari_cryoet_particles.evaluate import report

    monkeypatch.setattr(jobs, "run_job_with_bar", interrupted_after(2))
    monkeypatch.setattr(report, "evaluate_data", press_ctrl_c)
    (tmp_path / "p.csv").write_text("x,y,z\n1,2,3\n") if argv[0] == "evaluate" else None
    filled = [
        a.format(tmp=tmp_path, tomo=blobs, model=tiny_model, shrec=shrec_folder) for a in argv
    ]
    code = main(filled)
    err = capsys.readouterr().err
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / output).exists()
    assert not list(tmp_path.rglob(".*.part"))


def test_ctrl_c_in_batch_keeps_the_finished_tomograms_for_resume(
    blobs, tiny_model, tmp_path, capsys, monkeypatch
) -> None:
    from napari_cryoet_particles.batch import run as batch

    second = write_tomogram(tmp_path / "second.mrc", blob_volume(1), 10.0)
    real_client = batch._client
    monkeypatch.setattr(batch, "_client", lambda s, w, t, p: real_client(s, w, t, False))
    argv = ["batch", str(blobs), str(second), "--out-dir", str(tmp_path / "out")]
    argv += ["--model", str(tiny_model), "--groups", "0", "--quiet"]
    with monkeypatch.context() as patch:
        patch.setattr(jobs, "run_job_with_bar", interrupted_after(2))  # start + one tomogram
        assert main(argv) == 130
    err = capsys.readouterr().err
    assert "1 finished tomograms are recorded" in err and "--resume" in err
    assert main([*argv, "--resume"]) == 0
    assert "2 of 2 tomograms done (1 by an earlier run)" in capsys.readouterr().out


def test_manifest_records_a_folder_store_as_one_input(tmp_path: Path) -> None:
    """OME-Zarr tomograms (copick runs) are folders: size, time and checksum cover every file."""
    from napari_cryoet_particles.batch.manifest import InputRecord, is_finished, sha256_of

    store = write_tomogram(tmp_path / "wbp.zarr", blob_volume(), 10.0)
    picks = tmp_path / "TS_1_picks.csv"
    picks.write_text("x,y,z\n1,2,3\n")
    record = InputRecord.of(store)
    assert record.size == sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    entry = {
        **dataclasses.asdict(record),
        "picks_file": str(picks),
        "picks_sha256": sha256_of(picks),
    }
    assert is_finished(entry, store, picks)
    chunk = store / "0" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[::-1])
    assert InputRecord.of(store).sha256 != record.sha256
    assert not is_finished(entry, store, picks)

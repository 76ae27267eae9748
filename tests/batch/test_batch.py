"""Batch detection on a Dask cluster: every tomogram gets its picks, a bad one is reported, not fatal."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_cryoet_particles.batch.run import SUMMARY_NAME, batch_detect_job
from napari_cryoet_particles.cli import main
from napari_cryoet_particles.detect import DetectionConfig
from napari_cryoet_particles.io import CryoetInputError, read_csv, write_tomogram
from napari_cryoet_particles.jobs import run_job
from napari_cryoet_particles.model import DenseEncoder, EncoderConfig, ModelConfig, save_checkpoint
from napari_cryoet_particles.simulate import make_sample_dataset


@pytest.fixture(scope="module")
def batch_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    folder = tmp_path_factory.mktemp("batch")
    tomograms = []
    for seed in (1, 2):
        sample = make_sample_dataset(seed=seed, shape=(32, 64, 64))
        tomograms.append(
            write_tomogram(folder / f"tomo_{seed}.mrc", sample.volume, sample.voxel_size)
        )
    broken = folder / "broken.mrc"
    broken.write_text("not a tomogram at all" * 100)
    encoder_config = EncoderConfig(width=4, depth=1, dilations=(1,), embedding_dim=4)
    model = save_checkpoint(
        folder / "model.pt", DenseEncoder(encoder_config), ModelConfig(encoder=encoder_config)
    )
    return [*tomograms, broken], model


def test_batch_on_a_local_cluster(batch_inputs, tmp_path: Path) -> None:
    tomograms, model = batch_inputs
    job = batch_detect_job(
        tomograms, tmp_path, model, DetectionConfig(groups=0), processes=False, workers=1
    )
    reports = []
    items = run_job(job, reports.append)
    assert [r.step for r in reports] == [0, 1, 2, 3]
    assert [Path(i.tomogram).name for i in items] == ["tomo_1.mrc", "tomo_2.mrc", "broken.mrc"]
    for item in items[:2]:
        assert item.error == ""
        picks = read_csv(item.picks_file)
        assert len(picks) == item.n_picks
        assert not picks.outside((32, 64, 64)).any()
    assert "broken.mrc: not a valid MRC file" in items[2].error
    summary = pd.read_csv(tmp_path / SUMMARY_NAME)
    assert summary["n_picks"].tolist()[:2] == [i.n_picks for i in items[:2]]
    assert np.isnan(summary["error"].iloc[0]) and "not a valid MRC" in summary["error"].iloc[2]


def test_batch_refuses_to_overwrite_before_starting(batch_inputs, tmp_path: Path) -> None:
    tomograms, model = batch_inputs
    (tmp_path / "tomo_1_picks.csv").write_text("x,y,z\n")
    with pytest.raises(CryoetInputError, match="exists already"):
        run_job(batch_detect_job(tomograms[:1], tmp_path, model, processes=False))
    assert (tmp_path / "tomo_1_picks.csv").read_text() == "x,y,z\n"


@pytest.mark.slow
def test_batch_cli_reports_failures(
    batch_inputs, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    tomograms, model = batch_inputs
    code = main(
        [
            "batch",
            *map(str, tomograms),
            "--out-dir",
            str(tmp_path),
            "--model",
            str(model),
            "--groups",
            "0",
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "2 of 3 tomograms done" in captured.out
    assert "failed:" in captured.err and "broken.mrc" in captured.err
    assert (tmp_path / "tomo_2_picks.csv").exists()


def test_the_manifest_parameters_hold_the_preset_and_read_back_equal() -> None:
    """Every tuned number is in the manifest's parameters, as JSON reads it back (a rerun with
    ``--resume`` and the same preset matches; another preset does not)."""
    import json

    from napari_cryoet_particles.batch.manifest import parameters_of

    default = parameters_of(DetectionConfig(params="default"))
    assert json.loads(json.dumps(default)) == default
    assert default["params"]["candidates"]["candidate_filter"] == "dog"
    assert default["params"]["structure"]["continuation_reach"] == [1.5, 2.0, 2.5, 3.0]
    session8 = parameters_of(DetectionConfig(params="session8"))
    assert session8 != default
    assert session8["params"]["score"] == {
        "learned_weight": 0.25,
        "blob_threshold": 5.5,
        "adaptive_threshold": False,
        "ranker": False,
        "adapt_share": False,
        "f1_cut": False,
        "ranker_extent_reach": None,
    }
    assert default["params"]["score"]["adaptive_threshold"] is True
    assert default["params"]["score"]["ranker"] is True
    assert parameters_of(DetectionConfig(params="fixed-threshold")) != default
    assert parameters_of(DetectionConfig(params="embedding-only")) != default

"""The command-line contract of DESIGN.md."""

import subprocess
import sys

import pytest

from napari_cryoet_particles import __version__
from napari_cryoet_particles.cli import build_parser, main

CONTRACT = ("simulate", "train", "detect", "evaluate", "convert", "benchmark", "batch")


def test_help_lists_every_contract_subcommand() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "napari_cryoet_particles.cli", "--help"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    for name in CONTRACT:
        assert name in result.stdout


def test_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out


def test_no_subcommand_prints_help_and_fails(capsys: pytest.CaptureFixture) -> None:
    assert main([]) != 0
    assert "commands" in capsys.readouterr().out


def test_detection_options_reach_the_config() -> None:
    from napari_cryoet_particles.cli import detection_config
    from napari_cryoet_particles.detect.config import DetectionConfig

    args = build_parser().parse_args(
        ["detect", "t.mrc", "--out", "p.csv", "--density-weight", "0", "--clusters", "4"]
        + ["--diameters", "6", "20", "--learned-weight", "0"]
    )
    config = detection_config(args)
    assert config.density_weight == 0.0 and config.n_clusters == 4
    assert (config.min_diameter_nm, config.max_diameter_nm, config.learned_weight) == (6, 20, 0)
    default = detection_config(build_parser().parse_args(["detect", "t.mrc", "--out", "p.csv"]))
    assert default == DetectionConfig()


def test_bad_density_weight_is_a_clear_error(tiny_tomogram, tmp_path, capsys) -> None:
    code = main(
        [
            "detect",
            str(tiny_tomogram),
            "--out",
            str(tmp_path / "p.csv"),
            "--density-weight",
            "-1",
        ]
    )
    assert code == 2
    assert "density weight -1.0 is outside 0-100" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()

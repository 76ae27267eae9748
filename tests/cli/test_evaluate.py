"""``cryoet-particles evaluate``: rule choice, outputs, and bad or degenerate input."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_cryoet_particles.cli import EXIT_USAGE, main
from napari_cryoet_particles.io import Picks, write_csv, write_shrec_locations, write_tomogram
from tests.conftest import DATA

SHAPE = (16, 24, 40)


@pytest.fixture
def scored_folder(tmp_path: Path) -> Path:
    """A SHREC folder: three cube particles (ids 1-3) in an occupancy mask, with their locations."""
    folder = tmp_path / "model_1"
    folder.mkdir()
    write_tomogram(folder / "reconstruction.mrc", np.zeros(SHAPE, np.float32), 10.0)
    occupancy = np.zeros(SHAPE, np.int16)
    centres = np.array([[8, 12, 6], [8, 12, 18], [8, 12, 30]])
    for k, (z, y, x) in enumerate(centres, start=1):
        occupancy[z - 2 : z + 3, y - 2 : y + 3, x - 2 : x + 3] = k
    write_tomogram(folder / "occupancy_mask.mrc", occupancy, 10.0)
    features = pd.DataFrame({"class": ["1s3x", "3qm1", "vesicle"]})
    write_shrec_locations(folder / "particle_locations.txt", Picks(centres, 10.0, features))
    return folder


def write_picks_csv(path: Path, zyx, scores, clusters=None) -> Path:
    features = pd.DataFrame({"score": scores})
    if clusters is not None:
        features["cluster"] = clusters
    return write_csv(path, Picks(np.asarray(zyx, float), 10.0, features))


@pytest.fixture
def pred_csv(tmp_path: Path) -> Path:
    zyx = [[8, 12, 7], [8, 13, 18.4], [2, 2, 2], [8, 12, 31], [8, 12, 60]]  # last one outside
    return write_picks_csv(tmp_path / "picks.csv", zyx, [0.9, 0.8, 0.3, 0.6, 0.2], [0, 1, 1, 0, 1])


def test_shrec_folder_uses_the_shrec_rule(
    scored_folder: Path, pred_csv: Path, tmp_path: Path, capsys
) -> None:
    out_json, plots = tmp_path / "metrics.json", tmp_path / "plots"
    code = main(
        [
            "evaluate",
            "--truth",
            str(scored_folder),
            "--pred",
            str(pred_csv),
            "--skip",
            "vesicle",
            "--json",
            str(out_json),
            "--plots",
            str(plots),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "SHREC rule" in captured.out
    assert (
        "warning: 1 predictions lie outside the volume (16, 24, 40): counted as FP" in captured.err
    )
    document = json.loads(out_json.read_text())
    localization = document["localization"]
    assert (
        localization["tp"],
        localization["fp"],
        localization["n_pred"],
        localization["n_truth"],
    ) == (2, 2, 4, 2)
    assert localization["n_on_skipped"] == 1 and localization["skip"] == ["vesicle"]
    assert set(document) >= {"ranking", "groups_vs_classes"}
    assert (plots / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # outputs are not replaced unless asked
    again = [
        "evaluate",
        "--truth",
        str(scored_folder),
        "--pred",
        str(pred_csv),
        "--json",
        str(out_json),
    ]
    assert main(again) == EXIT_USAGE
    assert "exists already" in capsys.readouterr().err
    assert main([*again, "--overwrite"]) == 0
    capsys.readouterr()
    assert main([*again[:5], "--plots", str(plots)]) == EXIT_USAGE
    assert "curves.png: exists already" in capsys.readouterr().err


def test_distance_rule_on_request_and_for_a_bare_locations_file(
    scored_folder: Path, pred_csv: Path, capsys
) -> None:
    assert (
        main(
            [
                "evaluate",
                "--truth",
                str(scored_folder),
                "--pred",
                str(pred_csv),
                "--rule",
                "distance",
                "--skip",
                "shrec2021",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "distance rule" in out and "3qm1" in out and "5.100" in out
    )  # the class's radius is shown
    locations = scored_folder / "particle_locations.txt"
    assert (
        main(["evaluate", "--truth", str(locations), "--pred", str(pred_csv), "--radius", "3"]) == 0
    )
    out = capsys.readouterr().out
    assert "distance rule" in out
    assert re.search(r"TP \(particles found\)\s+3", out)


def test_unknown_class_without_radius_is_a_clear_error(
    scored_folder: Path, pred_csv: Path, capsys
) -> None:
    code = main(
        [
            "evaluate",
            "--truth",
            str(scored_folder / "particle_locations.txt"),
            "--pred",
            str(pred_csv),
        ]
    )
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no hit radius for class vesicle" in err and "Traceback" not in err


def test_header_only_csv_gives_zero_predictions(
    scored_folder: Path, tmp_path: Path, capsys
) -> None:
    empty = tmp_path / "none.csv"
    empty.write_text("x,y,z,score\n")
    assert main(["evaluate", "--truth", str(scored_folder), "--pred", str(empty)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"predictions\s+0\n", out) and re.search(r"precision\s+0\.0000", out)


def test_bad_input_ends_with_one_clear_line(
    scored_folder: Path, pred_csv: Path, tmp_path: Path, capsys
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["evaluate", "--truth", str(scored_folder), "--pred", str(empty)]) == EXIT_USAGE
    assert "empty.csv: picks CSV file is empty" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                "--truth",
                str(scored_folder),
                "--pred",
                str(pred_csv),
                "--skip",
                "1s3x,3qm1,vesicle",
            ]
        )
        == EXIT_USAGE
    )
    assert "all 3 truth particles belong to skipped classes" in capsys.readouterr().err
    no_truth = tmp_path / "nothing.txt"
    no_truth.write_text("")
    assert main(["evaluate", "--truth", str(no_truth), "--pred", str(pred_csv)]) == EXIT_USAGE
    assert "nothing.txt" in capsys.readouterr().err
    assert (
        main(["evaluate", "--truth", str(tmp_path / "missing"), "--pred", str(pred_csv)])
        == EXIT_USAGE
    )
    assert "no such file" in capsys.readouterr().err


def test_shrec2019_files_in_zyx_order(capsys) -> None:
    code = main(
        [
            "evaluate",
            "--truth",
            str(DATA / "layouts" / "shrec2019_model_9_particle_locations.txt"),
            "--pred",
            str(DATA / "peer_results" / "shrec2019_model_9_deepfinder_predictions.txt"),
            "--order",
            "zyx",
        ]
    )
    assert code == 0
    assert re.search(r"TP \(particles found\)\s+1914", capsys.readouterr().out)

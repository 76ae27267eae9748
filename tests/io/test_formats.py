"""The picks-format registry, OME-Zarr tomograms, STAR from the command line and `convert`."""

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile

from napari_cryoet_particles.cli import EXIT_USAGE, main
from napari_cryoet_particles.io import CryoetInputError, Picks, read_tomogram, write_tomogram
from napari_cryoet_particles.io.omezarr import (
    is_ome_zarr,
    read_ome_zarr,
    write_ome_zarr,
    write_ome_zarr_group,
    zarr_major,
)
from napari_cryoet_particles.io.picks import (
    PICKS_FORMATS,
    RELION_ANGLE_COLUMNS,
    format_for,
    orientations,
    picks_suffixes,
    read_picks,
    write_picks,
)

SHAPE = (40, 60, 80)


@pytest.fixture
def rich_picks() -> Picks:
    """Picks with everything a format may keep: scores, angles, a class, statuses, clusters."""
    zyx = np.array([[4.0, 10.5, 20.0], [30.0, 50.0, 70.25], [12.0, 33.0, 5.0]])
    features = pd.DataFrame(
        {
            "score": [0.9, 0.5, 0.25],
            "cluster": [0, 1, 1],
            "status": ["accepted", "auto", "rejected"],
            "class": "ribosome",
            "rlnAngleRot": [10.0, -40.0, 170.0],
            "rlnAngleTilt": [20.0, 90.0, 45.0],
            "rlnAnglePsi": [30.0, 0.0, -120.0],
        }
    )
    return Picks(zyx, 10.0, features, "TS_01")


# -- registry ------------------------------------------------------------------------------------


def test_registry_is_one_entry_per_format() -> None:
    names = [f.name for f in PICKS_FORMATS]
    assert len(set(names)) == len(names)
    assert picks_suffixes() == (".csv", ".star", ".json", ".txt")
    assert format_for("a.star").name == "star" and format_for("a.star", "star5").name == "star5"
    with pytest.raises(CryoetInputError, match=r"unknown picks format '\.xyz'"):
        format_for("picks.xyz")


def test_relion5_needs_the_shape(tmp_path: Path, rich_picks: Picks) -> None:
    with pytest.raises(CryoetInputError, match="need the tomogram's shape"):
        write_picks(tmp_path / "p.star", rich_picks, "star5")
    path = write_picks(tmp_path / "p.star", rich_picks, "star5", shape_zyx=SHAPE)
    back = read_picks(path, shape_zyx=SHAPE)
    np.testing.assert_allclose(back.zyx, rich_picks.zyx, atol=1e-4)


def test_star_keeps_angles_and_names(tmp_path: Path, rich_picks: Picks) -> None:
    path = write_picks(tmp_path / "p.star", rich_picks)
    table = starfile.read(path)
    assert set(RELION_ANGLE_COLUMNS) <= set(table.columns)
    assert table["rlnParticleName"].tolist() == ["ribosome"] * 3
    back = read_picks(path)
    np.testing.assert_allclose(
        back.features[list(RELION_ANGLE_COLUMNS)], rich_picks.features[list(RELION_ANGLE_COLUMNS)]
    )


def test_star_pixel_size_from_the_optics_block(tmp_path: Path) -> None:
    """RELION 4 tomography: coordinates in tilt-series pixels, their size in the optics block."""
    path = tmp_path / "relion4.star"
    starfile.write(
        {
            "optics": pd.DataFrame(
                {
                    "rlnOpticsGroup": [1],
                    "rlnTomoTiltSeriesPixelSize": [2.5],
                    "rlnImagePixelSize": [10.0],
                }
            ),
            "particles": pd.DataFrame(
                {
                    "rlnCoordinateX": [400.0],
                    "rlnCoordinateY": [200.0],
                    "rlnCoordinateZ": [100.0],
                    "rlnOpticsGroup": [1],
                    "rlnTomoName": ["TS_01"],
                }
            ),
        },
        path,
    )
    picks = read_picks(path, voxel_size=10.0)
    np.testing.assert_allclose(picks.zyx, [[25.0, 50.0, 100.0]])


# -- OME-Zarr ------------------------------------------------------------------------------------


def test_ome_zarr_round_trip_and_levels(tmp_path: Path) -> None:
    import zarr

    data = np.random.default_rng(0).normal(size=(16, 24, 32)).astype(np.float32)
    path = write_ome_zarr(tmp_path / "tomo.zarr", data, 7.84, levels=3)
    assert is_ome_zarr(path)
    volume = read_tomogram(path)
    assert isinstance(volume.data, zarr.Array)  # lazy: nothing read until sliced
    assert volume.voxel_size == pytest.approx(7.84) and volume.shape == data.shape
    np.testing.assert_array_equal(volume.data[:], data)
    binned = read_ome_zarr(path, voxel_size=15.68)
    assert binned.shape == (8, 12, 16)
    np.testing.assert_allclose(binned.data[0, 0, 0], data[:2, :2, :2].mean(), rtol=1e-5)
    with pytest.raises(
        CryoetInputError, match=r"no scale level of 10 Å \(levels: 7.84, 15.68, 31.36"
    ):
        read_tomogram(path, voxel_size=10.0)
    with pytest.raises(CryoetInputError, match="exists already"):
        write_tomogram(path, data, 7.84)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tomo.zarr"]


def test_ome_zarr_overwrite_replaces_the_whole_folder(tmp_path: Path) -> None:
    path = write_tomogram(tmp_path / "t.zarr", np.zeros((8, 8, 8), np.float32), 10.0)
    write_tomogram(path, np.ones((10, 12, 14), np.float32), 5.0, overwrite=True)
    volume = read_tomogram(path)
    assert volume.shape == (10, 12, 14) and volume.voxel_size == 5.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.zarr"]


def test_ome_zarr_is_written_as_ngff_04_in_zarr_v2_format(tmp_path: Path) -> None:
    """What the data portal serves and every copick release reads, with zarr 2 and zarr 3 alike:
    NGFF 0.4 metadata in ``.zattrs``, zarr v2 arrays whose chunk keys are nested (``0/z/y/x``)."""
    import json

    path = write_ome_zarr(tmp_path / "t.zarr", np.ones((8, 10, 12), np.float32), 10.0, chunks=4)
    assert json.loads((path / ".zattrs").read_text())["multiscales"][0]["version"] == "0.4"
    array = json.loads((path / "0" / ".zarray").read_text())
    assert array["zarr_format"] == 2 and array["dimension_separator"] == "/"
    assert array["chunks"] == [4, 4, 4] and (path / "0" / "1" / "2" / "2").is_file()
    assert not (path / "zarr.json").exists()


@pytest.mark.skipif(zarr_major() < 3, reason="NGFF 0.5 is zarr v3 format, which needs zarr 3")
def test_ome_zarr_ngff_05_in_zarr_v3_format_is_read(tmp_path: Path) -> None:
    """copick 2 and ome-zarr >= 0.12 write NGFF 0.5: metadata under ``ome`` in ``zarr.json``."""
    import json

    import zarr

    data = np.arange(8 * 10 * 12, dtype=np.float32).reshape(8, 10, 12)
    group = zarr.open_group(str(tmp_path / "v3.zarr"), mode="w", zarr_format=3)
    write_ome_zarr_group(group, data, 10.0, levels=2)
    metadata = json.loads((tmp_path / "v3.zarr" / "zarr.json").read_text())["attributes"]["ome"]
    assert metadata["version"] == "0.5" and is_ome_zarr(tmp_path / "v3.zarr")
    np.testing.assert_array_equal(read_tomogram(tmp_path / "v3.zarr").data[:], data)
    assert read_tomogram(tmp_path / "v3.zarr", voxel_size=20.0).shape == (4, 5, 6)


@pytest.mark.skipif(zarr_major() >= 3, reason="zarr 3 reads NGFF 0.5")
def test_ome_zarr_ngff_05_with_zarr_2_says_it_needs_zarr_3(tmp_path: Path) -> None:
    import json

    path = tmp_path / "v3.zarr"
    path.mkdir()
    multiscales = [{"axes": [], "datasets": [{"path": "0"}]}]
    attributes = {"ome": {"version": "0.5", "multiscales": multiscales}}
    document = {"zarr_format": 3, "node_type": "group", "attributes": attributes}
    (path / "zarr.json").write_text(json.dumps(document))
    assert is_ome_zarr(path)
    with pytest.raises(CryoetInputError, match=r"NGFF 0.5 \(zarr v3 format\), which needs zarr 3"):
        read_tomogram(path)


def test_a_folder_that_is_not_ome_zarr_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.zarr").mkdir()
    with pytest.raises(CryoetInputError, match="not an OME-Zarr image"):
        read_tomogram(tmp_path / "x.zarr")


# -- STAR from the command line ------------------------------------------------------------------


@pytest.fixture
def star_pair(tmp_path: Path) -> tuple[Path, Path]:
    """A truth CSV of one tomogram (10 Å) and a STAR of two tomograms without a pixel size,
    whose tomo_b picks are the truth in 2.5 Å tilt-series pixels."""
    truth = Picks(np.array([[5.0, 10.0, 20.0], [15.0, 30.0, 40.0]]), 10.0, tomogram="tomo_b")
    truth_csv = write_picks(tmp_path / "truth.csv", truth)
    xyz = truth.zyx[:, ::-1] * 4.0
    table = pd.DataFrame(
        {
            "rlnCoordinateX": [*xyz[:, 0], 1.0],
            "rlnCoordinateY": [*xyz[:, 1], 1.0],
            "rlnCoordinateZ": [*xyz[:, 2], 1.0],
            "rlnTomoName": ["tomo_b", "tomo_b", "tomo_a"],
        }
    )
    star = tmp_path / "picks.star"
    starfile.write({"particles": table}, star)
    return truth_csv, star


def test_evaluate_star_needs_a_pixel_size_and_a_tomogram(star_pair, capsys) -> None:
    truth, star = star_pair
    args = ["evaluate", "--truth", str(truth), "--pred", str(star), "--radius", "1"]
    assert main(args) == EXIT_USAGE
    assert "--star-pixel-size" in capsys.readouterr().err
    assert main([*args, "--star-pixel-size", "2.5"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "holds picks of 2 tomograms" in err and "--tomogram NAME" in err
    assert main([*args, "--star-pixel-size", "2.5", "--tomogram", "tomo_b"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"TP \(particles found\)\s+2\n", out) and re.search(r"F1\s+1\.0000", out)


def test_evaluate_truth_from_a_star_file(star_pair, tmp_path: Path, capsys) -> None:
    truth_csv, star = star_pair
    args = ["evaluate", "--truth", str(star), "--pred", str(truth_csv), "--radius", "1"]
    assert main([*args, "--star-pixel-size", "2.5", "--tomogram", "tomo_b"]) == 0
    assert re.search(r"TP \(particles found\)\s+2\n", capsys.readouterr().out)


# -- convert -------------------------------------------------------------------------------------

PAIRS = list(itertools.product([f.name for f in PICKS_FORMATS], repeat=2))
SUFFIX = {f.name: f.suffix for f in PICKS_FORMATS}
KEEPS = {f.name: set(f.keeps) for f in PICKS_FORMATS}


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_convert_round_trips_between_every_pair_of_formats(
    tmp_path: Path, rich_picks: Picks, source: str, target: str, capsys
) -> None:
    first = write_picks(tmp_path / f"in{SUFFIX[source]}", rich_picks, source, shape_zyx=SHAPE)
    out = tmp_path / f"out{SUFFIX[target]}"
    shape = ["--shape", *map(str, SHAPE)]
    voxel = ["--voxel-size", "10"]
    assert main(["convert", str(first), str(out), "--format", target, *shape, *voxel]) == 0
    kept = KEEPS[source] & KEEPS[target]
    back = read_picks(out, voxel_size=10.0, shape_zyx=SHAPE)
    np.testing.assert_allclose(back.zyx, rich_picks.zyx, atol=1e-3)
    if "score" in kept:
        np.testing.assert_allclose(back.scores, rich_picks.scores, atol=1e-5)
    if "class" in kept:
        assert back.features["class"].tolist() == ["ribosome"] * 3
    if "status" in kept:
        assert back.features["status"].tolist() == ["accepted", "auto", "rejected"]
    if "cluster" in kept:
        assert back.features["cluster"].tolist() == [0, 1, 1]
    if "angles" in kept:
        np.testing.assert_allclose(orientations(back), orientations(rich_picks), atol=1e-5)
    dropped = sorted(KEEPS[source] - KEEPS[target])
    err = capsys.readouterr().err
    assert all(name in err for name in dropped)


def test_convert_refuses_to_overwrite_and_unknown_formats(
    tmp_path: Path, rich_picks: Picks, capsys
) -> None:
    source = write_picks(tmp_path / "in.csv", rich_picks)
    assert main(["convert", str(source), str(source)]) == EXIT_USAGE
    assert "exists already" in capsys.readouterr().err
    assert main(["convert", str(source), str(tmp_path / "o.xyz")]) == EXIT_USAGE
    assert "unknown picks format '.xyz'" in capsys.readouterr().err

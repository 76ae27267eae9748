"""Picks: coordinate conventions, every file format's round trip, bad files, a real RELION file."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile

from napari_cryoet_particles.io import (
    CryoetInputError,
    Picks,
    angstrom_to_voxels,
    read_copick_json,
    read_csv,
    read_picks,
    read_shrec_locations,
    read_star,
    read_star_by_tomogram,
    relion_centered_angstrom_to_zyx,
    voxels_to_angstrom,
    write_copick_json,
    write_csv,
    write_picks,
    write_shrec_locations,
    write_star,
    xyz_to_zyx,
    zyx_to_relion_centered_angstrom,
    zyx_to_xyz,
)
from napari_cryoet_particles.simulate import SHREC2021_LAYOUT
from tests.conftest import DATA

CHLAMY_STAR = DATA / "real_files" / "chlamy_ps2_particles.star"


@pytest.fixture
def picks() -> Picks:
    zyx = np.array([[1.0, 2.0, 3.0], [10.5, 20.25, 30.0], [0.0, 0.0, 7.0]])
    features = pd.DataFrame(
        {
            "score": [0.9, 0.5, 0.1],
            "cluster": [1, 1, 0],
            "status": ["accepted", "auto", "rejected"],
            "class": ["1s3x", "3qm1", ""],
        }
    )
    return Picks(zyx, voxel_size=7.84, features=features, tomogram="TS_01")


def test_axis_order_conversion_is_its_own_inverse() -> None:
    zyx = np.array([[1.0, 2.0, 3.0]])
    assert zyx_to_xyz(zyx).tolist() == [[3.0, 2.0, 1.0]]
    assert xyz_to_zyx(zyx_to_xyz(zyx)).tolist() == zyx.tolist()


def test_angstrom_conversion() -> None:
    assert voxels_to_angstrom(np.array([[1.0, 2.0, 4.0]]), 7.84).tolist() == [[7.84, 15.68, 31.36]]
    assert np.allclose(angstrom_to_voxels(np.array([[7.84, 15.68, 31.36]]), 7.84), [[1, 2, 4]])


def test_relion5_centred_angstrom() -> None:
    shape = (100, 200, 300)
    centre = np.array([[50.0, 100.0, 150.0]])
    assert np.allclose(zyx_to_relion_centered_angstrom(centre, shape, 10.0), 0.0)
    corner = zyx_to_relion_centered_angstrom(np.zeros((1, 3)), shape, 10.0)
    assert corner.tolist() == [[-1500.0, -1000.0, -500.0]]
    assert np.allclose(relion_centered_angstrom_to_zyx(corner, shape, 10.0), 0.0)


def test_conversion_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        zyx_to_xyz(np.zeros((2, 2)))


def test_csv_has_the_contract_columns_and_round_trips(tmp_path: Path, picks: Picks) -> None:
    path = write_csv(tmp_path / "picks.csv", picks)
    table = pd.read_csv(path)
    assert list(table.columns[:4]) == ["x", "y", "z", "score"]
    assert table.loc[1, ["x", "y", "z"]].tolist() == [30.0, 20.25, 10.5]
    assert table.loc[1, "x_angstrom"] == pytest.approx(30.0 * 7.84)
    back = read_csv(path)
    assert np.allclose(back.zyx, picks.zyx)
    assert back.voxel_size == pytest.approx(7.84)
    assert back.features["status"].tolist() == ["accepted", "auto", "rejected"]
    assert back.features["class"].tolist() == ["1s3x", "3qm1", ""]
    assert back.tomogram == "TS_01"


def test_minimal_csv_from_another_tool(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("x,y,z\n1,2,3\n")
    picks = read_csv(path, voxel_size=5.0)
    assert picks.zyx.tolist() == [[3.0, 2.0, 1.0]]
    assert picks.features["status"].tolist() == ["auto"]


def test_star_relion4_round_trip(tmp_path: Path, picks: Picks) -> None:
    path = write_star(tmp_path / "picks.star", picks)
    table = starfile.read(path)
    assert table["rlnCoordinateX"].tolist() == [3.0, 30.0, 7.0]
    assert table["rlnTomoName"].unique().tolist() == ["TS_01"]
    back = read_star(path)
    assert np.allclose(back.zyx, picks.zyx)
    assert back.voxel_size == pytest.approx(7.84)
    assert back.features["cluster"].tolist() == [1, 1, 0]
    assert np.allclose(back.scores, picks.scores)


def test_star_relion5_round_trip(tmp_path: Path, picks: Picks) -> None:
    shape = (50, 60, 70)
    path = write_star(tmp_path / "picks5.star", picks, relion_version=5, shape_zyx=shape)
    table = starfile.read(path)
    assert table["rlnCenteredCoordinateXAngst"].iloc[0] == pytest.approx((3 - 35) * 7.84)
    back = read_star(path, shape_zyx=shape)
    assert np.allclose(back.zyx, picks.zyx)
    with pytest.raises(CryoetInputError, match="need the tomogram shape"):
        read_star(path)


def test_copick_round_trip_is_in_angstrom(tmp_path: Path, picks: Picks) -> None:
    with pytest.raises(CryoetInputError, match="a copick picks set holds one object"):
        write_copick_json(tmp_path / "mixed.json", picks)
    path = write_copick_json(tmp_path / "picks.json", picks, object_name="ribosome")
    document = json.loads(path.read_text())
    assert document["unit"] == "angstrom"
    assert document["pickable_object_name"] == "ribosome"
    assert document["points"][0]["location"] == pytest.approx(
        {"x": 3 * 7.84, "y": 2 * 7.84, "z": 1 * 7.84}
    )
    back = read_copick_json(path)
    assert np.allclose(back.zyx, picks.zyx)
    assert np.allclose(read_copick_json(path, voxel_size=15.68).zyx, picks.zyx / 2)


def test_shrec_locations_round_trip(tmp_path: Path, picks: Picks) -> None:
    path = write_shrec_locations(tmp_path / "particle_locations.txt", picks)
    first = path.read_text().splitlines()[0].split()
    assert first[:4] == ["1s3x", "3", "2", "1"]
    back = read_shrec_locations(path, voxel_size=7.84)
    assert np.allclose(back.zyx, picks.zyx)
    assert back.features["class"].tolist() == ["1s3x", "3qm1", "particle"]


def test_real_shrec2021_layout_reads() -> None:
    truth = read_shrec_locations(SHREC2021_LAYOUT)
    assert len(truth) == 1466
    first = truth.subset(np.array([0]))
    assert first.features["class"].iloc[0] == "vesicle"
    assert first.zyx.tolist() == [[95.0, 180.0, 425.0]]
    assert truth.zyx[:, 0].max() < 200


def test_shrec2019_layout_uses_zyx_order() -> None:
    truth = read_shrec_locations(
        DATA / "layouts" / "shrec2019_model_9_particle_locations.txt", order="zyx"
    )
    assert len(truth) == 2540
    assert truth.zyx[0].tolist() == [180.0, 480.0, 118.0]
    assert truth.features["class"].iloc[0] == "3d2f"


@pytest.mark.parametrize("suffix", [".csv", ".star", ".json", ".txt"])
def test_write_picks_by_suffix_round_trips(tmp_path: Path, picks: Picks, suffix: str) -> None:
    picks.features["class"] = "ribosome"
    path = write_picks(tmp_path / f"picks{suffix}", picks)
    assert np.allclose(read_picks(path, voxel_size=7.84).zyx, picks.zyx)


def test_writes_never_overwrite_unless_asked(tmp_path: Path, picks: Picks) -> None:
    path = write_csv(tmp_path / "picks.csv", picks)
    with pytest.raises(CryoetInputError, match="exists already"):
        write_csv(path, picks.subset(np.array([0])))
    assert len(read_csv(path)) == 3
    write_csv(path, picks.subset(np.array([0])), overwrite=True)
    assert len(read_csv(path)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["picks.csv"]


def test_empty_picks_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(CryoetInputError, match=r"empty\.csv: picks CSV file is empty"):
        read_csv(path)


def test_header_only_csv_is_zero_picks(tmp_path: Path) -> None:
    path = tmp_path / "none.csv"
    path.write_text("x,y,z,score\n")
    assert len(read_csv(path)) == 0


def test_csv_with_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("x,y,score\n1,2,0.5\n")
    with pytest.raises(
        CryoetInputError, match=r"bad\.csv: picks CSV lacks column z \(found: x, y, score\)"
    ):
        read_csv(path)


def test_csv_with_non_numeric_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "text.csv"
    path.write_text("x,y,z\n1,2,three\n")
    with pytest.raises(CryoetInputError, match=r"text\.csv: coordinates are not numbers"):
        read_csv(path)


def test_star_without_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "noxyz.star"
    starfile.write({"particles": pd.DataFrame({"rlnAngleRot": [1.0]})}, path)
    with pytest.raises(CryoetInputError, match=r"noxyz\.star: STAR file has no rlnCoordinateX/Y/Z"):
        read_star(path)


def test_unknown_picks_format(tmp_path: Path) -> None:
    with pytest.raises(CryoetInputError, match="unknown picks format '.xlsx'"):
        read_picks(tmp_path / "picks.xlsx")


def test_picks_outside_a_volume_are_flagged() -> None:
    picks = Picks(np.array([[0, 0, 0], [9.4, 9.4, 9.4], [9.6, 0, 0], [-0.6, 1, 1]]), 10.0)
    assert picks.outside((10, 10, 10)).tolist() == [False, False, True, True]


def _raw_star_rows(path: Path) -> list[list[str]]:
    """The data rows of a single-loop STAR, parsed by hand to check the reader independently."""
    lines = [line.split() for line in path.read_text().splitlines()]
    return [fields for fields in lines if len(fields) > 2 and not fields[0].startswith(("#", "_"))]


def test_real_relion_star_file_splits_by_tomogram() -> None:
    rows = _raw_star_rows(CHLAMY_STAR)
    by_tomogram = read_star_by_tomogram(CHLAMY_STAR, star_pixel_size=1.96)
    # The file holds 3,111 picks in 21 tomograms (the issue text said 3,114 in 22; the file is the truth).
    assert len(rows) == 3111
    assert len(by_tomogram) == len({row[6] for row in rows}) == 21
    assert sum(len(p) for p in by_tomogram.values()) == 3111
    assert len(by_tomogram["tomo_0573"]) == sum(row[6] == "tomo_0573" for row in rows) == 369
    first = by_tomogram["tomo_0024"]
    assert first.voxel_size == 1.96
    assert first.zyx[0] == pytest.approx([1041.465173, 3862.465173, 3726.465173])
    assert first.features["class"].iloc[0] == "PSII"
    assert first.features["rlnAngleRot"].iloc[0] == pytest.approx(-51.78281)


def test_real_relion_star_lands_in_a_bin4_tomogram() -> None:
    """Unbinned 1.96 Å pixel coordinates placed in a 7.84 Å (bin 4) tomogram: divide by 4."""
    rows = [row for row in _raw_star_rows(CHLAMY_STAR) if row[6] == "tomo_1335"]
    picks = read_star(CHLAMY_STAR, star_pixel_size=1.96, voxel_size=7.84, tomogram="tomo_1335")
    assert picks.voxel_size == 7.84
    for i in (0, len(rows) // 2, len(rows) - 1):
        x, y, z = (float(v) for v in rows[i][:3])
        assert picks.zyx[i] == pytest.approx([z / 4, y / 4, x / 4])
    # A bin-4 tomogram of 4096 x 4096 unbinned pixels is 1024 wide: every pick must fall inside it.
    assert picks.zyx[:, 1:].max() < 1024


def test_real_star_with_several_tomograms_needs_a_choice() -> None:
    with pytest.raises(CryoetInputError, match="holds picks of 21 tomograms"):
        read_star(CHLAMY_STAR, star_pixel_size=1.96)
    with pytest.raises(CryoetInputError, match="no picks for tomogram 'tomo_9999'"):
        read_star(CHLAMY_STAR, star_pixel_size=1.96, tomogram="tomo_9999")


def test_star_without_pixel_size_is_refused_never_read_as_1_angstrom() -> None:
    with pytest.raises(CryoetInputError, match=r"does not say its pixel size.*--star-pixel-size"):
        read_star(CHLAMY_STAR, tomogram="tomo_0024")


def test_blank_status_cells_read_as_auto(tmp_path) -> None:
    path = tmp_path / "curated.csv"
    path.write_text("x,y,z,score,status\n1,2,3,0.5,\n4,5,6,0.7,accepted\n")
    assert read_csv(path).features["status"].tolist() == ["auto", "accepted"]

"""Lengths, voxel sizes and the one rule for an unknown voxel size (io/units.py)."""

import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from napari_cryoet_particles.io import CryoetInputError, Picks, Volume, read_csv, write_csv
from napari_cryoet_particles.io.picks import (
    ADDED_FEATURES,
    FEATURE_DEFAULTS,
    standard_features,
    write_copick_json,
    write_star,
)
from napari_cryoet_particles.io.shrec import read_shrec_folder
from napari_cryoet_particles.io.tomogram import read_tomogram
from napari_cryoet_particles.io.units import (
    DEFAULT_VOXEL_SIZE,
    nm_to_angstrom,
    nm_to_voxels,
    radius_voxels,
    resolve_voxel_size,
    voxels_to_nm,
)

diameters = st.floats(0.5, 300.0, allow_nan=False)
sizes = st.floats(0.1, 1000.0, allow_nan=False)


def test_conversions_between_nm_angstrom_and_voxels() -> None:
    assert nm_to_angstrom(2.5) == 25.0
    assert nm_to_voxels(10.0, 5.0) == 20.0
    assert radius_voxels(10.0, 5.0) == 10.0
    assert voxels_to_nm(20.0, 5.0) == 10.0
    np.testing.assert_allclose(voxels_to_nm(np.array([1.0, 3.0]), 10.0), [1.0, 3.0])


@given(diameters, sizes)
def test_radius_voxels_is_bit_for_bit_the_factor_it_replaced(diameter: float, size: float) -> None:
    assert radius_voxels(diameter, size) == diameter * 5.0 / size
    assert nm_to_voxels(diameter, size) == diameter * 10.0 / size
    assert voxels_to_nm(diameter, size) == diameter * size / 10.0
    assert voxels_to_nm(1.0, size) == size / 10.0  # a voxel's edge in nm (detect/joined.py)


def test_the_users_voxel_size_wins_and_is_checked() -> None:
    assert resolve_voxel_size(7.0, 12.0, default=10.0) == 12.0
    with pytest.raises(CryoetInputError, match="voxel size 0.01 Å is implausible"):
        resolve_voxel_size(7.0, 0.01, what="t.mrc")


def test_a_stated_voxel_size_is_kept_and_an_unknown_one_stays_unknown() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_voxel_size(7.0, default=10.0) == 7.0
        assert resolve_voxel_size(None) is None
        assert resolve_voxel_size(None, default=10.0, warn=False) == 10.0


def test_falling_back_on_the_default_warns_once() -> None:
    with pytest.warns(UserWarning) as caught:
        assert resolve_voxel_size(None, default=DEFAULT_VOXEL_SIZE, what="t.mrc") == 10.0
    assert [str(w.message) for w in caught] == ["t.mrc: no voxel size in the header; assuming 10 Å"]


@pytest.fixture
def headerless(tmp_path: Path) -> Path:
    path = tmp_path / "nosize.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.random.default_rng(0).normal(size=(16, 16, 16)).astype(np.float32))
        mrc.voxel_size = 0
    return path


def test_detection_and_training_assume_the_default_with_a_warning(headerless: Path) -> None:
    from napari_cryoet_particles.detect.volume import check_volume
    from napari_cryoet_particles.model.sampling import make_source

    volume = read_tomogram(headerless)
    assert volume.voxel_size is None
    with pytest.warns(UserWarning, match="assuming 10 Å") as caught:
        assert check_volume(volume) == DEFAULT_VOXEL_SIZE
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_volume(volume, voxel_size=12.0) == 12.0
    with pytest.warns(UserWarning, match="assuming 10 Å"):
        source = make_source(volume, working_voxel_size=10.0, crop_size=8)
    assert source.voxels_per_world == 1.0  # 10 Å voxels, not 1 Å ones


def test_a_shrec_folder_defines_its_voxel_size(headerless: Path) -> None:
    folder = headerless.parent / "model_0"
    folder.mkdir()
    headerless.rename(folder / "reconstruction.mrc")
    (folder / "particle_locations.txt").write_text("1s3x 4 5 6 0 0 0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = read_shrec_folder(folder)
    assert dataset.tomogram.voxel_size == DEFAULT_VOXEL_SIZE
    assert dataset.truth.voxel_size == DEFAULT_VOXEL_SIZE


# -- picks of unknown voxel size -------------------------------------------------------------


def test_a_csv_of_bare_voxels_has_an_unknown_voxel_size_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "bare.csv"
    path.write_text("x,y,z,score\n1,2,3,0.5\n4,5,6,0.7\n")
    picks = read_csv(path)
    assert picks.voxel_size is None
    written = write_csv(tmp_path / "again.csv", picks)
    assert "angstrom" not in written.read_text().splitlines()[0]
    again = read_csv(written)
    assert again.voxel_size is None
    np.testing.assert_allclose(again.zyx, picks.zyx)
    assert read_csv(path, voxel_size=8.0).voxel_size == 8.0


def test_formats_in_angstrom_refuse_picks_of_unknown_voxel_size(tmp_path: Path) -> None:
    picks = Picks(np.array([[1.0, 2.0, 3.0]]))
    with pytest.raises(CryoetInputError, match="voxel size of the picks is unknown"):
        write_star(tmp_path / "p.star", picks)
    with pytest.raises(CryoetInputError, match="voxel size of the picks is unknown"):
        write_copick_json(tmp_path / "p.json", picks, "ribosome")
    assert not (tmp_path / "p.star").exists() and not (tmp_path / "p.json").exists()


def test_in_voxels_of_rescales_known_and_adopts_unknown_voxel_sizes() -> None:
    known = Picks(np.array([[2.0, 4.0, 6.0]]), 10.0)
    np.testing.assert_allclose(known.in_voxels_of(20.0).zyx, [[1.0, 2.0, 3.0]])
    assert known.in_voxels_of(20.0).voxel_size == 20.0
    assert known.in_voxels_of(10.0) is known and known.in_voxels_of(None) is known
    unknown = Picks(np.array([[2.0, 4.0, 6.0]]))
    adopted = unknown.in_voxels_of(20.0)
    assert adopted.voxel_size == 20.0
    np.testing.assert_allclose(adopted.zyx, unknown.zyx)


# -- one schema of pick features -------------------------------------------------------------


def test_every_picks_has_the_standard_features_typed() -> None:
    picks = Picks(
        np.zeros((2, 3)),
        10.0,
        pd.DataFrame({"score": ["0.5", None], "status": [None, "accepted"], "extra": [1, 2]}),
    )
    features = picks.features
    assert list(features.columns) == ["score", "status", "extra", "cluster", "class"]
    assert features["score"].dtype == float and np.isnan(features["score"][1])
    assert features["cluster"].tolist() == [FEATURE_DEFAULTS["cluster"]] * 2
    assert features["status"].tolist() == ["auto", "accepted"]
    assert features["class"].tolist() == ["", ""]
    assert standard_features(None, 1).iloc[0].to_dict().keys() == FEATURE_DEFAULTS.keys()
    assert ADDED_FEATURES == {**FEATURE_DEFAULTS, "status": "added"}
    with pytest.raises(ValueError, match="3 coordinates but 2 feature rows"):
        Picks(np.zeros((3, 3)), 10.0, features)


def test_volume_and_picks_voxel_sizes_are_optional() -> None:
    assert Volume(np.zeros((2, 2, 2)), None).voxel_size is None
    assert Picks(np.zeros((1, 3))).voxel_size is None
    with pytest.raises(ValueError, match="voxel size must be positive"):
        Picks(np.zeros((1, 3)), 0.0)

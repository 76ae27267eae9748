"""Tomogram reading and writing, including every kind of bad file a user may hand us."""

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from napari_cryoet_particles.io import CryoetInputError, read_tomogram, write_tomogram


@pytest.fixture
def tomogram_file(tmp_path: Path) -> Path:
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    return write_tomogram(tmp_path / "tomo.mrc", data, voxel_size=7.84)


def test_round_trip_keeps_data_order_and_voxel_size(tomogram_file: Path) -> None:
    volume = read_tomogram(tomogram_file)
    assert volume.shape == (4, 5, 6)
    assert volume.voxel_size == pytest.approx(7.84, rel=1e-5)
    assert volume.data[1, 2, 3] == 1 * 30 + 2 * 6 + 3


def test_open_is_memory_mapped_not_copied(tomogram_file: Path) -> None:
    volume = read_tomogram(tomogram_file)
    assert isinstance(volume.data, np.memmap)


def test_voxel_size_argument_overrides_header(tomogram_file: Path) -> None:
    assert read_tomogram(tomogram_file, voxel_size=20.0).voxel_size == 20.0


def test_missing_voxel_size_is_none(tmp_path: Path) -> None:
    path = tmp_path / "nohdr.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((3, 3, 3), np.float32))
        mrc.voxel_size = 0
    assert read_tomogram(path).voxel_size is None


def test_existing_file_is_not_overwritten(tomogram_file: Path) -> None:
    before = tomogram_file.read_bytes()
    with pytest.raises(CryoetInputError, match="exists already"):
        write_tomogram(tomogram_file, np.zeros((2, 2, 2), np.float32), 1.0)
    assert tomogram_file.read_bytes() == before
    write_tomogram(tomogram_file, np.zeros((2, 2, 2), np.float32), 1.0, overwrite=True)
    assert read_tomogram(tomogram_file).shape == (2, 2, 2)


def test_not_an_mrc_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.mrc"
    path.write_text("these are my lab notes, not a tomogram\n" * 40)
    with pytest.raises(CryoetInputError, match=r"notes\.mrc: not a valid MRC file"):
        read_tomogram(path)


def test_truncated_file(tomogram_file: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.mrc"
    truncated.write_bytes(tomogram_file.read_bytes()[:1100])
    with pytest.raises(CryoetInputError, match=r"truncated\.mrc: MRC file is truncated"):
        read_tomogram(truncated)


def test_2d_file(tmp_path: Path) -> None:
    path = tmp_path / "image.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((5, 6), np.float32))
    with pytest.raises(
        CryoetInputError, match=r"image\.mrc: expected a 3D tomogram, got a 2D array"
    ):
        read_tomogram(path)


def test_nan_values_are_counted(tmp_path: Path) -> None:
    data = np.zeros((4, 5, 6), np.float32)
    data[0, 0, :3] = np.nan
    data[3, 4, 5] = np.inf
    path = write_tomogram(tmp_path / "nan.mrc", data, 10.0)
    with pytest.raises(CryoetInputError, match=r"nan\.mrc: holds 4 NaN/Inf values out of 120"):
        read_tomogram(path)


def test_absurd_voxel_size(tmp_path: Path) -> None:
    path = write_tomogram(tmp_path / "huge.mrc", np.zeros((2, 2, 2), np.float32), 1e6)
    with pytest.raises(
        CryoetInputError, match=r"huge\.mrc: header voxel size 1e\+06 Å is implausible"
    ):
        read_tomogram(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(CryoetInputError, match="no such file"):
        read_tomogram(tmp_path / "absent.mrc")
    with pytest.raises(CryoetInputError, match="is a folder"):
        read_tomogram(tmp_path)

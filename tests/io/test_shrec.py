"""SHREC dataset folders and atomic writes."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_cryoet_particles.io import (
    CryoetInputError,
    Picks,
    atomic_write,
    is_shrec_folder,
    read_shrec_folder,
    write_shrec_locations,
    write_tomogram,
)


def make_folder(folder: Path, shape=(8, 10, 12)) -> Picks:
    folder.mkdir()
    write_tomogram(folder / "reconstruction.mrc", np.random.default_rng(0).normal(size=shape), 10.0)
    truth = Picks(
        np.array([[2.0, 3.0, 4.0], [5.0, 6.0, 7.0]]),
        10.0,
        pd.DataFrame({"class": ["1s3x", "vesicle"]}),
    )
    write_shrec_locations(folder / "particle_locations.txt", truth)
    occupancy = np.zeros(shape, np.int16)
    occupancy[2, 3, 4] = 1
    occupancy[5, 6, 7] = 2
    write_tomogram(folder / "occupancy_mask.mrc", occupancy, 10.0)
    return truth


def test_folder_with_truth(tmp_path: Path) -> None:
    truth = make_folder(tmp_path / "model_0")
    assert is_shrec_folder(tmp_path / "model_0")
    dataset = read_shrec_folder(tmp_path / "model_0")
    assert dataset.tomogram.shape == (8, 10, 12)
    assert dataset.tomogram.voxel_size == 10.0
    assert np.allclose(dataset.truth.zyx, truth.zyx)
    assert dataset.truth.features["class"].tolist() == ["1s3x", "vesicle"]
    assert dataset.occupancy[5, 6, 7] == 2
    assert dataset.class_mask is None


def test_folder_without_reconstruction(tmp_path: Path) -> None:
    assert not is_shrec_folder(tmp_path)
    with pytest.raises(CryoetInputError, match="not a SHREC dataset folder"):
        read_shrec_folder(tmp_path)


def test_mask_of_wrong_shape(tmp_path: Path) -> None:
    make_folder(tmp_path / "m")
    write_tomogram(tmp_path / "m" / "class_mask.mrc", np.zeros((2, 2, 2), np.int16), 10.0)
    with pytest.raises(CryoetInputError, match=r"class_mask\.mrc: shape \(2, 2, 2\) differs"):
        read_shrec_folder(tmp_path / "m")


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("precious")
    with pytest.raises(RuntimeError), atomic_write(target, overwrite=True) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_empty_locations_file_is_zero_picks(tmp_path: Path) -> None:
    from napari_cryoet_particles.io import read_shrec_locations

    path = write_shrec_locations(tmp_path / "particle_locations.txt", Picks(np.zeros((0, 3)), 10.0))
    assert len(read_shrec_locations(path)) == 0


def test_written_files_get_ordinary_permissions(tmp_path: Path) -> None:
    path = write_tomogram(tmp_path / "t.mrc", np.zeros((2, 2, 2), np.float32), 1.0)
    assert path.stat().st_mode & 0o044 == 0o044


def test_same_data_gives_identical_mrc_bytes(tmp_path: Path) -> None:
    data = np.random.default_rng(1).normal(size=(3, 4, 5)).astype(np.float32)
    first = write_tomogram(tmp_path / "a.mrc", data, 10.0)
    second = write_tomogram(tmp_path / "b.mrc", data, 10.0)
    assert first.read_bytes() == second.read_bytes()

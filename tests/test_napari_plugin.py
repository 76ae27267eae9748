"""The npe2 adapters: manifest, reader, writers, sample data (no window needed)."""

import importlib.metadata
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import napari_cryoet_particles
from napari_cryoet_particles import _reader
from napari_cryoet_particles._sample_data import make_sample_data
from napari_cryoet_particles._writer import write_points
from napari_cryoet_particles.io import read_csv, read_shrec_locations, read_star, write_tomogram
from napari_cryoet_particles.io.picks import picks_suffixes
from napari_cryoet_particles.io.units import voxels_to_nm

REPO = Path(__file__).resolve().parents[1]


def test_installed_manifest_is_the_top_level_file() -> None:
    packaged = Path(napari_cryoet_particles.__file__).parent / "napari.yaml"
    entry = importlib.metadata.entry_points(group="napari.manifest", name="napari-cryoet-particles")
    assert [e.value for e in entry] == ["napari_cryoet_particles:napari.yaml"]
    assert packaged.is_symlink()
    assert not os.path.isabs(os.readlink(packaged))
    assert os.path.samefile(packaged, REPO / "napari.yaml")


def test_manifest_validates_and_imports() -> None:
    import npe2

    manifest = npe2.PluginManifest.from_distribution("napari-cryoet-particles")
    manifest.validate_imports()
    commands = {c.id for c in manifest.contributions.commands}
    assert {
        f"napari-cryoet-particles.{w}_widget"
        for w in ("tomogram", "train", "detect", "curate", "metrics", "export")
    } <= commands
    extensions = {e for w in manifest.contributions.writers for e in w.filename_extensions}
    assert extensions == set(picks_suffixes())  # one napari writer per registry format suffix


def test_reader_opens_mrc_memory_mapped(tiny_tomogram: Path) -> None:
    reader = _reader.get_reader(str(tiny_tomogram))
    assert reader is not None
    [(data, kwargs, layer_type)] = reader(str(tiny_tomogram))
    assert layer_type == "image"
    assert isinstance(data, np.memmap)
    assert kwargs["scale"] == (7.5, 7.5, 7.5)
    assert kwargs["name"] == "tiny"
    assert kwargs["metadata"]["voxel_size"] == 7.5
    assert kwargs["metadata"]["path"] == str(tiny_tomogram)
    lo, hi = kwargs["contrast_limits"]
    assert data.min() <= lo < hi <= data.max()


def test_reader_opens_ome_zarr_lazily(tmp_path: Path) -> None:
    import zarr

    data = np.arange(8 * 10 * 12, dtype=np.float32).reshape(8, 10, 12)
    path = write_tomogram(tmp_path / "tomo.zarr", data, 10.0)
    reader = _reader.get_reader(str(path))
    assert reader is not None
    [(layer_data, kwargs, layer_type)] = reader(str(path))
    assert layer_type == "image"
    assert isinstance(layer_data, zarr.Array)
    assert kwargs["name"] == "tomo"
    assert kwargs["scale"] == (10.0, 10.0, 10.0)
    np.testing.assert_array_equal(layer_data[:], data)


def test_reader_declines_other_files_without_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(_reader, "_warn", warnings.append)
    (tmp_path / "notes.txt").write_text("hello")
    assert _reader.get_reader(str(tmp_path / "notes.txt")) is None
    assert _reader.get_reader(str(tmp_path)) is None  # a folder without reconstruction.mrc
    assert warnings == []
    (tmp_path / "broken.mrc").write_bytes(b"not an mrc file at all" * 3)
    assert _reader.get_reader(str(tmp_path / "broken.mrc")) is None
    assert len(warnings) == 1 and "broken.mrc" in warnings[0]


def test_reader_opens_shrec_folder_with_truth(shrec_folder: Path) -> None:
    reader = _reader.get_reader(str(shrec_folder))
    assert reader is not None
    image, points = reader(str(shrec_folder))
    assert image[2] == "image" and image[1]["scale"] == (10.0,) * 3
    data, kwargs, layer_type = points
    assert layer_type == "points"
    assert kwargs["name"] == "model_0 truth"
    truth = read_shrec_locations(shrec_folder / "particle_locations.txt", voxel_size=10.0)
    assert len(data) == len(truth) == 3
    np.testing.assert_allclose(data, truth.zyx)
    assert kwargs["scale"] == (10.0,) * 3
    assert kwargs["features"]["class"].tolist() == ["1s3x", "4v94", "1s3x"]
    assert kwargs["face_color"] == "class"
    assert len(kwargs["face_color_cycle"]) == 2


@pytest.mark.parametrize("suffix", [".csv", ".star", ".json"])
def test_writer_round_trip(tmp_path: Path, suffix: str) -> None:
    """(SHREC txt keeps no scores: its round trip is in tests/io/test_formats.py.)"""
    data = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    features = pd.DataFrame(
        {
            "score": [0.9, 0.1, 0.5],
            "cluster": [1, 0, 1],
            "status": ["accepted", "auto", "rejected"],
            "class": "",
        }
    )
    attributes = {
        "features": features,
        "scale": [8.0, 8.0, 8.0],
        "metadata": {},
        "name": "tomo_a picks",
        "shown": np.array([True, False, True]),
    }
    path = tmp_path / f"picks{suffix}"
    assert write_points(str(path), data, attributes) == [str(path)]
    if suffix == ".csv":
        picks = read_csv(path)
        assert picks.features["status"].tolist() == ["accepted", "rejected"]
    elif suffix == ".star":
        picks = read_star(path)
    else:
        from napari_cryoet_particles.io import read_copick_json

        picks = read_copick_json(path)
    assert picks.voxel_size == 8.0
    np.testing.assert_allclose(picks.zyx, data[[0, 2]], atol=1e-4)
    np.testing.assert_allclose(picks.scores, [0.9, 0.5], atol=1e-5)
    # the layer writer replaces an existing file (napari's save dialog has asked already)
    assert write_points(str(path), data, attributes) == [str(path)]


def test_real_sample_loads_through_npe2() -> None:
    """File > Open Sample > the HIV-1 VLP tomogram: 40 Å image and its 9 VLP centres as truth."""
    import npe2

    manifest = npe2.PluginManifest.from_distribution("napari-cryoet-particles")
    plugins = npe2.PluginManager()
    plugins.register(manifest)
    plugins.activate(manifest.name)
    [sample] = [s for s in manifest.contributions.sample_data if s.key == "hiv_vlp"]
    image, points = sample.open(_registry=plugins.commands)
    (volume, image_kwargs, image_type), (zyx, points_kwargs, points_type) = image, points
    assert (image_type, points_type) == ("image", "points")
    assert volume.shape == (101, 135, 135) and volume.dtype == np.float32
    assert image_kwargs["scale"] == points_kwargs["scale"] == (40.0,) * 3
    assert image_kwargs["metadata"]["voxel_size"] == 40.0
    assert image_kwargs["metadata"]["role"] == "tomogram"
    assert points_kwargs["metadata"]["role"] == "truth"
    assert points_kwargs["metadata"]["tomogram_shape"] == volume.shape
    assert len(zyx) == 9 and np.all((zyx >= 0) & (zyx < np.asarray(volume.shape)))
    radii = points_kwargs["features"]["radius"].to_numpy()
    np.testing.assert_allclose(points_kwargs["size"], 2 * radii)  # markers as large as the shells
    radii_nm = voxels_to_nm(radii, 40.0)
    assert np.all((radii_nm > 40.0) & (radii_nm < 50.0))
    # protein bright, hollow: each shell is brighter than its centre
    grid = np.indices(volume.shape)
    for centre, radius in zip(zyx, radii, strict=True):
        distance = np.sqrt(sum((grid[a] - centre[a]) ** 2 for a in range(3)))
        inside = volume[distance < 0.4 * radius].mean()
        assert volume[np.abs(distance - radius) < 1.5].mean() > inside + 0.05


def test_sample_data_layers() -> None:
    (volume, image_kwargs, image_type), (zyx, points_kwargs, points_type) = make_sample_data()
    assert (image_type, points_type) == ("image", "points")
    voxel = image_kwargs["metadata"]["voxel_size"]
    assert image_kwargs["scale"] == (voxel,) * 3
    assert points_kwargs["scale"] == (voxel,) * 3
    assert points_kwargs["name"] == "truth"
    assert len(zyx) == len(points_kwargs["features"]) > 0
    assert np.all((zyx >= 0) & (zyx < np.asarray(volume.shape)))

"""Every tuned number in one frozen object with named presets (detect/params.py)."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from napari_cryoet_particles.cli import build_parser, detection_config, main
from napari_cryoet_particles.detect import DetectionConfig, detect_particles
from napari_cryoet_particles.detect.candidates import (
    blob_radii,
    blob_zscore,
    multiscale_candidates,
)
from napari_cryoet_particles.detect.params import (
    DEFAULT_PRESET,
    PRESETS,
    CandidateParams,
    DetectionParams,
    preset,
    preset_name,
)
from napari_cryoet_particles.io import CryoetInputError, Volume
from tests.detect.test_pipeline import BlobEncoder, blob_scene

DEFAULT = PRESETS[DEFAULT_PRESET]


def _dark_ball(shape=(32, 40, 40), centre=(16, 20, 20), radius=3.0, noise=0.2, seed=0):
    """A dark ball in Gaussian noise (the working volume's view: particles dark)."""
    grid = np.indices(shape, dtype=float)
    distance = np.sqrt(sum((grid[a] - centre[a]) ** 2 for a in range(3)))
    volume = -(distance <= radius).astype(np.float32)
    volume = ndimage.gaussian_filter(volume, 0.7)
    volume += np.random.default_rng(seed).normal(0, noise, shape).astype(np.float32)
    return volume.astype(np.float32)


def test_the_log_filter_finds_a_blob_at_its_scale() -> None:
    volume = _dark_ball()
    log = dataclasses.replace(DEFAULT.candidates, candidate_filter="log")
    radii = blob_radii(2.0, 6.0, log.radius_step)
    found = multiscale_candidates(lambda box: volume[box].copy(), volume.shape, radii, log)
    assert len(found) >= 1
    best = int(np.argmax(found.strength))
    assert np.linalg.norm(found.zyx[best] - (16, 20, 20)) <= 1.5
    assert found.strength[best] > 8.0
    assert 2.0 <= found.radius[best] <= 4.5  # the scale of a 3-voxel ball


def test_the_log_response_peaks_on_the_blob_and_differs_from_the_dog() -> None:
    bright = -_dark_ball(noise=0.05)
    log = blob_zscore(
        bright.copy(), 3.0, dataclasses.replace(DEFAULT.candidates, candidate_filter="log")
    )
    dog = blob_zscore(bright.copy(), 3.0, DEFAULT.candidates)
    assert np.unravel_index(np.argmax(log), log.shape) == (16, 20, 20)
    assert not np.allclose(log, dog)


def test_detection_with_the_log_filter_picks_the_blobs() -> None:
    scene = blob_scene(seed=5, shape=(32, 64, 64), n=10, noise=0.3)
    config = DetectionConfig(
        diameter_nm=4.0,
        threads=1,
        groups=0,
        keep_edges=True,
        params=DEFAULT.updated(candidate_filter="log"),
    )
    picks = detect_particles(Volume(scene.volume, 10.0), BlobEncoder(), config).picks
    distance = np.linalg.norm(picks.zyx[:, None] - scene.centres[None], axis=2)
    assert np.mean(distance.min(axis=0) <= 3) >= 0.8  # recall
    assert np.mean(distance.min(axis=1) <= 3) >= 0.8  # precision


def test_a_preset_by_name_gives_the_picks_of_the_same_values() -> None:
    scene = blob_scene(seed=4, shape=(32, 64, 64), n=10, noise=0.4)
    volume = Volume(scene.volume, 10.0)

    def picks(params):
        config = DetectionConfig(diameter_nm=4.0, threads=1, groups=0, params=params)
        return detect_particles(volume, BlobEncoder(), config)

    by_name, by_values = picks("session8"), picks(PRESETS["session8"])
    assert len(by_name.picks) > 0
    assert np.array_equal(by_name.picks.zyx, by_values.picks.zyx)
    assert np.array_equal(by_name.picks.scores, by_values.picks.scores)
    assert by_values.info["preset"] == "session8"
    assert picks(DEFAULT).info["preset"] == DEFAULT_PRESET


def test_an_unknown_preset_is_a_clear_error(capsys, tiny_tomogram, tmp_path) -> None:
    with pytest.raises(CryoetInputError, match="unknown detection preset 'nope'"):
        DetectionConfig(params="nope")
    with pytest.raises(CryoetInputError, match="default"):
        preset("nope")
    with pytest.raises(SystemExit) as stop:
        main(["detect", str(tiny_tomogram), "--out", str(tmp_path / "p.csv"), "--preset", "x"])
    assert stop.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_bad_tuned_values_are_refused() -> None:
    with pytest.raises(CryoetInputError, match="candidate filter"):
        DetectionConfig(params=DEFAULT.updated(candidate_filter="sobel")).validated()
    with pytest.raises(CryoetInputError, match="learned weight"):
        DetectionConfig().with_params(learned_weight=-1.0).validated()
    with pytest.raises(TypeError, match="no detection parameter named nope"):
        DEFAULT.updated(nope=1)


def test_a_switch_that_would_do_nothing_is_refused() -> None:
    for name in PRESETS:
        DetectionConfig(params=name).validated()
    with pytest.raises(CryoetInputError, match="f1_cut does nothing without adapt_share"):
        DetectionConfig(params=DEFAULT.updated(adapt_share=False)).validated()
    with pytest.raises(CryoetInputError, match="ranker does nothing without adaptive_threshold"):
        DetectionConfig(params=DEFAULT.updated(adaptive_threshold=False)).validated()
    with pytest.raises(CryoetInputError, match="ranker_extent_reach does nothing without ranker"):
        DetectionConfig(
            params=PRESETS["strength-order"].updated(ranker_extent_reach=1.0)
        ).validated()


def test_fields_are_named_once_and_updated_in_their_group() -> None:
    names = [
        f.name
        for group in dataclasses.fields(DetectionParams)
        for f in dataclasses.fields(getattr(DEFAULT, group.name))
    ]
    assert len(names) == len(set(names))
    changed = DEFAULT.updated(reach=2.5, candidate_filter="log", learned_weight=0.0)
    assert changed.candidates.reach == 2.5 and changed.candidates.candidate_filter == "log"
    assert changed.score.learned_weight == 0.0
    assert changed.learned == DEFAULT.learned and DEFAULT.candidates.reach == 1.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.candidates.reach = 3.0  # type: ignore[misc]
    assert preset_name(changed) is None and preset_name(DEFAULT) == DEFAULT_PRESET
    assert CandidateParams().candidate_filter == "dog"


def test_the_cli_maps_its_options_onto_the_preset() -> None:
    args = ["detect", "t.mrc", "--out", "p.csv", "--preset", "embedding-only"]
    config = detection_config(build_parser().parse_args(args))
    assert config.params == PRESETS["embedding-only"]
    config = detection_config(build_parser().parse_args([*args, "--clusters", "4"]))
    assert config.params == PRESETS["embedding-only"].updated(n_clusters=4)
    assert (config.density_weight, config.n_clusters) == (0.0, 4)

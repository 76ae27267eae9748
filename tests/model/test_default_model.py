"""The model shipped inside the package: loads, is small, says how it was made, and finds particles."""

import pytest

from napari_cryoet_particles.detect import DetectionConfig, detect_particles
from napari_cryoet_particles.evaluate import evaluate_picks
from napari_cryoet_particles.io import Volume
from napari_cryoet_particles.model.checkpoint import default_model_path, load_default_model
from napari_cryoet_particles.simulate import make_sample_dataset


def test_default_model_is_shipped_small_and_documented() -> None:
    path = default_model_path()
    assert path.is_file()
    assert path.stat().st_size < 5_000_000
    model = load_default_model()
    assert model.working_voxel_size == 10.0
    assert "simulated" in model.metadata["description"]
    assert all("seed=100" in line for line in model.metadata["training_data"])


@pytest.mark.slow
def test_detect_without_a_model_uses_the_shipped_one() -> None:
    sample = make_sample_dataset(seed=0)
    volume = Volume(sample.volume, sample.voxel_size)
    result = detect_particles(volume, None, DetectionConfig(groups=0, device="cpu"))
    picks = result.picks
    assert len(picks) > 0
    assert not picks.outside(volume.shape).any()
    assert ((picks.scores >= 0) & (picks.scores <= 1)).all()
    score = evaluate_picks(
        sample.truth, picks, id_map=sample.occupancy, skip=("vesicle", "fiducial", "4V94")
    )
    assert score.tp > 0

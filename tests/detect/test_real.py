"""Detection on the two real volumes (tests/data/real_tomograms): data nobody here simulated."""

import numpy as np
import pytest

from napari_cryoet_particles.detect import DetectionConfig, detect_particles
from napari_cryoet_particles.detect.structure import at_faces
from napari_cryoet_particles.io.tomogram import read_tomogram
from napari_cryoet_particles.io.units import nm_to_voxels


@pytest.mark.parametrize("name", ["mt13", "mt14"])
def test_microtubules_and_gold_give_few_picks_and_a_warning(real_tomograms, name: str) -> None:
    """Two microtubules and gold beads, no particles: the walls are not picked, and the user is told."""
    result = detect_particles(
        read_tomogram(real_tomograms[name]), config=DetectionConfig(keep_score_map=False, threads=1)
    )
    assert len(result.picks) <= 5
    assert result.info["dropped"].get("tube or sheet", 0) >= 10
    assert any("filaments, tubes, membranes" in w for w in result.info["warnings"])


def test_large_objects_in_a_coarse_tomogram_run_at_its_own_scale(real_tomograms) -> None:
    """HIV VLPs at 40 Å, searched at 80-120 nm: worked at 40 Å (not upsampled), no pick at the faces."""
    volume = read_tomogram(real_tomograms["hiv"])
    config = DetectionConfig(
        min_diameter_nm=80, max_diameter_nm=120, keep_score_map=False, threads=1
    )
    result = detect_particles(volume, config=config)
    assert result.info["working_voxel_size"] == pytest.approx(40.0)
    picks = result.picks
    radius = nm_to_voxels(picks.features["radius_nm"].to_numpy(), 40.0)
    assert len(picks) > 0
    assert not at_faces(picks.zyx, radius, volume.shape).any()
    assert np.all(picks.zyx >= 0) and np.all(picks.zyx <= np.asarray(volume.shape) - 1)

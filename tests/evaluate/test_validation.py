"""The scorer against a published result, and the shipped radius tables against their source data.

DeepFinder's 2194 predictions on SHREC 2019 model 9 were scored by the official SHREC 2019 script
(a particle-id "hitbox" map we do not have): TP 1916, FP 270, FN 624. The distance rule with the
shipped per-class radii (enclosing sphere of each class's shape mask dilated by one voxel) must
land within TP 1905-1925 and FP 270-290, and miss about as many particles of each class.
"""

import re

import numpy as np
import pytest

from napari_cryoet_particles.evaluate import (
    SHREC2019_RADII,
    SHREC2021_RADII,
    derive_radius_table,
    evaluate_picks,
    radius_from_mask,
)
from napari_cryoet_particles.evaluate.radii import SHREC2021_MASK_FRACTION
from napari_cryoet_particles.io import read_shrec_locations
from tests.conftest import DATA

TRUTH = DATA / "layouts" / "shrec2019_model_9_particle_locations.txt"
PREDICTIONS = DATA / "peer_results" / "shrec2019_model_9_deepfinder_predictions.txt"
OFFICIAL_LOG = DATA / "peer_results" / "shrec2019_model_9_deepfinder_evaluation_log.txt"


def official_numbers() -> tuple[dict[str, int], dict[str, int]]:
    """TP/FP/FN of the official log, and per class the particles it left unfound (column '0')."""
    text = OFFICIAL_LOG.read_text()
    totals = {
        key: int(re.search(rf"^{key}: (\d+)", text, re.MULTILINE).group(1))
        for key in ("TP", "FP", "FN")
    }
    matrix = text.split("CLASSIFICATION EVALUATION")[1].split("Overall Statistics")[0]
    missed = {}
    for line in matrix.splitlines():
        cells = line.split()
        if len(cells) == 14 and re.fullmatch(r"\d\w{3}", cells[0]):
            missed[cells[0]] = int(cells[1])
    return totals, missed


def test_distance_rule_reproduces_the_official_shrec2019_score() -> None:
    truth = read_shrec_locations(TRUTH, order="zyx")
    pred = read_shrec_locations(PREDICTIONS, order="zyx")
    assert (len(truth), len(pred)) == (2540, 2194)
    result = evaluate_picks(
        truth, pred
    )  # auto: the SHREC 2019 table (4b4t and 4d8q are only there)
    totals, missed = official_numbers()
    assert totals == {"TP": 1916, "FP": 270, "FN": 624}
    assert 1905 <= result.tp <= 1925, result.summary()
    assert 270 <= result.fp <= 290, result.summary()
    assert result.tp + result.fp + result.n_duplicate == 2194 and result.fn == 2540 - result.tp
    assert result.f1 == pytest.approx(0.809, abs=0.005)
    ours = result.per_class.set_index("class")["fn"]
    assert len(missed) == 12
    for name, official in missed.items():
        assert abs(ours[name] - official) <= 5, (name, ours[name], official)


def test_fixed_radius_rules_are_worse_stand_ins() -> None:
    """The per-class radius is what makes the stand-in work: one radius misses small or big classes."""
    truth = read_shrec_locations(TRUTH, order="zyx")
    pred = read_shrec_locations(PREDICTIONS, order="zyx")
    _, missed = official_numbers()
    for radius in (5.0, 12.0):
        fn = evaluate_picks(truth, pred, radius=radius).per_class.set_index("class")["fn"]
        assert max(abs(fn[name] - official) for name, official in missed.items()) > 5


def test_shipped_radius_tables_derive_from_the_reference_maps() -> None:
    masks = sorted((DATA / "structures_shrec2019_masks").glob("*.mrc"))
    maps = sorted((DATA / "structures_10A").glob("*.mrc"))
    assert derive_radius_table(masks) == pytest.approx(SHREC2019_RADII, abs=0.006)
    assert derive_radius_table(maps, fraction=SHREC2021_MASK_FRACTION) == pytest.approx(
        SHREC2021_RADII, abs=0.006
    )


def test_radius_from_mask_is_the_dilated_enclosing_sphere() -> None:
    mask = np.zeros((11, 11, 11), dtype=bool)
    mask[5, 5, 2:9] = True  # a rod from -3 to +3 about the centre voxel 5
    assert radius_from_mask(mask, dilation=0) == 3.0
    assert radius_from_mask(mask) == 4.0

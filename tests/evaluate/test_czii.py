"""The CZII challenge score on a case worked out by hand."""

import numpy as np
import pandas as pd
import pytest

from napari_cryoet_particles.evaluate.czii import CZII_PARTICLES, count_hits, czii_score, f_beta
from napari_cryoet_particles.io import Picks


def picks(tomogram: str, rows: list[tuple[str, float]]) -> Picks:
    """Picks on the x axis: (type, x in Å), in 10 Å voxels."""
    zyx = np.array([[0.0, 0.0, x / 10.0] for _, x in rows]).reshape(-1, 3)
    return Picks(zyx, 10.0, pd.DataFrame({"class": [t for t, _ in rows]}), tomogram)


def test_hand_worked_case() -> None:
    """Ribosome (hit within 75 Å): in A, truth at 0 and 1000 Å, picks at 50 (hit), 60 (a second
    hit on the same particle: FP) and 500 (FP); in B, truth at 0, no pick. TP 1, FP 2, FN 2:
    precision = recall = 1/3, F4 = 1/3. Apo-ferritin (within 30 Å), in B: truth at 0, picks at 20
    (hit) and 40 (too far: FP): P 1/2, R 1, F4 = 17 * 0.5 / (16 * 0.5 + 1) = 17/18. The other
    four types have nothing: F4 0. Weights 1, 0, 2, 1, 2, 1: score = (1/3 + 17/18) / 7 = 23/126."""
    truth = [
        picks("A", [("ribosome", 0.0), ("ribosome", 1000.0)]),
        picks("B", [("ribosome", 0.0), ("apo-ferritin", 0.0)]),
    ]
    pred = [
        picks("A", [("ribosome", 50.0), ("ribosome", 60.0), ("ribosome", 500.0), ("foo", 0.0)]),
        picks("B", [("apo-ferritin", 20.0), ("Apo_Ferritin", 40.0)]),
    ]
    result = czii_score(truth, pred)
    table = result.per_type.set_index("type")
    assert table.loc["ribosome", ["tp", "fp", "fn"]].tolist() == [1, 2, 2]
    assert table.loc["apo-ferritin", ["tp", "fp", "fn"]].tolist() == [1, 1, 0]
    assert table.loc["ribosome", "f_beta"] == pytest.approx(1 / 3)
    assert table.loc["apo-ferritin", "f_beta"] == pytest.approx(17 / 18)
    assert result.score == pytest.approx(23 / 126)
    assert result.n_tomograms == 2
    assert any("'foo'" in w for w in result.warnings)


def test_the_challenge_table() -> None:
    table = {p.name: (p.radius, p.weight) for p in CZII_PARTICLES}
    assert table == {
        "apo-ferritin": (60.0, 1.0),
        "beta-amylase": (65.0, 0.0),
        "beta-galactosidase": (90.0, 2.0),
        "ribosome": (150.0, 1.0),
        "thyroglobulin": (130.0, 2.0),
        "virus-like-particle": (135.0, 1.0),
    }


def test_edge_cases_follow_the_challenge() -> None:
    assert count_hits(np.zeros((0, 3)), np.zeros((2, 3)), 10.0) == (0, 2, 0)
    assert count_hits(np.zeros((3, 3)), np.zeros((0, 3)), 10.0) == (0, 0, 3)
    assert f_beta(0, 0, 0) == (0.0, 0.0, 0.0)
    perfect = [picks("A", [(p.name, 0.0)]) for p in CZII_PARTICLES[:1]]
    assert czii_score(perfect, perfect, CZII_PARTICLES[:1]).score == pytest.approx(1.0)

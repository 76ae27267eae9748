"""The clutter rule beside the SHREC rule, where false picks land, and the real-volume checks."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_cryoet_particles.cli import main
from napari_cryoet_particles.evaluate import (
    BACKGROUND,
    FACES,
    OUTSIDE_SAMPLE,
    OUTSIDE_VOLUME,
    PROTEIN_CLASS_KEYS,
    class_names_from_masks,
    clutter_classes,
    face_picks,
    landing_sites,
    negative_control_summary,
    read_lattice_points,
    read_vlp_centres,
    score_clutter,
    score_shrec,
    vlp_centre_hits,
)
from napari_cryoet_particles.io import Picks, read_tomogram, write_csv, write_tomogram
from napari_cryoet_particles.io.shrec import read_class_names
from napari_cryoet_particles.io.units import nm_to_voxels
from napari_cryoet_particles.simulate.structures import PROTEIN_CLASSES, SHREC_CLASSES

SHAPE = (12, 16, 30)
#: class-mask values: proteins 1-2, then clutter
NAMES = {0: "background", 1: "1S3X", 2: "4V94", 3: "vesicle", 4: "fiducial", 5: "membrane"}


def _cube(volume: np.ndarray, centre, value: int, half: int = 1) -> None:
    z, y, x = centre
    volume[z - half : z + half + 1, y - half : y + half + 1, x - half : x + half + 1] = value


@pytest.fixture
def dataset() -> dict:
    """Truth 1s3x, 4V94, vesicle, fiducial (ids 1-4), plus a membrane sheet in the class mask only."""
    centres = np.array([[6, 8, 5], [6, 8, 11], [6, 8, 17], [6, 8, 23]])
    classes = ["1s3x", "4V94", "vesicle", "fiducial"]
    occupancy = np.zeros(SHAPE, np.int16)
    class_mask = np.zeros(SHAPE, np.int16)
    for k, (centre, value) in enumerate(zip(centres, (1, 2, 3, 4), strict=True), start=1):
        _cube(occupancy, centre, k)
        _cube(class_mask, centre, value)
    class_mask[6, 13, 3:27] = 5  # a membrane strip, not a truth particle
    truth = Picks(centres, 10.0, pd.DataFrame({"class": classes}))
    return {"truth": truth, "occupancy": occupancy, "class_mask": class_mask}


def test_a_pick_on_a_vesicle_is_fp_by_the_clutter_rule_and_not_counted_by_the_shrec_rule(
    dataset: dict,
) -> None:
    truth, ids = dataset["truth"], dataset["occupancy"]
    pred = Picks(np.array([[6, 8, 5], [6, 8, 17], [6, 8, 11]], float), 10.0)  # 1s3x, vesicle, 4V94
    shrec = score_shrec(truth, pred, ids, skip=["4v94", "vesicle", "fiducial"])
    assert (shrec.tp, shrec.fp, shrec.n_pred, shrec.n_on_skipped) == (1, 0, 1, 2)
    clutter = score_clutter(
        truth, pred, ["vesicle", "fiducial"], skip=["4v94"], id_map=ids, rule="shrec"
    )
    assert (clutter.tp, clutter.fp, clutter.n_pred, clutter.n_truth) == (1, 1, 2, 1)
    assert clutter.n_on_clutter == 1 and clutter.n_on_skipped == 1  # 4V94 stays skipped
    assert list(clutter.pred_status) == ["tp", "fp", "skipped"]
    assert clutter.skip == ("4v94",) and clutter.clutter == ("fiducial", "vesicle")
    document = clutter.to_dict()
    assert document["clutter"] == ["fiducial", "vesicle"] and document["n_on_clutter"] == 1


def test_clutter_classes_are_every_non_protein_name() -> None:
    names = ["1S3X", "4V94_fixed", "background", "vesicle", "Membrane", "actin", "ribosome", "ice"]
    assert clutter_classes(names) == ("actin", "ice", "membrane", "vesicle")
    assert {c.lower() for c in PROTEIN_CLASSES} <= PROTEIN_CLASS_KEYS  # in step with the simulator
    assert clutter_classes(SHREC_CLASSES) == ("fiducial", "vesicle")


def test_false_picks_land_on_each_clutter_kind_faces_outside_and_background(
    dataset: dict,
) -> None:
    zyx = np.array(
        [
            [6, 8, 5],  # TP on 1s3x
            [6, 8, 17],  # on the vesicle
            [6, 10, 23],  # one voxel off the fiducial's cube: still on it
            [6, 12, 10],  # one voxel off the membrane strip
            [6, 8, 14],  # background
            [1, 8, 14],  # 1 voxel from the z = 0 face
            [6, 8, 40],  # outside the volume
        ],
        float,
    )
    false = np.array([False, True, True, True, True, True, True])
    landing = landing_sites(
        Picks(zyx, 10.0),
        false,
        SHAPE,
        class_mask=dataset["class_mask"],
        class_names=NAMES,
    )
    assert landing.clutter == ("fiducial", "membrane", "vesicle")
    assert list(landing.site) == [
        "",
        "vesicle",
        "fiducial",
        "membrane",
        BACKGROUND,
        FACES,
        OUTSIDE_VOLUME,
    ]
    assert landing.counts == {
        "fiducial": 1,
        "membrane": 1,
        "vesicle": 1,
        FACES: 1,
        OUTSIDE_VOLUME: 1,
        BACKGROUND: 1,
    }
    assert landing.n_false == 6 and landing.fraction(landing.counts["vesicle"]) == 1 / 7
    assert landing.n_on_clutter == 3 and landing.clutter_counts["membrane"] == 1
    document = landing.to_dict()
    assert document["false_sites"]["membrane"] == {"count": 1, "fraction_of_picks": 1 / 7}
    assert document["on_clutter"]["count"] == 3 and document["near_faces"]["count"] == 1
    # two voxels off the membrane is background
    far = landing_sites(
        Picks([[6, 11, 10]], 10.0),
        [True],
        SHAPE,
        class_mask=dataset["class_mask"],
        class_names=NAMES,
        box_radius=1.0,
    )
    assert list(far.site) == [BACKGROUND]


def test_a_hit_on_a_clutter_particle_counts_without_a_class_mask() -> None:
    landing = landing_sites(
        Picks([[6, 8, 8], [6, 8, 20]], 10.0),
        [True, True],
        SHAPE,
        clutter=["vesicle"],
        hit_class=np.array(["vesicle", ""]),
    )
    assert list(landing.site) == ["vesicle", BACKGROUND]


def test_faces_use_half_a_box_and_the_plain_margin_three_voxels() -> None:
    zyx = np.array([[2, 8, 15], [3, 8, 15], [6, 8, 5.2], [6, 8, 29]], float)
    default = landing_sites(Picks(zyx, 10.0), np.ones(4, bool), SHAPE)
    assert nm_to_voxels(5.0, 10.0) == 5.0  # the default box radius, in voxels
    assert list(default.site) == [FACES, FACES, BACKGROUND, FACES]
    assert list(default.near_faces) == [True, False, False, True]
    small = Picks(zyx, 10.0, pd.DataFrame({"radius_nm": [2.0, 4.0, 5.0, np.nan]}))
    by_feature = landing_sites(small, np.ones(4, bool), SHAPE)
    assert list(by_feature.site) == [BACKGROUND, FACES, BACKGROUND, FACES]
    given = landing_sites(Picks(zyx, 10.0), np.ones(4, bool), SHAPE, box_radius=1.0)
    assert list(given.site) == [BACKGROUND, BACKGROUND, BACKGROUND, FACES]
    assert face_picks(zyx, SHAPE) == 2 and face_picks(zyx, SHAPE, margin=5) == 3


def test_outside_the_sample_mask() -> None:
    sample = np.zeros(SHAPE, bool)
    sample[4:9] = True
    landing = landing_sites(
        Picks([[6, 8, 15], [9, 8, 15]], 10.0),
        [True, True],
        SHAPE,
        sample_mask=sample,
        box_radius=1.0,
    )
    assert list(landing.site) == [BACKGROUND, OUTSIDE_SAMPLE]
    assert OUTSIDE_SAMPLE in landing.counts


def test_class_names_derived_from_the_masks(dataset: dict) -> None:
    names = class_names_from_masks(
        dataset["occupancy"], dataset["class_mask"], dataset["truth"].features["class"], chunk=5
    )
    assert names == {1: "1s3x", 2: "4V94", 3: "vesicle", 4: "fiducial"}


def test_evaluate_command_reports_both_rules_and_landing(
    dataset: dict, tmp_path: Path, capsys
) -> None:
    from napari_cryoet_particles.io import write_shrec_locations

    folder = tmp_path / "model_0"
    folder.mkdir()
    write_tomogram(folder / "reconstruction.mrc", np.zeros(SHAPE, np.float32), 10.0)
    write_tomogram(folder / "occupancy_mask.mrc", dataset["occupancy"], 10.0)
    write_tomogram(folder / "class_mask.mrc", dataset["class_mask"], 10.0)
    (folder / "class_names.txt").write_text("".join(f"{k} {v}\n" for k, v in NAMES.items()))
    assert read_class_names(folder / "class_names.txt") == NAMES
    write_shrec_locations(folder / "particle_locations.txt", dataset["truth"])
    picks = Picks(np.array([[6, 8, 5], [6, 8, 17], [6, 12, 10], [6, 8, 14]], float), 10.0)
    pred = write_csv(tmp_path / "picks.csv", picks)
    out = tmp_path / "metrics.json"
    args = ["evaluate", "--truth", str(folder), "--pred", str(pred), "--skip", "shrec2021"]
    assert main([*args, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Localization, SHREC rule" in text and "Clutter rule beside the SHREC rule" in text
    assert "Where false picks land (3 of 4 picks are false)" in text
    document = json.loads(out.read_text())
    shrec, clutter = document["localization"], document["clutter_rule"]
    assert (shrec["tp"], shrec["fp"], shrec["n_pred"]) == (1, 2, 3)
    assert (clutter["tp"], clutter["fp"], clutter["n_pred"], clutter["n_on_clutter"]) == (
        1,
        3,
        4,
        1,
    )
    assert clutter["clutter"] == ["fiducial", "membrane", "vesicle"] and clutter["skip"] == ["4v94"]
    sites = {k: v["count"] for k, v in document["landing"]["false_sites"].items()}
    assert sites == {
        "fiducial": 0,
        "membrane": 1,
        "vesicle": 1,
        FACES: 0,
        OUTSIDE_VOLUME: 0,
        BACKGROUND: 1,
    }
    assert document["landing"]["on_clutter"]["count"] == 2


def test_vlp_centre_hits_on_a_toy_example() -> None:
    centres = np.array([[10.0, 10, 10], [10, 40, 40]])
    radii = np.array([10.0, 4.0])
    picks = np.array([[10, 10, 14.9], [10, 10, 6], [10, 40, 42.5], [30, 30, 30]])
    hits = vlp_centre_hits(picks, centres, radii)
    assert list(hits.centre_hit) == [True, False]  # 2.5 > half of 4
    assert (hits.n_centres_hit, hits.n_picks_near_centre) == (1, 2)
    assert hits.to_dict() == {
        "n_centres": 2,
        "n_centres_hit": 1,
        "n_picks": 4,
        "n_picks_near_centre": 2,
    }
    assert vlp_centre_hits(np.zeros((0, 3)), centres, radii).n_centres_hit == 0


def test_negative_control_summary() -> None:
    picks = Picks([[0, 5, 5], [5, 5, 5], [5, 5, 9]], 10.0)
    summary = negative_control_summary(picks, (10, 10, 10), voxel_size=10.0)
    assert summary["n_picks"] == 3 and summary["n_near_faces"] == 2 and summary["n_interior"] == 1
    assert summary["picks_per_million_voxels"] == pytest.approx(3000.0)
    assert summary["volume_nm3"] == pytest.approx(1000.0)  # (10 nm)³


def test_vendored_real_volumes_open_with_their_shapes_and_voxel_sizes(real_tomograms) -> None:
    expected = {
        "hiv": ((101, 135, 135), 40.0),
        "mt13": ((36, 206, 94), 10.52),
        "mt14": ((44, 136, 84), 10.52),
    }
    for name, (shape, voxel_size) in expected.items():
        volume = read_tomogram(real_tomograms[name])
        assert volume.shape == shape and volume.voxel_size == pytest.approx(voxel_size, rel=1e-5)
    mt = np.asarray(read_tomogram(real_tomograms["mt13"]).data)
    assert mt.min() >= 0 and mt.max() <= 255
    centres, radii = read_vlp_centres(real_tomograms["hiv_centres"])
    assert centres.shape == (9, 3) and np.all((radii > 10) & (radii < 13))
    lattice = read_lattice_points(real_tomograms["hiv_lattice"])
    assert len(lattice) == 5377 and lattice.voxel_size == 40.0
    # the lattice lies on the shells: no lattice point is within half a radius of a centre
    assert vlp_centre_hits(lattice, centres, radii).n_picks_near_centre == 0

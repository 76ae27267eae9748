"""The benchmark's curation section: simulated marks, report rows and targets."""

from pathlib import Path

import numpy as np
import pandas as pd

from napari_cryoet_particles.benchmark.curation import (
    CurationRun,
    curation_targets,
    curation_why,
    format_curation,
    marks_alone,
    oracle_marks,
    supervised_ari,
    supervised_class_f1,
)
from napari_cryoet_particles.benchmark.report import format_report
from napari_cryoet_particles.benchmark.targets import Target
from napari_cryoet_particles.io import Picks


def _runs() -> list[CurationRun]:
    return [
        CurationRun(
            "random-seed1",
            f1_before=0.75,
            repeat_before=150,
            f1_after={20: 0.78, 50: 0.84},
            repeat_after={20: 100, 50: 60},
            marks={20: (8, 12), 50: (20, 30)},
            like={"4CR2": (0.4, 0.3, 0.6), "1U6G": (0.1, 0.1, 0.1), "3GL1": (0.6, 0.5, 0.7)},
            ari=0.1,
            detect_seconds=40.0,
            fit_seconds=0.2,
            f1_marks_alone={20: 0.76, 50: 0.79},
            like_supervised={"4CR2": 0.7, "1U6G": 0.25, "3GL1": 0.45},
            ari_supervised=0.35,
        ),
        CurationRun(
            "layout", f1_before=0.70, f1_after={20: 0.80, 50: 0.75}, ari=0.2, fit_seconds=0.4
        ),
    ]


def test_oracle_marks_are_the_picks_nearest_the_threshold_marked_from_the_truth() -> None:
    scores = np.array([0.95, 0.56, 0.47, 0.1, 0.51])
    picks = Picks(np.zeros((5, 3)), 10.0, pd.DataFrame({"score": scores}))
    statuses = np.array(["tp", "duplicate", "tp", "fp", "fp"])
    marks = oracle_marks(picks, statuses, 3)
    assert np.allclose(marks.scores, [0.51, 0.47, 0.56])
    assert list(marks.features["status"]) == ["rejected", "accepted", "rejected"]


def test_curation_targets_take_the_worst_tomogram() -> None:
    targets = {t["key"]: Target(**t) for t in curation_targets(_runs())}
    assert targets["gain_20"].measured == 0.78 - 0.75
    assert targets["gain_20"].where == "random-seed1" and targets["gain_20"].met is False
    assert targets["gain_50"].measured == 0.75 - 0.70 and targets["gain_50"].where == "layout"
    assert targets["like:3GL1"].met is True and targets["like:4CR2"].met is False
    assert targets["ari"].measured == 0.1
    assert targets["refine_seconds"].met is True and targets["refine_seconds"].measured == 0.4


def test_curation_section_and_why_are_in_the_report() -> None:
    lines = format_curation(_runs())
    assert lines[0].startswith("## Curation")
    row = next(line for line in lines if line.startswith("| random-seed1"))
    assert "0.780 (+0.030; 8/12)" in row and "0.40 (0.30/0.60)" in row
    why = curation_why(_runs(), {"gain_20", "like:1U6G", "ari"})
    assert len(why) == 3 and "150 → 100 / 60" in why[0] and "1U6G 0.10" in why[1]
    assert "random-seed1 +0.010 / +0.040" in why[0] and "1U6G 0.25" in why[1]
    assert "0.350" in why[2]
    reference = next(line for line in lines if line.startswith("| random-seed1") and "0.35" in line)
    assert "0.760 (+0.010)" in reference and "| 0.25 |" in reference
    text = format_report([], [], True, Path("x"), None, 2, curations=_runs())
    assert "## Curation" in text and "F1 gain from 20 marks" in text


def test_only_curation_replaces_the_curation_parts_and_keeps_the_rest() -> None:
    from napari_cryoet_particles.benchmark.curation import splice_curation

    old = format_report([], [], True, Path("x"), None, 2, curations=_runs()[:1])
    earlier = "| target | goal | measured | | why |\n| --- | --- | --- | --- | --- |\n| other | 1 | 2 | | |"
    old = old.replace(
        "## Targets", f"## Stage timings kept\n\nkept line\n\n{earlier}\n\n## Targets"
    )
    new_runs = [CurationRun("fresh", f1_before=0.5, f1_after={20: 0.9}, ari=0.5, fit_seconds=0.1)]
    rows = [Target(**t).row() for t in curation_targets(new_runs)]
    text = splice_curation(old, new_runs, rows, ["- **Refine**: new bullet"], "*stamp*")
    assert "| fresh |" in text and "| random-seed1 |" not in text
    assert "kept line" in text and "*stamp*" in text
    assert text.count("F1 gain from 20 marks") == 1 and "+0.400" in text
    assert "- **Refine**: new bullet" in text
    assert text.count("## Curation") == 1
    assert text.index("| other | 1 | 2 | | |\n\n## Targets") > 0  # the rows go to ## Targets
    assert text.index("## Targets") < text.index("F1 gain from 20 marks")


def test_the_real_vlp_rows_close_the_curation_section() -> None:
    from napari_cryoet_particles.benchmark.curation import VlpCurationRun, splice_curation

    vlp = [VlpCurationRun((0, 4, 8), 9, 3, 9, 11, 1.2)]
    text = format_report([], [], True, Path("x"), None, 2, curations=_runs(), vlp_curations=vlp)
    row = "| 0, 4, 8 | 3 of 9 | 9 of 9 | 11 | 1.2 |"
    assert row in text and text.index("## Curation") < text.index(row) < text.index("## Targets")
    spliced = splice_curation(text, _runs()[:1], [], [], "*stamp*", vlp)
    assert spliced.count(row) == 1


def test_marks_alone_drop_the_rejected_and_keep_the_accepted() -> None:
    scores = np.array([0.9, 0.55, 0.45, 0.2])
    zyx = np.arange(12, dtype=float).reshape(4, 3)
    candidates = Picks(zyx, 10.0, pd.DataFrame({"score": scores}))
    marks = candidates.subset(np.array([1, 2]))
    marks.features["status"] = ["rejected", "accepted"]
    kept = marks_alone(candidates, marks, 0.5)
    assert np.allclose(np.sort(kept.scores), [0.45, 0.9])


def test_supervised_references_reach_the_top_on_separable_classes() -> None:
    rng = np.random.default_rng(0)
    classes = np.repeat(np.array(["A", "B", "C"]), 60)
    centre = {"A": 0.0, "B": 4.0, "C": 8.0}
    values = np.array([[centre[c], -centre[c]] for c in classes]) + rng.normal(0, 0.3, (180, 2))
    is_b = classes == "B"
    assert supervised_class_f1(values, is_b, int(is_b.sum())) > 0.95
    assert supervised_ari(values, classes) > 0.95
    noise = rng.normal(size=(180, 2))
    assert supervised_ari(noise, classes) < 0.2


def test_the_real_vlp_case_finds_the_centres_from_three_added_points(real_tomograms) -> None:
    from napari_cryoet_particles.benchmark.curation import format_vlp_curation, run_vlp_curation

    runs = run_vlp_curation(real_tomograms["hiv"].parents[1], threads=1)
    assert all(run.hits_marks_alone == 3 and run.hits >= 8 and run.n_picks <= 30 for run in runs)
    lines = format_vlp_curation(runs)
    assert len(lines) == 4 + len(runs) and "more like these" in lines[2]


def test_reject_a_structure_has_its_table_and_targets_on_tomograms_with_structures() -> None:
    runs = _runs()
    runs[0].reject = {
        "automatic": (40, 0.70),
        "marks alone": (34, 0.70),
        "refine": (30, 0.69),
        "refine + tomogram": (12, 0.685),
    }
    lines = format_curation(runs)
    assert any(line.startswith("*Reject a structure*") for line in lines)
    row = next(line for line in lines if line.startswith("| random-seed1 | 40 (0.700)"))
    assert row.endswith("| 12 (0.685) |")
    assert not any(line.startswith("| layout | ") and "(0." in line for line in lines[-3:])
    targets = {t["key"]: Target(**t) for t in curation_targets(runs)}
    assert targets["reject_left"].measured == 12 / 40 and targets["reject_left"].met is True
    assert np.isclose(targets["reject_recall"].measured, 0.015)
    assert targets["reject_recall"].met is True
    assert "reject_left" not in {t["key"] for t in curation_targets(_runs())}

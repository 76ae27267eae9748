"""The held-out families section: margins against the best classical baseline, the report."""

import numpy as np

from napari_cryoet_particles.benchmark.generalisation import (
    HEADING,
    FamilyRun,
    RealRun,
    SeedRun,
    best_classical,
    format_generalisation,
    margins,
    splice_generalisation,
)


def _runs() -> list[FamilyRun]:
    return [
        FamilyRun("tuning", "ours", 100, 0.8, 0.8, 0.80, 0.82, 0.81),
        FamilyRun("tuning", "broadband", 100, 0.7, 0.7, 0.70, 0.72, 0.75),
        FamilyRun("tuning", "log", 100, 0.75, 0.75, 0.75, 0.76, 0.74),
        FamilyRun("low-snr", "ours", 90, 0.6, 0.6, 0.60, 0.61, 0.62),
        FamilyRun("low-snr", "broadband", 90, 0.65, 0.65, 0.65, 0.66, 0.70),
        FamilyRun("low-snr", "log", 90, 0.5, 0.5, np.nan, 0.5, 0.5),
    ]


def test_margins_are_against_the_best_classical_of_each_tomogram() -> None:
    runs = _runs()
    assert best_classical(runs, "tuning").method == "log"
    assert best_classical(runs, "tuning", "best_f1").method == "broadband"
    found = margins(runs)
    assert np.allclose(found["tuning"], (0.05, 0.06))
    assert np.allclose(found["low-snr"], (-0.05, -0.08))  # a NaN F1 never counts as the best


def test_report_section_says_what_is_held_out_and_splices_in_place() -> None:
    runs = _runs()
    runs[0].false_sites = {"background": 0.1, "membrane": 0.05}
    runs[1].false_sites = {"faces": 0.02}
    real = [RealRun("13pf_MT", "ours", 2, 4.0), RealRun("hiv", "ours", 8, 3.0, 0, "0 of 9")]
    seeds = [SeedRun("low-snr", seed, 1.5, f1, f1) for seed, f1 in enumerate((0.70, 0.66, 0.72))]
    section = format_generalisation(runs, real, seeds=seeds)
    text = "\n".join(section)
    assert section[0] == HEADING
    assert "| low-snr | yes | half the SNR (0.05) |" in text
    assert "| tuning | no |" in text
    assert "margin mean -0.050" in text and "ours ahead on 0 of 1" in text
    assert "| hiv | ours | 8 | 3.0 | 0 | 0 of 9 |" in text
    assert "| real microtubule volumes: picks | ≤ 5 each | at most 2 | met |" in text
    assert (
        "| seed spread, low-snr | ≤ 0.03 | 0.060 | – | n/a: the default picks do not read" in text
    )
    assert "| family | method | background | faces | membrane |" in text
    assert "| tuning | ours | 0.100 | 0.000 | 0.050 |" in text
    assert "Seed spread (best − worst F1): low-snr 0.060 (target ≤ 0.03)" in text
    report = "# Benchmarks\n\n## Localization\n\nrows\n\n## Targets\n\n| t |\n"
    once = splice_generalisation(report, section)
    assert once.index(HEADING) < once.index("## Targets") and "rows" in once
    twice = splice_generalisation(once, [HEADING, "", "new"])
    assert twice.count(HEADING) == 1 and "new" in twice and "| low-snr |" not in twice
    assert twice.index("## Targets") > twice.index("new")


def test_seed_spread_is_a_target_when_the_default_picks_read_the_model(monkeypatch) -> None:
    from napari_cryoet_particles.benchmark import generalisation

    monkeypatch.setattr(generalisation, "default_picks_read_the_model", lambda: True)
    seeds = [SeedRun("low-snr", seed, 1.5, f1, f1) for seed, f1 in enumerate((0.70, 0.66, 0.72))]
    text = "\n".join(format_generalisation(_runs(), [], seeds=seeds))
    assert "| seed spread, low-snr | ≤ 0.03 | 0.060 | **missed** |" in text

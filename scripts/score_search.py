"""Choose the pick score on validation tomograms, then see it on the held-out families.

How session 9 chose the default preset (docs/detection.md, "What is learned"): every
configuration detects once down to a low floor on each tomogram; F1 at any threshold and the
best-threshold F1 then come from one matching of the floor picks (``ranking_curves``), so a grid of thresholds and
learned weights costs no more detection. Margins are against the better of the tuned multi-scale
LoG and broadband DoG on the same tomogram, each at its own automatic threshold.

    python scripts/score_search.py --work /tmp/score [--families tilt-45-3deg sparse ...]
        [--diameters 7 27] [--preset default] [--weights 0 0.1] [--thresholds 3.75 4 4.25 4.5]

Validation tomograms (seeds ≥ 100: val101 and val106-layout of ``scripts/validation_tuning.py``,
``cellular`` 101 and 102 at 200×512×512) are the only ones a choice may be made on; the families' test tomograms
(seed 21, the benchmark's) are for reporting. Simulations are made once into ``--work``.
Takes about 10 minutes per 20 tomograms on 2 cores after the simulations.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from validation_tuning import dataset  # scripts/ is on the path when run as a script

from napari_cryoet_particles.baselines import BASELINES
from napari_cryoet_particles.benchmark.generalisation import simulate_family
from napari_cryoet_particles.detect import DetectionConfig, detect_particles
from napari_cryoet_particles.detect.config import CANDIDATE_FLOOR
from napari_cryoet_particles.evaluate import SHREC2021_SKIP, ranking_curves
from napari_cryoet_particles.evaluate.report import evaluate_data, load_truth
from napari_cryoet_particles.io import read_shrec_folder
from napari_cryoet_particles.simulate import simulate, write_dataset
from napari_cryoet_particles.simulate.families import FAMILIES, family_config

#: Validation tomograms of ``scripts/validation_tuning.py`` (SHREC-like, no clutter).
TUNING_VALIDATION = ("val101", "val106-layout")
#: name: (family, seed, shape z y x)
CELLULAR_VALIDATION = {
    "cell101": ("cellular", 101, (200, 512, 512)),
    "cell102": ("cellular", 102, (200, 512, 512)),
}
CLASSICAL = ("log", "broadband")
#: Floor of the classical pickers' ranking (robust z).
CLASSICAL_FLOOR = 2.5


def scored(truth, picks):
    """The floor picks matched to the truth once, under the clutter rule."""
    report = evaluate_data(truth, picks, skip=SHREC2021_SKIP, clutter=True)
    return report.clutter or report.result


def f1_at(result, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """(F1 of the picks scoring at least ``threshold``, best F1 over thresholds) of ``result``'s
    picks ranked by ``scores``."""
    curves = ranking_curves(result, scores)
    above = int(np.sum(curves.thresholds >= threshold))
    return (float(curves.f1[above - 1]) if above else 0.0), float(curves.best_f1)


def tomograms(work: Path, families: list[str]) -> dict[str, tuple[Path, bool]]:
    """{name: (folder, held out)}: the validation tomograms, then the families' test tomograms."""
    folders = {}
    for name in TUNING_VALIDATION:
        dataset(work, name)  # simulated once
        folders[name] = (work / name, False)
    for name, (family, seed, shape) in CELLULAR_VALIDATION.items():
        folder = work / name
        if not (folder / "occupancy_mask.mrc").is_file():
            result = simulate(family_config(family, seed, shape))
            write_dataset(result, folder, overwrite=True, projections=False)
        folders[name] = (folder, False)
    for family in families:
        folders[family] = (simulate_family(family, work), family not in ("tuning", "cellular"))
    return folders


def classical_f1(volume, truth) -> float:
    """The better F1 of the tuned classical pickers at their automatic thresholds."""
    best = 0.0
    for name in CLASSICAL:
        baseline = BASELINES[name]
        picks = baseline.run(volume, k=CLASSICAL_FLOOR, polarity="auto").picks
        best = max(best, f1_at(scored(truth, picks), picks.scores, baseline.params.k)[0])
    return best


def search(args: argparse.Namespace) -> pd.DataFrame:
    rows = []
    for name, (folder, held_out) in tomograms(args.work, args.families).items():
        dataset = read_shrec_folder(folder)
        truth = load_truth(folder)
        classical = classical_f1(dataset.tomogram, truth)
        config = DetectionConfig(
            params=args.preset,
            threshold=CANDIDATE_FLOOR,
            keep_score_map=False,
            groups=0,
            min_diameter_nm=args.diameters[0],
            max_diameter_nm=args.diameters[1],
        )
        picks = detect_particles(dataset.tomogram, None, config).picks
        result = scored(truth, picks)
        features = picks.features
        strength = features["strength"].to_numpy(dtype=float)
        probability = np.clip(features["probability"].to_numpy(dtype=float), 1e-4, 1 - 1e-4)
        learned = np.log(probability / (1 - probability))
        row = {"tomogram": name, "held out": held_out, "classical F1": classical}
        for weight in args.weights:
            for threshold in args.thresholds:
                f1, best = f1_at(result, strength + weight * learned, threshold)
                row[f"w {weight:g} T {threshold:g}"] = f1 - classical
            row[f"w {weight:g} best"] = best - classical
        rows.append(row)
        print(name, {k: round(v, 3) for k, v in row.items() if isinstance(v, float)}, flush=True)
    return pd.DataFrame(rows).set_index("tomogram")


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean margin on validation, and mean / worst / how many ahead on the held-out families."""
    margins = table.drop(columns=["held out", "classical F1"])
    validation = margins[~table["held out"]]
    held = margins[table["held out"]]
    return pd.DataFrame(
        {
            "validation mean": validation.mean(),
            "held-out mean": held.mean(),
            "held-out worst": held.min(),
            "held-out ahead": (held > 0).sum(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="simulations are kept here")
    parser.add_argument(
        "--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES), metavar="NAME"
    )
    parser.add_argument("--preset", default="default")
    parser.add_argument("--diameters", nargs=2, type=float, default=(7.0, 27.0))
    parser.add_argument("--weights", nargs="+", type=float, default=(0.0, 0.1, 0.25))
    parser.add_argument(
        "--thresholds", nargs="+", type=float, default=(3.75, 4.0, 4.25, 4.5, 5.0, 5.5)
    )
    args = parser.parse_args()
    args.families = [f for f in args.families if f != "cellular-no-protein"]  # nothing to find
    args.work.mkdir(parents=True, exist_ok=True)
    table = search(args)
    pd.set_option("display.width", 250)
    print(table.round(3).to_string())
    print(summary(table).round(3).to_string())


if __name__ == "__main__":
    main()

"""Choose the DoG baseline's parameters and our detection's score settings on validation seeds.

Both methods are tuned the same way, on the same validation simulations (seeds 101-106, never
the benchmark's test seeds below 100), by the mean F1 at their automatic threshold (SHREC rule):

- DoG baseline: blob radius, non-maximum-suppression distance and threshold k (robust z);
- ours: the learned term's weight, the blob threshold, k-means with or without the density
  channel, and the size-aware suppression reach, each a change to the ``default`` preset
  (``detect/params.py``) passed to detection in its config.

    python scripts/validation_tuning.py --work /tmp/validation [--only dog|ours]

prints one table per method (mean and worst F1 over the validation tomograms) and the best
setting; docs/detection.md records the outcome. Takes about 20 minutes on 2 cores.
"""

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from napari_cryoet_particles.baselines.dog import dog_response
from napari_cryoet_particles.detect.config import DetectionConfig
from napari_cryoet_particles.detect.params import PRESETS
from napari_cryoet_particles.detect.peaks import pick_peaks
from napari_cryoet_particles.detect.pipeline import detect_particles
from napari_cryoet_particles.detect.scoring import pick_score
from napari_cryoet_particles.evaluate import SHREC2021_SKIP, score_shrec
from napari_cryoet_particles.io import read_shrec_folder
from napari_cryoet_particles.io.picks import Picks
from napari_cryoet_particles.simulate import SHREC2021_LAYOUT, simulate_dataset

#: name: (seed, SNR, defocus µm, SHREC 2021 layout)
VALIDATION = {
    "val101": (101, 0.1, None, False),
    "val102": (102, 0.1, None, False),
    "val103-snr0.07": (103, 0.07, 3.5, False),
    "val106-layout": (106, 0.1, None, True),
}
DOG_GRID = {"radius": (3.0, 4.0, 5.0), "distance": (8, 10, 12, 15), "k": (3.5, 4.0, 4.5, 5.0, 5.5)}
OURS_GRID = {
    "density_weight": (0.0, 3.0),
    "reach": (2.0, 2.5),
    "learned_weight": (0.0, 0.25, 0.5, 1.0),
    "blob_threshold": (4.0, 4.5, 5.0, 5.5, 6.0),
}


def dataset(work: Path, name: str):
    seed, snr, defocus, layout = VALIDATION[name]
    folder = work / name
    if not (folder / "occupancy_mask.mrc").is_file():
        options = {"defocus": defocus} if defocus is not None else {}
        simulate_dataset(
            folder,
            size=(200, 512, 512),
            seed=seed,
            snr=snr,
            layout=SHREC2021_LAYOUT if layout else None,
            overwrite=True,
            projections=False,
            **options,
        )
    return read_shrec_folder(folder)


def f1_of(data, zyx: np.ndarray, score: np.ndarray) -> float:
    picks = Picks(np.asarray(zyx, float).reshape(-1, 3), 10.0, pd.DataFrame({"score": score}), "")
    return score_shrec(data.truth, picks, np.asarray(data.occupancy), skip=SHREC2021_SKIP).f1


def tune_dog(data, name: str) -> list[dict]:
    rows = []
    volume = np.asarray(data.tomogram.data, dtype=np.float32)
    for radius in DOG_GRID["radius"]:
        response = dog_response(volume, radius)
        sample = response.ravel()[:: max(1, response.size // 2_000_000)]
        median = float(np.median(sample))
        spread = 1.4826 * float(np.median(np.abs(sample - median)))
        for distance in DOG_GRID["distance"]:
            peaks, values = pick_peaks(response, distance, median + min(DOG_GRID["k"]) * spread)
            z = (values - median) / spread
            for k in DOG_GRID["k"]:
                keep = z >= k
                f1 = f1_of(data, peaks[keep], z[keep])
                rows.append(dict(tomogram=name, radius=radius, distance=distance, k=k, f1=f1))
    return rows


def tune_ours(data, name: str) -> list[dict]:
    rows = []
    for density_weight, reach in itertools.product(OURS_GRID["density_weight"], OURS_GRID["reach"]):
        params = PRESETS["default"].updated(
            reach=reach,
            learned_weight=0.0,
            density_weight=density_weight,
            n_clusters=5 if density_weight else 3,
        )
        config = DetectionConfig(threshold=0.0, params=params)
        result = detect_particles(data.tomogram, None, config)
        features = result.picks.features
        for weight, level in itertools.product(
            OURS_GRID["learned_weight"], OURS_GRID["blob_threshold"]
        ):
            score = pick_score(
                features["strength"].to_numpy(), features["probability"].to_numpy(), weight, level
            )
            keep = score >= 0.5
            rows.append(
                dict(
                    tomogram=name,
                    density_weight=density_weight,
                    reach=reach,
                    learned_weight=weight,
                    blob_threshold=level,
                    f1=f1_of(data, result.picks.zyx[keep], score[keep]),
                )
            )
    return rows


def summarise(rows: list[dict], keys: list[str]) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    wide = table.pivot_table(index=keys, columns="tomogram", values="f1")
    wide["mean"] = wide.mean(axis=1)
    wide["worst"] = wide.drop(columns="mean").min(axis=1)
    return wide.sort_values("mean", ascending=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder for the validation simulations")
    parser.add_argument("--only", choices=("dog", "ours"), default=None)
    parser.add_argument("--csv", default=None, help="also write every row to this CSV")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {"dog": [], "ours": []}
    for name in VALIDATION:
        data = dataset(work, name)
        if args.only in (None, "dog"):
            rows["dog"] += tune_dog(data, name)
        if args.only in (None, "ours"):
            rows["ours"] += tune_ours(data, name)
        print(f"{name} done", flush=True)
    pd.set_option("display.width", 200)
    for method, keys in (
        ("dog", ["radius", "distance", "k"]),
        ("ours", ["density_weight", "reach", "learned_weight", "blob_threshold"]),
    ):
        if rows[method]:
            print(f"\n{method}: mean F1 over the validation tomograms, best first")
            print(summarise(rows[method], keys).head(10).round(3).to_string())
            if args.csv:
                pd.DataFrame(rows[method]).to_csv(f"{args.csv}.{method}.csv", index=False)


if __name__ == "__main__":
    main()

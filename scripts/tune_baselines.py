"""Choose the classical baselines' presets on validation simulations (never on test seeds).

Each baseline of ``baselines.BASELINES`` is tuned by grid search on validation tomograms
(seeds 100-199; the benchmark's test seeds are below 100), by the same rule as our method's
settings: the largest mean F1 at the automatic threshold over the validation tomograms (SHREC
rule, 4V94 / vesicles / fiducials skipped):

- broadband DoG: σ_small × σ ratio × k × suppression radius;
- multi-scale LoG: σ_min × σ_max × how scales compare (scale-normalised or per-scale z) × k ×
  suppression radius;
- DoG + Hessian: the broadband grid × the Hessian's σ × the least eigenvalue ratio.

Each filter response is computed once per tomogram and setting of its filter (σ pair, σ range,
Hessian σ) and reused for every k and radius: the local maxima are taken once at the lowest k,
greedy suppression once per radius (raising k only drops the weakest picks of a greedy result,
see ``baselines.classical``). The chosen presets are then run as the benchmark runs them
(``BASELINES[name].detect``) to check they give the same F1, and the previous single-diameter
DoG (``detect_dog`` defaults) is scored on the same tomograms.

    python scripts/tune_baselines.py --cache /tmp/baselines [--seeds 101 106] [--layout-seeds 106]
        [--size 200 512 512] [--snr 0.1] [--family default] [--only broadband log hessian dog]

Simulated tomograms are cached under ``--cache`` (one SHREC folder each), so reruns skip the
simulation. ``--family`` names how the tomograms are simulated; ``default`` is today's
:class:`SimulationConfig` with the given ``--snr``. docs/detection.md ("Classical baselines")
records the outcome.
"""

import argparse
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from napari_cryoet_particles.baselines import BASELINES, detect_dog
from napari_cryoet_particles.baselines.broadband import (
    BroadbandParams,
    dog_zscore,
    maxima_half_width,
)
from napari_cryoet_particles.baselines.classical import (
    EDGE_MODE,
    bright_volume,
    greedy_suppress,
    local_maxima,
    to_robust_z,
)
from napari_cryoet_particles.baselines.hessian import (
    HessianParams,
    blob_mask,
    blobness,
    hessian_at,
)
from napari_cryoet_particles.baselines.log import (
    LoGParams,
    largest_over_scales,
    log_sigmas,
    scale_response,
)
from napari_cryoet_particles.evaluate import SHREC2021_SKIP, score_shrec
from napari_cryoet_particles.evaluate.localization import dilate_ids
from napari_cryoet_particles.io import read_shrec_folder
from napari_cryoet_particles.io.picks import Picks
from napari_cryoet_particles.io.units import nm_to_voxels
from napari_cryoet_particles.io.volume import Volume
from napari_cryoet_particles.jobs import run_job
from napari_cryoet_particles.simulate import SHREC2021_LAYOUT, SimulationConfig
from napari_cryoet_particles.simulate.simulator import simulate_dataset_job

VALIDATION_SEEDS = range(100, 200)
ROOT2 = float(np.sqrt(2.0))
KS = (3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 8.0)
SUPPRESSION_NM = (8.0, 10.0, 12.0, 14.0, 16.0, 18.0)
BROADBAND_GRID = {"sigma_small_nm": (1.5, 2.0, 2.5, 3.0), "ratio": (2.0, 3.0, 4.0)}
LOG_GRID = {
    "sigma_min_nm": (1.0, ROOT2, 2.0),
    "sigma_max_nm": (2 * ROOT2, 4.0, 4 * ROOT2),
    "per_scale_z": (False, True),
}
HESSIAN_GRID = {"hessian_sigma_nm": (1.5, 2.0, 3.0), "min_ratio": (0.0, 0.1, 0.2, 0.3, 0.4)}
FAMILIES: dict[str, Callable[[int, tuple[int, int, int], float], SimulationConfig]] = {
    "default": lambda seed, shape, snr: SimulationConfig(shape=shape, seed=seed, snr=snr),
}


@dataclass
class Tomogram:
    """A validation tomogram: its volume (in memory), truth and dilated particle-id map, and
    which truth particles the SHREC rule skips."""

    name: str
    volume: Volume
    truth: Picks
    ids: np.ndarray

    def __post_init__(self) -> None:
        none = Picks(np.zeros((0, 3)), self.volume.voxel_size)
        result = score_shrec(self.truth, none, self.ids, skip=SHREC2021_SKIP, dilate=0)
        self.skipped = result.truth_skipped
        self.n_truth = result.n_truth

    def hits(self, zyx: np.ndarray) -> np.ndarray:
        """The particle id (0: none) under each pick (integer voxels inside the volume)."""
        zyx = np.asarray(zyx, int).reshape(-1, 3)
        return self.ids[zyx[:, 0], zyx[:, 1], zyx[:, 2]].astype(int)

    def f1_of_hits(self, hit: np.ndarray) -> float:
        """F1 of picks whose ids are ``hit``, by the SHREC rule as ``score_shrec`` counts it:
        picks on skipped particles are not counted, repeat hits count as predictions only."""
        on = hit > 0
        skipped = np.zeros(len(hit), dtype=bool)
        skipped[on] = self.skipped[hit[on] - 1]
        tp = len(np.unique(hit[on & ~skipped]))
        total = len(hit) - int(skipped.sum()) + self.n_truth
        return 2.0 * tp / total if tp else 0.0

    def f1(self, zyx: np.ndarray, score: np.ndarray) -> float:
        """F1 by ``score_shrec`` itself (the official counting, for the final check)."""
        size = self.volume.voxel_size
        picks = Picks(zyx, size, pd.DataFrame({"score": np.asarray(score, float)}), self.name)
        return score_shrec(self.truth, picks, self.ids, skip=SHREC2021_SKIP, dilate=0).f1


def load(cache: Path, family: str, seed: int, snr: float, shape, layout: bool) -> Tomogram:
    """The validation tomogram of ``seed``, simulated into ``cache`` unless already there."""
    name = f"{family}-seed{seed}-snr{snr:g}{'-layout' if layout else ''}-" + "x".join(
        str(n) for n in shape
    )
    folder = cache / name
    if not (folder / "occupancy_mask.mrc").is_file():
        clock = time.perf_counter()
        config = FAMILIES[family](seed, tuple(shape), snr)
        layout_file = SHREC2021_LAYOUT if layout else None
        run_job(
            simulate_dataset_job(folder, config, layout_file, overwrite=True, projections=False)
        )
        print(f"simulated {name} in {time.perf_counter() - clock:.0f} s", flush=True)
    data = read_shrec_folder(folder)
    volume = Volume(np.asarray(data.tomogram.data), data.tomogram.voxel_size, data.tomogram.path)
    return Tomogram(name, volume, data.truth, dilate_ids(np.asarray(data.occupancy), 1))


def sweep(tomo: Tomogram, zyx: np.ndarray, values: np.ndarray) -> Iterator[dict]:
    """F1 at every suppression radius and k of candidates ``zyx`` (strongest first)."""
    size = tomo.volume.voxel_size
    hit = tomo.hits(zyx)
    for radius in SUPPRESSION_NM:
        keep = greedy_suppress(zyx, nm_to_voxels(radius, size))
        kept_hit, kept = hit[keep], values[keep]
        for k in KS:
            n = int(np.count_nonzero(kept >= k))
            yield {"suppression_nm": radius, "k": k, "f1": tomo.f1_of_hits(kept_hit[:n])}


def tune_dog_families(tomo: Tomogram, bright: np.ndarray, hessian: bool) -> Iterator[dict]:
    """Rows of the broadband grid (and, if ``hessian``, of the Hessian grid) on ``tomo``."""
    size = tomo.volume.voxel_size
    smooth = {}
    if hessian:
        smooth = {
            s: ndimage.gaussian_filter(bright, nm_to_voxels(s, size), mode=EDGE_MODE)
            for s in HESSIAN_GRID["hessian_sigma_nm"]
        }
    for sigma, ratio in itertools.product(*BROADBAND_GRID.values()):
        small = nm_to_voxels(sigma, size)
        response = dog_zscore(bright, small, nm_to_voxels(sigma * ratio, size))
        zyx, values = local_maxima(response, min(KS), maxima_half_width(small))
        del response
        pair = {"sigma_small_nm": sigma, "sigma_large_nm": sigma * ratio}
        for row in sweep(tomo, zyx, values):
            yield {"method": "broadband", **pair, **row}
        for hessian_sigma, volume in smooth.items():
            ratios = blobness(hessian_at(volume, zyx))
            for min_ratio in HESSIAN_GRID["min_ratio"]:
                blob = blob_mask(ratios, min_ratio)
                setting = pair | {"hessian_sigma_nm": hessian_sigma, "min_ratio": min_ratio}
                for row in sweep(tomo, zyx[blob], values[blob]):
                    yield {"method": "hessian", **setting, **row}
        print(f"  DoG σ {sigma:g}/{sigma * ratio:g} nm: {len(zyx)} candidates", flush=True)


def tune_log(tomo: Tomogram, bright: np.ndarray) -> Iterator[dict]:
    """Rows of the LoG grid on ``tomo``: each σ's response made once, combined per range."""
    size = tomo.volume.voxel_size
    ranges = list(itertools.product(LOG_GRID["sigma_min_nm"], LOG_GRID["sigma_max_nm"]))
    ranges = [(low, high) for low, high in ranges if low <= high]
    series = {r: log_sigmas(nm_to_voxels(r[0], size), nm_to_voxels(r[1], size)) for r in ranges}
    cached = {
        round(float(s), 6): scale_response(bright, float(s), False)
        for s in np.unique(np.concatenate(list(series.values())))
    }
    for (low, high), per_scale_z in itertools.product(ranges, LOG_GRID["per_scale_z"]):
        sigmas = series[(low, high)]

        def responses(sigmas=sigmas, per_scale_z=per_scale_z):
            for s in sigmas:
                copy = cached[round(float(s), 6)].copy()
                yield to_robust_z(copy) if per_scale_z else copy

        response, _ = largest_over_scales(responses())
        zyx, values = local_maxima(response, min(KS), maxima_half_width(float(sigmas[0])))
        del response
        setting = {"sigma_min_nm": low, "sigma_max_nm": high, "per_scale_z": per_scale_z}
        print(f"  LoG σ {low:.3g}-{high:.3g} nm, per-scale z {per_scale_z}", flush=True)
        for row in sweep(tomo, zyx, values):
            yield {"method": "log", **setting, **row}


PARAMS = {"broadband": BroadbandParams, "log": LoGParams, "hessian": HessianParams}


def keys_of(method: str) -> list[str]:
    return [f.name for f in fields(PARAMS[method]) if f.name != "polarity"]


def summarise(rows: pd.DataFrame, method: str) -> pd.DataFrame:
    """Mean and worst F1 over the tomograms per setting of ``method``, best mean first."""
    table = rows[rows.method == method]
    wide = table.pivot_table(index=keys_of(method), columns="tomogram", values="f1")
    wide = wide.dropna()
    tomograms = list(wide.columns)
    wide["mean"] = wide[tomograms].mean(axis=1)
    wide["worst"] = wide[tomograms].min(axis=1)
    return wide.sort_values(["mean", "worst"], ascending=False)


def chosen(table: pd.DataFrame, method: str):
    """The preset of the best row of ``table``."""
    values = dict(zip(keys_of(method), table.index[0], strict=True))
    values = {k: (bool(v) if k == "per_scale_z" else float(v)) for k, v in values.items()}
    return PARAMS[method](**values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="folder of the simulated tomograms")
    parser.add_argument("--family", default="default", choices=tuple(FAMILIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 106])
    parser.add_argument(
        "--layout-seeds", type=int, nargs="*", default=[106], help="seeds on the SHREC layout"
    )
    parser.add_argument(
        "--size", type=int, nargs=3, default=[200, 512, 512], metavar=("Z", "Y", "X")
    )
    parser.add_argument("--snr", type=float, default=0.1)
    parser.add_argument(
        "--only",
        nargs="+",
        default=["broadband", "log", "hessian", "dog"],
        choices=("broadband", "log", "hessian", "dog"),
    )
    parser.add_argument("--csv", default=None, help="also write every row to this CSV")
    args = parser.parse_args()
    outside = [s for s in args.seeds if s not in VALIDATION_SEEDS]
    if outside:
        parser.error(f"validation seeds are 100-199 (test seeds are below 100), got {outside}")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    tomograms = [
        load(cache, args.family, seed, args.snr, args.size, seed in args.layout_seeds)
        for seed in args.seeds
    ]
    rows: list[dict] = []
    for tomo in tomograms:
        clock = time.perf_counter()
        bright, _, _ = bright_volume(tomo.volume)
        if {"broadband", "hessian"} & set(args.only):
            for row in tune_dog_families(tomo, bright, "hessian" in args.only):
                rows.append({"tomogram": tomo.name, **row})
        if "log" in args.only:
            rows.extend({"tomogram": tomo.name, **row} for row in tune_log(tomo, bright))
        del bright
        print(f"{tomo.name}: grids in {time.perf_counter() - clock:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    if args.csv:
        table.to_csv(args.csv, index=False)
    pd.set_option("display.width", 250)
    presets, grid_f1 = {}, {}
    for method in (m for m in PARAMS if m in args.only):
        ranked = summarise(table, method)
        print(
            f"\n{method}: {len(ranked)} settings, mean F1 over the validation tomograms, best first"
        )
        print(ranked.head(10).round(3).to_string())
        presets[method] = chosen(ranked, method)
        grid_f1[method] = ranked.iloc[0]
        print(f"chosen: {presets[method]}")
    print(
        "\nthe chosen presets run as the benchmark runs them (F1 at the automatic threshold by"
        " score_shrec; '(grid)': the tuning's own count, which must agree):"
    )
    summary = []
    for tomo in tomograms:
        line = {"tomogram": tomo.name}
        for method, preset in presets.items():
            clock = time.perf_counter()
            result = BASELINES[method].detect(tomo.volume, preset)
            line[method] = tomo.f1(result.picks.zyx, result.picks.scores)
            line[f"{method} (grid)"] = grid_f1[method][tomo.name]
            line[f"{method} s"] = time.perf_counter() - clock
        if "dog" in args.only:
            clock = time.perf_counter()
            picks, _, _ = detect_dog(tomo.volume)
            line["dog (previous)"] = tomo.f1(picks.zyx, picks.scores)
            line["dog (previous) s"] = time.perf_counter() - clock
        summary.append(line)
    summary_table = pd.DataFrame(summary).set_index("tomogram")
    summary_table.loc["mean"] = summary_table.mean()
    print(summary_table.round(3).to_string())


if __name__ == "__main__":
    main()

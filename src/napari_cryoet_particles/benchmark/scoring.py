"""Scores of a finished run: localization (SHREC rule), ranking (best F1) and crop level."""

from pathlib import Path

import numpy as np

from napari_cryoet_particles.benchmark.child import sibling
from napari_cryoet_particles.benchmark.crops import CROP, CROP_FRACTION
from napari_cryoet_particles.benchmark.testset import Run


def fill_from_report(run: Run, report: dict) -> None:
    run.inner = float(report.get("inner", float("nan")))
    run.rss_mb = float(report.get("rss_mb", float("nan")))
    run.rss_imports_mb = float(report.get("rss_imports_mb", float("nan")))
    run.threshold = float(report.get("threshold", float("nan")))
    run.stages = {k: float(v) for k, v in dict(report.get("stages", {})).items()}


def evaluate_run(run: Run, folder: Path, out: Path) -> None:
    """Fill in the localization, ranking and crop scores of a finished run."""
    from napari_cryoet_particles.evaluate import (
        SHREC2021_SKIP,
        crop_labels_by_occupancy,
        crop_metrics,
        ranking_curves,
        score_shrec,
    )
    from napari_cryoet_particles.io import read_picks, read_shrec_folder

    dataset = read_shrec_folder(folder)

    def score(path: Path):
        picks = read_picks(path, voxel_size=dataset.tomogram.voxel_size)
        return picks, score_shrec(dataset.truth, picks, dataset.occupancy, skip=SHREC2021_SKIP)

    picks, result = score(sibling(out, ".csv"))
    run.n_picks = len(picks)
    run.tp, run.fp, run.repeat_hits = result.tp, result.fp, result.n_duplicate
    run.precision, run.recall, run.f1 = result.precision, result.recall, result.f1
    run.per_class = {
        str(c).upper(): float(r)
        for c, r in zip(result.per_class["class"], result.per_class["recall"], strict=True)
    }
    floor_file = sibling(out, "-all.csv")
    if floor_file.is_file():
        floor, floor_result = score(floor_file)
        run.best_f1 = ranking_curves(floor_result, floor.scores).best_f1
    crops_file = sibling(out, ".crops.npz")
    if crops_file.is_file():
        crops = np.load(crops_file)
        occupancy = _protein_occupancy(dataset)
        # z + 0.5: the crop box starts at round(centre - size / 2), so slice z itself is covered
        labels = crop_labels_by_occupancy(
            crops["centres"] + [0.5, 0, 0], (1, CROP, CROP), occupancy, CROP_FRACTION
        )
        metrics = crop_metrics(labels, crops["score"], crops["assignment"])
        run.crop_auc, run.crop_f1 = metrics.auc, metrics.f1


def _protein_occupancy(dataset) -> np.ndarray:
    """Occupancy with the skipped classes (4V94, vesicles, fiducials) set to background."""
    from napari_cryoet_particles.evaluate import SHREC2021_SKIP, class_key

    occupancy = np.asarray(dataset.occupancy)
    classes = [class_key(str(c)) for c in dataset.truth.features["class"]]
    skipped = np.array([any(c == class_key(s) for s in SHREC2021_SKIP) for c in classes])
    lookup = np.concatenate([[False], skipped])
    ids = np.rint(occupancy).astype(int)
    return np.where(lookup[np.clip(ids, 0, len(skipped))], 0, ids)

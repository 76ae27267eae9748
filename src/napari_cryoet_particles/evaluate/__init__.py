"""Scoring picks against ground truth (pure functions, no Qt).

- :func:`evaluate_picks` / :func:`score_shrec` / :func:`score_distance`: localization, by the SHREC
  rule (particle-id map) or the distance rule (hit radius per class), giving a
  :class:`LocalizationResult` with per-pick match details;
- :func:`crop_metrics` with :func:`crop_labels_by_centre` / :func:`crop_labels_by_occupancy`:
  the original method's crop-level AUC-ROC and F1;
- :func:`group_class_agreement`: unsupervised groups against true classes (table, ARI);
- :func:`ranking_curves` / :func:`plot_ranking_curves`: precision-recall and ROC of ranked picks;
- :func:`evaluate_files` (truth folder or file + picks file -> :class:`EvaluationReport`),
  :func:`format_report`, :func:`write_json`: what the CLI uses.
"""

from napari_cryoet_particles.evaluate.crops import (
    CropMetrics,
    crop_labels_by_centre,
    crop_labels_by_occupancy,
    crop_metrics,
)
from napari_cryoet_particles.evaluate.curves import (
    RankingCurves,
    plot_ranking_curves,
    ranking_curves,
    save_figure_png,
)
from napari_cryoet_particles.evaluate.groups import GroupAgreement, group_class_agreement
from napari_cryoet_particles.evaluate.localization import (
    PRED_STATUSES,
    SHREC2021_SKIP,
    LocalizationResult,
    dilate_ids,
    evaluate_picks,
    match_pairs,
    score_distance,
    score_shrec,
)
from napari_cryoet_particles.evaluate.radii import (
    RADIUS_TABLES,
    SHREC2019_RADII,
    SHREC2021_RADII,
    class_key,
    derive_radius_table,
    radius_from_mask,
)
from napari_cryoet_particles.evaluate.report import (
    EvaluationReport,
    TruthData,
    evaluate_data,
    evaluate_files,
    format_report,
    format_result,
    load_truth,
    write_json,
)

__all__ = [
    "PRED_STATUSES",
    "RADIUS_TABLES",
    "SHREC2019_RADII",
    "SHREC2021_RADII",
    "SHREC2021_SKIP",
    "CropMetrics",
    "EvaluationReport",
    "GroupAgreement",
    "LocalizationResult",
    "RankingCurves",
    "TruthData",
    "class_key",
    "crop_labels_by_centre",
    "crop_labels_by_occupancy",
    "crop_metrics",
    "derive_radius_table",
    "dilate_ids",
    "evaluate_data",
    "evaluate_files",
    "evaluate_picks",
    "format_report",
    "format_result",
    "group_class_agreement",
    "load_truth",
    "match_pairs",
    "plot_ranking_curves",
    "radius_from_mask",
    "ranking_curves",
    "save_figure_png",
    "score_distance",
    "score_shrec",
    "write_json",
]

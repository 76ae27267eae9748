"""Scoring picks against ground truth (pure functions, no Qt).

- :func:`evaluate_picks` / :func:`score_shrec` / :func:`score_distance`: localization, by the SHREC
  rule (particle-id map) or the distance rule (hit radius per class), giving a
  :class:`LocalizationResult` with per-pick match details;
- :func:`crop_metrics` with :func:`crop_labels_by_centre` / :func:`crop_labels_by_occupancy`:
  the original method's crop-level AUC-ROC and F1;
- :func:`group_class_agreement`: unsupervised groups against true classes (table, ARI);
- :func:`ranking_curves` / :func:`plot_ranking_curves`: precision-recall and ROC of ranked picks;
- :func:`score_clutter` / :func:`clutter_classes`: the clutter rule (picks on membranes, vesicles,
  gold... are false positives), reported beside the SHREC rule; :func:`landing_sites`: where
  false picks land (each clutter kind, the volume's faces, background);
- :func:`vlp_centre_hits`, :func:`face_picks`, :func:`negative_control_summary`: checks on the
  real volumes, whose truth is partial (:mod:`.real`);
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
from napari_cryoet_particles.evaluate.landing import (
    BACKGROUND,
    FACES,
    OUTSIDE_SAMPLE,
    OUTSIDE_VOLUME,
    Landing,
    class_names_from_masks,
    face_distance,
    landing_sites,
    near_faces,
)
from napari_cryoet_particles.evaluate.localization import (
    PRED_STATUSES,
    PROTEIN_CLASS_KEYS,
    SHREC2021_SKIP,
    LocalizationResult,
    clutter_classes,
    dilate_ids,
    evaluate_picks,
    match_pairs,
    score_clutter,
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
from napari_cryoet_particles.evaluate.real import (
    CentreHits,
    face_picks,
    negative_control_summary,
    read_lattice_points,
    read_vlp_centres,
    vlp_centre_hits,
)
from napari_cryoet_particles.evaluate.report import (
    EvaluationReport,
    TruthData,
    evaluate_data,
    evaluate_files,
    format_landing,
    format_report,
    format_result,
    format_rules_side_by_side,
    load_truth,
    write_json,
)

__all__ = [
    "BACKGROUND",
    "CentreHits",
    "CropMetrics",
    "EvaluationReport",
    "FACES",
    "GroupAgreement",
    "Landing",
    "LocalizationResult",
    "OUTSIDE_SAMPLE",
    "OUTSIDE_VOLUME",
    "PRED_STATUSES",
    "PROTEIN_CLASS_KEYS",
    "RADIUS_TABLES",
    "RankingCurves",
    "SHREC2019_RADII",
    "SHREC2021_RADII",
    "SHREC2021_SKIP",
    "TruthData",
    "class_key",
    "class_names_from_masks",
    "clutter_classes",
    "crop_labels_by_centre",
    "crop_labels_by_occupancy",
    "crop_metrics",
    "derive_radius_table",
    "dilate_ids",
    "evaluate_data",
    "evaluate_files",
    "evaluate_picks",
    "face_distance",
    "face_picks",
    "format_landing",
    "format_report",
    "format_result",
    "format_rules_side_by_side",
    "group_class_agreement",
    "landing_sites",
    "load_truth",
    "match_pairs",
    "near_faces",
    "negative_control_summary",
    "plot_ranking_curves",
    "radius_from_mask",
    "ranking_curves",
    "read_lattice_points",
    "read_vlp_centres",
    "save_figure_png",
    "score_clutter",
    "score_distance",
    "score_shrec",
    "vlp_centre_hits",
    "write_json",
]

"""Particle groups without labels: k-means on a descriptor of each pick (radius and radial profile).

The number of groups is given, or chosen as the K in 2-8 with the best silhouette score (on at
most :data:`SILHOUETTE_SAMPLES` picks, so the choice stays fast for thousands of picks).
"""

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

SILHOUETTE_SAMPLES = 1500
K_RANGE = range(2, 9)


def choose_groups(
    embeddings: np.ndarray, n_groups: int | None = None, seed: int = 0
) -> tuple[np.ndarray, int, dict[int, float]]:
    """Group labels (N,), the K used and the silhouette score of each K tried.

    ``n_groups`` 0 or 1 puts every pick in group 0. Too few picks for a K (fewer than 3 per
    group) rule that K out; with none left every pick is in group 0.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    n = len(x)
    if n == 0 or (n_groups is not None and n_groups <= 1):
        return np.zeros(n, dtype=int), 1 if n else 0, {}
    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    if n_groups is not None:
        if n < 2 * n_groups:
            return np.zeros(n, dtype=int), 1, {}
        labels = KMeans(n_clusters=n_groups, n_init=4, random_state=seed).fit_predict(x)
        return labels, n_groups, {}
    scores: dict[int, float] = {}
    best: tuple[float, int, np.ndarray] | None = None
    rng = np.random.default_rng(seed)
    sample = rng.choice(n, size=min(n, SILHOUETTE_SAMPLES), replace=False)
    for k in K_RANGE:
        if n < 3 * k:
            break
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(x)
        if len(np.unique(labels[sample])) < 2:
            continue
        scores[k] = float(silhouette_score(x[sample], labels[sample]))
        if best is None or scores[k] > best[0]:
            best = (scores[k], k, labels)
    if best is None:
        return np.zeros(n, dtype=int), 1, scores
    return best[2], best[1], scores

"""k-means on voxel embeddings, the automatic choice of the particle cluster(s), soft particle scores.

No labels are used. Which clusters hold the particles is decided from the data: particles are
dense, so after the polarity correction (particles dark) their voxels are darker than the rest
in the low-passed tomogram. A cluster is a particle cluster when the mean darkness of its members
lies more than ``particle_z`` robust standard deviations (1.4826 MAD of all sampled voxels)
below the median voxel: background clusters differ from each other by noise only, well within
that. If no cluster is that dark, the darkest one is taken; never all of them. Extremely dense
voxels (gold fiducials) are left out of the fit, so they cannot claim a cluster of their own.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from napari_cryoet_particles.detect.params import LearnedParams


@dataclass
class ParticleClusters:
    """Fitted k-means with the particle cluster(s) and the temperature of the soft assignment.

    ``p(particle | x) = sum_{k in particle} exp(-|x - c_k|² / T) / sum_k exp(-|x - c_k|² / T)``
    on standardised embeddings (``(x - mean) / std`` per channel).
    """

    centres: np.ndarray
    particle: np.ndarray
    temperature: float
    mean: np.ndarray
    std: np.ndarray
    darkness: np.ndarray
    sizes: np.ndarray
    weights: np.ndarray | None = None
    """Per-channel factors applied after standardising (None: all 1)."""

    @property
    def n_clusters(self) -> int:
        return len(self.centres)

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float32) - self.mean) / self.std
        return z if self.weights is None else z * self.weights

    def distances(self, x: np.ndarray) -> np.ndarray:
        """Squared distances (N, K) of embeddings ``x`` (N, C) to the cluster centres."""
        z = self._standardise(x)
        d = (
            (z * z).sum(1, keepdims=True)
            - 2.0 * z @ self.centres.T
            + (self.centres * self.centres).sum(1)[None]
        )
        return np.maximum(d, 0.0)

    def assign(self, x: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        """(cluster id, particle probability) for embeddings ``x`` (N, C), ``chunk`` rows at a time."""
        ids = np.empty(len(x), dtype=np.int8)
        probability = np.empty(len(x), dtype=np.float32)
        for start in range(0, len(x), chunk):
            d = self.distances(x[start : start + chunk])
            logits = -(d - d.min(1, keepdims=True)) / self.temperature
            weights = np.exp(logits)
            probability[start : start + chunk] = weights[:, self.particle].sum(1) / weights.sum(1)
            ids[start : start + chunk] = d.argmin(1)
        return ids, probability


def extreme_density(darkness: np.ndarray, outlier_z: float) -> np.ndarray:
    """Samples more than ``outlier_z`` robust standard deviations from the median darkness.

    Gold fiducials (and hot pixels) are far denser than any protein; left in, k-means spends a
    cluster on them and, being the darkest, it would be taken for the particles. They are left
    out of the fit (they are still scored, and land in the darkest cluster).
    """
    centre = float(np.median(darkness))
    spread = 1.4826 * float(np.median(np.abs(darkness - centre))) or float(np.std(darkness)) or 1.0
    return np.abs(darkness - centre) > outlier_z * spread


def particle_clusters(
    cluster_darkness: np.ndarray, darkness: np.ndarray, particle_z: float
) -> np.ndarray:
    """Ids of the particle clusters, from their mean darkness and the sampled voxels' darkness:
    those more than ``particle_z`` robust standard deviations below the median voxel."""
    finite = np.isfinite(cluster_darkness)
    centre = float(np.median(darkness))
    spread = 1.4826 * float(np.median(np.abs(darkness - centre))) or float(np.std(darkness)) or 1.0
    particle = np.flatnonzero(finite & (cluster_darkness < centre - particle_z * spread))
    if len(particle) == 0 or len(particle) == int(finite.sum()):
        particle = np.array([int(np.nanargmin(np.where(finite, cluster_darkness, np.inf)))])
    return particle


def fit_particle_clusters(
    samples: np.ndarray,
    darkness: np.ndarray,
    params: LearnedParams,
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> ParticleClusters:
    """k-means (``params.n_clusters``) on sampled voxel embeddings (N, C) and the choice of the
    particle cluster(s).

    ``darkness`` (N,) is the low-passed, polarity-corrected intensity at each sample (lower =
    denser). The temperature ``T`` is ``params.temperature_fraction`` times the median gap
    between the second-nearest and the nearest squared centre distance, so that (at 1) a voxel
    half-way between two clusters scores about 0.5 and a typical member about
    ``1 / (1 + e^-1)``: a continuous score, not a hard label.
    """
    n_clusters = params.n_clusters
    samples = np.asarray(samples, dtype=np.float32)
    darkness = np.asarray(darkness, dtype=float)
    typical = ~extreme_density(darkness, params.outlier_z)
    if typical.sum() >= n_clusters * 4:
        samples, darkness = samples[typical], darkness[typical]
    if len(samples) < n_clusters * 4:
        raise ValueError(f"{len(samples)} samples are too few for {n_clusters} clusters")
    mean = samples.mean(0)
    std = samples.std(0) + 1e-6
    z = (samples - mean) / std
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float32)
        z = z * weights
    kmeans = MiniBatchKMeans(
        n_clusters=n_clusters, random_state=seed, n_init=3, batch_size=4096, max_iter=200
    ).fit(z)
    labels = kmeans.labels_
    sizes = np.bincount(labels, minlength=n_clusters)
    cluster_dark = np.array(
        [darkness[labels == k].mean() if sizes[k] else np.inf for k in range(n_clusters)],
        dtype=float,
    )
    particle = particle_clusters(cluster_dark, np.asarray(darkness, dtype=float), params.particle_z)
    centres = kmeans.cluster_centers_.astype(np.float32)
    d = ((z[:, None, :] - centres[None]) ** 2).sum(-1)
    d.sort(axis=1)
    temperature = params.temperature_fraction * float(np.median(d[:, 1] - d[:, 0])) or 1.0
    return ParticleClusters(centres, particle, temperature, mean, std, cluster_dark, sizes, weights)

"""Per-tomogram input normalisation, shared by training and detection (one definition only).

A robust z-score: subtract the median, divide by the normal-consistent median absolute deviation
(1.4826 * MAD), then clip to ``±clip``. The statistics come from a subsample of whole z-slices so
a memory-mapped tomogram is never loaded whole; they are computed once per tomogram and applied to
every crop or tile.
"""

from dataclasses import dataclass

import numpy as np
import torch

from napari_cryoet_particles.io.errors import CryoetInputError

#: z-scores are clipped to this magnitude (tames gold fiducials and hot pixels).
DEFAULT_CLIP = 5.0
#: At most this many voxels are read to estimate the statistics.
MAX_SAMPLES = 4_000_000
MAD_TO_SIGMA = 1.4826

NORMALIZATION_INFO = {"method": "robust_zscore", "clip": DEFAULT_CLIP, "mad_to_sigma": MAD_TO_SIGMA}


@dataclass(frozen=True)
class NormStats:
    """``normalised = clip((raw - center) / scale, -clip, clip)``."""

    center: float
    scale: float
    clip: float = DEFAULT_CLIP

    def to_dict(self) -> dict:
        return {"center": self.center, "scale": self.scale, "clip": self.clip}


def _sample(data: np.ndarray, max_samples: int) -> np.ndarray:
    """Whole z-slices at a regular z step, subsampled in y and x, as float64."""
    nz, ny, nx = data.shape
    per_slice = ny * nx
    n_slices = max(1, min(nz, max_samples // max(1, per_slice) or 1))
    z_index = np.unique(np.linspace(0, nz - 1, n_slices).round().astype(int))
    step_yx = max(1, int(np.ceil(np.sqrt(len(z_index) * per_slice / max_samples))))
    return np.concatenate(
        [np.asarray(data[z, ::step_yx, ::step_yx], dtype=np.float64).ravel() for z in z_index]
    )


def robust_stats(
    data: np.ndarray, clip: float = DEFAULT_CLIP, max_samples: int = MAX_SAMPLES
) -> NormStats:
    """Median and 1.4826·MAD of a (possibly memory-mapped) 3D array.

    Falls back to the standard deviation when the MAD is 0 (e.g. a mostly constant volume).
    Raises :class:`CryoetInputError` for a constant volume, which holds nothing to learn or detect.
    """
    values = _sample(data, max_samples)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise CryoetInputError(None, "the tomogram holds no finite values")
    center = float(np.median(values))
    scale = MAD_TO_SIGMA * float(np.median(np.abs(values - center)))
    if not scale > 0:
        scale = float(values.std())
    if not scale > 0:
        raise CryoetInputError(
            None, "the tomogram is constant (all voxels equal): nothing to detect"
        )
    return NormStats(center=center, scale=scale, clip=float(clip))


def normalize(array: np.ndarray | torch.Tensor, stats: NormStats) -> np.ndarray | torch.Tensor:
    """Apply ``stats`` to a crop or tile (numpy → float32 numpy, tensor → float tensor)."""
    if isinstance(array, torch.Tensor):
        out = (array.float() - stats.center) / stats.scale
        return out.clamp_(-stats.clip, stats.clip)
    out = (np.asarray(array, dtype=np.float32) - np.float32(stats.center)) / np.float32(stats.scale)
    return np.clip(out, -stats.clip, stats.clip, out=out)

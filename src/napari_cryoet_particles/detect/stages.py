"""What the detection stages hand each other (:mod:`.pipeline`, :mod:`.scoring`)."""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from napari_cryoet_particles.detect.gather import PointGather
from napari_cryoet_particles.detect.volume import WorkingVolume


@dataclass
class Prepared:
    """What the prepare stage gives the others: the model on its device, the working volume, its
    coarse grid (``full`` padded working shape, ``grid`` coarse shape, ``valid`` coarse voxels
    inside the volume), the low-passed overview (particles dark) and the mask of the sample."""

    encoder: nn.Module
    device: torch.device
    head_payload: dict | None
    threads: int
    stride: int
    halo: int
    input_size: float
    work: WorkingVolume
    full: tuple[int, int, int]
    grid: tuple[int, int, int]
    valid: tuple[int, int, int]
    overview: np.ndarray
    mask: np.ndarray
    darkness_sigma: float
    info: dict[str, object]


@dataclass
class Embedded:
    """The learned values at the candidates (``at_blobs``) and the whole score map when kept;
    ``at_blobs`` is None when the embedding pass was skipped (nothing read it)."""

    at_blobs: PointGather | None
    probability: np.ndarray | None

    def probability_at_blobs(self, count: int) -> np.ndarray:
        """(count,) the learned particle probability at the candidates; NaN when skipped."""
        if self.at_blobs is None:
            return np.full(count, np.nan)
        return self.at_blobs.probability

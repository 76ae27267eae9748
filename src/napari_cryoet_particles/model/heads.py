"""Training-only heads on top of the encoder's embedding (not needed for inference)."""

import torch
from torch import nn

from napari_cryoet_particles.model.puzzle import GRID


class ContrastiveHeads(nn.Module):
    """Projection heads for the three objectives (see :mod:`.losses`).

    - ``global_projector``: pooled embedding -> NT-Xent projection (MLP with BatchNorm);
    - ``dense_projector``: per-voxel 1³ MLP -> pixel-consistency projection;
    - ``propagation``: the ``g`` transform of the pixel-propagation module (1³ MLP, no
      normalisation layer, so a voxel's output depends on that voxel only);
    - ``puzzle``: 2×2×2 block-pooled embedding -> logits over the puzzle permutations.
    """

    def __init__(
        self, embedding_dim: int, projection_dim: int = 32, hidden: int = 64, n_puzzles: int = 16
    ):
        super().__init__()
        self.global_projector = nn.Sequential(
            nn.Linear(embedding_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, projection_dim),
        )
        self.dense_projector = nn.Sequential(
            nn.Conv3d(embedding_dim, hidden, 1),
            nn.BatchNorm3d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv3d(hidden, projection_dim, 1),
        )
        self.propagation = nn.Sequential(
            nn.Conv3d(projection_dim, projection_dim, 1),
            nn.ReLU(inplace=True),
            nn.Conv3d(projection_dim, projection_dim, 1),
        )
        blocks = GRID[0] * GRID[1] * GRID[2]
        self.puzzle = nn.Sequential(
            nn.Linear(embedding_dim * blocks, hidden * 2),
            nn.ReLU(inplace=True),
            nn.Linear(hidden * 2, n_puzzles),
        )

    def project_global(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.global_projector(embedding.mean(dim=(2, 3, 4)))

    def project_dense(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.dense_projector(embedding)

    def puzzle_logits(self, embedding: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool3d(embedding, GRID)
        return self.puzzle(pooled.flatten(1))

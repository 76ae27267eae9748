"""Training objectives (all label-free). Each has a weight in the training config; weight 0 skips it.

``ntxent``
    NT-Xent / InfoNCE (SimCLR) on L2-normalised projections of the average-pooled embedding of
    each view. The two views of one pair are positives; all other views in the batch are
    negatives. ``temperature`` scales the cosine similarities.

``dense``
    Voxel-level NT-Xent: matched voxels of the two views (as defined for ``pixel`` below) are
    positives; the partners of the other anchor voxels of the batch are negatives, except those
    of the same crop closer than ``exclusion`` working voxels (probably the same object). Unlike
    ``pixel`` it has negatives, so it cannot be met by featureless embeddings.

``pixel``
    Pixel-propagation consistency (PixPro, Xie et al. 2021) in 3D. Feature voxel ``i`` of view A
    and voxel ``j`` of view B are a positive pair when their centres lie at the same tomogram
    position: ``j`` is the B voxel nearest to ``i``'s position and the distance is below
    ``threshold`` feature cells. Only such matched ("overlapping") voxels enter the loss. A's dense
    projections ``x`` are smoothed by the propagation module,
    ``y_i = sum_j max(cos(x_i, x_j), 0)**gamma * g(x_j)`` over the matched voxels ``j`` in a local
    window around ``i`` (``g`` is a two-layer 1³ MLP), and ``y_i`` is pulled towards B's
    target projection at the matching voxel, ``-cos(y_i, x'_j)``; symmetric in A and B. As in
    PixPro the targets ``x'`` come from a momentum encoder (an exponential moving average of the
    encoder and dense projector, no gradient); without one the term collapses to featureless
    embeddings (measured: a model trained on this term alone separates particles no better than
    an untrained one).

``puzzle_ce`` and ``puzzle_kl`` (spatial organisation)
    A head reads the embedding of a crop pooled over its 2×2×2 blocks and outputs logits over
    the P = 16 puzzle permutations (:mod:`.puzzle`). Let ``p(.|x)`` be the softmax of the head on
    the normal view ``x`` and ``p(.|x_k)`` on the same view puzzled by permutation ``k``.
    ``puzzle_ce`` is the cross-entropy of ``p(.|x)`` against class 0 (identity) and of
    ``p(.|x_k)`` against class ``k``, averaged. ``puzzle_kl`` is
    ``KL(p(.|x) || q)`` with ``q(a) = p(compose[k, a] | x_k)``: whatever arrangement ``a`` the
    head believes the normal view has, the puzzled view must then have arrangement "``a``
    followed by ``k``", with the same belief. The set of permutations is a group, so ``q`` is a
    proper distribution. With a perfect head both terms are 0; the KL term ties the two
    predictions together when the head is uncertain (the distribution over all classes, not only
    the true one, must be consistent).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from napari_cryoet_particles.model.augment import ViewGeometry


def nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """NT-Xent loss for N positive pairs ``(z_a[i], z_b[i])`` (N, D); the other 2N-2 are negatives."""
    n = z_a.shape[0]
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


@dataclass
class VoxelMatch:
    """Nearest-voxel correspondence between the feature grids of two views (flattened, C order).

    ``a_to_b[b, i]`` is the B voxel matching A voxel ``i`` (valid where ``valid_a``), and the
    reverse for ``b_to_a`` / ``valid_b``.
    """

    a_to_b: torch.Tensor
    valid_a: torch.Tensor
    b_to_a: torch.Tensor
    valid_b: torch.Tensor

    def used_a(self) -> torch.Tensor:
        """A voxels that enter the loss: matched ones, or targets of a matched B voxel (B, N)."""
        hits = torch.zeros(self.valid_a.shape, device=self.valid_a.device)
        hits.scatter_add_(1, self.b_to_a, self.valid_b.float())
        return self.valid_a | (hits > 0)


def feature_grid(
    shape: tuple[int, int, int], stride: int, offset: float, device: torch.device
) -> torch.Tensor:
    """View coordinates of the centres of all feature voxels, (N, 3) zyx in C order."""
    axes = [torch.arange(n, dtype=torch.float32, device=device) * stride + offset for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)


def _match_one_way(
    source: ViewGeometry,
    target: ViewGeometry,
    shape: tuple[int, int, int],
    stride: int,
    offset: float,
    threshold: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    device = source.linear.device
    centres = feature_grid(shape, stride, offset, device)
    world = source.to_world(centres)
    index = ((target.to_view(world) - offset) / stride).round()
    limits = torch.tensor(shape, device=device)
    inside = ((index >= 0) & (index <= limits - 1)).all(dim=-1)
    index = torch.minimum(index.clamp_min(0), limits - 1)
    distance = (target.to_world(index * stride + offset) - world).norm(dim=-1)
    cell = stride * torch.maximum(source.scale(), target.scale())[:, None]
    valid = inside & (distance < threshold * cell)
    flat = (index[..., 0] * shape[1] + index[..., 1]) * shape[2] + index[..., 2]
    return flat.long(), valid


def match_voxels(
    geometry_a: ViewGeometry,
    geometry_b: ViewGeometry,
    shape: tuple[int, int, int],
    stride: int,
    offset: float,
    threshold: float = 0.7,
) -> VoxelMatch:
    """Positive voxel pairs of two views whose feature grids have spatial shape ``shape``."""
    a_to_b, valid_a = _match_one_way(geometry_a, geometry_b, shape, stride, offset, threshold)
    b_to_a, valid_b = _match_one_way(geometry_b, geometry_a, shape, stride, offset, threshold)
    return VoxelMatch(a_to_b, valid_a, b_to_a, valid_b)


def neighbour_index(
    shape: tuple[int, int, int], window: int, dilation: int, device: torch.device
) -> torch.Tensor:
    """Flat indices of each voxel's ``window``³ neighbourhood (N, K); ``N`` marks "outside the grid"."""
    nz, ny, nx = shape
    grid = torch.stack(
        torch.meshgrid(*(torch.arange(n, device=device) for n in shape), indexing="ij"), dim=-1
    ).reshape(-1, 1, 3)
    steps = torch.arange(window, device=device) * dilation - (window // 2) * dilation
    offsets = torch.stack(torch.meshgrid(steps, steps, steps, indexing="ij"), dim=-1).reshape(
        1, -1, 3
    )
    neighbours = grid + offsets
    limits = torch.tensor(shape, device=device)
    inside = ((neighbours >= 0) & (neighbours < limits)).all(dim=-1)
    flat = (neighbours[..., 0] * ny + neighbours[..., 1]) * nx + neighbours[..., 2]
    return torch.where(inside, flat, nz * ny * nx)


def _gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table`` (B, N, C), ``index`` (B, Q, K) -> (B, Q, K, C)."""
    batch, queries, k = index.shape
    channels = table.shape[-1]
    flat = index.reshape(batch, queries * k, 1).expand(-1, -1, channels)
    return torch.gather(table, 1, flat).reshape(batch, queries, k, channels)


def propagate(
    x: torch.Tensor,
    mask: torch.Tensor,
    transform: nn.Module,
    queries: torch.Tensor,
    window: int = 3,
    dilation: int = 1,
    gamma: float = 2.0,
) -> torch.Tensor:
    """Pixel-propagation module: smooth voxel features over similar masked neighbours.

    ``x`` (B,C,Z,Y,X) dense projections; ``mask`` (B,Z,Y,X) bool, only masked voxels serve as
    neighbours; ``queries`` (B,Q) flat indices of the voxels to compute. Returns ``y`` (B,Q,C),
    ``y_i = sum_j max(cos(x_i,x_j),0)**gamma * g(x_j)`` over ``j`` in the ``window``³
    neighbourhood (step ``dilation``) of ``i`` with ``mask[j]`` (``i`` itself included).
    """
    batch, channels = x.shape[:2]
    values = transform(x).flatten(2).transpose(1, 2)
    unit = F.normalize(x, dim=1).flatten(2).transpose(1, 2)
    keep = mask.reshape(batch, -1, 1).to(x.dtype)
    pad = torch.zeros(batch, 1, channels, dtype=x.dtype, device=x.device)
    unit_p = torch.cat([unit, pad], dim=1)
    values_p = torch.cat([values * keep, pad], dim=1)
    keep_p = torch.cat([keep, pad[..., :1]], dim=1)
    neighbours = neighbour_index(tuple(x.shape[2:]), window, dilation, x.device)[queries]
    unit_q = torch.gather(unit, 1, queries[..., None].expand(-1, -1, channels))
    similarity = (_gather_rows(unit_p, neighbours) @ unit_q[..., None])[..., 0]
    weight = similarity.clamp_min(0) ** gamma * _gather_rows(keep_p, neighbours)[..., 0]
    return (weight[:, :, None, :] @ _gather_rows(values_p, neighbours))[:, :, 0, :]


def choose_queries(valid: torch.Tensor, count: int, gen: torch.Generator | None) -> torch.Tensor:
    """Up to ``count`` random voxels per batch item, valid ones first (B, Q); all voxels if count <= 0."""
    batch, n = valid.shape
    if count <= 0 or count >= n:
        return torch.arange(n, device=valid.device).expand(batch, n)
    noise = torch.rand(batch, n, generator=gen).to(valid.device)
    return torch.topk(noise + 2 * valid.to(noise.dtype), count, dim=1).indices


def _one_side(
    predicted: torch.Tensor,
    target: torch.Tensor,
    queries: torch.Tensor,
    index: torch.Tensor,
    valid: torch.Tensor,
) -> torch.Tensor:
    """Mean of ``-cos(y_i, stopgrad(x'_j))`` over the valid queries ``i``; ``predicted`` (B,Q,C)."""
    batch, channels = target.shape[:2]
    targ = target.detach().flatten(2).transpose(1, 2)
    partner = torch.gather(index, 1, queries)
    gathered = torch.gather(targ, 1, partner[..., None].expand(-1, -1, channels))
    use = torch.gather(valid, 1, queries).to(predicted.dtype)
    cosine = F.cosine_similarity(predicted, gathered, dim=-1)
    count = use.sum()
    if float(count) == 0:
        return (predicted * 0).sum()
    return -(cosine * use).sum() / count


def pixel_consistency(
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    match: VoxelMatch,
    transform: nn.Module,
    window: int = 3,
    dilation: int = 1,
    gamma: float = 2.0,
    queries: int = 0,
    gen: torch.Generator | None = None,
    target_a: torch.Tensor | None = None,
    target_b: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric PixPro loss between the dense projections of two views (see module docs).

    ``x_a``, ``x_b``: online projections (propagated); ``target_a``, ``target_b``: the momentum
    encoder's projections of the same views (default: ``x`` itself, without gradient).
    ``queries > 0`` evaluates the loss on that many random matched voxels per view (a stochastic
    estimate that saves time); 0 uses all. Lies in [-1, 1]; -1 when every matched voxel's
    propagated feature points the same way as its partner's target.
    """
    target_a = x_a if target_a is None else target_a
    target_b = x_b if target_b is None else target_b
    batch = x_a.shape[0]
    shape = x_a.shape[2:]
    query_a = choose_queries(match.valid_a, queries, gen)
    query_b = choose_queries(match.valid_b, queries, gen)
    y_a = propagate(
        x_a, match.valid_a.reshape(batch, *shape), transform, query_a, window, dilation, gamma
    )
    y_b = propagate(
        x_b, match.valid_b.reshape(batch, *shape), transform, query_b, window, dilation, gamma
    )
    side_a = _one_side(y_a, target_b, query_a, match.a_to_b, match.valid_a)
    side_b = _one_side(y_b, target_a, query_b, match.b_to_a, match.valid_b)
    return 0.5 * (side_a + side_b)


def dense_nt_xent(
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    match: VoxelMatch,
    world_a: torch.Tensor,
    queries: int,
    gen: torch.Generator | None,
    temperature: float = 0.2,
    exclusion: float = 0.0,
) -> torch.Tensor:
    """Voxel-level NT-Xent between matched voxels of two views (see module docs).

    ``x_a``, ``x_b`` (B,C,Z,Y,X) dense projections; ``world_a`` (B,N,3) world positions of A's
    feature voxels. ``queries`` random matched A voxels per crop are the anchors; each one's
    positive is its matched B voxel, its negatives the B partners of every other anchor in the
    batch, except those of the same crop closer than ``exclusion`` (working voxels), which are
    likely the same object and are left out. Symmetric in A and B.
    """
    batch, channels = x_a.shape[:2]
    query = choose_queries(match.valid_a, queries, gen)
    valid = torch.gather(match.valid_a, 1, query).reshape(-1)
    flat_a = x_a.flatten(2).transpose(1, 2)
    flat_b = x_b.flatten(2).transpose(1, 2)
    partner = torch.gather(match.a_to_b, 1, query)
    z_a = F.normalize(torch.gather(flat_a, 1, query[..., None].expand(-1, -1, channels)), dim=-1)
    z_b = F.normalize(torch.gather(flat_b, 1, partner[..., None].expand(-1, -1, channels)), dim=-1)
    z_a, z_b = z_a.reshape(-1, channels), z_b.reshape(-1, channels)
    n = z_a.shape[0]
    position = torch.gather(world_a, 1, query[..., None].expand(-1, -1, 3))
    distance = torch.cdist(position, position)
    excluded = (
        torch.block_diag(*(distance < exclusion).unbind(0)) | ~valid[None, :] | ~valid[:, None]
    )
    excluded.fill_diagonal_(False)
    logits = z_a @ z_b.T / temperature
    target = torch.arange(n, device=x_a.device)
    forward = F.cross_entropy(logits.masked_fill(excluded, float("-inf")), target, reduction="none")
    backward = F.cross_entropy(
        logits.T.masked_fill(excluded.T, float("-inf")), target, reduction="none"
    )
    count = valid.sum()
    if int(count) == 0:
        return (logits * 0).sum()
    return 0.5 * ((forward + backward) * valid).sum() / count


def puzzle_ce(
    logits_normal: torch.Tensor, logits_puzzled: torch.Tensor, classes: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy: normal views are class 0 (identity), puzzled views class ``classes``."""
    zeros = torch.zeros_like(classes)
    return 0.5 * (F.cross_entropy(logits_normal, zeros) + F.cross_entropy(logits_puzzled, classes))


def puzzle_kl(
    logits_normal: torch.Tensor,
    logits_puzzled: torch.Tensor,
    classes: torch.Tensor,
    compose: torch.Tensor,
) -> torch.Tensor:
    """``KL(p(.|x) || q)``, ``q(a) = p(compose[k, a] | x_k)``, batch mean (see module docs)."""
    log_p = F.log_softmax(logits_normal, dim=1)
    log_puzzled = F.log_softmax(logits_puzzled, dim=1)
    log_q = torch.gather(log_puzzled, 1, compose.to(classes.device)[classes])
    return (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()

"""Augmentations, puzzles and losses behave as their definitions say (tiny tensors, CPU)."""

import math

import pytest
import torch

from napari_cryoet_particles.model.augment import (
    AugmentConfig,
    ViewGeometry,
    gaussian_blur,
    make_views,
    random_geometry,
    resample_views,
)
from napari_cryoet_particles.model.encoder import DenseEncoder, EncoderConfig
from napari_cryoet_particles.model.heads import ContrastiveHeads
from napari_cryoet_particles.model.losses import (
    dense_nt_xent,
    feature_grid,
    match_voxels,
    neighbour_index,
    nt_xent,
    pixel_consistency,
    puzzle_ce,
    puzzle_kl,
)
from napari_cryoet_particles.model.puzzle import (
    apply_puzzle,
    composition_table,
    frame_blocks,
    puzzle_permutations,
)

# -- augmentations ---------------------------------------------------------------------------


def test_geometry_never_mixes_z_with_y_or_x() -> None:
    geometry = random_geometry(64, AugmentConfig(max_angle=30.0), torch.Generator().manual_seed(0))
    linear = geometry.linear
    assert torch.all(linear[:, 0, 1:] == 0) and torch.all(linear[:, 1:, 0] == 0)
    assert (linear[:, 0, 0] < 0).any() and (linear[:, 0, 0] > 0).any()  # z flips happen
    swapped = linear[:, 1, 2].abs() > linear[:, 1, 1].abs()  # 90° xy turns happen
    assert swapped.any() and (~swapped).any()


def test_rotations_off_gives_scale_only() -> None:
    config = AugmentConfig(rotations=False)
    geometry = random_geometry(16, config, torch.Generator().manual_seed(1))
    scale = geometry.scale()
    expected = scale[:, None, None] * torch.eye(3)
    torch.testing.assert_close(geometry.linear, expected)
    assert float(scale.min()) >= config.scale_range[0] - 1e-6
    assert float(scale.max()) <= config.scale_range[1] + 1e-6


def test_views_sample_the_block_where_their_geometry_says() -> None:
    """A linear ramp is reproduced exactly by trilinear sampling: view(q) == ramp(world(q))."""
    size, block = 8, 31
    coefficients = torch.tensor([0.3, -0.7, 1.1])
    axis = torch.arange(block, dtype=torch.float32)
    zz, yy, xx = torch.meshgrid(axis, axis, axis, indexing="ij")
    ramp = coefficients[0] * zz + coefficients[1] * yy + coefficients[2] * xx
    blocks = ramp.expand(4, 1, block, block, block).contiguous()
    config = AugmentConfig(crop_size=size, max_angle=40.0)
    geometry = random_geometry(4, config, torch.Generator().manual_seed(2))
    ratio = torch.tensor([1.0, 1.0, 1.5, 0.5])
    views = resample_views(blocks, geometry, size, ratio)
    q = torch.stack(
        torch.meshgrid(*(torch.arange(size, dtype=torch.float32),) * 3, indexing="ij"), -1
    )
    world = geometry.to_world(q.reshape(-1, 3))
    expected = ((block - 1) / 2 + world * ratio[:, None, None]) @ coefficients
    torch.testing.assert_close(views.reshape(4, -1), expected, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(
        geometry.to_view(world), q.reshape(1, -1, 3).expand(4, -1, -1), atol=1e-4, rtol=0
    )


def test_photometric_augmentation_changes_views_but_keeps_shape() -> None:
    blocks = torch.randn(3, 1, 41, 41, 41)
    gen = torch.Generator().manual_seed(3)
    view_1, _ = make_views(blocks, AugmentConfig(crop_size=16), gen)
    view_2, _ = make_views(blocks, AugmentConfig(crop_size=16), gen)
    assert view_1.shape == (3, 1, 16, 16, 16)
    assert not torch.allclose(view_1, view_2)


def test_blur_per_view_sigma() -> None:
    views = torch.zeros(2, 1, 9, 9, 9)
    views[:, :, 4, 4, 4] = 1.0
    out = gaussian_blur(views, torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(out[0], views[0])
    assert out[1].sum() == pytest.approx(1.0, abs=1e-4)
    assert out[1, 0, 4, 4, 4] == pytest.approx((2 * math.pi) ** -1.5, rel=0.05)


# -- NT-Xent ---------------------------------------------------------------------------------


def test_ntxent_is_lowest_for_identical_views() -> None:
    torch.manual_seed(0)
    z = torch.randn(32, 16)
    identical = nt_xent(z, z.clone(), temperature=0.2)
    close = nt_xent(z, z + 0.3 * torch.randn_like(z), temperature=0.2)
    unrelated = nt_xent(z, torch.randn(32, 16), temperature=0.2)
    assert identical < close < unrelated
    assert identical < math.log(63) < unrelated  # log(2N - 1): no better than chance


# -- pixel-propagation consistency -----------------------------------------------------------


def _translated_pair(shift_x: float, size: int = 16) -> tuple[ViewGeometry, ViewGeometry]:
    eye = torch.eye(3).expand(2, 3, 3).clone()
    a = ViewGeometry(eye, torch.zeros(2, 3))
    b = ViewGeometry(eye.clone(), torch.tensor([[0.0, 0.0, shift_x]] * 2))
    return a, b


def test_voxel_match_of_a_translation() -> None:
    a, b = _translated_pair(8.0)
    match = match_voxels(a, b, (8, 8, 8), stride=2, offset=0.5)
    valid_a = match.valid_a.reshape(2, 8, 8, 8)
    assert valid_a[..., 4:].all() and not valid_a[..., :4].any()  # A's x >= 8 lies inside B
    valid_b = match.valid_b.reshape(2, 8, 8, 8)
    assert valid_b[..., :4].all() and not valid_b[..., 4:].any()
    flat = torch.arange(512).reshape(8, 8, 8)
    assert torch.equal(match.a_to_b[0].reshape(8, 8, 8)[..., 4:], flat[..., :4])


def test_pixel_term_uses_only_overlapping_voxels() -> None:
    torch.manual_seed(1)
    heads = ContrastiveHeads(embedding_dim=6, projection_dim=5)
    a, b = _translated_pair(8.0)
    match = match_voxels(a, b, (8, 8, 8), stride=2, offset=0.5)
    x_a, x_b = torch.randn(2, 5, 8, 8, 8), torch.randn(2, 5, 8, 8, 8)

    def loss(xa: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        return pixel_consistency(xa, xb, match, heads.propagation, window=3)

    reference = loss(x_a, x_b)
    outside_a, outside_b = x_a.clone(), x_b.clone()
    outside_a[..., :4] = torch.randn(2, 5, 8, 8, 4) * 10  # A voxels with no partner in B
    outside_b[..., 4:] = torch.randn(2, 5, 8, 8, 4) * 10
    torch.testing.assert_close(loss(outside_a, outside_b), reference)
    inside_a = x_a.clone()
    inside_a[..., 4:] = torch.randn(2, 5, 8, 8, 4)
    assert not torch.allclose(loss(inside_a, x_b), reference)
    assert -1.0 <= float(reference.detach()) <= 1.0


def test_pixel_term_is_minimal_for_consistent_features() -> None:
    """Identical features at matching positions give the lowest value, -1; random ones do not."""
    a, b = _translated_pair(8.0)
    match = match_voxels(a, b, (8, 8, 8), stride=2, offset=0.5)
    constant = torch.ones(2, 5, 8, 8, 8)
    value = pixel_consistency(constant, constant.clone(), match, torch.nn.Identity())
    assert float(value) == pytest.approx(-1.0, abs=1e-5)
    noise = pixel_consistency(
        torch.randn(2, 5, 8, 8, 8), torch.randn(2, 5, 8, 8, 8), match, torch.nn.Identity()
    )
    assert float(noise) > -0.5


def test_dense_ntxent_prefers_matching_voxels_and_ignores_the_rest() -> None:
    torch.manual_seed(4)
    a, b = _translated_pair(8.0)
    match = match_voxels(a, b, (8, 8, 8), stride=2, offset=0.5)
    world = a.to_world(feature_grid((8, 8, 8), 2, 0.5, torch.device("cpu")))
    x_a = torch.randn(2, 5, 8, 8, 8)
    aligned = torch.randn(2, 5, 8, 8, 8)
    aligned[..., :4] = x_a[..., 4:]  # B's voxel x=j sits where A's voxel x=j+4 does

    def loss(xa: torch.Tensor, xb: torch.Tensor) -> float:
        gen = torch.Generator().manual_seed(0)
        return float(dense_nt_xent(xa, xb, match, world, 64, gen, temperature=0.2, exclusion=4.0))

    matching, unrelated = loss(x_a, aligned), loss(x_a, torch.randn(2, 5, 8, 8, 8))
    assert matching < unrelated - 1.0
    changed = x_a.clone()
    changed[..., :4] = 100 * torch.randn(2, 5, 8, 8, 4)  # outside the overlap
    assert loss(changed, aligned) == pytest.approx(matching, rel=1e-6)


def test_neighbour_index_marks_outside() -> None:
    index = neighbour_index((3, 3, 3), window=3, dilation=1, device=torch.device("cpu"))
    assert index.shape == (27, 27)
    assert (index[13] == torch.arange(27)).all()  # the centre voxel sees everything
    assert (index[0] == 27).sum() == 27 - 8  # a corner has 8 in-grid neighbours


# -- puzzles ---------------------------------------------------------------------------------


def test_puzzle_set_is_a_group_with_identity_first() -> None:
    perms = puzzle_permutations()
    assert perms.shape == (16, 8) and torch.equal(perms[0], torch.arange(8))
    table = composition_table(perms)
    x = torch.randn(2, 1, 4, 6, 8)
    for k in range(16):
        assert sorted(table[k].tolist()) == list(range(16))  # each row a permutation
        for a in (0, 3, 11):
            twice = apply_puzzle(apply_puzzle(x, perms[a].expand(2, 8)), perms[k].expand(2, 8))
            assert torch.equal(twice, apply_puzzle(x, perms[table[k, a]].expand(2, 8)))
    swapped_z = apply_puzzle(x, perms[1:2].expand(2, 8))
    assert not torch.equal(swapped_z, x)
    # blocks move whole: the multiset of voxel values is unchanged
    torch.testing.assert_close(swapped_z.flatten().sort().values, x.flatten().sort().values)


def test_framed_blocks_look_alike_wherever_they_sit() -> None:
    """The zeroed frame is the same for every block: puzzling a framed crop moves content only."""
    perms = puzzle_permutations()
    framed = frame_blocks(torch.ones(1, 1, 16, 16, 16), gap=4)
    assert framed.sum() == 8 * 4**3  # each 8³ block keeps its 4³ core
    for k in range(16):
        assert torch.equal(apply_puzzle(framed, perms[k : k + 1]), framed)


def test_puzzle_kl_is_zero_for_consistent_predictions() -> None:
    perms = puzzle_permutations()
    table = composition_table(perms)
    torch.manual_seed(2)
    logits_normal = torch.randn(6, 16)
    classes = torch.randint(1, 16, (6,))
    consistent = torch.empty_like(logits_normal)
    for b in range(6):
        consistent[b, table[classes[b]]] = logits_normal[b]  # p(k∘a | x_k) = p(a | x)
    assert float(puzzle_kl(logits_normal, consistent, classes, table)) == pytest.approx(
        0.0, abs=1e-6
    )
    assert float(puzzle_kl(logits_normal, torch.randn(6, 16), classes, table)) > 0.05


def test_puzzle_ce_falls_when_training_on_a_fixed_batch() -> None:
    torch.manual_seed(3)
    encoder = DenseEncoder(
        EncoderConfig(stride=2, width=6, depth=1, dilations=(1,), embedding_dim=6)
    )
    heads = ContrastiveHeads(embedding_dim=6, n_puzzles=16)
    perms = puzzle_permutations()
    # smooth volumes: block borders then show as discontinuities the network can learn to see
    views = gaussian_blur(torch.randn(8, 1, 16, 16, 16), torch.full((8,), 2.0)) * 5
    classes = torch.randint(1, 16, (8,))
    puzzled = apply_puzzle(views, perms[classes])
    params = list(encoder.parameters()) + list(heads.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        embedding = encoder(torch.cat([views, puzzled]))
        loss = puzzle_ce(
            heads.puzzle_logits(embedding[:8]), heads.puzzle_logits(embedding[8:]), classes
        )
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[0] > 2.0  # about log(16) = 2.77 at the start
    assert losses[-1] < 0.5 * losses[0]

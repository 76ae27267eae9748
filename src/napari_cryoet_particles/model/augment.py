"""Batched 3D augmentations with tracked geometry (torch, on any device).

A positive pair is two views cut from the same source block around a shared centre. Each view
has its own geometry: a map from view voxel index ``q`` (zyx) to *world* coordinates ``w`` in
working-voxel units relative to the pair's centre, ``w = L @ q + t``, with
``L = scale * Rz(angle) * P``; ``P`` is a signed axis permutation made of flips of z, y, x and an
optional y<->x swap (a 90° turn in the xy plane), ``Rz`` a small rotation in the yx plane. z is
never exchanged with y or x, so the missing wedge (along z, around the y tilt axis) stays along z.
(A 90° xy turn moves the tilt axis from y to x; set ``rot90_xy=False`` to forbid that.)
Because the geometry of both views is known, the voxel correspondence between them is exact;
the pixel-consistency loss uses it.

Photometric changes (contrast, brightness, gamma, Gaussian blur, noise) are applied per view
after resampling.
"""

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    """Ranges of the random view parameters (all sampled independently per view)."""

    crop_size: int = 32
    scale_range: tuple[float, float] = (0.8, 1.25)
    max_shift: float = 0.25
    """Each view's centre moves up to this fraction of ``crop_size`` per axis from the pair centre."""
    rotations: bool = True
    """Master switch for flips, 90° xy turns and small xy angles (the ablation toggles it)."""
    flips: bool = True
    rot90_xy: bool = True
    max_angle: float = 15.0
    contrast_range: tuple[float, float] = (0.7, 1.4)
    brightness: float = 0.2
    gamma_range: tuple[float, float] = (0.75, 1.35)
    blur_probability: float = 0.5
    blur_sigma_range: tuple[float, float] = (0.3, 1.2)
    noise_std_range: tuple[float, float] = (0.0, 0.3)

    def to_dict(self) -> dict:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "AugmentConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown augmentation settings {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def source_half_extent(self) -> float:
        """Half-size (working voxels) of the source block that contains any view."""
        half = self.crop_size / 2
        reach = (
            half
            * self.scale_range[1]
            * (math.sqrt(2) if self.rotations and self.max_angle > 0 else 1.0)
        )
        return reach + self.max_shift * self.crop_size + 1.0


@dataclass
class ViewGeometry:
    """``world = linear @ q + offset`` for view voxel index ``q`` (zyx), per batch item."""

    linear: torch.Tensor
    offset: torch.Tensor

    def to(self, device: torch.device) -> "ViewGeometry":
        return ViewGeometry(self.linear.to(device), self.offset.to(device))

    def to_world(self, q: torch.Tensor) -> torch.Tensor:
        """``q`` (B, N, 3) or (N, 3) view coordinates -> (B, N, 3) world coordinates."""
        if q.ndim == 2:
            q = q.expand(self.linear.shape[0], -1, -1)
        return q @ self.linear.transpose(1, 2) + self.offset[:, None, :]

    def to_view(self, w: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_world`."""
        inverse = torch.linalg.inv(self.linear)
        return (w - self.offset[:, None, :]) @ inverse.transpose(1, 2)

    def scale(self) -> torch.Tensor:
        """Isotropic scale (world units per view voxel), (B,)."""
        return torch.linalg.det(self.linear).abs() ** (1 / 3)


def _uniform(gen: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, dtype=torch.float64)


def random_geometry(batch: int, config: AugmentConfig, gen: torch.Generator) -> ViewGeometry:
    """Random view geometries (CPU, float32); random numbers come from ``gen`` only."""
    n = config.crop_size
    log_low, log_high = math.log(config.scale_range[0]), math.log(config.scale_range[1])
    scale = torch.exp(_uniform(gen, batch, log_low, log_high))
    shift = (
        (torch.rand(batch, 3, generator=gen, dtype=torch.float64) * 2 - 1) * config.max_shift * n
    )
    eye = torch.eye(3, dtype=torch.float64).expand(batch, 3, 3).clone()
    flips = torch.ones(batch, 3, dtype=torch.float64)
    swap = torch.zeros(batch, dtype=torch.bool)
    angle = torch.zeros(batch, dtype=torch.float64)
    # Draw every random number even when a switch is off, so switches never shift the RNG stream.
    flip_draw = torch.rand(batch, 3, generator=gen) < 0.5
    swap_draw = torch.rand(batch, generator=gen) < 0.5
    angle_draw = _uniform(gen, batch, -config.max_angle, config.max_angle)
    if config.rotations:
        if config.flips:
            flips = torch.where(flip_draw, -1.0, 1.0).double()
        if config.rot90_xy:
            swap = swap_draw
        angle = angle_draw * math.pi / 180
    permutation = eye.clone()
    permutation[swap, 1:, 1:] = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    permutation = permutation * flips[:, None, :]
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = eye.clone()
    rotation[:, 1, 1], rotation[:, 1, 2], rotation[:, 2, 1], rotation[:, 2, 2] = cos, -sin, sin, cos
    linear = scale[:, None, None] * rotation @ permutation
    centre = torch.full((batch, 3), (n - 1) / 2, dtype=torch.float64)
    offset = shift - (linear @ centre[:, :, None])[:, :, 0]
    return ViewGeometry(linear.float(), offset.float())


def view_grid(size: int, device: torch.device) -> torch.Tensor:
    """All voxel indices of a ``size``³ view, (size³, 3) zyx, in C order."""
    axis = torch.arange(size, dtype=torch.float32, device=device)
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)


def resample_views(
    blocks: torch.Tensor, geometry: ViewGeometry, size: int, voxels_per_world: torch.Tensor | float
) -> torch.Tensor:
    """Cut views out of source blocks (B,1,S,S,S) centred on the pair centre (trilinear).

    ``voxels_per_world``: source voxels per working voxel (B,) or a number (1 = same voxel size).
    Outside the block the view reads 0 (the normalised mean).
    """
    batch, _, *source = blocks.shape
    device = blocks.device
    geometry = geometry.to(device)
    world = geometry.to_world(view_grid(size, device))
    ratio = torch.as_tensor(voxels_per_world, dtype=torch.float32, device=device).reshape(-1, 1, 1)
    extent = torch.tensor(source, dtype=torch.float32, device=device)
    block_coords = (extent - 1) / 2 + world * ratio
    normalised = 2 * block_coords / (extent - 1) - 1
    grid = normalised.flip(-1).reshape(batch, size, size, size, 3)
    return F.grid_sample(blocks, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, 2r+1) normalised 1D Gaussians; sigma 0 gives a delta."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=sigma.device)
    safe = sigma.clamp_min(1e-3)[:, None]
    kernels = torch.exp(-0.5 * (x[None, :] / safe) ** 2)
    kernels = torch.where(sigma[:, None] > 1e-3, kernels, (x[None, :] == 0).float())
    return kernels / kernels.sum(dim=1, keepdim=True)


def gaussian_blur(views: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each view (B,1,Z,Y,X) with its own isotropic sigma (voxels), separably."""
    batch = views.shape[0]
    radius = max(1, int(math.ceil(3 * float(sigma.max()))))
    kernels = _gaussian_kernels(sigma.to(views.device), radius)
    out = views.reshape(1, batch, *views.shape[2:])
    for axis in range(3):
        shape = [batch, 1, 1, 1, 1]
        shape[2 + axis] = 2 * radius + 1
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = radius
        out = F.conv3d(F.pad(out, pad, mode="replicate"), kernels.reshape(shape), groups=batch)
    return out.reshape(views.shape)


def photometric(views: torch.Tensor, config: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Random contrast, brightness, gamma, blur and noise, one draw per view."""
    batch = views.shape[0]
    device = views.device
    contrast = _uniform(gen, batch, *config.contrast_range).float().to(device)
    brightness = _uniform(gen, batch, -config.brightness, config.brightness).float().to(device)
    gamma = (
        torch.exp(_uniform(gen, batch, *(math.log(g) for g in config.gamma_range)))
        .float()
        .to(device)
    )
    blur_on = torch.rand(batch, generator=gen) < config.blur_probability
    sigma = torch.where(blur_on, _uniform(gen, batch, *config.blur_sigma_range), 0.0).float()
    noise_std = _uniform(gen, batch, *config.noise_std_range).float().to(device)
    noise = torch.randn(views.shape, generator=gen).to(device)
    shape = (batch, 1, 1, 1, 1)
    low = views.amin(dim=(1, 2, 3, 4), keepdim=True)
    high = views.amax(dim=(1, 2, 3, 4), keepdim=True)
    span = (high - low).clamp_min(1e-6)
    out = ((views - low) / span).clamp(0, 1) ** gamma.reshape(shape) * span + low
    out = out * contrast.reshape(shape) + brightness.reshape(shape)
    if bool(blur_on.any()):
        out = gaussian_blur(out, sigma)
    return out + noise * noise_std.reshape(shape)


def make_views(
    blocks: torch.Tensor,
    config: AugmentConfig,
    gen: torch.Generator,
    voxels_per_world: torch.Tensor | float = 1.0,
) -> tuple[torch.Tensor, ViewGeometry]:
    """One augmented view per source block: (B,1,n,n,n) and its geometry (on the blocks' device)."""
    geometry = random_geometry(blocks.shape[0], config, gen)
    views = resample_views(blocks, geometry, config.crop_size, voxels_per_world)
    return photometric(views, config, gen), geometry.to(blocks.device)

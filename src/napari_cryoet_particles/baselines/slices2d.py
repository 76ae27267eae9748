"""Baseline (b): the original 2D method, reproduced at CPU size.

The original (SHREC 2021): choose z-slices by edge detection, train a ResNet18 with NT-Xent
(SimCLR) on 96² crops of those slices with contrast, rotation, blur and crop augmentations,
embed the 9216 crops of 96² of a slice, split them with k-means (k=2) and score at crop level.

Shrunk to fit 2 CPU cores and about a minute (each change is a field of :class:`Slices2DConfig`):

=========================  ==================================  ===============================
what                       original                            here
=========================  ==================================  ===============================
crop size                  96² px                              32² px (32 nm at 10 Å)
crops per slice            9216 (96 x 96 grid)                 a grid of step 8 px (3721 on 512²)
network                    ResNet18 (11 M parameters)          3-stage ResNet, 1 basic block per
                                                               stage, widths 16-32-64 (~0.1 M)
training                   hundreds of epochs, GPU             1000 steps of 64 pairs, CPU
slices                     chosen by edge detection            the same, 3 slices ≥ 10 px apart
=========================  ==================================  ===============================

The particle cluster is the one whose crop centres are darker (same criterion as the 3D
method); the crop score is the soft assignment to it. One addition to the original, for a fair
comparison: as in the 3D method, outlier crops — an extremely dense centre or an extreme feature
vector (gold fiducials; more than 6 robust standard deviations from the median) — are left out of
the k-means fit (and assigned afterwards): otherwise k=2 splits a few gold crops from everything
else and the baseline measures gold handling, not its features. Picks (so the localization metrics apply)
are the local maxima of that score on each slice's crop grid above 0.5, at least a particle
radius apart, placed at the crop centre on the slice.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import ndimage
from sklearn.cluster import KMeans
from torch import nn

from napari_cryoet_particles.detect.cluster import extreme_density
from napari_cryoet_particles.detect.config import DEFAULT_DIAMETER_NM
from napari_cryoet_particles.detect.peaks import pick_peaks
from napari_cryoet_particles.detect.volume import check_volume
from napari_cryoet_particles.io.picks import Picks
from napari_cryoet_particles.io.units import radius_voxels
from napari_cryoet_particles.io.volume import Volume
from napari_cryoet_particles.jobs import CancelToken, Job, Progress, run_job
from napari_cryoet_particles.model.normalize import normalize, robust_stats

#: Crops this many robust standard deviations from the median (gold) are left out of the fit
#: (the session-8 value of our detection's ``LearnedParams.outlier_z``, fixed for this baseline).
OUTLIER_Z = 6.0


@dataclass
class Slices2DConfig:
    n_slices: int = 3
    min_slice_gap: int = 10
    crop: int = 32
    grid_step: int = 8
    steps: int = 1000
    batch: int = 64
    widths: tuple[int, ...] = (16, 32, 64)
    projection_dim: int = 32
    temperature: float = 0.5
    learning_rate: float = 2e-3
    diameter_nm: float = DEFAULT_DIAMETER_NM
    seed: int = 0
    threads: int | None = None


@dataclass
class Slices2DResult:
    """Crops (centres in input voxels, zyx), their k-means assignment and score, and picks."""

    slices: np.ndarray
    centres: np.ndarray
    assignment: np.ndarray
    score: np.ndarray
    picks: Picks
    timings: dict[str, float] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)


class BasicBlock(nn.Module):
    """The ResNet basic block: two 3×3 convolutions with BatchNorm, identity or 1×1 shortcut."""

    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 1, stride, bias=False),
                nn.BatchNorm2d(channels_out),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """A ResNet with one basic block per stage (ResNet18 has two, and four stages)."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), projection_dim: int = 32):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        blocks = []
        channels = widths[0]
        for i, width in enumerate(widths):
            blocks.append(BasicBlock(channels, width, 1 if i == 0 else 2))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.projection = nn.Sequential(
            nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, projection_dim)
        )
        self.embedding_dim = channels

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.embed(x))


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross entropy over 2N views (positives: the other view)."""
    z = F.normalize(torch.cat([a, b]), dim=1)
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    n = len(a)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(similarity, target)


def choose_slices(data: np.ndarray, n: int, min_gap: int, margin: int) -> np.ndarray:
    """The ``n`` z-slices with the most edges (mean Sobel magnitude of the smoothed slice)."""
    nz = data.shape[0]
    lo, hi = min(margin, nz // 4), max(min(margin, nz // 4) + 1, nz - min(margin, nz // 4))
    strength = np.full(nz, -np.inf)
    for z in range(lo, hi):
        image = ndimage.gaussian_filter(np.asarray(data[z], dtype=np.float32), 1.0)
        strength[z] = float(np.hypot(ndimage.sobel(image, 0), ndimage.sobel(image, 1)).mean())
    chosen: list[int] = []
    for z in np.argsort(-strength):
        if not np.isfinite(strength[z]):
            break
        if all(abs(int(z) - c) >= min_gap for c in chosen):
            chosen.append(int(z))
        if len(chosen) == n:
            break
    return np.array(sorted(chosen), dtype=int)


def _augment(crops: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random rotation, crop-and-resize (zoom 1-1.4 with shift), blur, contrast and noise."""
    n = len(crops)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    angle = uniform(0, 2 * math.pi)
    zoom = 1.0 / uniform(1.0, 1.4)
    shift = (torch.rand(n, 2, generator=generator) - 0.5) * 0.3
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(crops.shape), align_corners=False)
    out = F.grid_sample(
        crops, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
    # blur: one random sigma per call, applied to a random half of the batch (cheap on a CPU)
    sigma = float(0.3 + 1.2 * torch.rand(1, generator=generator))
    radius = 3
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    chosen = torch.rand(n, generator=generator) < 0.5
    if chosen.any():
        part = out[chosen]
        part = F.conv2d(
            F.pad(part, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1)
        )
        part = F.conv2d(
            F.pad(part, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1)
        )
        out = out.clone()
        out[chosen] = part
    out = out * uniform(0.6, 1.4)[:, None, None, None] + uniform(-0.3, 0.3)[:, None, None, None]
    return out + 0.1 * torch.randn(out.shape, generator=generator)


def _grid_centres(shape: tuple[int, int], crop: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    ys = np.arange(crop // 2, shape[0] - crop // 2 + 1, step)
    xs = np.arange(crop // 2, shape[1] - crop // 2 + 1, step)
    return ys, xs


def _crops_at(image: np.ndarray, ys: np.ndarray, xs: np.ndarray, crop: int) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(image, (crop, crop))
    return windows[np.ix_(ys - crop // 2, xs - crop // 2)].reshape(-1, crop, crop)


def _embedded(network: SmallResNet, crops: np.ndarray) -> np.ndarray:
    """The network's embedding of each crop, standardised per dimension."""
    with torch.inference_mode():
        features = torch.cat(
            [
                network.embed(torch.from_numpy(np.ascontiguousarray(c))[:, None])
                for c in np.array_split(crops, max(1, len(crops) // 512))
            ]
        ).numpy()
    return (features - features.mean(0)) / (features.std(0) + 1e-6)


def _particle_cluster(
    features: np.ndarray, crops: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """k-means (k = 2) of one slice's crops: (in the particle cluster, soft particle score). The
    particle cluster is the one whose typical crops are darker in their middle."""
    half = crops.shape[1] // 2
    middle = crops[:, half - 4 : half + 4, half - 4 : half + 4].mean(axis=(1, 2))
    typical = ~extreme_density(middle, OUTLIER_Z)
    typical &= ~extreme_density(np.linalg.norm(features, axis=1), OUTLIER_Z)
    fit_rows = features[typical] if typical.sum() >= 8 else features
    kmeans = KMeans(n_clusters=2, n_init=4, random_state=seed).fit(fit_rows)
    labels = kmeans.predict(features)
    darkness = [
        middle[typical & (labels == k)].mean() if np.any(typical & (labels == k)) else np.inf
        for k in range(2)
    ]
    particle = int(np.argmin(darkness))
    d = kmeans.transform(features) ** 2
    temperature = float(np.median(np.abs(d[:, 0] - d[:, 1]))) or 1.0
    logits = -(d - d.min(1, keepdims=True)) / temperature
    return labels == particle, np.exp(logits[:, particle]) / np.exp(logits).sum(1)


def slices2d_job(
    volume: Volume, config: Slices2DConfig | None = None, cancel: CancelToken | None = None
) -> Job[Slices2DResult]:
    """Run the original 2D method on ``volume``; picks and crop centres are in input voxels."""
    from napari_cryoet_particles.model.device import configure_threads

    config = config or Slices2DConfig()
    configure_threads(config.threads)
    size = check_volume(volume, None, min_size=8)
    if min(volume.shape[1:]) < config.crop:
        raise ValueError(f"slices of {volume.shape[1:]} are smaller than the crop {config.crop}")
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    stats = robust_stats(volume.data)
    slices = choose_slices(
        volume.data, config.n_slices, config.min_slice_gap, margin=config.crop // 2
    )
    images = [normalize(volume.data[z], stats) for z in slices]
    timings["slices"] = time.perf_counter() - clock
    total = config.steps + len(slices) + 1
    yield Progress(1, total, "slices chosen")

    clock = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    network = SmallResNet(config.widths, config.projection_dim)
    optimiser = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    half = config.crop // 2
    losses: list[float] = []
    network.train()
    for step in range(config.steps):
        if cancel is not None:
            cancel.check()
        which = rng.integers(len(images), size=config.batch)
        ys = rng.integers(half, images[0].shape[0] - half + 1, size=config.batch)
        xs = rng.integers(half, images[0].shape[1] - half + 1, size=config.batch)
        batch = np.stack(
            [
                images[w][y - half : y + half, x - half : x + half]
                for w, y, x in zip(which, ys, xs, strict=True)
            ]
        )
        crops = torch.from_numpy(batch)[:, None]
        loss = nt_xent(
            network(_augment(crops, generator)),
            network(_augment(crops, generator)),
            config.temperature,
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        yield Progress(2 + step, total, "training", {"loss": losses[-1]})
    timings["train"] = time.perf_counter() - clock

    clock = time.perf_counter()
    network.eval()
    radius = radius_voxels(config.diameter_nm, size)
    centres, assignment, score, pick_rows = [], [], [], []
    for i, (z, image) in enumerate(zip(slices, images, strict=True)):
        ys, xs = _grid_centres(image.shape, config.crop, config.grid_step)
        crops = _crops_at(image, ys, xs, config.crop)
        is_particle, soft = _particle_cluster(_embedded(network, crops), crops, config.seed)
        grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
        centres.append(np.column_stack([np.full(grid_y.size, z), grid_y.ravel(), grid_x.ravel()]))
        assignment.append(is_particle)
        score.append(soft)
        peaks, values = pick_peaks(
            soft.reshape(len(ys), len(xs))[None], max(1, int(round(radius / config.grid_step))), 0.5
        )
        for (_, gy, gx), value in zip(peaks, values, strict=True):
            pick_rows.append((float(z), float(ys[gy]), float(xs[gx]), float(value)))
        yield Progress(2 + config.steps + i, total, "clustering crops")
    timings["cluster"] = time.perf_counter() - clock
    rows = np.array(pick_rows, dtype=float).reshape(-1, 4)
    features_table = pd.DataFrame({"score": rows[:, 3], "cluster": 1})
    picks = Picks(rows[:, :3], size, features_table, volume.path.stem if volume.path else "")
    yield Progress(total, total, "done")
    return Slices2DResult(
        slices=slices,
        centres=np.concatenate(centres).astype(float),
        assignment=np.concatenate(assignment),
        score=np.concatenate(score).astype(float),
        picks=picks,
        timings=timings,
        losses=losses,
    )


def detect_slices2d(volume: Volume, config: Slices2DConfig | None = None) -> Slices2DResult:
    return run_job(slices2d_job(volume, config))

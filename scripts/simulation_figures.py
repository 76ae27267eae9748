"""Time a full default simulation and draw the pictures of ``docs/simulation.md``.

Simulates the default 512 x 512 x 200 tomogram (seed 0) into a temporary folder with
``simulate_dataset_job`` (files written, as the benchmark does), prints the wall-clock time per
phase, then simulates the same seed without noise and saves:

- ``simulation_slices.png``: xy and xz slices through a vesicle: raw reconstruction, low-pass
  filtered reconstruction, noise-free model;
- ``simulation_details.png``: close-ups of that vesicle: noise-free reconstruction (CTF fringes,
  missing-wedge elongation), low-pass filtered noisy reconstruction, model;
- ``simulation_fourier.png``: the xz power spectrum of the reconstruction (missing wedge), and a
  0° and a 60° tilt image.

    python scripts/simulation_figures.py [--out docs/images] [--threads 2] [--seed 0]
"""

import argparse
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage

from napari_cryoet_particles.jobs import run_job
from napari_cryoet_particles.simulate import SimulationConfig, simulate, simulate_dataset_job

ROOT = Path(__file__).resolve().parents[1]
LOW_PASS_SIGMA = 1.5
CLOSE_UP = 60


def _show(axis, image, title, invert=False):
    image = -image if invert else image
    low, high = np.percentile(image, [1, 99])
    axis.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    axis.set_title(title, fontsize=10)
    axis.set_xticks([])
    axis.set_yticks([])


def _vesicle(result) -> np.ndarray:
    truth = result.truth
    vesicles = np.flatnonzero(truth.features["class"].to_numpy() == "vesicle")
    nz, ny, nx = result.reconstruction.shape
    centre = np.array([nz, ny, nx]) / 2
    inside = [i for i in vesicles if np.all(np.abs(truth.zyx[i] - centre) < centre - 30)]
    pick = inside or list(vesicles)
    best = min(pick, key=lambda i: abs(truth.zyx[i][0] - nz / 2))
    return np.round(truth.zyx[best]).astype(int)


def slices_figure(noisy, out: Path) -> None:
    z, y, x = _vesicle(noisy)
    reconstruction = noisy.reconstruction
    low = ndimage.gaussian_filter(reconstruction, LOW_PASS_SIGMA)
    model = noisy.grandmodel
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.2), gridspec_kw={"height_ratios": [512, 230]})
    _show(axes[0, 0], reconstruction[z], f"reconstruction, xy slice z={z} (raw)")
    _show(axes[0, 1], low[z], f"same, low-pass (Gaussian σ={LOW_PASS_SIGMA} voxels)")
    _show(axes[0, 2], model[z], "noise-free model (grandmodel), protein dark", invert=True)
    _show(axes[1, 0], reconstruction[:, y], f"xz slice y={y} (raw)")
    _show(axes[1, 1], low[:, y], "same, low-pass")
    _show(axes[1, 2], model[:, y], "noise-free model", invert=True)
    fig.suptitle(
        "Default simulation (512 x 512 x 200 voxels of 10 Å, SNR 0.1, ±60° every 2°, 3 µm defocus)"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def details_figure(noisy, clean, out: Path) -> None:
    z, y, x = _vesicle(noisy)
    rows = slice(max(y - CLOSE_UP, 0), y + CLOSE_UP)
    columns = slice(max(x - CLOSE_UP, 0), x + CLOSE_UP)
    depth = slice(max(z - CLOSE_UP, 0), z + CLOSE_UP)
    low = ndimage.gaussian_filter(noisy.reconstruction, LOW_PASS_SIGMA)
    fig, axes = plt.subplots(2, 3, figsize=(13, 9))
    _show(axes[0, 0], clean.reconstruction[z][rows, columns], "xy, noise-free reconstruction")
    _show(axes[0, 1], low[z][rows, columns], "xy, noisy reconstruction, low-pass")
    _show(axes[0, 2], noisy.grandmodel[z][rows, columns], "xy, model", invert=True)
    _show(axes[1, 0], clean.reconstruction[depth, y, columns], "xz, noise-free reconstruction")
    _show(axes[1, 1], low[depth, y, columns], "xz, noisy reconstruction, low-pass")
    _show(axes[1, 2], noisy.grandmodel[depth, y, columns], "xz, model", invert=True)
    fig.suptitle(
        f"Close-up of a vesicle at x={x} y={y} z={z}: CTF fringes (xy), missing wedge (xz)"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def fourier_figure(noisy, out: Path) -> None:
    volume = noisy.reconstruction
    nz, _, nx = volume.shape
    window = np.hanning(nz)[:, None, None] * np.hanning(nx)[None, None, :]
    power = (np.abs(np.fft.fft2((volume - volume.mean()) * window, axes=(0, 2))) ** 2).mean(axis=1)
    power = np.fft.fftshift(power)
    zero = int(np.argmin(np.abs(noisy.tilt_angles)))
    high = int(np.argmax(noisy.tilt_angles))
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    axes[0].imshow(
        np.log10(power + power.max() * 1e-8),
        cmap="magma",
        aspect="auto",
        extent=(-0.5, 0.5, -0.5, 0.5),
        origin="lower",
    )
    axes[0].set_xlabel("kx (cycles/voxel)")
    axes[0].set_ylabel("kz (cycles/voxel)")
    axes[0].set_title(
        "log power, xz plane of the reconstruction\n(dark wedge around kz: never measured)",
        fontsize=10,
    )
    low = ndimage.gaussian_filter(noisy.tilt_series, (0, LOW_PASS_SIGMA, LOW_PASS_SIGMA))
    _show(axes[1], low[zero], f"tilt image {noisy.tilt_angles[zero]:+.0f}° (low-pass)")
    _show(
        axes[2],
        low[high],
        f"tilt image {noisy.tilt_angles[high]:+.0f}° (low-pass, same scale rule)",
    )
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = SimulationConfig(seed=args.seed, threads=args.threads)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        noisy = run_job(simulate_dataset_job(Path(folder) / "run", config))
        total = time.perf_counter() - start
    phases = {
        k.removeprefix("seconds_"): round(v, 1)
        for k, v in noisy.info.items()
        if k.startswith("seconds")
    }
    print(
        f"512x512x200 default simulation with {args.threads} threads: {total:.1f} s wall clock in all, phases {phases}"
    )
    print(f"measured SNR at 0°: {noisy.info['snr_at_zero_tilt']:.3f}; objects {len(noisy.truth)}")
    clean = simulate(SimulationConfig(seed=args.seed, threads=args.threads, snr=None))
    args.out.mkdir(parents=True, exist_ok=True)
    slices_figure(noisy, args.out / "simulation_slices.png")
    details_figure(noisy, clean, args.out / "simulation_details.png")
    fourier_figure(noisy, args.out / "simulation_fourier.png")
    print(f"wrote {args.out}/simulation_{{slices,details,fourier}}.png")


if __name__ == "__main__":
    main()

"""Simulated tomograms with exact truth: phantom -> tilt series -> CTF and noise -> weighted back-projection.

What is simulated is a :class:`~.config.SimulationConfig`. :func:`simulate_job` is the generator
(phases ``phantom``, ``projections``, ``reconstruction``) that the CLI and the GUI drive;
:func:`simulate` runs it to the end; :func:`write_dataset` writes a SHREC-2021-style folder;
:func:`simulate_dataset` does both, reproducibly from a seed.
"""

import json
import os
import time
from collections.abc import Generator
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import scipy.fft
from scipy import ndimage

from napari_cryoet_particles import __version__
from napari_cryoet_particles.io.atomic import atomic_write
from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.io.picks import Picks, write_shrec_locations
from napari_cryoet_particles.io.shrec import (
    CLASS_MASK,
    GRAND_MODEL,
    LOCATIONS,
    OCCUPANCY,
    RECONSTRUCTION,
)
from napari_cryoet_particles.io.tomogram import write_tomogram
from napari_cryoet_particles.io.units import nm_to_angstrom, rescale_voxels
from napari_cryoet_particles.jobs import CancelToken, Progress, run_job
from napari_cryoet_particles.simulate import imaging
from napari_cryoet_particles.simulate.config import SimulationConfig
from napari_cryoet_particles.simulate.phantom import (
    Phantom,
    phantom_job,
    read_layout,
)
from napari_cryoet_particles.simulate.structures import (
    VOXEL_SIZE,
    class_names_text,
)

#: Excess mean inner potential of protein over vitreous ice (V): the physical value of density 1.
PROTEIN_EXCESS_POTENTIAL = 2.0
PROJECTIONS = "projections.mrc"
TILT_ANGLES = "tilt_angles.tlt"
CLASS_NAMES = "class_names.txt"
PARAMETERS = "simulation.json"
#: Mean electrons per pixel above which shot noise is drawn from its normal limit.
GAUSSIAN_COUNTS = 1e9
#: Detector defocus is sampled this finely (Å) across a tilted image (defocus gradient).
DEFOCUS_SAMPLING = 2000.0


@dataclass
class SimulationResult:
    """A simulated tomogram (zyx float32, particles darker than solvent unless ``config.invert``)
    and everything behind it, at ``voxel_size`` Å (the phantom too).

    ``tilt_series`` holds the noisy tilt images (n, y, x) as contrast (counts / mean - 1), in
    pixels of the simulation's 10 Å;
    ``tilt_angles`` the nominal angles used for the reconstruction, ``true_angles`` and
    ``shifts`` (y, x pixels) the geometry the images were actually taken with.
    """

    reconstruction: np.ndarray
    phantom: Phantom
    tilt_series: np.ndarray
    tilt_angles: np.ndarray
    true_angles: np.ndarray
    shifts: np.ndarray
    config: SimulationConfig
    info: dict[str, float] = field(default_factory=dict)
    voxel_size: float = VOXEL_SIZE

    @property
    def truth(self) -> Picks:
        return self.phantom.truth

    @property
    def grandmodel(self) -> np.ndarray:
        return self.phantom.density


def _workers(config: SimulationConfig) -> int:
    return max(1, config.threads or os.cpu_count() or 1)


def _y_chunks(shape: tuple[int, int, int], rows: int) -> list[slice]:
    """Groups of y lines small enough that one block of the volume stays around 32 MB."""
    nz, ny, nx = shape
    step = int(np.clip((8 << 20) // max(1, max(nz, rows) * nx), 1, ny))
    return [slice(y, min(y + step, ny)) for y in range(0, ny, step)]


def _image_contrast(
    projection: np.ndarray,
    angle: float,
    shift_yu: np.ndarray,
    exposure: float | None,
    config: SimulationConfig,
    workers: int,
) -> np.ndarray:
    """Noise-free image contrast of one tilt: phase -> shift -> radiation damage -> CTF.

    The CTF follows the defocus across the tilted specimen (``defocus_gradient``): images are
    made at a few defoci spanning the field and blended column by column.
    """
    ny, nu = projection.shape
    phase_per_voxel = (
        imaging.interaction_constant(config.voltage) * PROTEIN_EXCESS_POTENTIAL * VOXEL_SIZE
    )
    pad = int(min(32, ny // 2, nu // 2))
    padded = np.pad(projection * phase_per_voxel, pad, mode="reflect")
    spectrum = scipy.fft.rfft2(padded, workers=workers)
    spectrum *= imaging.shift_phase(padded.shape, (float(shift_yu[0]), float(shift_yu[1])))
    frequency_sq = imaging.frequency_grid_sq(padded.shape, VOXEL_SIZE)
    if exposure is not None:
        spectrum *= imaging.damage_attenuation(frequency_sq, exposure, config.voltage)
    defocus = config.defocus * 1e4
    column = (np.arange(padded.shape[1]) - (padded.shape[1] - 1) / 2) * VOXEL_SIZE
    slope = np.tan(np.deg2rad(angle)) if config.defocus_gradient else 0.0
    column_defocus = defocus + column * slope
    low, high = float(column_defocus.min()), float(column_defocus.max())
    count = max(1, int(np.ceil((high - low) / DEFOCUS_SAMPLING)) + 1)
    samples = np.linspace(low, high, count)
    images = [
        scipy.fft.irfft2(
            spectrum
            * imaging.ctf(
                frequency_sq,
                d,
                config.voltage,
                config.spherical_aberration,
                config.amplitude_contrast,
            ),
            s=padded.shape,
            workers=workers,
        )
        for d in samples
    ]
    if count == 1:
        contrast = images[0]
    else:
        position = np.clip((column_defocus - low) / (high - low) * (count - 1), 0, count - 1 - 1e-9)
        index = np.floor(position).astype(int)
        weight = position - index
        stack = np.stack(images)
        columns = np.arange(padded.shape[1])
        contrast = (
            stack[index, :, columns].T * (1 - weight) + stack[index + 1, :, columns].T * weight
        )
    return contrast[pad : pad + ny, pad : pad + nu].astype(np.float32)


def _mean_counts(
    config: SimulationConfig, angles: np.ndarray, signal_variance: float
) -> np.ndarray | None:
    """Mean electrons per pixel reaching the detector at each tilt, or None for no noise.

    The ice (thickness = the volume's depth) scatters electrons out of the energy-filtered beam
    with mean free path ``ice_free_path``; at tilt θ the path is 1/cos θ longer, so fewer
    electrons arrive and the relative shot noise grows.
    """
    thickness = config.shape[0] * VOXEL_SIZE
    free_path = nm_to_angstrom(config.ice_free_path)
    path = 1.0 / np.abs(np.cos(np.deg2rad(angles)))
    if config.physical_noise:
        per_tilt = config.dose / len(angles) * VOXEL_SIZE**2
        return per_tilt * np.exp(-thickness / free_path * path)
    if config.snr is None or not np.isfinite(config.snr):
        return None
    at_zero = config.snr / max(signal_variance, 1e-30)
    return at_zero * np.exp(-thickness / free_path * (path - path.min()))


def _shot_noise(contrast: np.ndarray, counts: float, rng: np.random.Generator) -> np.ndarray:
    """A noisy image (counts / mean - 1) of mean ``counts`` electrons per pixel.

    Poisson; above :data:`GAUSSIAN_COUNTS` (nearly empty volumes at a set SNR) its normal limit,
    which numpy's Poisson sampler cannot reach.
    """
    intensity = np.clip(1.0 + contrast.astype(np.float64), 0.0, None)
    if counts > GAUSSIAN_COUNTS:
        noisy = intensity + np.sqrt(intensity / counts) * rng.standard_normal(intensity.shape)
        return (noisy - 1.0).astype(np.float32)
    return (rng.poisson(counts * intensity) / counts - 1.0).astype(np.float32)


def _count_objects(config: SimulationConfig, layout: Picks | None) -> int:
    if layout is not None:
        return len(layout)
    options = config.layout_options
    return sum(options.counts(config.shape).values()) + sum(options.clutter_counts().values())


def _add_noise(
    projections: np.ndarray,
    phantom: Phantom,
    true_angles: np.ndarray,
    shifts: np.ndarray,
    exposure: list,
    config: SimulationConfig,
    chunks: list[slice],
    noise_rng: np.random.Generator,
) -> dict[str, float]:
    """Add the shot noise (white or coloured) to ``projections`` in place; return what it came to
    at zero tilt (nothing when the config asks for no noise)."""
    info: dict[str, float] = {}
    workers = _workers(config)
    nominal = config.angles
    zero = int(np.argmin(np.abs(nominal)))
    signal_variance = float(projections[zero].var())
    if phantom.reference is not None:
        scene_variance = signal_variance
        signal_variance = _reference_variance(
            phantom.reference, true_angles[zero], shifts[zero], exposure[zero], config, chunks
        )
    counts = _mean_counts(config, true_angles, signal_variance)
    if counts is None:
        return info
    clean_zero = projections[zero].copy()
    for i in range(len(nominal)):
        if config.noise_colour == "white":
            projections[i] = _shot_noise(projections[i], counts[i], noise_rng)
        else:
            noise = _shot_noise(projections[i], counts[i], noise_rng) - projections[i]
            projections[i] += imaging.colour_noise(noise, workers)
    noise_variance = float((projections[zero] - clean_zero).var())
    info["snr_at_zero_tilt"] = signal_variance / max(noise_variance, 1e-30)
    info["electrons_per_pixel_at_zero_tilt"] = float(counts[zero])
    if phantom.reference is not None:
        info["scene_snr_at_zero_tilt"] = scene_variance / max(noise_variance, 1e-30)
    return info


def _reconstruction_job(
    projections: np.ndarray,
    phantom: Phantom,
    config: SimulationConfig,
    chunks: list[slice],
    cancel: CancelToken,
    done: int,
    total: int,
) -> Generator[Progress, None, tuple[np.ndarray, Phantom]]:
    """Weight, back-project, invert and resample (as the config says) the noisy projections;
    yields ``reconstruction`` progress from step ``done`` on; returns the reconstruction and the
    phantom (resampled with it)."""
    nz, _, nx = config.shape
    nominal = config.angles
    weighted = imaging.weight_projections(
        projections,
        config.wbp_cutoff,
        config.wbp_falloff,
        _workers(config),
        config.reconstruction,
        config.sirt_iterations,
    )
    done += len(nominal)
    yield Progress(done, total, "reconstruction")
    backward = imaging.backprojection_matrix(nz, nx, nx, nominal)
    step = np.deg2rad(config.tilt_step)
    reconstruction = np.empty(config.shape, dtype=np.float32)
    for chunk in chunks:
        cancel.check()
        reconstruction[:, chunk, :] = (
            imaging.apply_xz_operator(backward, weighted, chunk, nz) * step
        )
        done += 1
        yield Progress(done, total, "reconstruction")
    if config.invert:
        np.negative(reconstruction, out=reconstruction)
    if config.voxel_size != VOXEL_SIZE:
        cancel.check()
        reconstruction, phantom = _resampled(reconstruction, phantom, config.voxel_size)
        done += 1
        yield Progress(done, total, "reconstruction")
    return reconstruction, phantom


def simulate_job(
    config: SimulationConfig | None = None,
    layout: Picks | None = None,
    cancel: CancelToken | None = None,
) -> Generator[Progress, None, SimulationResult]:
    """Simulate a tomogram; yields :class:`Progress` (messages ``phantom``, ``projections``,
    ``reconstruction``) and returns a :class:`SimulationResult`.

    Deterministic for a given ``config.seed``: the layout, the acquisition errors and the noise
    come from separate random streams, so changing e.g. ``snr`` changes only the noise.
    ``layout`` (see :func:`~.phantom.read_layout`) fixes the objects instead of drawing them.
    """
    config = config or SimulationConfig()
    cancel = cancel or CancelToken()
    workers = _workers(config)
    # spawn(4) starts with the same three streams as spawn(3): the clutter's is an addition
    layout_rng, geometry_rng, noise_rng, clutter_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(4)
    )
    nz, ny, nx = config.shape
    nominal = config.angles
    n_tilts = len(nominal)
    chunks = _y_chunks(config.shape, n_tilts)
    n_objects = _count_objects(config, layout)
    resample = config.voxel_size != VOXEL_SIZE
    total = n_objects + 2 * len(chunks) + 2 * n_tilts + int(resample)
    info: dict[str, float] = {}

    start = time.perf_counter()
    phantom_steps = phantom_job(
        config.shape, layout_rng, layout, config.layout_options, cancel, clutter_rng
    )
    while True:
        try:
            report = next(phantom_steps)
        except StopIteration as stop:
            phantom: Phantom = stop.value
            break
        yield Progress(min(report.step, n_objects), total, "phantom")
    info.update(phantom.info)
    info["seconds_phantom"] = time.perf_counter() - start
    done = n_objects

    start = time.perf_counter()
    true_angles = nominal + geometry_rng.normal(0.0, config.tilt_error, n_tilts)
    shifts = geometry_rng.normal(0.0, config.misalignment, (n_tilts, 2))
    forward = imaging.projection_matrix(nz, nx, nx, true_angles)
    projections = np.empty((n_tilts, ny, nx), dtype=np.float32)
    for chunk in chunks:
        cancel.check()
        projections[:, chunk, :] = imaging.apply_xz_operator(
            forward, phantom.density, chunk, n_tilts
        )
        done += 1
        yield Progress(done, total, "projections")
    del forward
    exposure = (
        imaging.dose_symmetric_exposure(nominal, config.dose)
        if config.radiation_damage
        else [None] * n_tilts
    )
    for i in range(n_tilts):
        cancel.check()
        projections[i] = _image_contrast(
            projections[i], true_angles[i], shifts[i], exposure[i], config, workers
        )
        done += 1
        yield Progress(done, total, "projections")
    info.update(
        _add_noise(projections, phantom, true_angles, shifts, exposure, config, chunks, noise_rng)
    )
    info["seconds_projections"] = time.perf_counter() - start

    start = time.perf_counter()
    reconstruction, phantom = yield from _reconstruction_job(
        projections, phantom, config, chunks, cancel, done, total
    )
    info["seconds_reconstruction"] = time.perf_counter() - start
    return SimulationResult(
        reconstruction,
        phantom,
        projections,
        nominal,
        true_angles,
        shifts,
        config,
        info,
        config.voxel_size,
    )


def _reference_variance(
    reference: np.ndarray,
    angle: float,
    shift_yu: np.ndarray,
    exposure: float | None,
    config: SimulationConfig,
    chunks: list[slice],
) -> float:
    """Variance of the noise-free image of ``reference`` at one tilt (what ``snr`` refers to)."""
    nz, ny, nx = reference.shape
    forward = imaging.projection_matrix(nz, nx, nx, np.array([angle]))
    image = np.empty((1, ny, nx), dtype=np.float32)
    for chunk in chunks:
        image[:, chunk, :] = imaging.apply_xz_operator(forward, reference, chunk, 1)
    contrast = _image_contrast(image[0], angle, shift_yu, exposure, config, _workers(config))
    return float(contrast.var())


def resample(
    volume: np.ndarray, voxel_size: float, new_voxel_size: float, order: int
) -> np.ndarray:
    """A (z, y, x) volume resampled from ``voxel_size`` to ``new_voxel_size`` Å.

    Voxel ``i`` of the result sits at ``i * new_voxel_size`` Å from the first voxel's centre,
    as in :meth:`Picks.rescaled`, so rescaled coordinates land on the same structure.
    (``scipy.ndimage.zoom`` maps the corner voxels onto each other instead, which changes the
    scale slightly.) ``order`` 1 for densities, 0 (nearest neighbour) for labels.
    """
    step = rescale_voxels(1.0, new_voxel_size, voxel_size)
    shape = tuple(
        int(np.floor(rescale_voxels(n - 1, voxel_size, new_voxel_size) + 1e-6)) + 1
        for n in volume.shape
    )
    return ndimage.affine_transform(
        volume, np.full(3, step), output_shape=shape, order=order, mode="nearest"
    )


def _resampled(
    reconstruction: np.ndarray, phantom: Phantom, voxel_size: float
) -> tuple[np.ndarray, Phantom]:
    """The reconstruction and the phantom (density, masks, truth) at ``voxel_size`` Å."""
    truth = phantom.truth.rescaled(voxel_size)
    truth.features = truth.features.copy()
    truth.features["radius"] = rescale_voxels(
        truth.features["radius"].to_numpy(dtype=float), VOXEL_SIZE, voxel_size
    )
    resampled = Phantom(
        resample(phantom.density, VOXEL_SIZE, voxel_size, 1),
        resample(phantom.occupancy, VOXEL_SIZE, voxel_size, 0),
        resample(phantom.class_mask, VOXEL_SIZE, voxel_size, 0),
        truth,
        phantom.info,
    )
    return resample(reconstruction, VOXEL_SIZE, voxel_size, 1), resampled


def simulate(
    config: SimulationConfig | None = None, layout: Picks | None = None
) -> SimulationResult:
    """Run :func:`simulate_job` to the end."""
    return run_job(simulate_job(config, layout))


def check_output_folder(folder: str | Path, overwrite: bool) -> Path:
    """Refuse a folder that exists with files in it unless ``overwrite``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CryoetInputError(folder, "exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise CryoetInputError(
            folder,
            "exists and is not empty; pass overwrite=True (CLI: --overwrite) to write into it",
        )
    return folder


def write_dataset(
    result: SimulationResult, folder: str | Path, overwrite: bool = False, projections: bool = True
) -> Path:
    """Write a SHREC-2021-style folder; returns it.

    Files: ``reconstruction.mrc``, ``grandmodel.mrc`` (noise-free phantom), ``occupancy_mask.mrc``
    (value = 1-based line of ``particle_locations.txt``), ``class_mask.mrc`` (numbers in
    ``class_names.txt``), ``particle_locations.txt``, ``tilt_angles.tlt``, ``projections.mrc``
    (the noisy tilt series, unless ``projections=False``) and ``simulation.json`` (parameters).
    """
    folder = check_output_folder(folder, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    size = result.voxel_size
    label = f"napari-cryoet-particles {__version__} simulate seed {result.config.seed}"
    volumes = {
        RECONSTRUCTION: result.reconstruction,
        GRAND_MODEL: result.grandmodel,
        OCCUPANCY: result.phantom.occupancy,
        CLASS_MASK: result.phantom.class_mask,
    }
    for name, data in volumes.items():
        _write_volume(folder / name, data, size, label, overwrite)
    if projections:
        _write_volume(folder / PROJECTIONS, result.tilt_series, VOXEL_SIZE, label, overwrite)
    write_shrec_locations(folder / LOCATIONS, result.truth, overwrite=overwrite)
    _write_text(folder / TILT_ANGLES, "".join(f"{a:.2f}\n" for a in result.tilt_angles), overwrite)
    _write_text(folder / CLASS_NAMES, class_names_text(), overwrite)
    record = {
        "generator": f"napari-cryoet-particles {__version__}",
        "voxel_size_angstrom": size,
        "config": result.config.to_dict(),
        "measured": {k: v for k, v in result.info.items() if not k.startswith("seconds")},
        "true_tilt_angles": [round(float(a), 4) for a in result.true_angles],
        "shifts_yx_pixels": [[round(float(v), 4) for v in row] for row in result.shifts],
    }
    _write_text(folder / PARAMETERS, json.dumps(record, indent=2) + "\n", overwrite)
    return folder


def _write_volume(
    path: Path, data: np.ndarray, voxel_size: float, label: str, overwrite: bool
) -> None:
    """:func:`write_tomogram` with a fixed header label, so the same seed gives byte-identical files."""
    write_tomogram(path, data, voxel_size, overwrite=overwrite, label=label)


def _write_text(path: Path, text: str, overwrite: bool) -> None:
    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)


def simulate_dataset_job(
    folder: str | Path,
    config: SimulationConfig | None = None,
    layout: str | Path | Picks | None = None,
    overwrite: bool = False,
    projections: bool = True,
    cancel: CancelToken | None = None,
) -> Generator[Progress, None, SimulationResult]:
    """:func:`simulate_job` then :func:`write_dataset`, as one job.

    The folder and the layout file are checked now, before the job starts, so bad input fails
    at once with a :class:`CryoetInputError`.
    """
    config = config or SimulationConfig()
    check_output_folder(folder, overwrite)
    if layout is not None and not isinstance(layout, Picks):
        layout = read_layout(layout, config.shape)
    return _simulate_and_write(folder, config, layout, overwrite, projections, cancel)


def _simulate_and_write(
    folder: str | Path,
    config: SimulationConfig,
    layout: Picks | None,
    overwrite: bool,
    projections: bool,
    cancel: CancelToken | None,
) -> Generator[Progress, None, SimulationResult]:
    result = yield from simulate_job(config, layout, cancel)
    write_dataset(result, folder, overwrite=overwrite, projections=projections)
    return result


def simulate_dataset(
    folder: str | Path,
    size: tuple[int, int, int] | None = None,
    layout: str | Path | Picks | None = None,
    overwrite: bool = False,
    projections: bool = True,
    **options: object,
) -> Path:
    """Simulate and write one SHREC-2021-style tomogram folder, reproducibly from ``seed``.

    ``size`` is (z, y, x) voxels of 10 Å; ``layout`` a SHREC ``particle_locations.txt`` (or
    :class:`Picks`) to place the objects instead of drawing them; ``options`` any other
    :class:`SimulationConfig` field (``seed``, ``snr``, ``tilt_range``, ``defocus``,
    ``n_particles`` ...). What is not given keeps :class:`SimulationConfig`'s default.
    """
    names = {f.name for f in fields(SimulationConfig)} - {"shape"}
    unknown = sorted(set(options) - names)
    if unknown:
        raise CryoetInputError(None, f"unknown simulation option(s) {', '.join(unknown)}")
    if size is not None:
        options["shape"] = tuple(size)
    config = SimulationConfig(**options)  # type: ignore[arg-type]
    run_job(simulate_dataset_job(folder, config, layout, overwrite, projections))
    return Path(folder)


__all__ = [
    "SimulationConfig",
    "SimulationResult",
    "check_output_folder",
    "simulate",
    "simulate_dataset",
    "simulate_dataset_job",
    "simulate_job",
    "write_dataset",
]

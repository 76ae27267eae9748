"""Imaging physics and tomographic reconstruction, vectorised.

Geometry: single-axis tilt about the y axis; the beam runs along z at 0°. A tilt image is
(y, u) with u the detector axis perpendicular to the tilt axis, as wide as the volume (x), so a
tilted slab wider than the detector is truncated as in a real microscope. For one tilt angle,
projecting every xz slice is the same sparse linear map, so the whole tilt series is one sparse
matrix (rays x xz-pixels) applied to the volume laid out as (z*x, y): one scipy product moves
every y line at once. Forward projection follows Joseph's method (step through the axis nearer
the beam, interpolate linearly along the other); back-projection is voxel-driven with linear
interpolation on the detector.
"""

from collections.abc import Callable

import numpy as np
import scipy.fft
import scipy.sparse as sp

#: Electron rest energy (keV).
REST_ENERGY_KEV = 510.99895


def electron_wavelength(voltage_kv: float) -> float:
    """Relativistic electron wavelength (Å) at an accelerating voltage (kV)."""
    volts = voltage_kv * 1e3
    return 12.2643247 / np.sqrt(volts * (1.0 + 0.978476e-6 * volts))


def interaction_constant(voltage_kv: float) -> float:
    """Phase shift per volt and Å of specimen (rad / (V Å)): about 6.5e-4 at 300 kV."""
    wavelength = electron_wavelength(voltage_kv)
    ratio = (REST_ENERGY_KEV + voltage_kv) / (2 * REST_ENERGY_KEV + voltage_kv)
    return 2 * np.pi / (wavelength * voltage_kv * 1e3) * ratio


def ctf(
    frequency_sq: np.ndarray,
    defocus: float,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
) -> np.ndarray:
    """Contrast transfer function at squared spatial frequencies (1/Å²); defocus in Å.

    Positive defocus is underfocus. The sign makes the first lobe negative, so an object with
    positive potential (protein) comes out darker than the solvent, as in real micrographs.
    """
    wavelength = electron_wavelength(voltage_kv)
    cs = cs_mm * 1e7
    chi = (
        np.pi * wavelength * defocus * frequency_sq
        - 0.5 * np.pi * cs * wavelength**3 * frequency_sq**2
    )
    phase = np.sqrt(1.0 - amplitude_contrast**2)
    return -(phase * np.sin(chi) + amplitude_contrast * np.cos(chi))


def tilt_angles(tilt_range: tuple[float, float], step: float) -> np.ndarray:
    """Tilt angles (degrees) from ``tilt_range[0]`` to ``tilt_range[1]`` inclusive."""
    low, high = float(tilt_range[0]), float(tilt_range[1])
    count = int(np.floor((high - low) / step + 1e-6)) + 1
    return low + step * np.arange(count)


def _linear_entries(position: np.ndarray, length: int, weight: np.ndarray):
    """Two-point linear interpolation at ``position`` on a grid of ``length``: (index, weight, valid)."""
    base = np.floor(position).astype(np.int64)
    frac = position - base
    for offset, w in ((0, 1.0 - frac), (1, frac)):
        index = base + offset
        valid = (index >= 0) & (index < length) & (w > 0)
        yield index, w * weight, valid


def projection_matrix(
    nz: int, nx: int, nu: int, angles_deg: np.ndarray, shifts_u: np.ndarray | None = None
) -> sp.csr_matrix:
    """Sparse (n_angles * nu, nz * nx) line-integral operator for xz slices (voxel units).

    Ray ``u`` at angle θ collects the points with ``(x - xc) cos θ + (z - zc) sin θ = u - uc``
    (+ ``shifts_u``, a per-angle detector shift). Joseph's method: for |θ| <= 45° step through z
    and interpolate in x (weight 1/|cos θ|), otherwise step through x and interpolate in z.
    """
    xc, zc, uc = (nx - 1) / 2, (nz - 1) / 2, (nu - 1) / 2
    shifts = np.zeros(len(angles_deg)) if shifts_u is None else np.asarray(shifts_u, dtype=float)
    rows, cols, vals = [], [], []
    u = np.arange(nu, dtype=float)
    for a, theta in enumerate(np.deg2rad(np.asarray(angles_deg, dtype=float))):
        c, s = np.cos(theta), np.sin(theta)
        ray = (u - uc - shifts[a])[None, :]
        if abs(c) >= abs(s):
            z = np.arange(nz, dtype=float)[:, None]
            x = (ray - (z - zc) * s) / c + xc
            for ix, w, ok in _linear_entries(x, nx, np.full(x.shape, 1.0 / abs(c))):
                zz = np.broadcast_to(z.astype(np.int64), x.shape)
                rows.append((a * nu + np.broadcast_to(u.astype(np.int64), x.shape))[ok])
                cols.append((zz * nx + ix)[ok])
                vals.append(w[ok])
        else:
            x = np.arange(nx, dtype=float)[:, None]
            z = (ray - (x - xc) * c) / s + zc
            for iz, w, ok in _linear_entries(z, nz, np.full(z.shape, 1.0 / abs(s))):
                xx = np.broadcast_to(x.astype(np.int64), z.shape)
                rows.append((a * nu + np.broadcast_to(u.astype(np.int64), z.shape))[ok])
                cols.append((iz * nx + xx)[ok])
                vals.append(w[ok])
    return _csr(rows, cols, vals, (len(angles_deg) * nu, nz * nx))


def backprojection_matrix(nz: int, nx: int, nu: int, angles_deg: np.ndarray) -> sp.csr_matrix:
    """Sparse (nz * nx, n_angles * nu) voxel-driven back-projector (linear interpolation in u)."""
    xc, zc, uc = (nx - 1) / 2, (nz - 1) / 2, (nu - 1) / 2
    z, x = np.meshgrid(np.arange(nz, dtype=float), np.arange(nx, dtype=float), indexing="ij")
    voxel = (np.arange(nz)[:, None] * nx + np.arange(nx)[None, :]).ravel()
    rows, cols, vals = [], [], []
    for a, theta in enumerate(np.deg2rad(np.asarray(angles_deg, dtype=float))):
        u = ((x - xc) * np.cos(theta) + (z - zc) * np.sin(theta) + uc).ravel()
        for iu, w, ok in _linear_entries(u, nu, np.ones(u.shape)):
            rows.append(voxel[ok])
            cols.append(a * nu + iu[ok])
            vals.append(w[ok])
    return _csr(rows, cols, vals, (nz * nx, len(angles_deg) * nu))


def _csr(rows: list, cols: list, vals: list, shape: tuple[int, int]) -> sp.csr_matrix:
    matrix = sp.coo_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=shape,
    ).tocsr()
    matrix.sum_duplicates()
    return matrix


def apply_xz_operator(
    matrix: sp.csr_matrix, volume_zyx: np.ndarray, y: slice, n_out: int
) -> np.ndarray:
    """Apply a per-xz-slice operator to the y lines ``y`` of a (z, y, x) volume -> (n_out, y, x_out)."""
    block = np.ascontiguousarray(volume_zyx[:, y, :].transpose(0, 2, 1), dtype=np.float32)
    nz, nx, ny = block.shape
    result = matrix @ block.reshape(nz * nx, ny)
    return result.reshape(n_out, -1, ny).transpose(0, 2, 1)


def frequency_grid_sq(shape: tuple[int, int], pixel: float) -> np.ndarray:
    """Squared spatial frequency (1/Å²) on an rfft2 grid of an image of ``shape``."""
    fy = scipy.fft.fftfreq(shape[0], d=pixel)
    fx = scipy.fft.rfftfreq(shape[1], d=pixel)
    return (fy[:, None] ** 2 + fx[None, :] ** 2).astype(np.float64)


def shift_phase(shape: tuple[int, int], shift_yu: tuple[float, float]) -> np.ndarray:
    """Fourier factor (rfft2 grid) that shifts an image by ``shift_yu`` pixels."""
    fy = scipy.fft.fftfreq(shape[0])[:, None]
    fu = scipy.fft.rfftfreq(shape[1])[None, :]
    return np.exp(-2j * np.pi * (fy * shift_yu[0] + fu * shift_yu[1]))


def ramp_filter(
    length: int, cutoff: float = 0.35, falloff: float = 0.035
) -> tuple[np.ndarray, int]:
    """R-weighting for weighted back-projection on an rfft grid, and the padded length used.

    The ramp comes from the band-limited spatial kernel (Ram-Lak: h[0] = 1/4, h[odd n] =
    -1/(πn)²), so the zero frequency is weighted correctly; above ``cutoff`` (cycles/pixel) it
    falls off as a Gaussian of width ``falloff`` (IMOD's RADIAL defaults are 0.35 0.035).
    """
    padded = int(2 ** np.ceil(np.log2(2 * length)))
    n = np.concatenate([np.arange(0, padded // 2), np.arange(-padded // 2, 0)])
    kernel = np.zeros(padded)
    kernel[0] = 0.25
    odd = n % 2 == 1
    kernel[odd] = -1.0 / (np.pi * n[odd]) ** 2
    ramp = np.abs(scipy.fft.rfft(kernel))
    frequency = scipy.fft.rfftfreq(padded)
    above = frequency > cutoff
    ramp[above] *= np.exp(-0.5 * ((frequency[above] - cutoff) / max(falloff, 1e-6)) ** 2)
    return ramp, padded


def _rolled_off_ramp(length: int, cutoff: float, falloff: float, iterations: int) -> tuple:
    return ramp_filter(length, cutoff, falloff)


def _windowed_ramp(window: Callable[[np.ndarray], np.ndarray]) -> Callable[..., tuple]:
    """A ramp apodised by ``window(frequency)`` (cycles/pixel) instead of IMOD's roll-off."""

    def weights(length: int, cutoff: float, falloff: float, iterations: int) -> tuple:
        ramp, padded = ramp_filter(length, 1.0, 0.0)
        return ramp * window(scipy.fft.rfftfreq(padded)), padded

    return weights


def _sirt_like(length: int, cutoff: float, falloff: float, iterations: int) -> tuple:
    """Zeng's SIRT-like weighting: the rolled-off ramp times ``1 - (1 - α/n)^N``.

    G. L. Zeng (2012), "A filtered backprojection algorithm with characteristics of the
    iterative Landweber algorithm", Med. Phys. 39, 603-607: N Landweber (SIRT) iterations from
    zero equal a back-projection of projections filtered by this window, where ``n`` is the
    frequency in cycles per detector width and ``α`` the relaxation (1 here). It keeps the ramp
    below about N cycles per width and flattens it above (SIRT's smooth look). IMOD's ``tilt
    -FakeSIRTiterations`` and tomo3d offer filters of this kind; this one is not calibrated
    against either.
    """
    ramp, padded = ramp_filter(length, cutoff, falloff)
    cycles = scipy.fft.rfftfreq(padded) * length
    with np.errstate(divide="ignore"):
        step = np.minimum(1.0 / cycles, 1.0)
    return ramp * (1.0 - (1.0 - step) ** iterations), padded


#: Weightings for the back-projection, by name: ``weights(length, cutoff, falloff, iterations)``
#: returns the weights on an rfft grid and its padded length. ``wbp`` is IMOD's R-weighting
#: (ramp, Gaussian roll-off above ``cutoff``); ``wbp-hamming`` and ``wbp-shepp-logan`` apodise
#: the ramp by the Hamming window (0.54 + 0.46 cos 2πf) and by sinc(f) as in the usual filtered
#: back-projection codes; ``sirt-like`` mimics ``iterations`` SIRT iterations (Zeng 2012).
RECONSTRUCTION_FILTERS: dict[str, Callable[..., tuple]] = {
    "wbp": _rolled_off_ramp,
    "wbp-hamming": _windowed_ramp(lambda f: 0.54 + 0.46 * np.cos(2 * np.pi * f)),
    "wbp-shepp-logan": _windowed_ramp(np.sinc),
    "sirt-like": _sirt_like,
}


def weight_projections(
    images: np.ndarray,
    cutoff: float,
    falloff: float,
    workers: int,
    method: str = "wbp",
    iterations: int = 1,
) -> np.ndarray:
    """Apply a weighting of :data:`RECONSTRUCTION_FILTERS` along u to (n, y, u) tilt images
    (zero-padded, no wrap-around)."""
    ramp, padded = RECONSTRUCTION_FILTERS[method](images.shape[-1], cutoff, falloff, iterations)
    spectrum = scipy.fft.rfft(images, n=padded, axis=-1, workers=workers)
    spectrum *= ramp.astype(np.float32)
    return scipy.fft.irfft(spectrum, n=padded, axis=-1, workers=workers)[
        ..., : images.shape[-1]
    ].astype(np.float32)


def dose_symmetric_exposure(angles_deg: np.ndarray, total_dose: float) -> np.ndarray:
    """Exposure (e/Å²) each tilt has had by the middle of its own exposure.

    Dose-symmetric order (Hagen et al. 2017, groups of one): 0°, then increasing |θ|, the
    positive side first; every tilt gets the same share of ``total_dose``.
    """
    angles = np.asarray(angles_deg, dtype=float)
    order = np.lexsort((-angles, np.round(np.abs(angles), 6)))
    rank = np.empty(len(angles))
    rank[order] = np.arange(len(angles))
    return (rank + 0.5) * total_dose / len(angles)


def damage_attenuation(
    frequency_sq: np.ndarray, exposure: float, voltage_kv: float = 300.0
) -> np.ndarray:
    """Fading of the signal's amplitude by radiation damage after ``exposure`` e/Å².

    Grant & Grigorieff (2015): critical exposure ``0.245 k^-1.665 + 2.81`` e/Å² at 300 kV (k in
    1/Å; 80 % of that at 200 kV and below); amplitude ``exp(-N / (2 N_e))``.
    """
    with np.errstate(divide="ignore"):
        critical = 0.245 * np.power(frequency_sq, -1.665 / 2) + 2.81
    if voltage_kv <= 200:
        critical *= 0.8
    return np.exp(-exposure / (2.0 * critical))


#: Coloured noise: white below this frequency (cycles/pixel), power falling as 1/f² above.
NOISE_KNEE = 0.05


def colour_noise(noise: np.ndarray, workers: int = 1) -> np.ndarray:
    """White noise (y, u) shaped to a power spectrum ``1 / (1 + f / NOISE_KNEE)²``, rescaled to
    its own variance: low-frequency noise, as a detector's MTF and the ice's structure give."""
    spectrum = scipy.fft.rfft2(noise, workers=workers)
    frequency = np.sqrt(frequency_grid_sq(noise.shape, 1.0))
    spectrum *= 1.0 / (1.0 + frequency / NOISE_KNEE)
    shaped = scipy.fft.irfft2(spectrum, s=noise.shape, workers=workers)
    shaped *= np.sqrt(float(noise.var()) / max(float(shaped.var()), 1e-30))
    return shaped.astype(np.float32)

"""What a simulation is asked for: :class:`SimulationConfig`, checked when it is made."""

from dataclasses import dataclass, fields

import numpy as np

from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.simulate import imaging
from napari_cryoet_particles.simulate.phantom import LayoutOptions
from napari_cryoet_particles.simulate.structures import (
    PROTEIN_CLASSES,
    VOXEL_SIZE,
    canonical_class,
)

NOISE_COLOURS = ("white", "coloured")
#: Voxel sizes (Å) the 10 Å simulation may be resampled to.
VOXEL_SIZE_RANGE = (5.0, 20.0)


@dataclass(frozen=True)
class SimulationConfig:
    """Every parameter of a simulation; the defaults give a realistic, hard tomogram.

    Lengths are voxels (1 voxel = 10 Å) unless the name says otherwise; ``defocus`` is µm of
    underfocus, ``ice_free_path`` nm. ``snr`` is the per-projection signal-to-noise ratio at 0°
    tilt (variance of the noise-free image over variance of the noise); the shot noise grows at
    higher tilt with the path through the ice. ``snr=None`` (or infinite) gives noise-free
    images. ``dose`` (e/Å² over the whole series, dose-symmetric order) sets the radiation
    damage and, with ``physical_noise=True``, the shot noise itself instead of ``snr``.

    Clutter (``n_membranes``, ``n_actin``, ``n_microtubules``, ``n_ice``, ``carbon_edge``; see
    ``clutter.py``) does not count in the signal ``snr`` refers to, so adding it leaves the
    noise as it was. ``remove_proteins`` draws the scene with its proteins and takes them out
    after (the noise level included): a protein-free control of the same scene. ``crowding``
    multiplies the default number of proteins.

    Held-out conditions: ``reconstruction`` picks a weighting of
    :data:`~.imaging.RECONSTRUCTION_FILTERS` (``sirt_iterations`` for ``sirt-like``);
    ``noise_colour="coloured"`` shapes each image's noise (same variance, see
    :func:`~.imaging.colour_noise`); ``voxel_size`` (Å) resamples the 10 Å result (truth and
    masks too); ``invert`` writes protein brighter than the solvent.
    """

    shape: tuple[int, int, int] = (200, 512, 512)
    seed: int = 0
    classes: tuple[str, ...] = PROTEIN_CLASSES
    n_particles: int | None = None
    n_vesicles: int | None = None
    n_fiducials: int | None = None
    vesicle_radius: tuple[float, float] = (12.0, 25.0)
    fiducial_radius: float = 5.0
    tilt_range: tuple[float, float] = (-60.0, 60.0)
    tilt_step: float = 2.0
    defocus: float = 3.0
    defocus_gradient: bool = True
    voltage: float = 300.0
    spherical_aberration: float = 2.7
    amplitude_contrast: float = 0.07
    snr: float | None = 0.1
    dose: float = 120.0
    physical_noise: bool = False
    radiation_damage: bool = True
    ice_free_path: float = 350.0
    misalignment: float = 0.5
    tilt_error: float = 0.2
    wbp_cutoff: float = 0.35
    wbp_falloff: float = 0.035
    threads: int | None = None
    crowding: float = 1.0
    n_membranes: int = 0
    n_actin: int = 0
    n_microtubules: int = 0
    n_ice: int = 0
    carbon_edge: bool = False
    remove_proteins: bool = False
    reconstruction: str = "wbp"
    sirt_iterations: int = 20
    noise_colour: str = "white"
    voxel_size: float = VOXEL_SIZE
    invert: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "tilt_range", tuple(float(a) for a in self.tilt_range))
        object.__setattr__(self, "vesicle_radius", tuple(float(r) for r in self.vesicle_radius))
        self._check()

    def _check(self) -> None:
        problems = []
        if len(self.shape) != 3 or min(self.shape) < 8:
            problems.append(
                f"size must be three numbers (z y x) of at least 8 voxels, got {self.shape}"
            )
        low, high = self.tilt_range
        if not -90 < low < high < 90:
            problems.append(
                f"tilt range must satisfy -90 < min < max < 90 degrees, got {low:g}..{high:g}"
            )
        elif not 0 < self.tilt_step <= high - low:
            problems.append(
                f"tilt step must be positive and at most the tilt range, got {self.tilt_step:g}"
            )
        if self.snr is not None and not self.snr > 0:
            problems.append(f"snr must be positive (or None for no noise), got {self.snr:g}")
        if not self.dose > 0:
            problems.append(f"dose must be positive (e/Å²), got {self.dose:g}")
        if not 0 <= self.amplitude_contrast < 1:
            problems.append(
                f"amplitude contrast must be in [0, 1), got {self.amplitude_contrast:g}"
            )
        if self.voltage <= 0 or self.ice_free_path <= 0:
            problems.append("voltage and ice free path must be positive")
        if self.misalignment < 0 or self.tilt_error < 0:
            problems.append("misalignment and tilt error must be >= 0")
        if not 0 < self.vesicle_radius[0] <= self.vesicle_radius[1]:
            problems.append(
                f"vesicle radius range must be positive and ordered, got {self.vesicle_radius}"
            )
        if any(
            n is not None and n < 0 for n in (self.n_particles, self.n_vesicles, self.n_fiducials)
        ):
            problems.append("particle, vesicle and fiducial counts must be >= 0")
        if min(self.n_membranes, self.n_actin, self.n_microtubules, self.n_ice) < 0:
            problems.append("membrane, actin, microtubule and ice counts must be >= 0")
        if not self.crowding >= 0:
            problems.append(f"crowding must be >= 0, got {self.crowding:g}")
        if self.reconstruction not in imaging.RECONSTRUCTION_FILTERS:
            known = ", ".join(imaging.RECONSTRUCTION_FILTERS)
            problems.append(f"reconstruction must be one of {known}, got {self.reconstruction!r}")
        if self.sirt_iterations < 1:
            problems.append(f"sirt iterations must be >= 1, got {self.sirt_iterations}")
        if self.noise_colour not in NOISE_COLOURS:
            problems.append(
                f"noise colour must be one of {', '.join(NOISE_COLOURS)}, got {self.noise_colour!r}"
            )
        low, high = VOXEL_SIZE_RANGE
        if not low <= self.voxel_size <= high:
            problems.append(f"voxel size must be {low:g}-{high:g} Å, got {self.voxel_size:g}")
        if problems:
            raise CryoetInputError(None, "; ".join(problems))
        if not self.classes or not set(map(canonical_class, self.classes)) <= set(PROTEIN_CLASSES):
            raise CryoetInputError(
                None,
                f"classes must be one or more of {', '.join(PROTEIN_CLASSES)}, got {self.classes}",
            )

    @property
    def layout_options(self) -> LayoutOptions:
        return LayoutOptions(
            classes=self.classes,
            n_particles=self.n_particles,
            n_vesicles=self.n_vesicles,
            n_fiducials=self.n_fiducials,
            vesicle_radius=self.vesicle_radius,
            fiducial_radius=self.fiducial_radius,
            crowding=self.crowding,
            n_membranes=self.n_membranes,
            n_actin=self.n_actin,
            n_microtubules=self.n_microtubules,
            n_ice=self.n_ice,
            carbon_edge=self.carbon_edge,
            remove_proteins=self.remove_proteins,
        )

    @property
    def angles(self) -> np.ndarray:
        return imaging.tilt_angles(self.tilt_range, self.tilt_step)

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value

"""Named families of simulation conditions: one to tune on, the others held out.

A family is a set of :class:`~.simulator.SimulationConfig` overrides. ``tuning`` is the
simulator's defaults (SNR 0.1, ±60° every 2°, 3 µm underfocus, WBP with IMOD's R-weighting,
10 Å voxels, white noise, protein dark, no clutter); each held-out family changes one or two
things, so a method tuned on ``tuning`` can be tested on conditions it never saw, and the
``cellular`` pair tests whether a picker finds particles or merely dense things. Benchmarks and
the CLI (``cryoet-particles simulate --family NAME``) iterate over :data:`FAMILIES`.
"""

from dataclasses import dataclass, field

from napari_cryoet_particles.io.errors import CryoetInputError
from napari_cryoet_particles.simulate.phantom import SHREC_SHAPE
from napari_cryoet_particles.simulate.simulator import SimulationConfig

#: Counts of clutter, vesicles and fiducials given by a family are per field of view of this
#: many voxels (y, x), and scale with the area of the simulated one.
CLUTTER_FIELD = SHREC_SHAPE[1:]
CLUTTER_COUNTS = ("n_membranes", "n_actin", "n_microtubules", "n_ice", "n_vesicles", "n_fiducials")


@dataclass(frozen=True)
class SimulationFamily:
    """A named set of :class:`SimulationConfig` overrides (object counts per 512 x 512)."""

    name: str
    description: str
    overrides: dict = field(default_factory=dict)


#: SHREC 2021's vesicles and gold (5 and 10 per 512 x 512 x 200, as the defaults), given
#: explicitly so that small volumes keep at least one of each.
_CELLULAR = {
    "n_membranes": 4,
    "n_actin": 16,
    "n_microtubules": 3,
    "n_ice": 2,
    "n_vesicles": 5,
    "n_fiducials": 10,
}

FAMILIES: dict[str, SimulationFamily] = {
    family.name: family
    for family in (
        SimulationFamily(
            "tuning",
            "the defaults: SNR 0.1, ±60°/2°, 3 µm, WBP, 10 Å, white noise, protein dark",
        ),
        SimulationFamily("low-snr", "half the SNR (0.05)", {"snr": 0.05}),
        SimulationFamily("high-snr", "twice the SNR (0.2)", {"snr": 0.2}),
        SimulationFamily("defocus-5um", "5 µm underfocus", {"defocus": 5.0}),
        SimulationFamily(
            "tilt-45-3deg",
            "±45° every 3° (larger missing wedge, fewer images)",
            {"tilt_range": (-45.0, 45.0), "tilt_step": 3.0},
        ),
        SimulationFamily("tilt-60-4deg", "±60° every 4° (half the images)", {"tilt_step": 4.0}),
        SimulationFamily(
            "sirt-like",
            "SIRT-like weighting (Zeng 2012) mimicking 20 iterations instead of WBP",
            {"reconstruction": "sirt-like", "sirt_iterations": 20},
        ),
        SimulationFamily(
            "wbp-hamming", "WBP with a Hamming-apodised ramp", {"reconstruction": "wbp-hamming"}
        ),
        SimulationFamily(
            "coloured-noise",
            "low-frequency (1/f² above 0.05 cycles/pixel) noise of the same variance",
            {"noise_colour": "coloured"},
        ),
        SimulationFamily(
            "dose-physical",
            "shot noise from 120 e/Å² over the series instead of a set SNR (0.03 at 512² x 200)",
            {"physical_noise": True},
        ),
        SimulationFamily("voxel-7A", "resampled to 7 Å voxels", {"voxel_size": 7.0}),
        SimulationFamily("voxel-14A", "resampled to 14 Å voxels", {"voxel_size": 14.0}),
        SimulationFamily("crowded", "twice SHREC 2021's crowding of proteins", {"crowding": 2.0}),
        SimulationFamily("sparse", "a quarter of SHREC 2021's crowding", {"crowding": 0.25}),
        SimulationFamily("inverted", "protein brighter than the solvent", {"invert": True}),
        SimulationFamily(
            "cellular",
            "the tuning scene among membranes, actin, microtubules and ice contamination "
            "(vesicles and gold as always); the noise is set without the clutter",
            dict(_CELLULAR),
        ),
        SimulationFamily(
            "cellular-no-protein",
            "control: the cellular scene with its proteins taken out (same clutter, same noise)",
            {**_CELLULAR, "remove_proteins": True},
        ),
    )
}


def family_config(
    name: str, seed: int = 0, shape: tuple[int, int, int] = SHREC_SHAPE, **options: object
) -> SimulationConfig:
    """The :class:`SimulationConfig` of family ``name`` for a volume of ``shape`` (z y x).

    Counts a family gives (clutter; vesicles and gold in the cellular ones) scale with the field
    of view, at least one of each; other counts follow the crowding as usual. ``options`` (e.g.
    ``threads``) are added on top.
    """
    if name not in FAMILIES:
        raise CryoetInputError(
            None, f"unknown simulation family {name!r} (known: {', '.join(FAMILIES)})"
        )
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3:
        raise CryoetInputError(None, f"volume size must be three numbers (z y x), got {shape}")
    overrides = dict(FAMILIES[name].overrides)
    area = shape[1] * shape[2] / (CLUTTER_FIELD[0] * CLUTTER_FIELD[1])
    for key in CLUTTER_COUNTS:
        if overrides.get(key):
            overrides[key] = max(1, round(overrides[key] * area))
    return SimulationConfig(shape=shape, seed=seed, **{**overrides, **options})

"""Synthetic tomograms with exact ground truth, from real protein density maps.

:func:`simulate_dataset` writes a SHREC-2021-style folder reproducibly from a seed;
:data:`FAMILIES` names condition families (one to tune on, the others held out, cellular
clutter among them) and :func:`family_config` gives a family's configuration;
:func:`simulate_job` is the generator behind it (progress, cancel); :func:`make_sample_dataset`
is napari's sample. See ``docs/simulation.md`` for the model and its defaults.
"""

from napari_cryoet_particles.simulate.families import (
    FAMILIES,
    SimulationFamily,
    family_config,
)
from napari_cryoet_particles.simulate.phantom import (
    SHREC2021_LAYOUT,
    LayoutOptions,
    Phantom,
    read_layout,
)
from napari_cryoet_particles.simulate.sample import (
    SimulatedTomogram,
    make_sample_dataset,
    sample_dataset_job,
)
from napari_cryoet_particles.simulate.simulator import (
    SimulationConfig,
    SimulationResult,
    simulate,
    simulate_dataset,
    simulate_dataset_job,
    simulate_job,
    write_dataset,
)
from napari_cryoet_particles.simulate.structures import (
    ALL_CLASSES,
    CLUTTER_CLASSES,
    NON_PROTEIN_CLASSES,
    SHREC_CLASSES,
    class_index,
    load_structures,
)

__all__ = [
    "ALL_CLASSES",
    "CLUTTER_CLASSES",
    "FAMILIES",
    "NON_PROTEIN_CLASSES",
    "SHREC2021_LAYOUT",
    "SHREC_CLASSES",
    "LayoutOptions",
    "Phantom",
    "SimulatedTomogram",
    "SimulationConfig",
    "SimulationFamily",
    "SimulationResult",
    "class_index",
    "family_config",
    "load_structures",
    "make_sample_dataset",
    "read_layout",
    "sample_dataset_job",
    "simulate",
    "simulate_dataset",
    "simulate_dataset_job",
    "simulate_job",
    "write_dataset",
]

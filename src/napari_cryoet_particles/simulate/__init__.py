"""Synthetic tomograms with exact ground truth."""

from napari_cryoet_particles.simulate.sample import SimulatedTomogram, make_sample_dataset

__all__ = ["SimulatedTomogram", "make_sample_dataset"]

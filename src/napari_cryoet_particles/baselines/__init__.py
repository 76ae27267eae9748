"""Classical and original-method baselines the benchmark compares our detection with.

- :func:`detect_dog`: difference-of-Gaussians blob picker, its parameters tuned on validation
  simulations (:mod:`.dog`);
- :mod:`.slices2d`: the original 2D method (slices, 2D ResNet + NT-Xent, k-means on crops).
"""

from napari_cryoet_particles.baselines.dog import detect_dog

__all__ = ["detect_dog"]

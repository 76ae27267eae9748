"""3D contrastive model: encoder, augmentations, losses, training, checkpoints."""

from napari_cryoet_particles.model.checkpoint import (
    LoadedModel,
    default_model_path,
    load_checkpoint,
    load_default_model,
    save_checkpoint,
)
from napari_cryoet_particles.model.config import DEFAULT_WORKING_VOXEL_SIZE, ModelConfig
from napari_cryoet_particles.model.device import available_devices, configure_threads, select_device
from napari_cryoet_particles.model.encoder import DenseEncoder, EncoderConfig
from napari_cryoet_particles.model.normalize import NormStats, normalize, robust_stats

__all__ = [
    "DEFAULT_WORKING_VOXEL_SIZE",
    "DenseEncoder",
    "EncoderConfig",
    "LoadedModel",
    "ModelConfig",
    "NormStats",
    "available_devices",
    "configure_threads",
    "default_model_path",
    "load_checkpoint",
    "load_default_model",
    "normalize",
    "robust_stats",
    "save_checkpoint",
    "select_device",
]

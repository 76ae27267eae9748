"""3D contrastive model: encoder, augmentations, losses, training, checkpoints."""

"""Model configuration stored with every checkpoint."""

from dataclasses import dataclass, field

from napari_cryoet_particles.model.encoder import EncoderConfig
from napari_cryoet_particles.model.normalize import NORMALIZATION_INFO

#: Voxel size (Å) the shipped model works at: SHREC 2021's 1 nm voxels.
DEFAULT_WORKING_VOXEL_SIZE = 10.0


@dataclass
class ModelConfig:
    """What inference needs to use an encoder correctly.

    ``working_voxel_size`` (Å): tomograms are resampled to this voxel size before the encoder
    sees them. ``normalization``: how the input was normalised (see
    :mod:`napari_cryoet_particles.model.normalize`). ``training``: the full training config, kept
    for the record and for resuming.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    working_voxel_size: float = DEFAULT_WORKING_VOXEL_SIZE
    normalization: dict = field(default_factory=lambda: dict(NORMALIZATION_INFO))
    training: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "encoder": self.encoder.to_dict(),
            "working_voxel_size": float(self.working_voxel_size),
            "normalization": dict(self.normalization),
            "training": dict(self.training),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        missing = {"encoder", "working_voxel_size", "normalization"} - set(data)
        if missing:
            raise ValueError(f"config lacks {sorted(missing)}")
        return cls(
            encoder=EncoderConfig.from_dict(dict(data["encoder"])),
            working_voxel_size=float(data["working_voxel_size"]),
            normalization=dict(data["normalization"]),
            training=dict(data.get("training", {})),
        )

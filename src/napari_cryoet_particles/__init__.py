"""Label-free particle picking in cryo-electron tomograms (napari plugin and CLI)."""

__version__ = "0.1.0"

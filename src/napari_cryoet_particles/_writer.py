"""npe2 writer: a Points layer to picks CSV, RELION 4 STAR or copick JSON.

napari's File > Save Layers dialog has already asked before overwriting, so the file is replaced
(atomically, through :func:`napari_cryoet_particles.io.write_picks`). The points written are the
ones the layer shows (picks below the score threshold are left out); coordinates are the layer
data (zyx voxels), the voxel size comes from the layer's metadata or scale.
"""

from typing import Any

import numpy as np

from napari_cryoet_particles._widgets._layers import picks_from_points
from napari_cryoet_particles.io import CryoetInputError, write_picks

WRITABLE_SUFFIXES = (".csv", ".star", ".json")


def write_points(path: str, data: Any, attributes: dict) -> list[str]:
    """Write one Points layer; returns the written path (empty list if nothing was written)."""
    shown = attributes.get("shown")
    mask = None if shown is None or len(shown) != len(data) else np.asarray(shown, dtype=bool)
    picks = picks_from_points(
        data, attributes.get("features"), attributes.get("scale"), attributes.get("metadata"), mask
    )
    if not picks.tomogram:
        picks.tomogram = str(attributes.get("name") or "")
    try:
        written = write_picks(path, picks, overwrite=True)
    except CryoetInputError as error:
        from napari.utils.notifications import show_error

        show_error(str(error))
        return []
    return [str(written)]

"""npe2 writer: a Points layer to any picks format of the registry (CSV, RELION 4 STAR, copick
JSON, SHREC txt), chosen by the file's suffix.

napari's File > Save Layers dialog has already asked before overwriting, so the file is replaced
(atomically, through :func:`napari_cryoet_particles.io.picks.write_picks`). The points
written are the ones the layer shows (picks below the score threshold are left out); coordinates
are the layer data (zyx voxels), the voxel size comes from the layer's metadata or scale.
"""

from typing import Any

import numpy as np

from napari_cryoet_particles._layers import picks_from_points
from napari_cryoet_particles.io import CryoetInputError
from napari_cryoet_particles.io.picks import picks_suffixes, write_picks

WRITABLE_SUFFIXES = picks_suffixes()


def write_points(path: str, data: Any, attributes: dict) -> list[str]:
    """Write one Points layer; returns the written path (empty list if nothing was written)."""
    shown = attributes.get("shown")
    mask = None if shown is None or len(shown) != len(data) else np.asarray(shown, dtype=bool)
    metadata = attributes.get("metadata") or {}
    picks = picks_from_points(
        data, attributes.get("features"), attributes.get("scale"), metadata, mask
    )
    if not picks.tomogram:
        picks.tomogram = str(attributes.get("name") or "")
    shape = metadata.get("tomogram_shape")
    try:
        written = write_picks(
            path,
            picks,
            overwrite=True,
            shape_zyx=None if shape is None else tuple(int(s) for s in shape),
        )
    except CryoetInputError as error:
        from napari.utils.notifications import show_error

        show_error(str(error))
        return []
    return [str(written)]

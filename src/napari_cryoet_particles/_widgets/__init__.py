"""napari dock widgets (the only place, with the npe2 adapters, that imports Qt or napari)."""

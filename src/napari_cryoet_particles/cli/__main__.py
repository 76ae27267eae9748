"""``python -m napari_cryoet_particles.cli``: the ``cryoet-particles`` command."""

import sys

from napari_cryoet_particles.cli import main

sys.exit(main())

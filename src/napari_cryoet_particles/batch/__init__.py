"""Detection over many tomograms: orchestration around :mod:`napari_cryoet_particles.detect`.

:mod:`.run` runs one detection task per tomogram on a Dask cluster and writes the summary;
:mod:`.manifest` records what each task ran and wrote, so a batch resumes where it stopped.
"""

from napari_cryoet_particles.batch.manifest import MANIFEST_NAME, read_manifest
from napari_cryoet_particles.batch.run import SUMMARY_NAME, BatchItem, batch_detect_job

__all__ = ["MANIFEST_NAME", "SUMMARY_NAME", "BatchItem", "batch_detect_job", "read_manifest"]

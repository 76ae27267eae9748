"""The manifest of a batch: what was run on which input, with which model and settings, and what
it wrote, so a second run of the same batch (``--resume``) skips the tomograms already done.

``OUT_DIR/batch_manifest.json``::

    {"format": "napari-cryoet-particles/batch-manifest", "format_version": 1,
     "package_version": "...", "model": {"path": ..., "sha256": ...},
     "parameters": {DetectionConfig fields that change the picks, with its params},
     "suffix": ".csv",
     "tomograms": {"/abs/path/a.mrc": {"size", "mtime_ns", "sha256", "picks_file",
                   "picks_sha256", "n_picks", "seconds", "finished", "warnings"}}}

A folder store (an OME-Zarr tomogram, e.g. of a copick run) counts as one input: its size is the
sum of its files', its modification time the newest, its checksum over names and contents.

An entry is written only once its picks file is complete, so the manifest never lists a
tomogram whose output is missing or partial. A tomogram is skipped on resume when its entry
matches: same model checksum, same parameters and format, an input with the same checksum
(size and modification time equal: the stored checksum is trusted, else the file is hashed
again) and a picks file that still has the recorded checksum.
"""

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from napari_cryoet_particles import __version__
from napari_cryoet_particles.detect.config import DetectionConfig
from napari_cryoet_particles.io.atomic import atomic_write
from napari_cryoet_particles.io.errors import CryoetInputError

MANIFEST_NAME = "batch_manifest.json"
FORMAT_TAG = "napari-cryoet-particles/batch-manifest"
FORMAT_VERSION = 1
#: Settings that do not change the picks (where and how fast they are computed, what else is kept).
NOT_PARAMETERS = ("device", "threads", "keep_score_map", "learned_features")
HASH_CHUNK = 8 * 1024 * 1024


def _files(path: Path) -> list[Path]:
    """The files of an input: itself, or every file of a folder store (OME-Zarr) in name order."""
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file())


def sha256_of(path: str | Path) -> str:
    """Checksum of a file, read in chunks (a tomogram is never loaded whole); of a folder store,
    over its files' relative names and contents."""
    path = Path(path)
    digest = hashlib.sha256()
    for file in _files(path):
        if file != path:
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def size_and_mtime(path: str | Path) -> tuple[int, int]:
    """Total size and newest modification time (ns) of an input file or folder store."""
    stats = [file.stat() for file in _files(Path(path))]
    return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)


def parameters_of(config: DetectionConfig) -> dict:
    """The detection settings that decide the picks (the run's options and every tuned number of
    ``config.params``), as the plain data the manifest's JSON reads back (tuples as lists)."""
    settings = {
        key: value for key, value in dataclasses.asdict(config).items() if key not in NOT_PARAMETERS
    }
    return json.loads(json.dumps(settings))


@dataclass
class InputRecord:
    """An input file as a batch saw it: size, modification time and checksum."""

    size: int
    mtime_ns: int
    sha256: str

    @classmethod
    def of(cls, path: str | Path) -> "InputRecord":
        return cls(*size_and_mtime(path), sha256_of(path))


def new_manifest(model_path: Path, model_sha256: str, config: DetectionConfig, suffix: str) -> dict:
    return {
        "format": FORMAT_TAG,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "model": {"path": str(model_path), "sha256": model_sha256},
        "parameters": parameters_of(config),
        "suffix": suffix,
        "tomograms": {},
    }


def read_manifest(out_dir: Path) -> dict | None:
    """The manifest in ``out_dir``, None if there is none; a damaged one is a clear error."""
    path = out_dir / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CryoetInputError(path, f"batch manifest is damaged ({error}); remove it") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_TAG:
        raise CryoetInputError(path, "is not a napari-cryoet-particles batch manifest")
    if not isinstance(manifest.get("tomograms"), dict):
        raise CryoetInputError(path, "batch manifest lists no tomograms; remove it")
    return manifest


def write_manifest(out_dir: Path, manifest: dict) -> Path:
    with atomic_write(out_dir / MANIFEST_NAME, overwrite=True) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return out_dir / MANIFEST_NAME


def same_run(old: dict, new: dict) -> bool:
    """Whether two manifests describe the same model, parameters and picks format."""
    return (
        old.get("model", {}).get("sha256") == new["model"]["sha256"]
        and old.get("parameters") == new["parameters"]
        and old.get("suffix") == new["suffix"]
    )


def is_finished(entry: dict | None, tomogram: Path, picks_file: Path) -> bool:
    """Whether ``entry`` (from the manifest of the same run) still vouches for ``picks_file``."""
    if not entry or entry.get("picks_file") != str(picks_file) or not picks_file.exists():
        return False
    try:
        size, mtime_ns = size_and_mtime(tomogram)
    except OSError:
        return False
    unchanged = size == entry.get("size") and mtime_ns == entry.get("mtime_ns")
    if not unchanged and (size != entry.get("size") or sha256_of(tomogram) != entry.get("sha256")):
        return False
    return sha256_of(picks_file) == entry.get("picks_sha256")


def finished_entry(
    record: InputRecord, picks_file: Path, n_picks: int, seconds: float, warnings: list[str]
) -> dict:
    return {
        **dataclasses.asdict(record),
        "picks_file": str(picks_file),
        "picks_sha256": sha256_of(picks_file),
        "n_picks": int(n_picks),
        "seconds": round(float(seconds), 3),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "warnings": list(warnings),
    }

"""Atomic file writes: a temporary file in the target folder, renamed into place when complete."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from napari_cryoet_particles.io.errors import CryoetInputError


def check_can_write(path: str | Path, overwrite: bool) -> Path:
    """Refuse to replace an existing file unless asked to."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise CryoetInputError(
            path, "exists already; pass overwrite=True (CLI: --overwrite) to replace it"
        )
    if not path.parent.exists():
        raise CryoetInputError(path, f"folder {path.parent} does not exist")
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    A crash or exception leaves any existing file untouched and removes the temporary file.
    """
    path = check_can_write(path, overwrite)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_directory(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (a folder store
    such as OME-Zarr). A failure leaves any existing ``path`` untouched."""
    import shutil

    path = check_can_write(path, overwrite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.{tmp.name}.old")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)

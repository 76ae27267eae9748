"""Atomic file writes: a temporary file in the target folder, renamed into place when complete.

Output paths are checked before any work starts (:func:`check_output_file`,
:func:`check_output_folder`), so a run of minutes does not end on an unwritable folder.
"""

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from napari_cryoet_particles.io.errors import CryoetInputError, CryoetWriteError

#: Temporary files are named ``.<name>.<random>.part`` beside their target.
PART_SUFFIX = ".part"
#: Outputs that are folders (written by :func:`atomic_directory`), by suffix.
FOLDER_STORE_SUFFIXES = (".zarr",)


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


def _why_not_writable(folder: Path) -> str | None:
    """The reason files cannot be created in ``folder`` (by really trying), or None."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".write-check."):
            return None
    except OSError as error:
        return error.strerror or type(error).__name__


def check_writable_folder(folder: str | Path) -> Path:
    """Refuse a folder that is missing, not a folder or in which files cannot be created."""
    folder = Path(folder)
    if not folder.exists():
        raise CryoetWriteError(folder, "folder does not exist")
    if not folder.is_dir():
        raise CryoetWriteError(folder, "is not a folder")
    reason = _why_not_writable(folder)
    if reason is not None:
        raise CryoetWriteError(folder, f"cannot write in this folder ({reason})")
    return folder


def check_output_file(
    path: str | Path,
    overwrite: bool,
    suffixes: Sequence[str] | None = None,
    what: str = "output",
) -> Path:
    """Everything that can be known about writing ``path`` before the work: call it first.

    The suffix must be one of ``suffixes`` (when given), the folder must exist and be writable,
    and the file must not exist unless ``overwrite``. A folder store (``.zarr``) may be a folder.
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise CryoetInputError(
            path,
            f"unknown {what} format {path.suffix or '(no suffix)'!r} (use {', '.join(suffixes)})",
        )
    if path.is_dir() and path.suffix.lower() not in FOLDER_STORE_SUFFIXES:
        raise CryoetInputError(path, f"is a folder; give a file name for the {what}")
    check_writable_folder(path.parent if str(path.parent) else Path("."))
    return check_can_write(path, overwrite)


def check_output_folder(folder: str | Path) -> Path:
    """A folder to write into: an existing writable one, or a new one whose parent is writable.

    Nothing is created; the first existing ancestor must be writable.
    """
    folder = Path(folder)
    if folder.exists():
        return check_writable_folder(folder)
    ancestor = folder.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CryoetWriteError(folder, f"{ancestor} is not a folder")
    reason = _why_not_writable(ancestor)
    if reason is not None:
        raise CryoetWriteError(folder, f"cannot create it: {ancestor} is not writable ({reason})")
    return folder


def stale_parts(path: str | Path) -> list[Path]:
    """Temporary files of :func:`atomic_write` for ``path`` left by a killed process."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*{PART_SUFFIX}"))


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    A crash or exception leaves any existing file untouched and removes the temporary file; an
    operating-system failure (folder not writable, disk full) becomes a one-line
    :class:`CryoetWriteError`.
    """
    path = check_can_write(path, overwrite)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=PART_SUFFIX, dir=path.parent
        )
    except OSError as error:
        raise CryoetWriteError(
            path, f"cannot write in {path.parent} ({error.strerror or error})"
        ) from None
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        raise CryoetWriteError(
            path, f"writing failed, nothing was replaced ({error.strerror or error})"
        ) from None
    finally:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()


@contextmanager
def atomic_directory(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (a folder store
    such as OME-Zarr). A failure leaves any existing ``path`` untouched; an operating-system
    failure becomes a one-line :class:`CryoetWriteError` as in :func:`atomic_write`."""
    import shutil

    path = check_can_write(path, overwrite)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=PART_SUFFIX, dir=path.parent))
    except OSError as error:
        raise CryoetWriteError(
            path, f"cannot write in {path.parent} ({error.strerror or error})"
        ) from None
    os.chmod(tmp, 0o777 & ~_current_umask())
    old = None
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.{tmp.name}.old")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    except OSError as error:
        if old is not None and old.exists() and not path.exists():
            os.replace(old, path)
        raise CryoetWriteError(
            path, f"writing failed, nothing was replaced ({error.strerror or error})"
        ) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)

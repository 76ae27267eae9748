"""The one place that decides which torch device (and how many CPU threads) the package uses.

``auto`` means CUDA if available, else Apple MPS, else CPU. CPU is a first-class target: the
shipped model is sized for it.
"""

import ctypes
import os

import torch

from napari_cryoet_particles.io.errors import CryoetInputError

DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Device names that work on this machine, ``auto`` first (for a GUI dropdown)."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names.append("cuda")
        names.extend(
            f"cuda:{i}" for i in range(torch.cuda.device_count()) if torch.cuda.device_count() > 1
        )
    if _mps_available():
        names.append("mps")
    return names


def select_device(name: str | torch.device | None = "auto") -> torch.device:
    """Turn ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` / ``mps`` into a usable ``torch.device``.

    Raises :class:`CryoetInputError` for an unknown name or a device this machine does not have.
    """
    if isinstance(name, torch.device):
        name = str(name)
    text = (name or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind, _, index = text.partition(":")
    if kind not in DEVICE_NAMES or (index and not index.isdigit()) or (index and kind != "cuda"):
        raise CryoetInputError(
            None, f"unknown device '{name}'; choose one of {', '.join(available_devices())}"
        )
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise CryoetInputError(
                None,
                f"device '{name}' is not available: this torch build or machine has no CUDA GPU; "
                f"choose one of {', '.join(available_devices())}",
            )
        if index and int(index) >= torch.cuda.device_count():
            raise CryoetInputError(
                None,
                f"device '{name}' is not available: only {torch.cuda.device_count()} CUDA GPU(s)",
            )
    if kind == "mps" and not _mps_available():
        raise CryoetInputError(
            None,
            f"device '{name}' is not available (no Apple MPS backend); "
            f"choose one of {', '.join(available_devices())}",
        )
    return torch.device(text)


def default_thread_count() -> int:
    """CPU cores this process may use (respects affinity masks / container limits where visible)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count explicitly and return it.

    ``None`` means all usable cores. Call it at the start of every job, in the thread that runs
    it: torch in napari's worker threads can otherwise run much slower than from the CLI.
    """
    count = default_thread_count() if n is None else int(n)
    if count < 1:
        raise CryoetInputError(None, f"thread count must be at least 1, got {n}")
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


#: glibc ``mallopt`` parameters: freed heap top trimmed at once, blocks from 64 KiB mapped.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 64 * 1024


def return_freed_memory_promptly() -> bool:
    """Make glibc's malloc give freed memory back to the system at once; whether it applied.

    By default glibc raises its mmap threshold each time a large block is freed, so the blocks
    of tens of MB that every tile of a detection allocates come from the heap afterwards, which
    fragments and keeps freed memory resident: on a 1024×1024×500 tomogram the resident set
    grew by 300 MB over the embedding pass and peaked 450 MB higher than with a fixed
    threshold (docs/reliability.md). A fixed 64 KiB threshold and a zero trim threshold keep it
    to what is live, at no measured cost in speed. Process-wide and idempotent; does nothing
    (returns False) where the C library has no ``mallopt`` (macOS, Windows).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    applied = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    return applied and mallopt(_M_TRIM_THRESHOLD, 0) == 1

"""The project's error types for bad user input: their messages are meant to be shown as they are."""

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class CryoetInputError(ValueError):
    """A file or parameter the user gave cannot be used; the message names it and says why."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


class CryoetWriteError(CryoetInputError):
    """An output file cannot be written (folder not writable, disk full); nothing was replaced."""


def one_line(error: BaseException, limit: int = 300) -> str:
    """A library's message on one line: a multi-line one (pydantic's ``1 validation error for X /
    field / problem / For further information...``) joined by ``; `` without the link lines."""
    lines = [line.strip() for line in str(error).strip().splitlines()]
    kept = [line for line in lines if line and not line.startswith("For further information")]
    return "; ".join(kept)[:limit] or type(error).__name__


#: What a parser raises on malformed content (beyond the project's own error).
MALFORMED_CONTENT = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    UnicodeError,
    AttributeError,
)


def reader(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a file reader whose first argument is the path: whatever malformed content makes
    a parser raise becomes a one-line :class:`CryoetInputError` naming the file and ``what`` it
    was read as. The readers' own checks give the better messages; this is the net under them
    (found necessary by fuzzing, tests/reliability/test_fuzz_readers.py)."""

    def wrap(read: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(read)
        def guarded(path: str | Path, *args: Any, **kwargs: Any) -> T:
            try:
                return read(path, *args, **kwargs)
            except CryoetInputError:
                raise
            except MALFORMED_CONTENT as error:
                detail = (str(error).strip().splitlines() or [""])[0][:200]
                raise CryoetInputError(
                    path, f"cannot be read as {what} ({type(error).__name__}: {detail})"
                ) from None

        return guarded

    return wrap

"""The project's error types for bad user input: their messages are meant to be shown as they are."""

from pathlib import Path


class CryoetInputError(ValueError):
    """A file or parameter the user gave cannot be used; the message names it and says why."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


class CryoetWriteError(CryoetInputError):
    """An output file cannot be written (folder not writable, disk full); nothing was replaced."""

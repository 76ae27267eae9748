"""Long jobs as generators that yield :class:`Progress` and return their result.

The CLI drives a job with a tqdm progress bar (:func:`run_job`); the GUI drives the same
generator inside napari's ``thread_worker``, and cancels it by setting a :class:`CancelToken`
that the job checks between steps.
"""

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Progress:
    """One report from a running job: ``step`` of ``total`` done, plus any live values."""

    step: int
    total: int
    message: str = ""
    values: dict[str, float] = field(default_factory=dict)


class JobCancelled(Exception):
    """Raised inside a job when its :class:`CancelToken` was set."""


class CancelToken:
    """A flag a GUI button sets and a job checks (thread-safe)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`JobCancelled` if cancel was asked for."""
        if self._event.is_set():
            raise JobCancelled()


Job = Generator[Progress, None, T]


def run_job(job: Job[T], on_progress: Callable[[Progress], Any] | None = None) -> T:
    """Run a job generator to completion, calling ``on_progress`` for every report."""
    while True:
        try:
            report = next(job)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(report)


def run_job_with_bar(job: Job[T], description: str, disable: bool = False) -> T:
    """Run a job generator with a tqdm progress bar on stderr (the CLI's way)."""
    from tqdm import tqdm

    with tqdm(desc=description, unit="step", disable=disable, dynamic_ncols=True) as bar:

        def show(report: Progress) -> None:
            bar.total = report.total
            bar.n = report.step
            if report.values:
                bar.set_postfix({k: f"{v:.4g}" for k, v in report.values.items()}, refresh=False)
            if report.message:
                bar.set_description(f"{description}: {report.message}", refresh=False)
            bar.refresh()

        return run_job(job, show)

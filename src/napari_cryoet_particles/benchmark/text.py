"""The report's small formatting helpers, shared by every section of the benchmark."""

import numpy as np


def fmt(value: float | None, digits: int = 3) -> str:
    """A table cell: ``value`` with ``digits`` decimals, a dash when missing or not finite."""
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def method_label(method: str) -> str:
    """The name a method has in the report (its registry label; unknown names as they are)."""
    from napari_cryoet_particles.benchmark.methods import METHODS

    return METHODS[method].label if method in METHODS else method


def markdown_table(header: list[str], rows: list[list[str]], text_columns: int) -> list[str]:
    """The lines of a Markdown table: the first ``text_columns`` columns left-aligned, the
    others (numbers) right-aligned."""
    rule = ["---"] * text_columns + ["---:"] * (len(header) - text_columns)
    return ["| " + " | ".join(cells) + " |" for cells in (header, rule, *rows)]

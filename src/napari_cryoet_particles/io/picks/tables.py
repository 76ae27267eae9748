"""What every picks reader shares: opening a table with one clear error, required columns, finite
coordinates."""

from pathlib import Path

import numpy as np
import pandas as pd

from napari_cryoet_particles.io.errors import CryoetInputError


def read_table(path: Path, reader, what: str) -> pd.DataFrame:
    if not path.exists():
        raise CryoetInputError(path, "no such file")
    if path.stat().st_size == 0:
        raise CryoetInputError(path, f"{what} file is empty")
    try:
        return reader(path)
    except CryoetInputError:
        raise
    except pd.errors.EmptyDataError:
        raise CryoetInputError(path, f"{what} file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise CryoetInputError(path, f"cannot be read as {what}: {error}") from None


def require_columns(path: Path, table: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise CryoetInputError(
            path,
            f"{what} lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(found: {', '.join(map(str, table.columns)) or 'none'})",
        )


def finite_coordinates(path: Path, xyz: np.ndarray) -> np.ndarray:
    try:
        xyz = np.asarray(xyz, dtype=float)
    except ValueError as error:
        raise CryoetInputError(path, f"coordinates are not numbers ({error})") from None
    bad = ~np.all(np.isfinite(xyz), axis=1)
    if bad.any():
        raise CryoetInputError(
            path, f"{int(bad.sum())} picks have missing or non-finite coordinates"
        )
    return xyz

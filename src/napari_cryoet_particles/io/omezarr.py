"""OME-Zarr tomograms: read lazily at the scale level of the wanted voxel size, write a pyramid.

The CZ cryo-ET Data Portal and copick keep tomograms as OME-Zarr (NGFF 0.4, zarr v2 format): a
group whose ``multiscales`` metadata lists one array per scale level with its voxel size. NGFF 0.5
(zarr v3 format) keeps the same metadata under ``ome`` in ``zarr.json``; it is read when zarr 3 is
installed. Reading picks one level and hands out the ``zarr.Array`` itself, so nothing is loaded
until sliced. Writing makes NGFF 0.4 (what the portal serves and every copick release reads), levels
binned 2× each by a local mean (as copick does), chunk keys ``0/z/y/x`` (as ``ome-zarr`` writes them).

zarr 2 (which copick 1.31 still pins) and zarr 3 differ in how a zarr v2 group is opened, how an
array is created in it and what damaged metadata raises; those differences stay in the few
functions below that look at :func:`zarr_major`.
"""

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from napari_cryoet_particles.io.atomic import atomic_directory
from napari_cryoet_particles.io.errors import CryoetInputError, one_line, reader
from napari_cryoet_particles.io.units import check_plausible
from napari_cryoet_particles.io.volume import Volume, count_non_finite

OME_ZARR_SUFFIX = ".zarr"
#: A scale level matches a wanted voxel size when they differ by less than this fraction.
LEVEL_TOLERANCE = 0.02
#: Å per unit of the OME-NGFF space units tomograms use.
UNIT_ANGSTROM = {"angstrom": 1.0, "nanometer": 10.0, "micrometer": 1e4, "": 1.0}


def zarr_major() -> int:
    """The major version of the installed zarr (2 or 3)."""
    import zarr

    return int(zarr.__version__.split(".")[0])


def ome_attributes(attributes: Any) -> Any:
    """The OME metadata of a group's attributes: NGFF 0.5 nests it under ``ome``, 0.4 does not."""
    if isinstance(attributes, dict) and isinstance(attributes.get("ome"), dict):
        return attributes["ome"]
    return attributes


def zarr_v3_group(path: Path) -> bool:
    """Whether ``path`` is a zarr v3 format group (``zarr.json``) with no zarr v2 metadata."""
    return (path / "zarr.json").is_file() and not (path / ".zattrs").is_file()


def is_ome_zarr(path: str | Path) -> bool:
    """A folder holding a zarr group with OME ``multiscales`` metadata (NGFF 0.4 or 0.5)."""
    path = Path(path)
    if not path.is_dir():
        return False
    for name, key in ((".zattrs", None), ("zarr.json", "attributes")):
        try:
            document = json.loads((path / name).read_text())
        except (OSError, ValueError):
            continue
        attributes = document.get(key) if key and isinstance(document, dict) else document
        metadata = ome_attributes(attributes)
        if isinstance(metadata, dict) and "multiscales" in metadata:
            return True
    return False


def scale_levels(group: Any, path: str | Path | None = None) -> list[tuple[str, float]]:
    """``(array path, voxel size in Å)`` of every scale level of an OME-Zarr group, finest first."""
    try:
        multiscale = ome_attributes(group.attrs.asdict())["multiscales"][0]
        unit = ""
        for axis in multiscale.get("axes", []):
            if isinstance(axis, dict) and axis.get("type") == "space":
                unit = str(axis.get("unit", ""))
                break
        levels = []
        for dataset in multiscale["datasets"]:
            scale = next(
                t["scale"] for t in dataset["coordinateTransformations"] if t["type"] == "scale"
            )
            levels.append((str(dataset["path"]), float(scale[-1]) * UNIT_ANGSTROM.get(unit, 1.0)))
    except (KeyError, IndexError, StopIteration, TypeError, ValueError) as error:
        raise CryoetInputError(
            path, f"OME-Zarr multiscales metadata is incomplete ({error})"
        ) from None
    if not levels:
        raise CryoetInputError(path, "OME-Zarr holds no scale levels")
    return sorted(levels, key=lambda level: level[1])


def choose_level(
    levels: list[tuple[str, float]], voxel_size: float | None, path: str | Path | None = None
) -> tuple[str, float]:
    """The finest level, or the one whose voxel size is ``voxel_size`` (within 2 %)."""
    if voxel_size is None:
        return levels[0]
    path_, size = min(levels, key=lambda level: abs(math.log(level[1] / voxel_size)))
    if abs(size - voxel_size) > LEVEL_TOLERANCE * voxel_size:
        sizes = ", ".join(f"{s:g}" for _, s in levels)
        raise CryoetInputError(path, f"no scale level of {voxel_size:g} Å (levels: {sizes} Å)")
    return path_, size


def volume_from_group(
    group: Any,
    voxel_size: float | None = None,
    path: str | Path | None = None,
    check_finite: bool = True,
) -> Volume:
    """A :class:`Volume` on one level of an open OME-Zarr group (the data stay lazy)."""
    level, size = choose_level(scale_levels(group, path), voxel_size, path)
    data = open_level(group, level, path)
    if data.ndim != 3:
        raise CryoetInputError(
            path, f"expected a 3D tomogram, got a {data.ndim}D array of shape {data.shape}"
        )
    if min(data.shape) < 1:
        raise CryoetInputError(path, f"empty volume of shape {data.shape}")
    check_plausible(size, path)
    if check_finite:
        try:
            bad = count_non_finite(data)
        # codecs raise RuntimeError on bad chunks, numcodecs' blosc even SystemError on some
        except (RuntimeError, SystemError, ArithmeticError) as error:
            raise CryoetInputError(
                path, f"OME-Zarr chunks of level {level!r} cannot be decoded ({error})"
            ) from None
        if bad:
            raise CryoetInputError(
                path,
                f"holds {bad} NaN/Inf value{'s' if bad != 1 else ''} out of {data.size} voxels",
            )
    return Volume(data=data, voxel_size=size, path=None if path is None else Path(path))


def open_level(group: Any, level: str, path: str | Path | None = None) -> Any:
    """The array of one scale level; a missing or damaged one is refused with a one-line reason.

    zarr 2 raises ``MetadataError`` on damaged array metadata; zarr 3 raises whatever its parser
    meets (``KeyError`` of the missing field, ``TypeError``, ``ValueError``), so there a
    ``KeyError`` means a missing level only when it names the level.
    """
    import zarr.errors

    damaged: tuple[type[Exception], ...] = (
        (zarr.errors.MetadataError,)
        if zarr_major() < 3
        else (zarr.errors.MetadataValidationError, ValueError, TypeError)
    )
    try:
        return group[level]
    except KeyError as error:
        if error.args[:1] == (level,):
            raise CryoetInputError(path, f"OME-Zarr lacks its scale level {level!r}") from None
        reason = f"no {error.args[0]!r} field" if error.args else "a missing field"
    except damaged as error:
        reason = one_line(error.__cause__ or error)
    raise CryoetInputError(path, f"OME-Zarr scale level {level!r} has damaged metadata ({reason})")


@reader("an OME-Zarr tomogram")
def read_ome_zarr(
    path: str | Path, voxel_size: float | None = None, check_finite: bool = True
) -> Volume:
    """Open an OME-Zarr tomogram read-only at the level of ``voxel_size`` (default: the finest)."""
    import zarr

    path = Path(path)
    if not path.exists():
        raise CryoetInputError(path, "no such file or folder")
    if not is_ome_zarr(path):
        raise CryoetInputError(path, "not an OME-Zarr image (no multiscales metadata)")
    if zarr_v3_group(path) and zarr_major() < 3:
        raise CryoetInputError(
            path,
            f"is OME-NGFF 0.5 (zarr v3 format), which needs zarr 3 (installed: zarr "
            f"{zarr.__version__}); `pip install 'zarr>=3'` without copick, or convert it to NGFF 0.4",
        )
    try:
        group = zarr.open_group(str(path), mode="r")
    except (OSError, ValueError, KeyError) as error:
        raise CryoetInputError(path, f"cannot be opened as zarr ({error})") from None
    return volume_from_group(group, voxel_size, path, check_finite)


def pyramid(data: np.ndarray, levels: int) -> list[np.ndarray]:
    """``levels`` arrays, each the previous binned 2× by a local mean (float32)."""
    from skimage.transform import downscale_local_mean

    arrays = [np.asarray(data, dtype=np.float32)]
    for _ in range(1, levels):
        if min(arrays[-1].shape) < 2:
            break
        arrays.append(downscale_local_mean(arrays[-1], (2, 2, 2)).astype(np.float32))
    return arrays


def open_v2_group(path: str | Path, mode: str = "w") -> Any:
    """A zarr group in the zarr v2 format (the format of OME-NGFF 0.4) on a local folder."""
    import zarr

    if zarr_major() < 3:
        return zarr.open_group(str(path), mode=mode)
    return zarr.open_group(str(path), mode=mode, zarr_format=2)


def write_level(group: Any, name: str, data: np.ndarray, chunks: tuple[int, ...]) -> None:
    """One scale level as a zarr array of ``group``, chunk keys nested (``name/z/y/x``)."""
    chunks = tuple(min(c, n) for c, n in zip(chunks, data.shape, strict=True))
    if zarr_major() < 3:
        group.create_dataset(name, data=data, chunks=chunks, dimension_separator="/")
        return
    separator = {"name": "v2", "separator": "/"} if group.metadata.zarr_format == 2 else None
    array = group.create_array(
        name, shape=data.shape, dtype=data.dtype, chunks=chunks, chunk_key_encoding=separator
    )
    array[...] = data


def write_ome_zarr_group(
    group: Any, data: np.ndarray, voxel_size: float, levels: int = 3, chunks: int = 64
) -> None:
    """Write a tomogram pyramid into an open zarr group (axes z, y, x in Å; OME-NGFF 0.4 in a
    zarr v2 format group, 0.5 in a zarr v3 one)."""
    from ome_zarr.writer import write_multiscales_metadata

    arrays = pyramid(data, levels)
    datasets = []
    for i, array in enumerate(arrays):
        write_level(group, str(i), array, (chunks,) * 3)
        scale = [float(voxel_size) * 2**i] * 3
        datasets.append(
            {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": scale}]}
        )
    axes = [{"name": axis, "type": "space", "unit": "angstrom"} for axis in "zyx"]
    write_multiscales_metadata(group, datasets, axes=axes)


def write_ome_zarr(
    path: str | Path,
    data: np.ndarray,
    voxel_size: float,
    levels: int = 3,
    overwrite: bool = False,
    chunks: int = 64,
) -> Path:
    """Write a (z, y, x) tomogram as an OME-Zarr pyramid (NGFF 0.4), atomically (a folder renamed
    in place)."""
    data = np.asarray(data)
    if data.ndim != 3:
        raise CryoetInputError(path, f"a tomogram must be 3D, got shape {data.shape}")
    with atomic_directory(path, overwrite=overwrite) as tmp:
        write_ome_zarr_group(open_v2_group(tmp), data, voxel_size, levels, chunks)
    return Path(path)

"""Fuzzing every reader: whatever the bytes, only the project's own clear error escapes.

Each reader gets both raw garbage and near-valid files (a valid file with some bytes changed, or
text built from the format's own vocabulary), which is where parsers break. The budget
(``FUZZ_EXAMPLES`` per reader, derandomised so CI runs are repeatable) keeps the whole file at
a few seconds; raise it locally with ``CRYOET_FUZZ_EXAMPLES=2000``.
"""

import functools
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_cryoet_particles.io import (
    CryoetInputError,
    Picks,
    read_copick_json,
    read_csv,
    read_picks,
    read_shrec_locations,
    read_star,
    read_tomogram,
)
from napari_cryoet_particles.io.picks import picks_suffixes, read_picks_by_tomogram

#: Changed header bytes often make the voxel size anisotropic: a legitimate warning, not an error.
pytestmark = pytest.mark.filterwarnings("ignore:.*anisotropic voxel size")
FUZZ_EXAMPLES = int(os.environ.get("CRYOET_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def only_clear_errors(read: Callable[[Path], object], content: bytes, suffix: str) -> None:
    """``read`` either succeeds or raises :class:`CryoetInputError`; nothing else escapes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzzed{suffix}"
        path.write_bytes(content)
        try:
            result = read(path)
        except CryoetInputError as error:
            assert str(error).strip() and "\n" not in str(error).strip()
            return
        if isinstance(result, Picks):
            assert result.zyx.shape == (len(result), 3)
            assert np.isfinite(result.zyx).all()


# -- MRC headers -------------------------------------------------------------------------------


def _valid_mrc() -> bytes:
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "valid.mrc"
        with mrcfile.new(path) as mrc:
            mrc.set_data(np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6))
            mrc.voxel_size = 10.0
        buffer.write(path.read_bytes())
    return buffer.getvalue()


VALID_MRC = _valid_mrc()
HEADER = 1024


@FUZZ
@given(
    changes=st.dictionaries(st.integers(0, HEADER - 1), st.integers(0, 255), max_size=24),
    words=st.dictionaries(
        st.integers(0, HEADER // 4 - 1), st.integers(-(2**31), 2**31 - 1), max_size=6
    ),
    cut=st.one_of(st.none(), st.integers(0, len(VALID_MRC))),
)
def test_mrc_with_changed_header_bytes(changes: dict, words: dict, cut: int | None) -> None:
    content = bytearray(VALID_MRC)
    for index, value in changes.items():
        content[index] = value
    for index, value in words.items():  # whole header fields: sizes, mode, extended header...
        content[4 * index : 4 * index + 4] = int(value).to_bytes(4, "little", signed=True)
    only_clear_errors(read_tomogram, bytes(content[:cut]), ".mrc")


@FUZZ
@given(content=st.binary(max_size=2048))
def test_mrc_of_random_bytes(content: bytes) -> None:
    only_clear_errors(read_tomogram, content, ".mrc")


# -- picks CSV ---------------------------------------------------------------------------------

CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["", "nan", "NaN", "inf", "-", "accepted", "auto", '"', "1e400", "0x10"]),
    st.text(max_size=6),
)
CSV_COLUMNS = [
    "x",
    "y",
    "z",
    "score",
    "voxel_size_angstrom",
    "x_angstrom",
    "status",
    "class",
    "cluster",
    "tomogram",
    "",
]


@st.composite
def csv_texts(draw) -> str:
    columns = draw(st.lists(st.sampled_from(CSV_COLUMNS), min_size=1, max_size=9))
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=len(columns) + 1), max_size=5))
    separator = draw(st.sampled_from([",", ";", "\t"]))
    return "\n".join(separator.join(row) for row in [columns, *rows])


@FUZZ
@given(text=st.one_of(csv_texts(), st.text(max_size=300)))
def test_picks_csv(text: str) -> None:
    only_clear_errors(read_csv, text.encode("utf-8", "surrogatepass"), ".csv")


@FUZZ
@given(content=st.binary(max_size=600))
def test_picks_csv_of_random_bytes(content: bytes) -> None:
    only_clear_errors(read_csv, content, ".csv")


# -- RELION STAR -------------------------------------------------------------------------------

STAR_COLUMNS = [
    "rlnCoordinateX",
    "rlnCoordinateY",
    "rlnCoordinateZ",
    "rlnCenteredCoordinateXAngst",
    "rlnCenteredCoordinateYAngst",
    "rlnCenteredCoordinateZAngst",
    "rlnTomoName",
    "rlnImagePixelSize",
    "rlnAutopickFigureOfMerit",
    "rlnClassNumber",
    "rlnAngleRot",
    "rlnCryoetStatus",
]


@st.composite
def star_texts(draw) -> str:
    blocks = []
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from(["particles", "optics", "", "global"]))
        columns = draw(st.lists(st.sampled_from(STAR_COLUMNS), min_size=1, max_size=8))
        header = "\n".join(f"_{c} #{i + 1}" for i, c in enumerate(columns))
        rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=len(columns) + 1), max_size=4))
        body = "\n".join(" ".join(cell.replace(" ", "") or "x" for cell in row) for row in rows)
        loop = draw(st.sampled_from(["loop_\n", ""]))
        blocks.append(f"data_{name}\n\n{loop}{header}\n{body}\n")
    return "\n".join(blocks)


@FUZZ
@given(text=st.one_of(star_texts(), st.text(max_size=300)))
def test_relion_star(text: str) -> None:
    only_clear_errors(read_star, text.encode("utf-8", "surrogatepass"), ".star")


@FUZZ
@given(content=st.binary(max_size=600))
def test_relion_star_of_random_bytes(content: bytes) -> None:
    only_clear_errors(read_star, content, ".star")


# -- copick JSON -------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)
COORDINATE = st.one_of(st.floats(allow_nan=True, allow_infinity=True), JSON_VALUES)


@st.composite
def copick_documents(draw) -> str:
    point = st.fixed_dictionaries(
        {},
        optional={
            "location": st.one_of(
                st.fixed_dictionaries({"x": COORDINATE, "y": COORDINATE, "z": COORDINATE}),
                JSON_VALUES,
            ),
            "score": COORDINATE,
            "instance_id": COORDINATE,
            "transformation_": JSON_VALUES,
        },
    )
    document = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "points": st.one_of(st.lists(point, max_size=4), JSON_VALUES),
                "voxel_spacing": COORDINATE,
                "pickable_object_name": JSON_VALUES,
                "run_name": JSON_VALUES,
                "unit": JSON_VALUES,
            },
        )
    )
    return json.dumps(document)


@FUZZ
@given(text=st.one_of(copick_documents(), JSON_VALUES.map(json.dumps), st.text(max_size=200)))
def test_copick_json(text: str) -> None:
    only_clear_errors(read_copick_json, text.encode("utf-8", "surrogatepass"), ".json")


# -- SHREC particle_locations.txt --------------------------------------------------------------


@st.composite
def shrec_texts(draw) -> str:
    lines = draw(
        st.lists(
            st.lists(
                st.one_of(CELLS, st.sampled_from(["1s3x", "vesicle", "4V94"])),
                min_size=0,
                max_size=8,
            ),
            max_size=6,
        )
    )
    return "\n".join(" ".join(cell.replace(" ", "") for cell in line) for line in lines)


@FUZZ
@given(text=st.one_of(shrec_texts(), st.text(max_size=300)))
def test_shrec_locations(text: str) -> None:
    only_clear_errors(read_shrec_locations, text.encode("utf-8", "surrogatepass"), ".txt")


@FUZZ
@given(content=st.binary(max_size=400), suffix=st.sampled_from(picks_suffixes()))
def test_read_picks_by_suffix_of_random_bytes(content: bytes, suffix: str) -> None:
    only_clear_errors(read_picks, content, suffix)


# -- the picks registry with its read options ---------------------------------------------------

READ_OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "voxel_size": st.one_of(st.floats(0.1, 100.0), st.just(10.0)),
        "star_pixel_size": st.floats(0.1, 100.0),
        "shape_zyx": st.tuples(*[st.integers(1, 512)] * 3),
        "order": st.sampled_from(["xyz", "zyx"]),
    },
)


@FUZZ
@given(
    data=st.one_of(
        st.tuples(st.just(".csv"), csv_texts()),
        st.tuples(st.just(".star"), star_texts()),
        st.tuples(st.just(".json"), copick_documents()),
        st.tuples(st.just(".txt"), shrec_texts()),
    ),
    options=READ_OPTIONS,
)
def test_picks_registry_with_read_options(data: tuple[str, str], options: dict) -> None:
    suffix, text = data

    def read(path: Path) -> None:
        for picks in read_picks_by_tomogram(path, **options).values():
            assert picks.zyx.shape == (len(picks), 3) and np.isfinite(picks.zyx).all()

    only_clear_errors(read, text.encode("utf-8", "surrogatepass"), suffix)


# -- OME-Zarr tomograms and copick project configs (folders and JSON metadata) -------------------


@functools.cache
def _valid_ome_zarr() -> Path:
    from napari_cryoet_particles.io.omezarr import write_ome_zarr

    folder = Path(tempfile.mkdtemp(prefix="fuzz-omezarr-"))
    data = np.arange(4 * 6 * 8, dtype=np.float32).reshape(4, 6, 8)
    return write_ome_zarr(folder / "valid.zarr", data, 10.0, levels=2)


def _replace_somewhere(document: object, draw: Callable, value_strategy) -> object:
    """``document`` with one node (chosen by walking down at random) replaced by a drawn value."""
    children = (
        list(document.items())
        if isinstance(document, dict)
        else list(enumerate(document))
        if isinstance(document, list)
        else []
    )
    if not children or draw(st.integers(0, 3)) == 0:
        return draw(value_strategy)
    key, child = children[draw(st.integers(0, len(children) - 1))]
    document[key] = _replace_somewhere(child, draw, value_strategy)
    return document


#: Metadata values for a zarr array: sizes stay small, a changed shape must not mean terabytes.
ZARR_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@FUZZ
@given(
    data=st.data(),
    metadata=st.lists(st.sampled_from([".zattrs", "0/.zarray", "1/.zarray"]), max_size=3),
    chunk=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_ome_zarr_with_changed_metadata_and_chunks(data, metadata: list, chunk) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.zarr"
        shutil.copytree(_valid_ome_zarr(), path)
        for name in metadata:
            document = json.loads((path / name).read_text())
            changed = _replace_somewhere(document, data.draw, ZARR_VALUES)
            (path / name).write_text(json.dumps(changed))
        if chunk is not None:
            (path / "0" / "0" / "0" / "0").write_bytes(chunk)
        try:
            volume = read_tomogram(path)
        except CryoetInputError as error:
            assert str(error).strip() and "\n" not in str(error).strip()
            return
        assert volume.data.ndim == 3


def _copick_config(overlay: Path) -> dict:
    return {
        "config_type": "filesystem",
        "name": "fuzzed",
        "pickable_objects": [
            {"name": "ribosome", "is_particle": True, "label": 1, "radius": 150.0},
        ],
        "overlay_root": f"local://{overlay}",
        "overlay_fs_args": {"auto_mkdir": True},
    }


@FUZZ
@given(data=st.data(), changes=st.integers(0, 3))
def test_copick_config_with_changed_content(data, changes: int) -> None:
    from napari_cryoet_particles.io.copick_project import open_project, run_names

    with tempfile.TemporaryDirectory() as folder:
        document: object = _copick_config(Path(folder) / "overlay")
        for _ in range(changes):
            document = _replace_somewhere(document, data.draw, JSON_VALUES)

        def read(path: Path) -> None:
            run_names(open_project(path))

        only_clear_errors(read, json.dumps(document).encode(), ".json")

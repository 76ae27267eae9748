"""The design's rules (docs/design.md) as a test: import cycles, where Qt and napari may be
imported, which folder may import which, lengths converted only in io/units.py, and files and
functions short enough to read (at most 700 and 100 lines).

It reads the package's source with :mod:`ast` and imports none of it (well under a second).
Imports inside functions count as much as those at the top: a function-level import hides a cycle
from Python, not from the reader.
"""

import ast
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = "napari_cryoet_particles"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / PACKAGE

#: Today's import cycles (modules relative to the package). Each one must still exist: delete
#: it here when you break it. A cycle that is not listed fails the test.
KNOWN_CYCLES: set[frozenset[str]] = set()

#: Who may import Qt, napari and their kin (``_layers``: napari, never Qt).
GUI_MODULES = ("_widgets", "_layers", "_reader", "_writer", "_sample_data")
GUI_LIBRARIES = {
    "qtpy",
    "PyQt5",
    "PyQt6",
    "PySide2",
    "PySide6",
    "napari",
    "npe2",
    "magicgui",
    "superqt",
    "vispy",
    "app_model",
}
QT_LIBRARIES = GUI_LIBRARIES - {"napari", "npe2", "vispy", "app_model"}
FOLDERS = (
    "io",
    "jobs",
    "simulate",
    "model",
    "detect",
    "batch",
    "baselines",
    "benchmark",
    "evaluate",
    "cli",
    *GUI_MODULES,
)
NOT_GUI = tuple(f for f in FOLDERS if f not in GUI_MODULES)
#: docs/design.md's "may import" column, for the package's own folders (a folder may always
#: import itself, and every module the package's ``__version__``). An entry is a folder or one
#: module (``detect.config``).
MAY_IMPORT = {
    "io": (),
    "jobs": (),
    "simulate": ("io", "jobs"),
    "model": ("io", "jobs"),
    "detect": ("io", "jobs", "model"),
    "batch": ("io", "jobs", "model", "detect"),
    "baselines": ("io", "jobs", "model", "detect"),
    "benchmark": NOT_GUI,
    "evaluate": ("io",),
    "cli": NOT_GUI,
    "_widgets": FOLDERS,
    "_layers": ("io", "detect.config"),
    "_reader": ("io", "simulate", "jobs", "_layers"),
    "_writer": ("io", "simulate", "jobs", "_layers"),
    "_sample_data": ("io", "simulate", "jobs", "_layers"),
}
#: The same column's libraries, for the rows that name them (the standard library is always
#: allowed; folders not listed here may use any dependency of the package).
MAY_IMPORT_LIBRARIES = {
    # copick, zarr, ome-zarr and scikit-image (OME-Zarr pyramids) are optional formats' libraries,
    # imported inside the functions that need them
    "io": {
        "numpy",
        "pandas",
        "mrcfile",
        "starfile",
        "scipy",
        "copick",
        "zarr",
        "ome_zarr",
        "skimage",
    },
    "jobs": {"tqdm"},
    "simulate": {"numpy", "scipy", "pandas"},
    "model": {"numpy", "scipy", "torch"},
}
#: Docks sit side by side: none imports another.
DOCKS = ("tomogram", "train", "detect", "curate", "metrics", "export")

#: The one module that converts lengths between nm, Å and voxels.
UNITS_MODULE = "io.units"
UNIT_FACTORS = (10, 0.1)
#: Names that say a value is a length in some unit (or a voxel size).
UNIT_NAME = re.compile(r"voxel_size|(^|_)nm($|_)|angstrom", re.IGNORECASE)
UNIT_NAME_CASED = re.compile(r"_A($|_)")


@dataclass(frozen=True)
class Import:
    module: str  # the imported module or name, absolute
    line: int


def _relative_name(path: Path) -> str:
    """``detect/pipeline.py`` -> ``detect.pipeline``; a package's ``__init__.py`` -> its folder;
    the package's own ``__init__.py`` -> ``""``."""
    parts = list(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {_relative_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


@cache
def tree(name: str) -> ast.Module:
    path = modules()[name]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@cache
def source(name: str) -> str:
    return modules()[name].read_text(encoding="utf-8")


@cache
def imports(name: str) -> tuple[Import, ...]:
    """Every import of module ``name`` (at any depth), as absolute names; ``from X import y`` is
    ``X.y`` inside the package (``y`` may be a module: see :func:`_package_module`), else ``X``."""
    is_package = modules()[name].name == "__init__.py"
    own = [PACKAGE, *name.split(".")] if name else [PACKAGE]
    found = []
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = own if is_package else own[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            for alias in node.names:
                full = f"{origin}.{alias.name}"
                inside = origin.split(".")[0] == PACKAGE
                found.append(Import(full if inside else origin, node.lineno))
    return tuple(found)


def _package_module(absolute: str) -> str | None:
    """The package module (relative name) that ``absolute`` names or lies in; ``None`` outside."""
    parts = absolute.split(".")
    if parts[0] != PACKAGE:
        return None
    relative = ".".join(parts[1:])
    while relative not in modules():
        relative = relative.rpartition(".")[0]
    return relative


def folder(relative: str) -> str:
    return relative.split(".")[0]


def where(name: str, line: int) -> str:
    return f"{modules()[name].relative_to(PACKAGE_DIR)}:{line}"


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {package module it imports: first line}."""
    graph = {}
    for name in modules():
        edges: dict[str, int] = {}
        for imp in imports(name):
            target = _package_module(imp.module)
            if target is not None and target != name:
                edges.setdefault(target, imp.line)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


def _describe(component: frozenset[str], graph: dict[str, dict[str, int]]) -> str:
    edges = [
        f"{where(a, line)} imports {b}"
        for a in sorted(component)
        for b, line in sorted(graph[a].items())
        if b in component
    ]
    return "; ".join(edges)


def test_cycles_detected_on_a_toy_graph():
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}, "e": {"e": 1}}
    assert cycles(graph) == {frozenset("abc")}


def test_no_import_cycle_outside_the_known_ones():
    graph = import_graph()
    new = [_describe(c, graph) for c in cycles(graph) - KNOWN_CYCLES]
    assert not new, (
        "import cycles (break them, e.g. by moving the shared part down): " + " | ".join(new)
    )


def test_every_known_cycle_still_exists():
    gone = KNOWN_CYCLES - cycles(import_graph())
    assert not gone, f"no longer cycles, remove them from KNOWN_CYCLES: {sorted(map(sorted, gone))}"


def test_qt_and_napari_only_in_the_gui_modules():
    wrong = [
        f"{where(name, imp.line)} imports {imp.module}"
        for name in modules()
        if folder(name) not in GUI_MODULES
        for imp in imports(name)
        if imp.module.split(".")[0] in GUI_LIBRARIES
    ]
    assert not wrong, wrong


def test_layers_do_without_qt():
    """``_layers`` serves the npe2 adapters as much as the docks: napari's layers, no widgets."""
    wrong = [
        f"{where(name, imp.line)} imports {imp.module}"
        for name in modules()
        if folder(name) == "_layers"
        for imp in imports(name)
        if imp.module.split(".")[0] in QT_LIBRARIES
    ]
    assert not wrong, wrong


def _allowed(source_folder: str, target: str) -> bool:
    if target in ("", source_folder) or folder(target) == source_folder:
        return True
    return any(
        target == entry or target.startswith(entry + ".") for entry in MAY_IMPORT[source_folder]
    )


def test_every_folder_imports_what_the_design_allows():
    assert set(MAY_IMPORT) == set(FOLDERS)
    assert {folder(name) for name in modules()} - {""} <= set(FOLDERS), "a new folder: add its row"
    wrong = []
    for name in modules():
        if not name:
            continue
        for imp in imports(name):
            target = _package_module(imp.module)
            if target is not None and not _allowed(folder(name), target):
                wrong.append(f"{where(name, imp.line)} imports {target}")
    assert not wrong, "against docs/design.md's layering table: " + "; ".join(wrong)


def test_folders_use_only_the_libraries_the_design_names():
    wrong = []
    for name in modules():
        allowed = MAY_IMPORT_LIBRARIES.get(folder(name))
        if allowed is None:
            continue
        for imp in imports(name):
            top = imp.module.split(".")[0]
            if top != PACKAGE and top not in sys.stdlib_module_names and top not in allowed:
                wrong.append(f"{where(name, imp.line)} imports {imp.module}")
    assert not wrong, "against docs/design.md's layering table: " + "; ".join(wrong)


def test_docks_do_not_import_each_other():
    docks = {f"_widgets.{dock}" for dock in DOCKS}
    wrong = [
        f"{where(name, imp.line)} imports {target}"
        for name in docks
        for imp in imports(name)
        if (target := _package_module(imp.module)) in docks and target != name
    ]
    assert not wrong, wrong


def _names(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            names.add(sub.value)  # a column: features["radius_nm"]
    return names


def _mentions_a_length(node: ast.AST) -> bool:
    return any(UNIT_NAME.search(n) or UNIT_NAME_CASED.search(n) for n in _names(node))


def _is_number(node: ast.AST, values=None) -> bool:
    return (
        isinstance(node, ast.Constant)
        and type(node.value) in (int, float)
        and (values is None or node.value in values)
    )


def hand_conversion(node: ast.AST) -> bool:
    """Whether ``node`` converts a length by hand: a length times or over 10 / 0.1, or a voxel
    size falling back on a number (``voxel_size or 10.0``, ``... or DEFAULT_VOXEL_SIZE``)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Div):
        return any(
            _is_number(factor, UNIT_FACTORS) and _mentions_a_length(other)
            for factor, other in ((node.left, node.right), (node.right, node.left))
        )
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        names = set().union(*(_names(v) for v in node.values))
        default_size = any("VOXEL_SIZE" in n for n in names)
        number_for_size = any(_is_number(v) for v in node.values) and any(
            "voxel_size" in n.lower() for n in names
        )
        return default_size or number_for_size
    return False


def test_the_unit_check_sees_hand_conversions():
    code = (
        "a = step_nm * 10.0 / voxel_size\nb = voxel_size / 10\nc = x.voxel_size or 10.0\n"
        "d = size or DEFAULT_VOXEL_SIZE\ne = diameter_A * 0.1\ni = t['radius_nm'] * 10\n"
        "f = n * 10\ng = os.cpu_count() or 1\nh = nm_to_voxels(step_nm, voxel_size)\n"
    )
    found = {
        ast.get_source_segment(code, n) for n in ast.walk(ast.parse(code)) if hand_conversion(n)
    }
    assert found == {
        "step_nm * 10.0",
        "voxel_size / 10",
        "x.voxel_size or 10.0",
        "size or DEFAULT_VOXEL_SIZE",
        "diameter_A * 0.1",
        "t['radius_nm'] * 10",
    }


def test_lengths_are_converted_only_in_io_units():
    wrong = [
        f"{where(name, node.lineno)}: {ast.get_source_segment(source(name), node)}"
        for name in modules()
        if name != UNITS_MODULE
        for node in ast.walk(tree(name))
        if hand_conversion(node)
    ]
    assert not wrong, "convert with io/units.py's functions: " + "; ".join(wrong)


#: The longest a module may be, in lines, and a function, from its ``def`` to its last line.
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 100
#: What is still longer (paths relative to the package; a function as ``path::Class.name``). Each
#: must still be too long: delete it here when you split it. detect/ is restructured with the
#: accuracy issue; io/picks.py becomes the io/picks/ package (issue 23, item 1).
LONG_MODULES: set[str] = set()
LONG_FUNCTIONS: set[str] = set()


def _path(name: str) -> str:
    return modules()[name].relative_to(PACKAGE_DIR).as_posix()


def function_lengths(module: ast.Module, prefix: str = "") -> dict[str, int]:
    """Qualified name (``Class.method``, ``outer.inner``) -> lines, of every function in
    ``module`` at any depth."""
    lengths = {}
    for node in ast.iter_child_nodes(module):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = prefix + node.name
            if not isinstance(node, ast.ClassDef):
                lengths[name] = node.end_lineno - node.lineno + 1
            lengths.update(function_lengths(node, name + "."))
        else:
            lengths.update(function_lengths(node, prefix))
    return lengths


def long_modules() -> set[str]:
    return {_path(name) for name in modules() if len(source(name).splitlines()) > MAX_MODULE_LINES}


def long_functions() -> set[str]:
    return {
        f"{_path(name)}::{function}"
        for name in modules()
        for function, lines in function_lengths(tree(name)).items()
        if lines > MAX_FUNCTION_LINES
    }


def test_function_lengths_on_a_toy_module():
    code = (
        "def f():\n    pass\n\n"
        "class A:\n    def m(self):\n        def inner():\n            return 1\n"
        "        return inner\n\n"
        "if True:\n    def g(): return 2\n"
    )
    assert function_lengths(ast.parse(code)) == {"f": 2, "A.m": 4, "A.m.inner": 2, "g": 1}


def test_no_module_over_700_lines_outside_the_known_ones():
    new = sorted(long_modules() - LONG_MODULES)
    assert not new, f"split these modules (at most {MAX_MODULE_LINES} lines): {new}"


def test_no_function_over_100_lines_outside_the_known_ones():
    new = sorted(long_functions() - LONG_FUNCTIONS)
    assert not new, (
        f"split these functions (at most {MAX_FUNCTION_LINES} lines; a dock's __init__ builds "
        f"its rows in small methods): {new}"
    )


def test_every_known_long_module_and_function_is_still_long():
    gone = (LONG_MODULES - long_modules()) | (LONG_FUNCTIONS - long_functions())
    assert not gone, f"no longer too long, remove them from LONG_MODULES / LONG_FUNCTIONS: {gone}"

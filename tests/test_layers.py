"""The house's structure: each layer of src/poolhead imports only the layers below it, and no
module imports itself back through others.

Imports are read from the source (every ``import`` statement, also those inside functions and
under ``TYPE_CHECKING``), so a lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "poolhead"

#: lowest first; a module may import its own layer and the layers before it. The package's
#: own ``__init__`` is the front door, above everything.
LAYERS = (
    ("pooling",),
    ("errors", "folder_safety", "functional"),
    ("backbone", "encoder"),
    ("data",),
    ("cache",),
    ("training",),
    ("export",),
    ("evaluation",),
    ("corpus",),
    ("commands", "cli", "configs"),
    ("",),
)


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """``{"poolhead.export.onnx": path, "poolhead.export": path/__init__.py, ...}``."""
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    if package == PACKAGE:  # configs/ sits at the top of the repository, installed as poolhead.configs
        modules["poolhead.configs"] = package.parents[1] / "configs" / "__init__.py"
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The poolhead modules ``name`` imports; ``from a import b`` counts as ``a.b`` when b is a module.

    Importing ``a.b`` also runs ``a/__init__.py``; like import-linter, that is not counted as a
    dependency on ``a``, or every package's re-exports would close a circle with its own modules.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            if node.level:
                # st_module.py's "from .base import Pooler" names the pooling files copied beside it in an
                # export; inside the package that import fails by design, so it is no dependency here.
                targets = [target for target in targets if target in modules]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def layer_of(module: str) -> int:
    """The index in LAYERS of ``poolhead.<room>...``'s room (``""`` for the package itself)."""
    room = module.split(".")[1] if "." in module else ""
    for index, rooms in enumerate(LAYERS):
        if room in rooms:
            return index
    raise AssertionError(f"{module} is in no layer: add its folder or file to LAYERS (and to the README)")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each a circle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for neighbour in graph[node]:
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    )


def test_no_module_imports_a_higher_layer():
    assert upward_imports(import_graph()) == []


def test_no_circle_of_imports():
    assert cycles(import_graph()) == []


def test_every_module_is_in_a_layer():
    for module in import_graph():
        layer_of(module)


def test_the_readme_lists_the_layers_in_order():
    readme = (PACKAGE.parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = [{part.strip("`/ ").removesuffix(".py") for part in row.split("|")[1].split(",")} for row in rows]
    assert named == [set(rooms) for rooms in LAYERS[:-1]]


@pytest.mark.parametrize(
    ("graph", "found"),
    [
        ({"poolhead.export.a": {"poolhead.export.b"}, "poolhead.export.b": {"poolhead.export.a"}}, "cycle"),
        ({"poolhead.pooling.base": {"poolhead.training.module"}, "poolhead.training.module": set()}, "upward"),
    ],
)
def test_the_checks_catch_a_circle_and_an_upward_import(graph, found):
    assert bool(cycles(graph)) == (found == "cycle")
    assert bool(upward_imports(graph)) == (found == "upward")


def test_an_import_inside_a_function_counts(tmp_path):
    package = tmp_path / "poolhead"
    (package / "pooling").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pooling" / "__init__.py").write_text("")
    (package / "pooling" / "base.py").write_text("def f():\n    from ..training import module\n")
    (package / "training").mkdir()
    (package / "training" / "__init__.py").write_text("")
    (package / "training" / "module.py").write_text("")
    modules = module_files(package)
    found = imported_modules("poolhead.pooling.base", modules["poolhead.pooling.base"], modules)
    assert found == {"poolhead.training.module"}

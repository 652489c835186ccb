"""No import cycles in the ``sela_jupyter`` package, found statically (``ast``, nothing imported).

Imports that run when a module is imported (module level, class bodies, ``if`` / ``try``
blocks) must form no cycle. Imports inside a function (or under ``if TYPE_CHECKING:``) run
later, so a cycle through one does not break an import, but it still ties two modules into one:
those must close no cycle either.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "sela_jupyter"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

Graph = dict[str, set[str]]


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if "labextension" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graphs() -> tuple[Graph, Graph]:
    """The package's imports between its own modules: (at import time, inside functions)."""
    modules = module_names()
    eager: Graph = {name: set() for name in modules}
    lazy: Graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, deferred in _imports(tree):
            for target in _targets(node, package, modules):
                if target != name:
                    (lazy if deferred else eager)[name].add(target)
    return eager, lazy


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Each import statement, and whether it runs later than the module (inside a function, or
    under ``if TYPE_CHECKING:``, which never runs)."""

    def walk(node: ast.AST, deferred: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, deferred
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(child, True)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                yield from walk(ast.Module(body=child.body, type_ignores=[]), True)
                yield from walk(ast.Module(body=child.orelse, type_ignores=[]), deferred)
            else:
                yield from walk(child, deferred)

    yield from walk(tree, False)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(
    node: ast.Import | ast.ImportFrom, package: str, modules: dict[str, Path]
) -> Iterator[str]:
    """The package's modules an import statement imports (by name, not their parents)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in modules:
                yield alias.name
        return
    if node.level:  # relative: ``.`` is the importing module's package, ``..`` its parent
        base = package.split(".")
        base = base[: len(base) - node.level + 1]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    if source not in modules:
        return
    # ``from pkg import x`` imports the submodule ``pkg.x`` when there is one, else reads ``x``
    # from ``pkg`` itself.
    submodules = [f"{source}.{alias.name}" for alias in node.names]
    found = [m for m in submodules if m in modules]
    yield from found
    if len(found) < len(submodules):
        yield source


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), each
    as ``[a, b, ..., a]``, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(component)

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return sorted(_cycle_in(graph, component) for component in components)


def _cycle_in(graph: Graph, component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for target in sorted(graph.get(module, ()) & component):
            if target == start:
                return [*paths[module], start]
            if target not in paths:
                paths[target] = [*paths[module], target]
                queue.append(target)
    raise AssertionError(f"no cycle in {component}")


def union(*graphs: Graph) -> Graph:
    """The graphs' edges together."""
    out: Graph = {}
    for graph in graphs:
        for module, targets in graph.items():
            out.setdefault(module, set()).update(targets)
    return out


def describe(found: list[list[str]]) -> str:
    return "\n".join(" -> ".join(cycle) for cycle in found)


def test_module_level_imports_have_no_cycle() -> None:
    eager, _ = import_graphs()
    assert len(eager) > 20 and eager[f"{PACKAGE}.server.manager"], "the graph is empty"
    found = cycles(eager)
    assert not found, "import cycles at module level:\n" + describe(found)


def test_function_level_imports_close_no_cycle() -> None:
    eager, lazy = import_graphs()
    found = cycles(union(eager, lazy))
    assert not found, "import cycles through imports inside functions:\n" + describe(found)


def test_cycles_and_relative_imports_are_found(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    source = "from . import x\nfrom ..engine import y, store\nimport sela_jupyter.engine.api\n"
    modules = {
        "sela_jupyter.server": ROOT / "server" / "__init__.py",
        "sela_jupyter.server.x": ROOT / "server" / "x.py",
        "sela_jupyter.engine": ROOT / "engine" / "__init__.py",
        "sela_jupyter.engine.store": ROOT / "engine" / "store.py",
        "sela_jupyter.engine.api": ROOT / "engine" / "api.py",
    }
    found = {
        target
        for node in ast.parse(source).body
        for target in _targets(node, "sela_jupyter.server", modules)  # type: ignore[arg-type]
    }
    assert found == {
        "sela_jupyter.server.x",
        "sela_jupyter.engine",  # y is read from the engine package itself
        "sela_jupyter.engine.store",
        "sela_jupyter.engine.api",
    }


@pytest.mark.parametrize("deferred", ["def f():\n    {}", "if TYPE_CHECKING:\n    {}"])
def test_imports_that_run_later_are_told_apart(deferred: str) -> None:
    source = "import os\n" + deferred.format("from . import later") + "\nclass A:\n    import re\n"
    found = [(type(n).__name__, later) for n, later in _imports(ast.parse(source))]
    assert found == [("Import", False), ("ImportFrom", True), ("Import", False)]

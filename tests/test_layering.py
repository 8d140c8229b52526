"""The package's layers point one way (issue #21, item 6).

Every module under src/convzoo is parsed (not imported) and each of its imports becomes an edge
of the package's module graph: imports at module level and inside functions, absolute and
relative, ``importlib.import_module`` with a literal name, and the names a package exports
lazily (``lazy_exports``). Imports under ``if TYPE_CHECKING:`` are left out: they never run.
An edge goes to the module named (``from .models._common import X`` -> ``convzoo.models._common``),
not to the packages above it, as import-linter counts them.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "convzoo"
PACKAGE = "convzoo"


def _module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _nodes(tree: ast.AST):
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (their ``else`` runs)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of ``from <level dots><name> import ...`` written in ``module``."""
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _literal(tree: ast.Module, node: ast.expr):
    """A literal, or a module-level name bound to one (the export tables of lazy_exports)."""
    if isinstance(node, ast.Name):
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == node.id for t in stmt.targets):
                return ast.literal_eval(stmt.value)
        return None
    return ast.literal_eval(node)


def _raw_imports(path: Path) -> list[str]:
    """Every absolute name ``path`` imports (modules, or module.attribute for ``from``)."""
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in _nodes(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            found += [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname == "import_module" and node.args and isinstance(node.args[0], ast.Constant):
                name = node.args[0].value
                level = len(name) - len(name.lstrip("."))
                found.append(_resolve(module, is_package, level, name.lstrip(".") or None)
                             if level else name)
            elif fname == "lazy_exports" and len(node.args) >= 3:
                exports = _literal(tree, node.args[2]) or {}
                subs = _literal(tree, node.args[3]) if len(node.args) > 3 else ()
                for rel in [*exports.values(), *(f".{s}" for s in subs or ())]:
                    level = len(rel) - len(rel.lstrip("."))
                    found.append(_resolve(module, is_package, level, rel.lstrip(".") or None))
    return found


@cache
def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> the package's modules it imports, module -> the outside top-level packages it
    imports, e.g. torch)."""
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    inside: dict[str, set[str]] = {m: set() for m in paths}
    outside: dict[str, set[str]] = {m: set() for m in paths}
    for module, path in paths.items():
        for name in _raw_imports(path):
            if name.split(".")[0] != PACKAGE:
                outside[module].add(name.split(".")[0])
                continue
            # ``from pkg import sub`` names the submodule; ``from mod import func`` the module
            target = name
            while target not in paths and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != module:
                inside[module].add(target)
    return inside, outside


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(graph, comp) for comp in components]


def _cycle_in(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    start = min(comp)
    paths = {start: [start]}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph[v] & comp):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                todo.append(w)
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def _edges(of: str, to: tuple[str, ...]) -> list[str]:
    """Imports from package ``of`` (e.g. "data") into any of ``to``, as "a -> b", less the
    :data:`KNOWN_EDGES`."""
    inside, _ = _graph()

    def under(module: str, pkg: str) -> bool:
        full = f"{PACKAGE}.{pkg}"
        return module == full or module.startswith(full + ".")

    return sorted(f"{m} -> {t}" for m, targets in inside.items() if under(m, of)
                  for t in targets if any(under(t, p) for p in to) and (m, t) not in KNOWN_EDGES)


# Imports allowed for now against the checks below: (importer, imported) -> who removes it. Empty
# since the engine and data helpers' work is in (issue #21); add an entry only with an owner.
KNOWN_EDGES: dict[tuple[str, str], str] = {}


def test_the_graph_sees_every_kind_of_import():
    inside, outside = _graph()
    assert "convzoo.errors" in inside["convzoo.registry"]  # module level, relative
    assert "convzoo.weights" in inside["convzoo.registry"]  # inside create_model
    assert "convzoo.registry" in inside["convzoo"]  # lazy_exports
    assert "convzoo.models._registry" in inside["convzoo.models.resnet"]  # ``from ._registry``
    # under TYPE_CHECKING only: ZooModel's annotation of ModelInfo never runs
    assert "convzoo.models._registry" not in inside["convzoo.models._common"]
    assert "torch" in outside["convzoo.registry"] and "numpy" in outside["convzoo.scratch.im2col"]
    assert len(inside) > 50


def test_cycles_are_found_and_reported():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    inside, _ = _graph()
    graph = {m: {t for t in targets if (m, t) not in KNOWN_EDGES} for m, targets in inside.items()}
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize(("layer", "never"), [
    ("data", ("registry", "hub", "models", "engine", "analysis", "explore", "experiments")),
    ("engine", ("analysis", "explore", "experiments")),
    ("models", ("engine", "analysis", "registry", "weights", "hub", "data")),
    ("scratch", ("registry", "models", "engine", "analysis", "explore", "experiments")),
])
def test_lower_layers_never_import_higher_ones(layer, never):
    assert _edges(layer, never) == []


def test_scratch_imports_no_torch():
    _, outside = _graph()
    found = sorted(f"{m} -> {pkg}" for m, pkgs in outside.items()
                   if m.startswith(f"{PACKAGE}.scratch") for pkg in pkgs
                   if pkg in ("torch", "torchvision"))
    assert found == []

"""The shape of the code that docs/architecture.md describes: one-way imports, no circles, small modules.

The import graph is read from the source (every `import`, also inside functions), so a lazy import that
closes a circle fails here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

TOP = ("backend", "webui", "db")
MAX_LINES = 420  # "about 400 lines at most" (STYLE): a longer module is two modules


def _modules() -> dict[str, Path]:
    found = {}
    for top in TOP:
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports: `from a.b import c` is a.b.c when c is a module, else a.b."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            subs = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules}
            found |= subs
            if len(subs) < len(node.names):
                found.add(base)
    return {m for m in found if m in modules and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _package(module: str) -> str:
    """backend.runs.queue -> backend.runs; webui.tabs.train -> webui.tabs.train; db.models -> db."""
    parts = module.split(".")
    if parts[0] == "backend":
        return ".".join(parts[:2])
    return module if parts[0] == "webui" else parts[0]


def test_no_module_imports_itself_in_a_circle(graph):
    assert _cycles(graph) == []


def test_no_package_imports_itself_in_a_circle(graph):
    packages: dict[str, set[str]] = {}
    for module, deps in graph.items():
        packages.setdefault(_package(module), set()).update(
            _package(d) for d in deps if _package(d) != _package(module)
        )
    assert _cycles(packages) == []


def test_layers_import_one_way(graph):
    """db/ knows nothing above it; backend/ never imports the UI (nor Gradio); tabs never import each other."""
    wrong = []
    for module, deps in graph.items():
        top = module.split(".")[0]
        for dep in deps:
            if top == "db" and not dep.startswith("db"):
                wrong.append(f"{module} -> {dep}")
            if top == "backend" and dep.startswith("webui"):
                wrong.append(f"{module} -> {dep}")
            if module.startswith("webui.tabs.") and dep.startswith("webui.tabs."):
                tab, other = module.split(".")[2], dep.split(".")[2]
                if not (other.startswith(tab.split("_")[0] + "_") or tab.startswith(other + "_")):
                    wrong.append(f"{module} -> {dep}")  # a tab's own parts (runs_views for runs) are fine
    assert wrong == []


def test_backend_never_imports_gradio():
    users = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "backend").rglob("*.py")
        if any(
            (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "gradio" for a in n.names))
            or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "gradio")
            for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        )
    ]
    assert users == []


def test_every_backend_package_names_its_public_api():
    """Each capability is a folder whose __init__.py says in its docstring what lives where."""
    bare = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "backend").glob("*/__init__.py")
        if not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))
    ]
    assert bare == []


def test_modules_stay_small(graph):
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}

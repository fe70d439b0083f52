"""No import circles among seco's modules, counting function-local and ``TYPE_CHECKING`` imports too.

A circle hidden behind an import inside a function still ties the two modules together (neither can be read,
moved or tested alone); this test reads every ``import`` / ``from`` statement with :mod:`ast`, wherever it
sits, builds the module graph and fails with the circle it found.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package_dir`` (a package's name is its folder's)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of ``modules`` (``a.b.func`` -> ``a.b``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports, from every import statement in its file (any depth)."""
    modules = module_files(package_dir)
    top = package_dir.name
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                edges.update(_known(a.name, modules) for a in node.names if a.name.split(".")[0] == top)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from .x import y
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.split(".")[0] != top:
                    continue
                for a in node.names:  # `from pkg import submodule` imports the submodule
                    sub = f"{source}.{a.name}"
                    edges.add(sub if sub in modules else _known(source, modules))
        graph[name] = {e for e in edges if e is not None and e != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or ``None`` (depth-first search, deterministic order)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_seco_has_no_import_cycle() -> None:
    graph = import_graph(ROOT / "seco")
    assert len(graph) > 50 and graph["seco.collect.worker"]  # the walk found the package and its imports
    cycle = find_cycle(graph)
    assert cycle is None, (
        f"import cycle: {' -> '.join(cycle or [])}; move what one module needs from the other to where it belongs "
        "(a lower module both can import), so imports go one way"
    )


@pytest.mark.parametrize("where", ["top", "function", "type_checking"])
def test_a_planted_cycle_is_found_wherever_the_import_sits(tmp_path: Path, where: str) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from pkg.sub.b import thing\n")
    back = {
        "top": "from . import a\n",
        "function": "def f():\n    from pkg.sub.a import thing\n    return thing\n",
        "type_checking": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.sub.a\n",
    }[where]
    (pkg / "sub" / "b.py").write_text("thing = 1\n" + back)
    (pkg / "c.py").write_text("from pkg.sub import a, b\n")  # imports both, is in no cycle
    graph = import_graph(pkg)
    assert graph["pkg.c"] == {"pkg.sub.a", "pkg.sub.b"}
    assert find_cycle(graph) == ["pkg.sub.a", "pkg.sub.b", "pkg.sub.a"]
    (pkg / "sub" / "b.py").write_text("thing = 1\n")
    assert find_cycle(import_graph(pkg)) is None

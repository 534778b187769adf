"""The package's layering, checked on the import graph (every ``import`` statement, also the
lazy ones inside functions): no import cycle inside ``scaling``; each stage imports only the
stages below it (DESIGN.md: sweep and cost never import the planner; nothing imports the CLI).
The checker is shown to fail on a planted forbidden import and a planted cycle."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "scaling"
SHARED = {"errors", "units", "files", "law", "formula"}
#: stage -> the stages it may import (besides itself and the shared modules)
ALLOWED = {
    "shared": set(),
    "cost": set(),
    "fit": set(),
    "planner": {"cost", "fit"},
    "sweep": {"cost"},
    "design": {"cost", "fit", "planner", "sweep"},
    "toyvlm": set(),
    "plot": {"cost", "fit", "planner"},
    "cli": {"cost", "fit", "planner", "sweep", "design", "plot", "toyvlm"},
    "root": {"cost", "fit", "planner", "plot"},
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    return "shared" if parts[1] in SHARED else parts[1]


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the ``scaling`` modules it imports (``from a import b`` counts ``a.b`` when
    ``b`` is a module, else ``a``)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    targets.add(sub if sub in files else node.module)
        graph[mod] = {t for t in targets if t in files and t != mod}
    return graph


def violations(root: Path) -> list[str]:
    graph = import_graph(root)
    out = []
    for mod, targets in sorted(graph.items()):
        for t in sorted(targets):
            if t == "scaling":  # the root loads its exports lazily: no edge to a stage
                continue
            s, d = stage(mod), stage(t)
            if d in (s, "shared") or d in ALLOWED[s]:
                continue
            out.append(f"{mod} ({s}) imports {t} ({d})")
    out += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_layering_holds():
    assert violations(PACKAGE) == []


@pytest.mark.parametrize("victim, line, expected", [
    ("cost/flops.py", "from scaling.planner import plan", "imports scaling.planner"),
    ("sweep/store.py", "    from scaling.planner.answer import plan", "imports scaling.planner"),
    ("fit/table.py", "import scaling.cli", "imports scaling.cli"),
    ("cost/specs.py", "from scaling.cost import flops", "import cycle"),
])
def test_layering_check_fails_on_a_planted_import(tmp_path, victim, line, expected):
    copy = tmp_path / "scaling"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / victim
    body = target.read_text()
    if line.startswith(" "):  # a lazy import inside a function
        body += f"\n\ndef _planted():\n{line}\n"
    else:
        body = body.replace("from __future__ import annotations\n",
                            f"from __future__ import annotations\n\n{line}\n", 1)
    target.write_text(body)
    found = violations(copy)
    assert any(expected in v for v in found), found

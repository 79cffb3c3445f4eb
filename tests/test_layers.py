"""The pipeline's layers: every module of ``qa/`` imports only modules of its own layer or
below, and no import cycle exists (imports inside functions count too).

corpus/cleaning/analysis -> chunking -> encoders -> engines -> index -> retrieval ->
answer -> front doors (service, cli, app, evaluation, benchmarks), on top of a few
modules every layer may use (errors, config, locking, version).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QA = ROOT / "qa"

LAYERS: list[tuple[str, ...]] = [
    ("qa.errors", "qa.config", "qa.version", "qa.locking"),
    ("qa.corpus", "qa.cleaning", "qa.spans", "qa.analysis", "qa.sentences", "qa.questions"),
    ("qa.chunking",),
    ("qa.encoders", "qa.embeddings"),
    ("qa.engines",),
    ("qa.index",),
    ("qa.retrieval",),
    ("qa.answer",),
    (
        "qa.export",
        "qa.service",
        "qa.cli",
        "qa.evaluate",
        "qa.evalcli",
        "qa.bench",
        "qa.bench_workers",
        "qa.bench_load",
        "qa.distributed",
        "app",
    ),
]


def _modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for path in sorted(QA.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _layer(module: str) -> int | None:
    if module == "qa":
        return None  # the package's re-exports: imported by no module of it
    for depth, group in enumerate(LAYERS):
        if any(module == g or module.startswith(g + ".") for g in group):
            return depth
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The qa modules ``name`` imports (relative or absolute, at any depth of the file)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # "from . import x" may name a module x, or a name in the package
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path, _modules()) for name, path in _modules().items()}


@pytest.mark.parametrize("name", sorted(n for n in GRAPH if n != "app"))
def test_every_module_imports(name):
    importlib.import_module(name)


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_imports_go_down_the_layers(name):
    if name == "qa":
        return
    mine = _layer(name)
    upward = {other: _layer(other) for other in GRAPH[name] if _layer(other) is None or _layer(other) > mine}  # type: ignore[operator]
    assert not upward, f"{name} (layer {mine}) imports a layer above it: {upward}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (depth-first), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for other in sorted(graph.get(node, ())):
            if state.get(other) == 1:
                return path[path.index(other) :] + [other]
            if other not in state and (cycle := visit(other, [*path, other])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_no_import_cycle():
    assert find_cycle(GRAPH) is None, "import cycle: " + " -> ".join(find_cycle(GRAPH) or [])


def test_the_checker_finds_cycles_and_imports_inside_functions():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert "qa.answer" in GRAPH["qa.cli"]  # imported inside a function of cli.py
    assert "qa.engines" in GRAPH["qa.index.load"] and "qa.chunking" in GRAPH["qa.index.load"]  # "from ..x import": resolved


def test_index_and_retrieval_name_no_engine():
    """The index and retrieval know engines only through the registry."""
    for name in (*[n for n in GRAPH if n.startswith("qa.index")], "qa.retrieval", "qa.answer"):
        text = _modules()[name].read_text(encoding="utf-8")
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        for word in ("import faiss", "import bm25s", "qdrant_edge", "qdrant_client", "engines.local", "engines.qdrant"):
            assert word not in code, f"{name} names an engine ({word})"

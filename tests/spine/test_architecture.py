"""The house's rooms (docs/architecture.md): no import circle between evalkit's modules, one
orchestration module, nothing below the pipeline importing it."""

from __future__ import annotations

import ast
from pathlib import Path

import evalkit

ROOT = Path(evalkit.__file__).resolve().parent


def import_graph() -> dict[str, set[str]]:
    """module -> evalkit modules it imports anywhere in its body (function-level imports too)."""
    mods: dict[str, Path] = {}
    for f in ROOT.rglob("*.py"):
        parts = ("evalkit", *f.relative_to(ROOT).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = f
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    if f"{node.module}.{alias.name}" in mods:
                        graph[name].add(f"{node.module}.{alias.name}")
                if node.module in mods:
                    graph[name].add(node.module)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in mods)
    graph = {m: {t for t in ts if t != "evalkit"} for m, ts in graph.items()}  # the package root
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (brute force: reachability)."""
    reach: dict[str, set[str]] = {}
    for start in graph:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        reach[start] = seen
    comps = {frozenset({a, *(b for b in graph if b in reach[a] and a in reach[b])}) for a in graph}
    return sorted(sorted(c) for c in comps if len(c) > 1)


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle() -> None:
    assert cycles(import_graph()) == []


def test_nothing_below_the_pipeline_imports_it() -> None:
    graph = import_graph()
    users = sorted(m for m, targets in graph.items() if "evalkit.pipeline" in targets)
    # the commands and entry points on top; the spawned rank's entry hands the stages in
    assert set(users) <= {"evalkit.api", "evalkit.cli", "evalkit.runner.distributed_worker",
                          "evalkit.runner.rescore", "evalkit.judge.cli"}  # fmt: skip
    for low in (
        "evalkit.runner.runner",
        "evalkit.runner.distributed",
        "evalkit.models.base",
        "evalkit.types",
    ):
        assert "evalkit.pipeline" not in graph[low]
    assert "evalkit.cli" not in {t for m, ts in graph.items() if m != "evalkit.cli" for t in ts}

"""acebert's modules depend on each other without a cycle, lazy (in-function) imports included.

A cycle is how the ONNX serving path once came to import torch: the contract, the
featurisation and the torch encoder imported each other, so any of them loaded them all.
"""
from __future__ import annotations

import ast
from graphlib import TopologicalSorter
from pathlib import Path

ACEBERT = Path(__file__).resolve().parents[2] / "acebert"


def acebert_imports(path: Path) -> set[str]:
    """The ``acebert.*`` modules that ``path`` imports anywhere in its code."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "acebert":
            imported.update(f"acebert.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module)
    return {name for name in imported if name.startswith("acebert.")}


def test_acebert_has_no_import_cycle() -> None:
    graph = {f"acebert.{path.stem}": acebert_imports(path) for path in ACEBERT.glob("*.py")}
    assert graph["acebert.encoder"] == set()  # the contract imports no implementation
    TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle

"""Imports point down the layers of the README's Layout, and no two modules of sb3_snn import each other.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``); ``lint-imports`` checks them in CI and
here. The cycle check has no import-linter contract, so it is done here on grimp's import graph: every
strongly connected set of more than one module is a cycle. Imports under ``if TYPE_CHECKING:`` are left
out (they never run); imports inside functions count (they are still a dependency, only a later one).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _layers() -> list[str]:
    (layers,) = [c["layers"] for c in _config()["contracts"] if c["type"] == "layers"]
    return layers


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """The import cycles of ``graph``: its strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def describe(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    """Each import inside ``cycle`` as ``importer -> imported (l.N)``, to say which line to move."""
    lines = []
    for importer in cycle:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & set(cycle)):
            numbers = sorted(d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported))
            lines.append(f"{importer} -> {imported} (l.{', '.join(map(str, numbers))})")
    return "\n".join(lines)


def test_lint_imports_keeps_every_contract():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    if not lint_imports.is_file():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    proc = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_no_import_cycle_between_modules():
    graph = grimp.build_graph("sb3_snn", exclude_type_checking_imports=True, cache_dir=None)
    cycles = strongly_connected(graph)
    assert not cycles, "\n\n".join(describe(graph, cycle) for cycle in cycles)


def test_cycle_finder_finds_a_cycle_and_only_the_cycle():
    graph = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d"), ("p.d", "p.e")]:
        graph.add_import(importer=importer, imported=imported, line_number=1, line_contents="import")
    assert strongly_connected(graph) == [["p.a", "p.b", "p.c"]]
    graph.remove_import(importer="p.c", imported="p.a")
    assert strongly_connected(graph) == []


def test_layers_contract_catches_an_upward_import():
    """The layers as configured: the real graph obeys them once an upward import is added, it does not."""
    layers = _layers()
    assert layers[0] == "sb3_snn.cli" and layers[-1] == "sb3_snn.spiking"
    graph = grimp.build_graph("sb3_snn", cache_dir=None)
    grimp_layers = [grimp.Layer(*(name.strip() for name in layer.split("|")), independent=True) for layer in layers
                    if all(name.strip() in graph.modules for name in layer.split("|"))]
    before = graph.find_illegal_dependencies_for_layers(layers=grimp_layers)
    graph.add_import(importer="sb3_snn.spiking.simulate", imported="sb3_snn.cli.main", line_number=1,
                     line_contents="from sb3_snn.cli.main import main")
    after = graph.find_illegal_dependencies_for_layers(layers=grimp_layers)
    added = {(d.importer, d.imported) for d in after} - {(d.importer, d.imported) for d in before}
    assert ("sb3_snn.spiking", "sb3_snn.cli") in added

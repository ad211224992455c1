"""The import graph of avrep/ holds its layers: no cycle, nothing imports upward (scripts/import_graph.py,
an ast graph with function-level imports; the layers are the ones .importlinter states)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", REPO / "scripts" / "import_graph.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ig = _import_graph()


@pytest.fixture(scope="module")
def graph():
    return ig.build_graph(REPO / "avrep")


def test_no_import_cycles(graph):
    assert ig.strongly_connected(graph) == []
    assert ig.strongly_connected(ig.package_graph(graph)) == []


def test_no_upward_imports_and_every_package_in_a_layer(graph):
    layers = ig.read_layers(REPO / ".importlinter")
    assert ig.upward_imports(graph, layers) == []
    assert ig.unlayered(graph, layers) == []


def test_library_never_imports_training_or_the_cli(graph):
    layers = ig.read_layers(REPO / ".importlinter")
    top = [n for names in layers[: layers.index(["avrep.train"]) + 1] for n in names]
    library = [m for m in graph if m != "avrep" and not any(m == t or m.startswith(t + ".") for t in top)]
    assert library and not [
        (m, d) for m in library for d in graph[m] if any(d == t or d.startswith(t + ".") for t in top)
    ]


def test_checker_sees_function_level_cycles_and_upward_imports(tmp_path):
    pkg = tmp_path / "pk"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("from . import a\n")
    (pkg / "low" / "a.py").write_text("def f():\n    from pk.high import b\n    return b\n")
    (pkg / "high.py").write_text("from pk.low.a import f\n")
    g = ig.build_graph(pkg)
    assert g["pk.low"] == {"pk.low.a": 1} and g["pk.low.a"] == {"pk.high": 2}
    assert ig.strongly_connected(g) == [["pk.high", "pk.low.a"]]
    assert ig.strongly_connected(ig.package_graph(g)) == [["pk.high", "pk.low"]]
    layers = [["pk.high"], ["pk.low"]]
    assert ig.upward_imports(g, layers) == [("pk.low.a", "pk.high", 2)]


@pytest.mark.skipif(
    importlib.util.find_spec("importlinter") is None, reason="import-linter not installed (pip install -e .[dev])"
)
def test_import_linter_contracts_kept():
    """`lint-imports` (the CI command) with this interpreter: every .importlinter contract kept."""
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    r = subprocess.run(
        [sys.executable, "-c", code, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]

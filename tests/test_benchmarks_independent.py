"""Benchmarks import no test code (issue 25): what both need lives in `avrep.testing`.

benchmarks/ is not a package, so import-linter cannot see it; this walks the ast of every benchmark: no
import of `tests` or of a module that lives in tests/ (mediautil, rbharness, conftest...), and no path into
tests/ built from string pieces (the way benchmarks/_common.py once put tests/robustness on sys.path).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_MODULES = {"tests", "rbharness"} | {p.stem for p in (REPO / "tests").rglob("*.py")}


def reaches_test_code(source: str) -> list[str]:
    """What `source` imports from the test suite, and string constants naming tests/ as a path."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in TEST_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in TEST_MODULES:
                found.append(node.module)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):  # ROOT / "tests" / ...
            if isinstance(node.right, ast.Constant) and node.right.value in ("tests", "robustness"):
                found.append(f"path .../{node.right.value}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith(("tests/", "../tests")) and node.value.endswith(".py"):
                found.append(node.value)
    return found


def test_checker_sees_imports_of_test_code():
    src = "import mediautil\nfrom rbharness import run_cli\nfrom tests.x import y\np = ROOT / 'tests'\nimport numpy\n"
    assert reaches_test_code(src) == ["mediautil", "rbharness", "tests.x", "path .../tests"]


def test_benchmarks_import_no_test_code():
    bad = []
    for p in sorted((REPO / "benchmarks").glob("*.py")):
        bad += [f"{p.name}: {what}" for what in reaches_test_code(p.read_text())]
    assert bad == [], "benchmarks reach into tests/ (move what they share to avrep.testing):\n" + "\n".join(bad)

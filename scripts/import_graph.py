#!/usr/bin/env python3
"""The import graph of avrep/, from the source (ast): module-level AND function-level imports.

Checks what `lint-imports` checks with its own eyes, so a blind spot of one tool is not a blind spot of
both: no import cycle between modules, none between top-level packages, and no import from a lower
layer to a higher one (the layers of the `layers` contract in .importlinter, the one place they are
written). Exit status 1 when anything is found.

    python scripts/import_graph.py            # summary; problems listed
    python scripts/import_graph.py --edges    # also every package -> package dependency
"""

from __future__ import annotations

import argparse
import ast
import configparser
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
Graph = dict[str, dict[str, int]]  # importer -> {imported module: first line}


def module_names(pkg_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package at `pkg_dir`."""
    mods: dict[str, Path] = {}
    for p in sorted(pkg_dir.rglob("*.py")):
        parts = list(p.relative_to(pkg_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    """The longest existing module that `name` (a module, or a name inside one) lives in."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def build_graph(pkg_dir: str | Path) -> Graph:
    """Internal imports of the package at `pkg_dir`: every `import` / `from ... import` anywhere in a
    module (top level, functions, classes, `if TYPE_CHECKING`), relative imports resolved."""
    pkg_dir = Path(pkg_dir)
    root = pkg_dir.name
    mods = module_names(pkg_dir)
    graph: Graph = {m: {} for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        here = mod if is_pkg else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")
                    up = up[: len(up) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                if t == root or t.startswith(root + "."):
                    r = _resolve(t, mods)
                    if r and r != mod:
                        graph[mod].setdefault(r, node.lineno)
    return graph


def strongly_connected(graph: dict[str, set[str]] | Graph) -> list[list[str]]:
    """Components of more than one node (each holds at least one cycle), Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def package_graph(graph: Graph, depth: int = 2) -> dict[str, set[str]]:
    """Collapse modules to their first `depth` name parts (avrep.data.store -> avrep.data)."""

    def top(m: str) -> str:
        return ".".join(m.split(".")[:depth])

    pg: dict[str, set[str]] = defaultdict(set)
    for a, targets in graph.items():
        pg[top(a)]
        for b in targets:
            if top(a) != top(b):
                pg[top(a)].add(top(b))
    return dict(pg)


def read_layers(config: str | Path = ROOT / ".importlinter", contract: str = "layers") -> list[list[str]]:
    """The layers (top first) of the .importlinter `layers` contract, as full module names."""
    cp = configparser.ConfigParser()
    cp.read(config)
    sec = cp[f"importlinter:contract:{contract}"]
    containers = [c.strip() for c in sec.get("containers", "").split() if c.strip()]
    prefix = containers[0] + "." if containers else ""
    layers = []
    for line in sec["layers"].strip().splitlines():
        names = [n.strip() for n in line.replace(":", "|").split("|") if n.strip()]
        layers.append([prefix + n for n in names])
    return layers


def upward_imports(graph: Graph, layers: list[list[str]]) -> list[tuple[str, str, int]]:
    """(importer, imported, line) for every import from a lower layer to a higher one, or between two
    packages sharing a layer."""

    def where(m: str) -> tuple[int, str] | None:
        for i, names in enumerate(layers):
            for n in names:
                if m == n or m.startswith(n + "."):
                    return i, n
        return None

    bad = []
    for a, targets in sorted(graph.items()):
        la = where(a)
        for b, line in sorted(targets.items()):
            lb = where(b)
            if la is None or lb is None:
                continue  # the root package (__version__) is in no layer
            if lb[0] < la[0] or (lb[0] == la[0] and lb[1] != la[1]):
                bad.append((a, b, line))
    return bad


def unlayered(graph: Graph, layers: list[list[str]], root: str = "avrep") -> list[str]:
    """Top-level modules/packages of `root` that no layer names."""
    named = {n for names in layers for n in names}
    tops = {".".join(m.split(".")[:2]) for m in graph if m != root}
    return sorted(t for t in tops if t not in named)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--package", default=str(ROOT / "avrep"), help="package folder [avrep/]")
    ap.add_argument("--config", default=str(ROOT / ".importlinter"), help="import-linter config with the layers")
    ap.add_argument("--edges", action="store_true", help="print every package -> package dependency")
    a = ap.parse_args(argv)
    graph = build_graph(a.package)
    layers = read_layers(a.config)
    pg = package_graph(graph)
    cycles, pcycles = strongly_connected(graph), strongly_connected(pg)
    up, missing = upward_imports(graph, layers), unlayered(graph, layers, Path(a.package).name)
    n_edges = sum(len(t) for t in graph.values())
    print(f"{len(graph)} modules, {n_edges} internal imports (module and function level)")
    if a.edges:
        for p in sorted(pg):
            print(f"  {p} -> {', '.join(sorted(pg[p])) or '-'}")
    for c in cycles:
        print(f"module cycle: {' <-> '.join(c)}")
    for c in pcycles:
        print(f"package cycle: {' <-> '.join(c)}")
    for imp, dep, line in up:
        print(f"upward import: {imp} (line {line}) -> {dep}")
    for m in missing:
        print(f"in no layer: {m} (add it to {Path(a.config).name})")
    print(
        f"{len(cycles)} module cycles, {len(pcycles)} package cycles, {len(up)} upward imports, "
        f"{len(missing)} unlayered"
    )
    return 1 if cycles or pcycles or up or missing else 0


if __name__ == "__main__":
    sys.exit(main())

"""The library reports through exceptions and logging/warnings; only the command line prints (issue 25).

import-linter cannot see calls, so this walks the ast of every library module: no `print(...)`, no
`click.echo(...)` / `click.secho(...)`, no `sys.stdout.write` / `sys.stderr.write`. Commands (avrep/commands,
avrep/cli.py, avrep/__main__.py) may print. Progress bars (tqdm, on stderr and only on request) are not prints.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMAND_LINE = ("avrep/commands/", "avrep/cli.py", "avrep/__main__.py")
# file -> reason; keep it empty unless printing there is truly the module's job
ALLOWED: dict[str, str] = {}


def prints_in(source: str) -> list[tuple[int, str]]:
    """(line, what) of every print / click.echo / sys.std{out,err}.write call in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id == "print":  # a callback named echo (a sink the caller passes) is fine
            found.append((node.lineno, f.id))
        elif isinstance(f, ast.Attribute):
            if f.attr in ("echo", "secho") and isinstance(f.value, ast.Name) and f.value.id == "click":
                found.append((node.lineno, f"click.{f.attr}"))
            elif (
                f.attr == "write"
                and isinstance(f.value, ast.Attribute)
                and f.value.attr in ("stdout", "stderr")
                and isinstance(f.value.value, ast.Name)
                and f.value.value.id == "sys"
            ):
                found.append((node.lineno, f"sys.{f.value.attr}.write"))
    return found


def test_checker_finds_prints():
    src = "import sys, click\nprint('a')\nclick.echo('b')\nsys.stderr.write('c')\nlog.info('fine')\n"
    assert [w for _, w in prints_in(src)] == ["print", "click.echo", "sys.stderr.write"]


def test_library_never_prints():
    bad = []
    for p in sorted((REPO / "avrep").rglob("*.py")):
        rel = p.relative_to(REPO).as_posix()
        if rel.startswith(COMMAND_LINE) or rel in ALLOWED:
            continue
        bad += [f"{rel}:{line}: {what}" for line, what in prints_in(p.read_text())]
    assert bad == [], "the library prints (log or warn instead; only avrep/commands print):\n" + "\n".join(bad)

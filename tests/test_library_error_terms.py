"""Library errors speak of arguments in library terms; the CLI adds the flag (issue 25). An AST walk over the
library finds no exception message naming a command-line flag outside the allow-list below."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from avrep.cli import error_line, main
from avrep.errors import AvrepError

ROOT = Path(__file__).resolve().parents[1] / "avrep"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")
ERRORS = {"AvrepError", "MediaError", "NoFaceError", "ConfigError", "MissingExtraError"}
# file -> why it may still name a flag
ALLOWED = {
    "models/loading.py": "suggests a whole command line to run (`avrep train-generator --davs RUN ...`)",
}


def _flag_messages(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        is_error = isinstance(node, ast.Raise) or (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ERRORS
        )
        if is_error:
            for s in ast.walk(node):
                if isinstance(s, ast.Constant) and isinstance(s.value, str) and FLAG.search(s.value):
                    found.append(f"{path.relative_to(ROOT)}:{s.lineno}: {s.value.strip()[:80]}")
    return found


def test_library_error_messages_name_no_flags():
    library = [p for p in sorted(ROOT.rglob("*.py")) if p.relative_to(ROOT).parts[0] not in ("commands", "cli.py")]
    bad = [m for p in library if str(p.relative_to(ROOT)) not in ALLOWED for m in _flag_messages(p)]
    assert not bad, "library messages naming CLI flags (name the argument, AvrepError(param=...)):\n" + "\n".join(bad)
    assert _flag_messages(ROOT / "commands" / "index.py"), "the walk must see flags where commands name them"


def test_error_line_maps_each_param_to_its_flag():
    e = AvrepError("give exactly one of audio or video", param=("audio", "video"))
    assert error_line(e) == "avrep: error: give exactly one of audio or video (--audio, --video)"
    assert error_line(AvrepError("fmt 'csv': choose one of json", param="fmt")).endswith("(--format)")


@pytest.mark.parametrize(
    "argv,line",
    [
        (["train", "--data", "toy", "--epochs", "0"], "epochs 0: must be >= 1 (--epochs)"),
        (["prepare", "lrs2", "{tmp}", "--min-count", "0"], "min_count 0: must be >= 1 (--min-count)"),
    ],
)
def test_cli_names_the_flag_of_a_library_error(argv, line, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 1 and err[-1] == f"avrep: error: {line}", err


def test_error_param_survives_pickling():
    """Errors raised in worker processes are pickled back: the param the CLI maps to a flag must come along."""
    import pickle

    from avrep.errors import ConfigError, NoFaceError

    for err in (NoFaceError("a.mp4: no face", param="video"), ConfigError("bad key", param=("config", "name"))):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and back.args == err.args and back.param == err.param

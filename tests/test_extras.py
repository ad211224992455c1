"""Optional dependencies (setup.cfg extras): a missing one gives a one-line error naming the extra to install,
commands that do not need one never import it, and the extras never install two `faiss` modules.

A missing package is simulated in a subprocess by `sys.modules[name] = None` (Python's own marker for "this
import fails"), so the real avrep code paths run; nothing is uninstalled."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, hide: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    pre = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in hide)
    return subprocess.run([sys.executable, "-c", pre + code], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize(
    "hide, code, extra",
    [
        (("fastapi",), "import avrep.serve", "serve"),
        (("uvicorn",), "import avrep.serve", "serve"),
        (("matplotlib",), "from avrep.plotting import pyplot; pyplot()", "report"),
        (
            ("matplotlib",),
            "from avrep.apps.speaker_formats import check_plot_path; check_plot_path('a.mp4', 'p.png')",
            "report",
        ),
        (("faiss",), "import avrep.index", "cpu"),
        (("faiss",), "from avrep import Index", "cpu"),
    ],
)
def test_missing_extra_is_one_line_naming_it(hide, code, extra):
    c = _run(
        f"from avrep.errors import MissingExtraError\ntry:\n    {code}\nexcept MissingExtraError as e:\n    print(e)\n",
        hide,
    )
    assert c.returncode == 0, c.stderr
    msg = c.stdout.strip()
    assert "\n" not in msg and f"pip install 'avrep[{extra}]'" in msg and hide[0] in msg, msg
    if extra == "cpu":
        assert "avrep[gpu]" in msg


def test_cli_serve_without_the_extra(tmp_path):
    """`avrep serve` without fastapi: one line on stderr naming [serve], no traceback, a non-zero exit."""
    c = _run(f"from avrep.cli import main\nmain(['serve', {str(tmp_path)!r}])", ("fastapi",))
    assert c.returncode != 0
    err = c.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "pip install 'avrep[serve]'" in err


def test_commands_do_not_import_optional_packages():
    """Every command's --help (which imports its module) and the speakers formats module leave matplotlib,
    fastapi, uvicorn, faiss and decord unimported."""
    code = """
from click.testing import CliRunner
import avrep.cli, avrep.apps.speaker_formats
g = avrep.cli.cli
r = CliRunner()
for name in avrep.cli.COMMANDS:
    assert r.invoke(g, [name, '--help']).exit_code == 0, name
    for sub in getattr(g.get_command(None, name), 'commands', {}):
        assert r.invoke(g, [name, sub, '--help']).exit_code == 0, (name, sub)
print(sorted(m for m in ('matplotlib', 'fastapi', 'uvicorn', 'faiss', 'decord') if m in sys.modules))
"""
    c = _run(code)
    assert c.returncode == 0, c.stderr
    assert c.stdout.strip() == "[]"


def _cfg() -> configparser.ConfigParser:
    cp = configparser.ConfigParser()
    cp.read(ROOT / "setup.cfg")
    return cp


def _names(block: str) -> list[str]:
    return [re.split(r"[<>=!~\[; ]", ln.strip(), maxsplit=1)[0].lower() for ln in block.splitlines() if ln.strip()]


def test_extras_never_install_two_faiss_modules():
    cp = _cfg()
    core = _names(cp["options"]["install_requires"])
    extras = {k: _names(v) for k, v in cp["options.extras_require"].items()}
    assert not [n for n in core if n.startswith("faiss")], "faiss-cpu/-gpu both provide `faiss`: an extra picks one"
    for n in ("decord", "matplotlib", "fastapi", "uvicorn", "python-multipart"):
        assert n not in core, n
    faiss_by_extra = {k: [n for n in v if n.startswith("faiss")] for k, v in extras.items()}
    assert faiss_by_extra["cpu"] == ["faiss-cpu"] and faiss_by_extra["gpu"] == ["faiss-gpu"]
    assert all(not v for k, v in faiss_by_extra.items() if k not in ("cpu", "gpu"))
    # the install script picks cpu (never both) and the extras the test suite imports
    m = re.search(r"^EXTRAS=(\S+)$", (ROOT / "scripts" / "_venv.sh").read_text(), re.M)
    chosen = set(m.group(1).split(","))
    assert "cpu" in chosen and "gpu" not in chosen
    assert {"serve", "report", "compare", "dev"} <= chosen


def test_decoder_agrees_with_decord_on_h264(shared_data):
    """[compare]: avrep's decoder (PyAV, by timestamp) and decord show the same pictures on a 25 fps H.264 mp4
    (where decord's frame index is right; on MPEG-1 program streams it is not: benchmarks/decode.py)."""
    import av  # noqa: F401  (PyAV before decord: see conftest)
    import numpy as np

    decord = pytest.importorskip("decord", reason="decord is the [compare] extra: pip install 'avrep[compare]'")
    from avrep.io.media import read_video

    p = shared_data / "grid_s1" / "video" / "bbaf2n.mp4"
    if not p.exists():
        pytest.skip(f"{p} is absent")
    v = read_video(p)
    d = decord.VideoReader(str(p), num_threads=1)
    ref = d.get_batch(list(range(len(d)))).asnumpy()
    assert v.frames.shape == ref.shape
    assert np.abs(v.frames.astype(int) - ref.astype(int)).mean() < 2.0

"""One option vocabulary for every `avrep` command (issue 24), walked by click introspection over the whole
group (subgroups included), and the exit codes 0 / 1 / 2 on real invocations."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from avrep.cli import cli
from avrep.commands._options import WORKERS_DEFAULT

# shared concept -> (long name, short flag or None)
SHARED = {
    "out": ("--out", "-o"),
    "json": ("--json", None),
    "quiet": ("--quiet", "-q"),
    "workers": ("--workers", "-j"),
    "checkpoint": ("--checkpoint", "-c"),
    "device": ("--device", None),
}
# spellings of those concepts that must not appear anywhere
FORBIDDEN = {
    "--output",
    "--output-dir",
    "--out-dir",
    "--outdir",
    "--ckpt",
    "--model-path",
    "--run",
    "--num-workers",
    "--nworkers",
    "--jobs",
    "--processes",
    "--silent",
    "--verbose-json",
    "--as-json",
    "--gpu",
    "--cuda",
}


def _commands(group: click.Group, prefix: str = "avrep"):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", cmd


ALL = list(_commands(cli))


def test_walk_finds_subgroups():
    names = {n for n, _ in ALL}
    assert {"avrep sync", "avrep lipread", "avrep index build", "avrep prepare grid", "avrep store convert"} <= names
    assert len(names) >= 20


@pytest.mark.parametrize("name,cmd", ALL, ids=[n for n, _ in ALL])
def test_option_vocabulary(name, cmd):
    problems = []
    for p in cmd.params:
        if not isinstance(p, click.Option):
            continue
        names = set(p.opts) | set(p.secondary_opts)
        if not (p.help or "").strip():
            problems.append(f"{'/'.join(p.opts)} has no help text")
        bad = names & FORBIDDEN
        if bad:
            problems.append(f"uses {sorted(bad)} for a shared concept")
        for concept, (long, short) in SHARED.items():
            if long in names:
                if short is not None and short not in names:
                    problems.append(f"{long} without its short flag {short}")
                if concept == "workers" and p.default != WORKERS_DEFAULT:
                    problems.append(f"--workers defaults to {p.default}, not {WORKERS_DEFAULT}")
            elif short is not None and short in names:
                problems.append(f"{short} means {'/'.join(p.opts)} here, not {long}")
    assert not problems, f"{name}: " + "; ".join(problems)


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "avrep", *args], capture_output=True, text=True, timeout=timeout)


def test_exit_codes(tmp_path, shared_data):
    clip = shared_data / "lrc_ar" / "video" / "00139.mp4"
    if not clip.exists():
        pytest.skip("lrc_ar clips absent")
    ok = _run("sync", str(clip), "--device", "cpu", "-q")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"{clip}: ")
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    r = _run("sync", str(bad), "--device", "cpu", "-q")
    assert r.returncode == 1, r.stderr
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("avrep: error:")]
    assert len(errs) == 1 and str(bad) in errs[0] and "Traceback" not in r.stderr
    u = _run("sync", str(clip), "--no-such-option")
    assert u.returncode == 2 and "no such option" in u.stderr.lower()
    u = _run("sync")  # missing CLIP
    assert u.returncode == 2
    u = _run("lipread", str(clip), "-k", "many")
    assert u.returncode == 2

"""What every benchmark shares, and the one way it gets it: `from _common import ...`.

A benchmark runs as `python benchmarks/NAME.py`, so this folder is on sys.path and the import finds this
module. Importing it also puts the repository root on sys.path, so a bare checkout (the lent GPU machine,
where avrep is not installed) imports `avrep` from the tree; no benchmark edits sys.path itself.

It owns: the repository paths (`ROOT`, `RESULTS`, `DATA`), the goals table (`goals.json`, which
`avrep report` reads too), the stamp of a result (date, machine, versions), atomic result writing (a temp
file in the same folder, then `os.replace`, through `avrep.utils`) and the robustness harness that
benchmarks/robustness.py shares with tests/robustness.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
GOALS_FILE = HERE / "goals.json"
DATA = ROOT.parent / "shared" / "data"  # real recordings (GRID, wild clips) beside the checkout

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def now() -> str:
    """The date stamp of a result: local time, ISO 8601 to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def machine_info(**extra: Any) -> dict[str, Any]:
    """CPU (model, count), RAM, platform, Python, 1-minute load and the GPU when torch sees one; `extra`
    adds benchmark-specific fields (thread counts, a note on shared CPUs)."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_1m": os.getloadavg()[0],
    }
    try:
        info["ram_bytes"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception:
        pass
    return {**info, **extra}


def versions(*pkgs: str) -> dict[str, str]:
    """Installed versions of avrep and the distributions `pkgs` ("absent" for one not installed)."""
    out = {}
    for p in ("avrep", *pkgs):
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "absent"
    return out


def stamp(*pkgs: str, **machine_extra: Any) -> dict[str, Any]:
    """The date, machine and versions (avrep + `pkgs`) a result records."""
    return {"date": now(), "machine": machine_info(**machine_extra), "versions": versions(*pkgs)}


def goals(section: str) -> dict[str, float]:
    """One block of the goals table (benchmarks/goals.json), e.g. goals("lipread")["audio_top1"]."""
    return json.loads(GOALS_FILE.read_text())[section]


def result_path(name: str | os.PathLike) -> Path:
    """results/<name>.json for a bare name; a path (with a folder or a suffix) as given."""
    p = Path(name)
    return p if p.suffix or len(p.parts) > 1 else RESULTS / f"{p}.json"


def read_result(name: str | os.PathLike) -> dict[str, Any]:
    """An earlier result to merge into (by name or path), or {} when there is none or it is unreadable."""
    p = result_path(name)
    try:
        obj = json.loads(p.read_text())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _plain(x: Any) -> Any:
    """JSON for numpy scalars and arrays (as numbers and lists); anything else as its str()."""
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as JSON atomically: a temp file in the same folder, then os.replace."""
    from avrep.utils import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_plain) + "\n").encode())
    return path


def write_result(name: str | os.PathLike, obj: dict[str, Any]) -> Path:
    """Stamp `obj` with the date and machine (its own values win) and write it atomically to
    results/<name>.json, or to `name` when that is a path; returns the path."""
    return write_json(result_path(name), {"date": now(), "machine": machine_info(), **obj})


def robustness_harness() -> ModuleType:
    """avrep.testing.robustness: the bad-media zoo, CLI runner, kill/resume and fuzz helpers that the
    robustness tests use and benchmarks/robustness.py runs at scale (benchmarks never import tests/)."""
    from avrep.testing import robustness

    return robustness


def lipread_summary(ev: dict[str, Any]) -> dict[str, Any]:
    """The lip-reading and retrieval figures benchmarks report from an `evaluate_run` result."""
    lr = ev["lipread"]
    return {
        "n": lr["n"],
        "video_top1": lr["video"]["top1"],
        "audio_top1": lr["audio"]["top1"],
        "fused_top1": lr["fused"]["top1"],
        "a2v_R@1": ev["retrieval"]["a2v"]["R@1"],
    }


def log(*a: Any) -> None:
    """A progress line with the time of day (benchmarks run for minutes to hours)."""
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)

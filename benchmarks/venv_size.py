"""What the virtual environment costs on disk: the core install, torch's part of it, and each extra.

  python benchmarks/venv_size.py [--venv .venv] [--result venv_size]

Reads the installed distributions' RECORD files (the bytes each one put on disk, as `du` would count the
files, without directory blocks) and follows their requirements (importlib.metadata, markers evaluated):
  * core: avrep's install_requires and everything they pull in;
  * torch stack: torch, triton and the NVIDIA CUDA wheels (nvidia-*, cuda-*) it pulls in;
  * each extra (cpu, gpu, serve, report, compare, distributed, dev): what it adds over the core, where it
    is installed (gpu is not installed next to cpu: both provide the `faiss` module).
Also the whole venv folder as `du -sb` counts it. Nothing is timed: the numbers are exact for this venv.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from _common import ROOT, stamp, write_result

EXTRAS = ("cpu", "gpu", "serve", "report", "compare", "distributed", "dev")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(site: Path) -> dict[str, metadata.Distribution]:
    return {norm(d.metadata["Name"]): d for d in metadata.distributions(path=[str(site)])}


def dist_bytes(d: metadata.Distribution) -> int:
    total = 0
    for f in d.files or []:
        p = Path(d.locate_file(f))
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def closure(dists: dict[str, metadata.Distribution], roots: list[str]) -> set[str]:
    """Installed distributions reachable from requirement strings `roots` (markers evaluated, extras followed)."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [(r, "") for r in roots]
    while todo:
        spec, extra = todo.pop()
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = norm(req.name)
        wants = sorted(req.extras)
        key = name + ("[" + ",".join(wants) + "]" if wants else "")
        if key in seen or name not in dists:
            continue
        seen.add(key)
        seen.add(name)
        for sub in dists[name].requires or []:
            for e in ["", *wants]:
                todo.append((sub, e))
    return {k for k in seen if "[" not in k}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--venv", default=str(ROOT / ".venv"))
    ap.add_argument("--result", default="venv_size")
    a = ap.parse_args()
    venv = Path(a.venv)
    site = next(venv.glob("lib/python3*/site-packages"))
    dists = installed(site)
    size = {n: dist_bytes(d) for n, d in dists.items()}
    avrep = dists["avrep"]
    core_reqs = [r for r in avrep.requires or [] if "extra ==" not in r]
    core = closure(dists, core_reqs) - {"avrep"}
    torch_stack = {n for n in core if n in ("torch", "triton") or n.startswith(("nvidia-", "cuda-"))}
    mib = 1 << 20

    def block(names: set[str]) -> dict:
        return {"mib": round(sum(size[n] for n in names) / mib, 1), "distributions": len(names)}

    extras = {}
    for e in EXTRAS:
        reqs = [r.split(";")[0] for r in avrep.requires or [] if re.search(rf"extra == ['\"]{e}['\"]", r)]
        missing = [r for r in reqs if norm(re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0]) not in dists]
        if missing:
            extras[e] = {"installed": False, "missing": missing}
            continue
        add = closure(dists, reqs) - core - {"avrep"}
        top = sorted(add, key=lambda n: -size[n])[:6]
        extras[e] = {"installed": True, **block(add), "largest": {n: round(size[n] / mib, 1) for n in top}}
    du = subprocess.run(["du", "-sb", str(venv)], capture_output=True, text=True, check=True)
    venv_bytes = int(du.stdout.split()[0])
    res = {
        "benchmark": "disk cost of the virtual environment (installed files, by distribution)",
        **stamp("torch", "torchaudio", "faiss-cpu", "faiss-gpu"),
        "venv": str(venv),
        "venv_mib_du": round(venv_bytes / mib, 1),
        "installed_distributions": len(dists),
        "core": block(core),
        "torch_stack": {
            **block(torch_stack),
            "torch": round(size["torch"] / mib, 1),
            "nvidia_cuda_wheels": round(
                sum(size[n] for n in torch_stack if n.startswith(("nvidia-", "cuda-"))) / mib, 1
            ),
            "triton": round(size.get("triton", 0) / mib, 1),
        },
        "core_without_torch_stack": block(core - torch_stack),
        "extras_over_core": extras,
        "note": "extras count what they add over the core (a package shared by two extras counts in both); "
        "venv_mib_du also holds pip, setuptools and __pycache__ files that no RECORD lists",
    }
    write_result(a.result, res)
    print({k: res[k] for k in ("venv_mib_du", "core", "torch_stack", "core_without_torch_stack")}, file=sys.stderr)
    for e, v in extras.items():
        print(e, v, file=sys.stderr)


if __name__ == "__main__":
    main()

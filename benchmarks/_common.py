"""Shared benchmark helpers: machine/version info and atomic JSON results."""
from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, Any]:
    info = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_avg_1m": os.getloadavg()[0]}
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception:
        pass
    return info


def versions(*pkgs: str) -> dict[str, str]:
    out = {}
    for p in ("avrep", *pkgs):
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "absent"
    return out


def write_result(name: str, obj: dict[str, Any]) -> Path:
    from avrep.utils import atomic_write_json

    obj = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine_info(), **obj}
    path = RESULTS / f"{name}.json"
    atomic_write_json(path, obj)
    return path

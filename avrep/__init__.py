"""avrep: audio-visual speech representations (DAVS).

Top-level names load lazily so `import avrep` stays cheap:
`avrep.load` (model, transform), `avrep.Embedder`, `avrep.Index`, `avrep.create_model`, `avrep.load_run`,
`avrep.speakers`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Embedder": ("avrep.embed", "Embedder"),
    "Index": ("avrep.index", "Index"),
    "create_model": ("avrep.models", "create_model"),
    "load": ("avrep.loader", "load"),
    "load_run": ("avrep.models", "load_run"),
    "speakers": ("avrep.apps.speakers", "speakers"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'avrep' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]

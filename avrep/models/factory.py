"""`create_model(name_or_path, **overrides)` over the JSON configs in avrep/models/configs (open_clip style)."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from avrep.errors import AvrepError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def list_models() -> list[str]:
    """Names of the shipped configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json") if not p.stem.startswith("gen_"))  # gen_*: generators


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def get_config(name_or_path: str | dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Load a config by shipped name or JSON path; nested dict overrides are merged."""
    if isinstance(name_or_path, dict):
        cfg = copy.deepcopy(name_or_path)
    else:
        p = Path(name_or_path)
        if p.suffix == ".json" or p.exists():
            if not p.exists():
                raise AvrepError(f"{p}: model config not found")
        else:
            p = CONFIG_DIR / f"{name_or_path}.json"
            if not p.exists():
                raise AvrepError(f"unknown model config {name_or_path!r}; choose one of {', '.join(list_models())} "
                                 "or give a path to a .json config")
        try:
            cfg = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise AvrepError(f"{p}: invalid JSON ({e})") from None
    return _merge(cfg, overrides)


def create_model(name_or_path: str | dict[str, Any], **overrides: Any):
    """Build a DAVS model from a config name (tiny/small/base), a JSON path or a config dict.

    `num_words` / `num_speakers` come from the data at training time; override them here.
    """
    from avrep.models.davs import DAVS

    cfg = get_config(name_or_path, **overrides)
    for key in ("embed_dim", "video", "audio", "identity", "num_words", "num_speakers"):
        if key not in cfg:
            raise AvrepError(f"model config {cfg.get('name', name_or_path)!r} lacks {key!r}")
    return DAVS(cfg)

"""Loading trained runs: DAVS encoders (`load_run`) and the talking-face generator (`load_generator`).

Weights come only through the one safe loader, `avrep.security.load_safetensors` (never a pickle);
configs are JSON read through `avrep.security`. Nothing here needs the training package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.nn as nn

from avrep.errors import AvrepError
from avrep.models.factory import create_model
from avrep.models.generator import create_generator
from avrep.security import load_json, load_json_object, load_safetensors


def load_run(run_dir: str | Path, device: str = "cpu") -> tuple[Any, dict[str, Any], list[str]]:
    """Load a trained run -> (model in eval mode on `device`, config dict, vocabulary word list)."""

    run_dir = Path(run_dir)
    cp, wp, vp = run_dir / "config.json", run_dir / "model.safetensors", run_dir / "vocab.json"
    for p in (cp, wp, vp):
        if not p.exists():
            raise AvrepError(f"{p}: missing; {run_dir} is not a finished avrep training run")
    config = load_json_object(cp)
    vocab = load_json(vp)
    words = vocab["words"] if isinstance(vocab, dict) else list(vocab)
    model = create_model(config["model"])
    model.load_state_dict(load_safetensors(wp, "cpu"))
    model.to(device).eval()
    return model, config, words


def resolve_generator_dir(path: str | Path) -> Path:
    """A generator run dir, or a DAVS run dir holding one in `generator/`."""
    p = Path(path)
    if not p.is_dir():
        raise AvrepError(f"{p}: checkpoint directory not found")
    if (p / "generator.json").exists():
        return p
    if (p / "generator" / "generator.json").exists():
        return p / "generator"
    if (p / "vocab.json").exists() and (p / "model.safetensors").exists():
        raise AvrepError(
            f"{p}: is a DAVS encoder run without a generator; train one with "
            f"`avrep train-generator --davs {p} --data STORE --out {p}/generator`"
        )
    raise AvrepError(f"{p}: not a generator run (no generator.json)")


def load_generator(path: str | Path, device: Any = "cpu") -> tuple[Any, nn.Module | None, dict[str, Any]]:
    """(generator in eval mode, frozen DAVS model or None, config.json) from a generator run dir."""
    d = resolve_generator_dir(path)
    cfgp, wp = d / "config.json", d / "model.safetensors"
    if not cfgp.exists() or not wp.exists():
        raise AvrepError(f"{d}: generator run has no weights yet (no model.safetensors)")
    cfg = load_json_object(cfgp)
    G = create_generator(cfg["generator"])
    sd = load_safetensors(wp, "cpu")
    G.load_state_dict({k[4:]: v for k, v in sd.items() if k.startswith("gen.")})
    G.to(device).eval()
    davs = None
    if cfg.get("davs"):
        davs = create_model(cfg["davs"]["model"])
        dw = d / "davs.safetensors"
        if not dw.exists() and (d.parent / "model.safetensors").exists():
            dw = d.parent / "model.safetensors"  # a generator shipped inside its DAVS run keeps one copy of it
        if not dw.exists():
            raise AvrepError(f"{d}: generator run has no davs.safetensors (its frozen speech encoder)")
        davs.load_state_dict(load_safetensors(dw, "cpu"))
        davs.to(device).requires_grad_(False).eval()
    return G, davs, cfg


__all__ = ["load_generator", "load_run", "resolve_generator_dir"]

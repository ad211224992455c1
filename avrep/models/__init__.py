"""DAVS models: `create_model(name)` over configs/*.json, `load_run(run_dir)` for trained runs.

Imports only torch (no decord/faiss/av), so GPU benchmarks can use it on a bare machine.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from avrep.models.factory import create_model, get_config, list_models


def load_run(run_dir: str | Path, device: str = "cpu") -> tuple[Any, dict[str, Any], list[str]]:
    """Load a trained run -> (model in eval mode on `device`, config dict, vocabulary word list)."""
    from avrep.errors import AvrepError
    from avrep.train.checkpoint import load_weights

    run_dir = Path(run_dir)
    cp, wp, vp = run_dir / "config.json", run_dir / "model.safetensors", run_dir / "vocab.json"
    for p in (cp, wp, vp):
        if not p.exists():
            raise AvrepError(f"{p}: missing; {run_dir} is not a finished avrep training run")
    config = json.loads(cp.read_text())
    vocab = json.loads(vp.read_text())
    words = vocab["words"] if isinstance(vocab, dict) else list(vocab)
    model = create_model(config["model"])
    model.load_state_dict(load_weights(wp, "cpu"))
    model.to(device).eval()
    return model, config, words


__all__ = ["create_model", "get_config", "list_models", "load_run"]

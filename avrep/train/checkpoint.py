"""Checkpoints without pickles: weights and optimizer tensors in safetensors, the rest in JSON.

Run dir layout:
  model.safetensors            latest weights (what `load_run` reads)
  state.json                   {"epoch", "step", "checkpoint": "checkpoints/epoch_0003", ...}; written last
  checkpoints/epoch_XXXX/      model.safetensors, optimizer.safetensors, rng.safetensors, extra.json
A checkpoint folder is complete before state.json names it, so a kill at any moment leaves a
consistent run that `--resume` continues exactly.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from avrep.errors import AvrepError
from avrep.security import load_json_object, load_safetensors
from avrep.utils import atomic_path, atomic_write_json


def save_weights(path: str | Path, state: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write tensors (moved to the CPU) to a .safetensors file atomically; read back with
    `avrep.security.load_safetensors`."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_path(path, ".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state_dict into tensors (safetensors) and JSON-able values."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{idx}.{k}"] = v
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in list(tensors.items()) + list(meta["scalars"].items()):
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    py = random.getstate()
    return tensors, {"numpy": [kind, int(pos), int(has_gauss), float(cached)], "python": [py[0], list(py[1]), py[2]]}


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, cached))
    v, st, g = meta["python"]
    random.setstate((v, tuple(st), g))


def save_checkpoint(
    run_dir: str | Path,
    epoch: int,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    extra: dict[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Write checkpoints/epoch_XXXX/, then model.safetensors, then state.json (the commit point)."""
    run_dir = Path(run_dir)
    rel = f"checkpoints/epoch_{epoch:04d}"
    ck = run_dir / rel
    ck.mkdir(parents=True, exist_ok=True)
    meta = {"epoch": str(epoch), "step": str(step)}
    weights = model.state_dict()
    save_weights(ck / "model.safetensors", weights, meta)
    ot, ometa = optimizer_to_flat(optimizer)
    save_weights(ck / "optimizer.safetensors", ot, meta)
    rt, rmeta = rng_state()
    save_weights(ck / "rng.safetensors", rt, meta)
    atomic_write_json(ck / "extra.json", {"optimizer": ometa, "rng": rmeta, **(extra or {})})
    save_weights(run_dir / "model.safetensors", weights, meta)
    atomic_write_json(run_dir / "state.json", {"epoch": epoch, "step": step, "checkpoint": rel})
    old = sorted((run_dir / "checkpoints").glob("epoch_*"))[:-keep]
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    return ck


def load_checkpoint(
    run_dir: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    device: str | torch.device = "cpu",
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore model/optimizer/RNG from the checkpoint state.json names; returns state + extra."""
    run_dir = Path(run_dir)
    sp = run_dir / "state.json"
    if not sp.exists():
        raise AvrepError(f"{sp}: no checkpoint to resume from")
    state = load_json_object(sp)
    ck = run_dir / state["checkpoint"]
    model.load_state_dict(load_safetensors(ck / "model.safetensors", device))
    extra = load_json_object(ck / "extra.json")
    if optimizer is not None:
        optimizer_from_flat(optimizer, load_safetensors(ck / "optimizer.safetensors", device), extra["optimizer"])
    if restore_rng:
        set_rng_state(load_safetensors(ck / "rng.safetensors"), extra["rng"])
    return {**state, "extra": extra}

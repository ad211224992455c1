"""What `avrep train` and `avrep train-generator` share: starting (or resuming) a run, the learning-rate
schedule, per-epoch seeding and loaders, the JSONL log and the end-of-epoch commit.

Determinism: every epoch reseeds torch/numpy/python and the sampler from (seed, epoch, rank), so an
epoch's randomness does not depend on what ran before; with the optimizer state restored, a run
resumed from epoch k's checkpoint reproduces the uninterrupted run exactly on CPU.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from avrep.errors import AvrepError
from avrep.security import load_json_object
from avrep.train import checkpoint as ckpt
from avrep.train import ddp
from avrep.utils import atomic_write_bytes

log = logging.getLogger(__name__)


def resume_args(args, resume: bool, what: str = "training run"):
    """-> (args, resuming). A resumed run keeps its own saved settings, except how long to train and
    where/how to run; a run dir that already holds a run needs --resume."""
    run = Path(args.out)
    resuming = resume and (run / "state.json").exists()
    if resuming:
        saved = load_json_object(run / "config.json")["train"]
        keep = {k: getattr(args, k) for k in ("epochs", "workers", "device", "threads", "out")}
        args = type(args)(**{**saved, **keep})
    elif (run / "state.json").exists():
        raise AvrepError(
            f"{run}: already holds a {what}; resume it, or choose another out folder", param=("resume", "out")
        )
    for k in ("epochs", "batch_size"):
        if getattr(args, k) < 1:
            raise AvrepError(f"{k} {getattr(args, k)}: must be >= 1", param=k)
    if args.lr <= 0:
        raise AvrepError(f"lr {args.lr}: must be > 0", param="lr")
    return args, resuming


def seed_epoch(seed: int, epoch: int, rank: int) -> int:
    """Seed torch, numpy and python for one epoch of one rank; returns the seed (for the loader)."""
    s = (seed * 1_000_003 + epoch * 7919 + rank * 104_729) % (2**31 - 1)
    torch.manual_seed(s)
    np.random.seed(s)
    random.seed(s)
    return s


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up then cosine decay to 2% of base."""
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def rewrite_log(path: Path, upto_epoch: int) -> None:
    """Keep log entries of epochs <= upto_epoch (a resumed run re-logs the epochs after it)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("epoch", 0) <= upto_epoch]
    atomic_write_bytes(path, ("\n".join(keep) + "\n").encode() if keep else b"")


def append_log(path: Path, rec: dict[str, Any]) -> None:
    """Append one JSON record to a JSONL log (atomically: the file is rewritten whole)."""
    old = path.read_text() if path.exists() else ""
    atomic_write_bytes(path, (old + json.dumps(rec, sort_keys=True) + "\n").encode())


@dataclass
class RunStart:
    """A started run: its (possibly resumed) arguments, process group, device and precision."""

    args: Any
    resuming: bool
    run: Path
    dist: ddp.DistInfo
    amp: bool

    @property
    def device(self) -> torch.device:
        return self.dist.device

    def autocast(self) -> Callable[[], contextlib.AbstractContextManager]:
        """A factory of bf16 autocast contexts under AMP, else of null contexts."""
        if self.amp:
            return lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext


def start_run(args, resume: bool, what: str = "training run") -> RunStart:
    """CPU threads, --resume handling, the torchrun process group and AMP (default: on for CUDA)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    args, resuming = resume_args(args, resume, what)
    dist = ddp.init_distributed(args.device)
    amp = (dist.device.type == "cuda") if args.amp is None else bool(args.amp)
    return RunStart(args, resuming, Path(args.out), dist, amp)


def make_sampler(train_ds: Dataset, dist: ddp.DistInfo, seed: int, batch_size: int) -> tuple[DistributedSampler, int]:
    """(the shuffling sampler over ranks, whole batches per epoch on this rank)."""
    sampler = DistributedSampler(
        train_ds, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=seed, drop_last=True
    )
    return sampler, len(sampler) // batch_size


def epoch_batches(
    train_ds: Dataset,
    sampler: DistributedSampler,
    epoch: int,
    args: Any,
    dist: ddp.DistInfo,
    *,
    progress: bool = False,
    what: str = "epoch",
    **loader_kw: Any,
) -> Iterable:
    """Seed the epoch, then what to iterate: its DataLoader, or with `progress` its bar ("WHAT k/N").
    From `args`: seed, batch_size, workers, epochs; `loader_kw` go to the DataLoader (e.g. prefetch_factor)."""
    seed, batch_size, workers = args.seed, args.batch_size, args.workers
    gseed = seed_epoch(seed, epoch, dist.rank)
    sampler.set_epoch(epoch)
    if hasattr(train_ds, "set_epoch"):  # reproducible per-epoch augmentation
        train_ds.set_epoch(epoch)
    loader = DataLoader(
        train_ds,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        pin_memory=dist.device.type == "cuda",
        generator=torch.Generator().manual_seed(gseed),
        **loader_kw,
    )
    if progress and dist.main:
        return tqdm(loader, desc=f"{what} {epoch + 1}/{args.epochs}", unit="batch", leave=False)
    return loader


def commit_epoch(
    run: Path,
    rec: dict[str, Any],
    epoch: int,
    step: int,
    nets: torch.nn.Module,
    opt: torch.optim.Optimizer,
    dist: ddp.DistInfo,
    progress: bool,
) -> None:
    """End of an epoch: the main process logs `rec` (log.jsonl; with `progress`, the "avrep" logger too, which
    the CLI shows on stderr), checkpoints; all ranks then meet."""

    if dist.main:
        append_log(run / "log.jsonl", rec)
        ckpt.save_checkpoint(run, epoch + 1, step, nets, opt, extra={"train_record": rec})
        if progress:
            log.info("%s", json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()}))
    ddp.barrier()


__all__ = [
    "RunStart",
    "append_log",
    "commit_epoch",
    "epoch_batches",
    "lr_at",
    "make_sampler",
    "resume_args",
    "rewrite_log",
    "seed_epoch",
    "start_run",
]

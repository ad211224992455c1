"""The DAVS training loop: single process or torchrun DDP, AMP on GPU, exact resume, JSONL log.

Determinism: every epoch reseeds torch/numpy/python and the sampler from (seed, epoch, rank), so an
epoch's randomness does not depend on what ran before; with the optimizer state restored, a run
resumed from epoch k's checkpoint reproduces the uninterrupted run exactly on CPU.
"""
from __future__ import annotations

import contextlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler

from avrep.errors import AvrepError
from avrep.utils import atomic_write_bytes, atomic_write_json, write_manifest_json


@dataclass
class TrainArgs:
    config: str | dict = "tiny"
    data: str = "toy"
    out: str = "runs/run"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    grad_clip: float = 5.0
    seed: int = 0
    workers: int = 0
    device: str = "auto"
    amp: bool | None = None  # None: on for CUDA
    compile: bool = False
    frames: int = 29
    val_split: str = "val"
    val_max_clips: int = 2000
    threads: int | None = None
    loss: dict[str, Any] = field(default_factory=dict)


def resume_args(args, resume: bool, what: str = "training run"):
    """-> (args, resuming). A resumed run keeps its own saved settings, except how long to train and
    where/how to run; a run dir that already holds a run needs --resume."""
    run = Path(args.out)
    resuming = resume and (run / "state.json").exists()
    if resuming:
        saved = json.loads((run / "config.json").read_text())["train"]
        keep = {k: getattr(args, k) for k in ("epochs", "workers", "device", "threads", "out")}
        args = type(args)(**{**saved, **keep})
    elif (run / "state.json").exists():
        raise AvrepError(f"{run}: already holds a {what}; pass --resume to continue it or choose another --out")
    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0:
        raise AvrepError("--epochs and --batch-size must be >= 1 and --lr > 0")
    return args, resuming


def _seed_epoch(seed: int, epoch: int, rank: int) -> int:
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


def _rewrite_log(path: Path, upto_epoch: int) -> None:
    """Keep log entries of epochs <= upto_epoch (a resumed run re-logs the epochs after it)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("epoch", 0) <= upto_epoch]
    atomic_write_bytes(path, ("\n".join(keep) + "\n").encode() if keep else b"")


def _append_log(path: Path, rec: dict[str, Any]) -> None:
    old = path.read_text() if path.exists() else ""
    atomic_write_bytes(path, (old + json.dumps(rec, sort_keys=True) + "\n").encode())


def quick_metrics(model: torch.nn.Module, dataset, device: torch.device, batch_size: int, amp: bool,
                  workers: int = 0) -> dict[str, float]:
    """Validation metrics: video/audio/fused top-1 and a->v R@1 over the set."""
    from avrep.eval.extract import extract
    from avrep.eval.retrieval import retrieval_metrics

    ex = extract(model, dataset, batch_size, device, workers=workers, amp=amp)
    y = ex["word_id"]
    lv, la = torch.from_numpy(ex["logits_video"]), torch.from_numpy(ex["logits_audio"])
    fused = (lv.log_softmax(-1) + la.log_softmax(-1)).numpy()
    r = retrieval_metrics(ex["emb_audio"], ex["emb_video"])
    extra = {"val_a2v_sync_R@1": retrieval_metrics(ex["sync_audio"], ex["sync_video"])["R@1"]} if "sync_audio" in ex else {}
    return {**extra, "val_video_acc": float((ex["logits_video"].argmax(1) == y).mean()),
            "val_audio_acc": float((ex["logits_audio"].argmax(1) == y).mean()),
            "val_fused_acc": float((fused.argmax(1) == y).mean()),
            "val_a2v_R@1": r["R@1"], "val_n": int(len(y))}


def _meta_from(ds, spec: str, split: str):
    from avrep.train.data import DataMeta, data_meta

    if hasattr(ds, "words") and hasattr(ds, "num_speakers"):
        return DataMeta(list(ds.words), int(ds.num_speakers), getattr(ds, "ceiling", None), spec)
    return data_meta(spec, split)


def train(args: TrainArgs, resume: bool = False, train_ds=None, val_ds=None, progress: bool = True) -> dict[str, Any]:
    """Train DAVS; returns the last epoch's log record. Datasets default to `args.data`'s splits."""
    from avrep.models.factory import create_model, get_config
    from avrep.train import checkpoint as ckpt
    from avrep.train import ddp
    from avrep.train.data import open_dataset
    from avrep.train.losses import DAVSLoss

    if args.threads:
        torch.set_num_threads(args.threads)
    dist = ddp.init_distributed(args.device)
    device = dist.device
    args, resuming = resume_args(args, resume)
    run = Path(args.out)
    amp = (device.type == "cuda") if args.amp is None else bool(args.amp)

    train_ds = train_ds if train_ds is not None else open_dataset(args.data, "train", args.frames, train=True)
    if val_ds is None and args.val_split:
        try:
            val_ds = open_dataset(args.data, args.val_split, args.frames, train=False)
        except AvrepError:
            val_ds = None  # no validation split in this store
    meta = _meta_from(train_ds, args.data, "train")
    if len(train_ds) < args.batch_size * dist.world:
        raise AvrepError(f"{args.data}: {len(train_ds)} training clips is fewer than one batch "
                         f"({args.batch_size} x {dist.world} processes); lower --batch-size")

    mcfg = get_config(args.config, num_words=len(meta.words), num_speakers=meta.num_speakers, frames=args.frames)
    loss_cfg = {**mcfg.get("loss", {}), **args.loss}
    torch.manual_seed(args.seed)
    model = create_model(mcfg).to(device)
    if device.type == "cuda":
        model.to_channels_last()
    if args.compile:
        for enc in (model.video, model.audio, model.identity):
            enc.compile()
    lossmod = DAVSLoss(model, loss_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    start_epoch, step = 0, 0
    if resuming:
        st = ckpt.load_checkpoint(run, model, opt, device)
        start_epoch, step = int(st["epoch"]), int(st["step"])
    step_fn = lossmod
    if dist.enabled:
        step_fn = torch.nn.parallel.DistributedDataParallel(
            lossmod, device_ids=[device.index] if device.type == "cuda" else None)

    if dist.main:
        run.mkdir(parents=True, exist_ok=True)
        targs = asdict(args)
        atomic_write_json(run / "config.json", {"model": mcfg, "train": targs, "world_size": dist.world})
        atomic_write_json(run / "vocab.json", {"words": meta.words, "ceiling": meta.ceiling})
        write_manifest_json(run, "train", config=mcfg["name"] if "name" in mcfg else "custom", seed=args.seed,
                            data=str(args.data), world_size=dist.world, resumed_from_epoch=start_epoch or None)
        _rewrite_log(run / "log.jsonl", start_epoch)

    sampler = DistributedSampler(train_ds, num_replicas=dist.world, rank=dist.rank, shuffle=True,
                                 seed=args.seed, drop_last=True)
    per_epoch = len(sampler) // args.batch_size
    total = per_epoch * args.epochs
    warm = max(1, min(int(args.warmup_epochs * per_epoch), total // 5))
    if val_ds is not None and len(val_ds) > args.val_max_clips:
        idx = np.random.default_rng(args.seed).choice(len(val_ds), args.val_max_clips, replace=False)
        val_ds = Subset(val_ds, sorted(idx.tolist()))
    ctx = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if amp else contextlib.nullcontext
    rec: dict[str, Any] = {}

    for epoch in range(start_epoch, args.epochs):
        gseed = _seed_epoch(args.seed, epoch, dist.rank)
        sampler.set_epoch(epoch)
        if hasattr(train_ds, "set_epoch"):  # reproducible per-epoch augmentation
            train_ds.set_epoch(epoch)
        gen = torch.Generator().manual_seed(gseed)
        loader = DataLoader(train_ds, batch_size=args.batch_size, sampler=sampler, num_workers=args.workers,
                            drop_last=True, pin_memory=device.type == "cuda", generator=gen,
                            persistent_workers=False, prefetch_factor=4 if args.workers else None)
        lossmod.train()
        sums: dict[str, torch.Tensor] = {}
        t0 = time.time()
        it = loader
        if progress and dist.main:
            from tqdm import tqdm

            it = tqdm(loader, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch", leave=False)
        for b in it:
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, warm, args.lr)
            mouth, audio, face = (b[k].to(device, non_blocking=True) for k in ("mouth", "audio", "face"))
            word = torch.as_tensor(b["word_id"]).to(device)
            spk = torch.as_tensor(b["speaker_id"]).to(device)
            with ctx():
                loss, terms, stats = step_fn(mouth, audio, face, word, spk)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            opt.step()
            step += 1
            n = stats["n"].float()
            for k, v in {"loss": loss.detach(), **terms}.items():
                sums[k] = sums.get(k, 0) + v.float() * n
            for k in ("video_correct", "audio_correct", "n"):
                sums[k] = sums.get(k, 0) + stats[k].float()
            if progress and dist.main and hasattr(it, "set_postfix"):
                it.set_postfix(loss=f"{loss.item():.3f}")
        keys = sorted(sums)
        red = ddp.all_reduce_sum(torch.stack([sums[k] for k in keys]).cpu() if device.type != "cuda"
                                 else torch.stack([sums[k] for k in keys]))
        tot = dict(zip(keys, red.tolist()))
        nn_ = max(tot.pop("n"), 1.0)
        rec = {"epoch": epoch + 1, "step": step, "lr": opt.param_groups[0]["lr"], "time_s": round(time.time() - t0, 2),
               "clips_per_s": round(nn_ / max(time.time() - t0, 1e-9), 1),
               "train_video_acc": tot.pop("video_correct") / nn_, "train_audio_acc": tot.pop("audio_correct") / nn_}
        rec.update({f"train_{k}": v / nn_ for k, v in tot.items()})
        if dist.main:
            if val_ds is not None:
                rec.update(quick_metrics(model, val_ds, device, args.batch_size, amp, args.workers))
            _append_log(run / "log.jsonl", rec)
            ckpt.save_checkpoint(run, epoch + 1, step, model, opt, extra={"train_record": rec})
            if progress:
                print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()}), flush=True)
        ddp.barrier()
    ddp.cleanup()
    return rec

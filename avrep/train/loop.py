"""The DAVS training loop: single process or torchrun DDP, AMP on GPU, exact resume, JSONL log.

Determinism: every epoch reseeds torch/numpy/python and the sampler from (seed, epoch, rank), so an
epoch's randomness does not depend on what ran before; with the optimizer state restored, a run
resumed from epoch k's checkpoint reproduces the uninterrupted run exactly on CPU. The run start,
schedule, per-epoch loaders and the end-of-epoch commit are shared with the generator (train.epochs).
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset

from avrep.conventions import CLIP_FRAMES
from avrep.data.sources import DataMeta, data_meta, open_dataset
from avrep.errors import AvrepError
from avrep.eval.extract import extract
from avrep.eval.retrieval import retrieval_metrics
from avrep.security import load_json, load_safetensors
from avrep.train import checkpoint as ckpt
from avrep.train import ddp
from avrep.train.epochs import RunStart, commit_epoch, epoch_batches, lr_at, make_sampler, rewrite_log, start_run
from avrep.utils import atomic_write_json, write_manifest_json


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
    frames: int = CLIP_FRAMES
    val_split: str = "val"
    val_max_clips: int = 2000
    threads: int | None = None
    loss: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # run dir whose weights start a fresh run (tensors of other shapes are skipped)
    epoch_size: int | None = None  # clips per epoch of a data mixture (default: the parts' sizes summed)
    augment: str = "basic"  # training augmentation of feature stores: basic | strong (avrep.data.augment)
    snapshots: bool = False  # keep every epoch's weights in snapshots/ (for a training-cost curve)


def quick_metrics(
    model: torch.nn.Module, dataset, device: torch.device, batch_size: int, amp: bool, workers: int = 0
) -> dict[str, float]:
    """Validation metrics: video/audio/fused top-1 and a->v R@1 over the set."""
    ex = extract(model, dataset, batch_size, device, workers=workers, amp=amp)
    y = ex["word_id"]
    lv, la = torch.from_numpy(ex["logits_video"]), torch.from_numpy(ex["logits_audio"])
    fused = (lv.log_softmax(-1) + la.log_softmax(-1)).numpy()
    r = retrieval_metrics(ex["emb_audio"], ex["emb_video"])
    extra = (
        {"val_a2v_sync_R@1": retrieval_metrics(ex["sync_audio"], ex["sync_video"])["R@1"]} if "sync_audio" in ex else {}
    )
    k = y >= 0  # word accuracy over the clips whose word is known (None when none is)

    def acc(logits: np.ndarray) -> float | None:
        return float((logits[k].argmax(1) == y[k]).mean()) if k.any() else None

    return {
        **extra,
        "val_video_acc": acc(ex["logits_video"]),
        "val_audio_acc": acc(ex["logits_audio"]),
        "val_fused_acc": acc(fused),
        "val_a2v_R@1": r["R@1"],
        "val_n": int(len(y)),
    }


def _meta_from(ds, spec: str, split: str) -> DataMeta:
    if hasattr(ds, "words") and hasattr(ds, "num_speakers"):
        return DataMeta(list(ds.words), int(ds.num_speakers), getattr(ds, "ceiling", None), spec)
    return data_meta(spec, split)


def open_datasets(args: TrainArgs, train_ds=None, val_ds=None) -> tuple[Any, Any, DataMeta]:
    """(train set, validation set or None, what the model needs to know about the data); the sets
    default to `args.data`'s train and `args.val_split` splits (a store without that split: no validation)."""
    if train_ds is None:
        train_ds = open_dataset(args.data, "train", args.frames, train=True, augment=args.augment)
    if val_ds is None and args.val_split:
        try:
            val_ds = open_dataset(args.data, args.val_split, args.frames, train=False)
        except AvrepError:
            val_ds = None  # no validation split in this store
    if args.epoch_size and hasattr(train_ds, "epoch_size"):  # a data mixture: how many clips an epoch draws
        train_ds.epoch_size = int(args.epoch_size)
        train_ds.set_epoch(0)
    return train_ds, val_ds, _meta_from(train_ds, args.data, "train")


def init_from(model: torch.nn.Module, run_dir: str, words: list[str] | None = None) -> dict[str, int]:
    """Start from a trained run's weights: every tensor whose name and shape match is copied. When the
    run's vocabulary is a prefix of `words` (a mixture whose first corpus it was trained on), the rows of
    its class-sized tensors go to the first rows too; other heads keep their fresh initialisation."""
    p = Path(run_dir) / "model.safetensors"
    if not p.exists():
        raise AvrepError(f"init {run_dir}: not a trained avrep run (no model.safetensors)", param="init")
    src = load_safetensors(p, "cpu")
    vp = Path(run_dir) / "vocab.json"
    old_words = load_json(vp).get("words", []) if vp.exists() else []
    prefix = bool(words) and bool(old_words) and list(words[: len(old_words)]) == list(old_words)
    own = model.state_dict()
    take = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    if prefix:
        n = len(old_words)
        for k, v in src.items():
            o = own.get(k)
            if (
                k not in take
                and o is not None
                and v.ndim == o.ndim
                and v.shape[0] == n
                and v.shape[1:] == o.shape[1:]
                and o.shape[0] == len(words)
            ):
                t = o.clone()
                t[:n] = v
                take[k] = t
    model.load_state_dict(take, strict=False)
    return {"copied": len(take), "skipped": len(own) - len(take)}


def build_model(args: TrainArgs, meta: DataMeta, device: torch.device):
    """(model config, DAVS model on `device`, its loss module, AdamW) for a fresh run (seeded by args.seed)."""
    from avrep.models.config import davs_config, merge_config
    from avrep.models.factory import create_model, get_config
    from avrep.train.losses import DAVSLoss

    mcfg = get_config(args.config, num_words=len(meta.words), num_speakers=meta.num_speakers, frames=args.frames)
    loss_cfg = davs_config(merge_config(mcfg, {"loss": args.loss})).loss.to_dict()  # config + --loss, checked
    torch.manual_seed(args.seed)
    model = create_model(mcfg).to(device)
    if device.type == "cuda":
        model.to_channels_last()
    if args.compile:
        for enc in (model.video, model.audio, model.identity):
            enc.compile()
    lossmod = DAVSLoss(model, loss_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    return mcfg, model, lossmod, opt


def _write_run_files(rs: RunStart, mcfg: dict[str, Any], meta: DataMeta, start_epoch: int) -> None:
    """config.json, vocab.json, manifest.json; the log keeps only the epochs before `start_epoch`."""
    args, run = rs.args, rs.run
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run / "config.json", {"model": mcfg, "train": asdict(args), "world_size": rs.dist.world})
    atomic_write_json(run / "vocab.json", {"words": meta.words, "ceiling": meta.ceiling})
    write_manifest_json(
        run,
        "train",
        config=mcfg["name"] if "name" in mcfg else "custom",
        seed=args.seed,
        data=str(args.data),
        world_size=rs.dist.world,
        resumed_from_epoch=start_epoch or None,
    )
    rewrite_log(run / "log.jsonl", start_epoch)


def _val_subset(val_ds, max_clips: int, seed: int):
    """At most `max_clips` validation clips (a seeded sample) so validation stays cheap."""
    if val_ds is not None and len(val_ds) > max_clips:
        idx = np.random.default_rng(seed).choice(len(val_ds), max_clips, replace=False)
        val_ds = Subset(val_ds, sorted(idx.tolist()))
    return val_ds


def _train_epoch(
    rs: RunStart,
    step_fn,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    batches,
    step: int,
    total: int,
    warm: int,
    progress: bool,
) -> tuple[dict[str, torch.Tensor], int]:
    """One pass over the batches -> (clip-weighted sums of the loss terms and correct counts, step)."""
    args, device, ctx = rs.args, rs.device, rs.autocast()
    sums: dict[str, torch.Tensor] = {}
    for b in batches:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, warm, args.lr)
        mouth, audio, face = (b[k].to(device, non_blocking=True) for k in ("mouth", "audio", "face"))
        lms = b["landmarks"].to(device, non_blocking=True) if "landmarks" in b else None
        word = torch.as_tensor(b["word_id"]).to(device)
        spk = torch.as_tensor(b["speaker_id"]).to(device)
        with ctx():
            loss, terms, stats = step_fn(mouth, audio, face, word, spk, lms)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        step += 1
        n = stats["n"].float()
        for k, v in {"loss": loss.detach(), **terms}.items():
            sums[k] = sums.get(k, 0) + v.float() * n
        for k in ("video_correct", "audio_correct", "n", "n_labelled"):
            sums[k] = sums.get(k, 0) + stats[k].float()
        if progress and rs.dist.main and hasattr(batches, "set_postfix"):
            batches.set_postfix(loss=f"{loss.item():.3f}")
    return sums, step


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (the epoch's loader workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _epoch_record(
    sums: dict[str, torch.Tensor], device: torch.device, epoch: int, step: int, lr: float, t0: float
) -> dict[str, Any]:
    """Sums reduced over ranks -> the epoch's log record (per-clip means, accuracies, throughput)."""
    keys = sorted(sums)
    red = ddp.all_reduce_sum(
        torch.stack([sums[k] for k in keys]).cpu() if device.type != "cuda" else torch.stack([sums[k] for k in keys])
    )
    tot = dict(zip(keys, red.tolist()))
    nn_ = max(tot.pop("n"), 1.0)
    nl = max(tot.pop("n_labelled", nn_), 1.0)  # clips with a known word (accuracy is over these)
    rec = {
        "epoch": epoch + 1,
        "step": step,
        "lr": lr,
        "time_s": round(time.time() - t0, 2),
        "clips_per_s": round(nn_ / max(time.time() - t0, 1e-9), 1),
        "train_video_acc": tot.pop("video_correct") / nl,
        "train_audio_acc": tot.pop("audio_correct") / nl,
    }
    rec.update({f"train_{k}": v / nn_ for k, v in tot.items()})
    return rec


def train(args: TrainArgs, resume: bool = False, train_ds=None, val_ds=None, progress: bool = True) -> dict[str, Any]:
    """Train DAVS; returns the last epoch's log record. Datasets default to `args.data`'s splits."""
    rs = start_run(args, resume)
    args, dist, device = rs.args, rs.dist, rs.device
    train_ds, val_ds, meta = open_datasets(args, train_ds, val_ds)
    if len(train_ds) < args.batch_size * dist.world:
        raise AvrepError(
            f"{args.data}: {len(train_ds)} training clips is fewer than one batch "
            f"({args.batch_size} x {dist.world} processes); lower batch_size",
            param="batch_size",
        )
    if not meta.words:  # no word labels in any corpus (sync/contrast only): one placeholder class
        meta.words = ["<unk>"]
    mcfg, model, lossmod, opt = build_model(args, meta, device)
    start_epoch, step = 0, 0
    if args.init and not rs.resuming:
        init_from(model, args.init, meta.words)
    if rs.resuming:
        st = ckpt.load_checkpoint(rs.run, model, opt, device)
        start_epoch, step = int(st["epoch"]), int(st["step"])
    step_fn = lossmod
    if dist.enabled:
        step_fn = torch.nn.parallel.DistributedDataParallel(
            lossmod, device_ids=[device.index] if device.type == "cuda" else None
        )
    if dist.main:
        _write_run_files(rs, mcfg, meta, start_epoch)

    sampler, per_epoch = make_sampler(train_ds, dist, args.seed, args.batch_size)
    total = per_epoch * args.epochs
    warm = max(1, min(int(args.warmup_epochs * per_epoch), total // 5))
    val_ds = _val_subset(val_ds, args.val_max_clips, args.seed)
    rec: dict[str, Any] = {}
    for epoch in range(start_epoch, args.epochs):
        prefetch = 4 if args.workers else None
        batches = epoch_batches(
            train_ds, sampler, epoch, args, dist, progress=progress, persistent_workers=False, prefetch_factor=prefetch
        )
        lossmod.train()
        t0, cpu0 = time.time(), _cpu_seconds()
        sums, step = _train_epoch(rs, step_fn, model, opt, batches, step, total, warm, progress)
        rec = _epoch_record(sums, device, epoch, step, opt.param_groups[0]["lr"], t0)
        rec["cpu_s"] = round(_cpu_seconds() - cpu0, 1)  # this process + its finished loader workers
        if dist.main and val_ds is not None:
            rec.update(quick_metrics(model, val_ds, device, args.batch_size, rs.amp, args.workers))
        commit_epoch(rs.run, rec, epoch, step, model, opt, dist, progress)
        if args.snapshots and dist.main:  # weights only: what an accuracy-per-CPU-hour curve needs
            ckpt.save_weights(rs.run / "snapshots" / f"epoch_{epoch + 1:04d}.safetensors", model.state_dict())
    ddp.cleanup()
    return rec

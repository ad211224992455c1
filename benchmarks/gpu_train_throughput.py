#!/usr/bin/env python3
"""DAVS training throughput on CUDA with AMP, on random-but-shaped data; prints one JSON object.

  python benchmarks/gpu_train_throughput.py --config base --batch-size 128 --steps 30 [--out results/X.json]

Measures (1) the training step alone (data already on the GPU), (2) the data loader alone (memmap-like
uint8 store in RAM -> random 88x88 crops -> pinned batches -> GPU copy), (3) both together.
Needs only torch (+ torchaudio for log-mel); avrep is imported from this checkout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from _common import stamp, write_result
from torch.utils.data import DataLoader, Dataset

SPF = 640


class RandomStore(Dataset):
    """Stands in for FeatureDataset: uint8 frames in RAM, per-item slicing, random crop, one face frame."""

    def __init__(self, n_clips: int, frames: int) -> None:
        g = np.random.default_rng(0)
        self.frames = frames
        self.mouth = g.integers(0, 256, (n_clips * frames, 96, 96), dtype=np.uint8)
        self.face = g.integers(0, 256, (n_clips * frames, 128, 128, 3), dtype=np.uint8)
        self.audio = (g.standard_normal(n_clips * frames * SPF) * 0.1).astype(np.float32)
        self.n = n_clips

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        r = np.random.default_rng(i)
        s, t = i * self.frames, (i + 1) * self.frames
        y, x = r.integers(0, 9, 2)
        f = s + int(r.integers(0, self.frames))
        return {
            "mouth": torch.from_numpy(np.ascontiguousarray(self.mouth[s:t, y : y + 88, x : x + 88])),
            "audio": torch.from_numpy(self.audio[s * SPF : t * SPF].copy()),
            "face": torch.from_numpy(np.ascontiguousarray(self.face[f].transpose(2, 0, 1))),
            "word_id": i % 500,
            "speaker_id": i % 1000,
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="base")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--frames", type=int, default=29)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--num-words", type=int, default=500)
    ap.add_argument("--num-speakers", type=int, default=1000)
    ap.add_argument("--no-amp", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--out", default=None, help="also write the JSON here (atomically)")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("needs a CUDA device")
    from avrep.models import create_model
    from avrep.models.encoders import count_parameters
    from avrep.train.losses import DAVSLoss

    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)
    model = create_model(a.config, num_words=a.num_words, num_speakers=a.num_speakers, frames=a.frames)
    model = model.to(dev).to_channels_last()
    if a.compile:
        for enc in (model.video, model.audio, model.identity):
            enc.compile()
    lossmod = DAVSLoss(model, model.config.get("loss", {}))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    amp = not a.no_amp
    B, T = a.batch_size, a.frames

    def step(b: dict) -> float:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss, _, _ = lossmod(b["mouth"], b["audio"], b["face"], b["word_id"], b["speaker_id"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    gpu_batch = {
        "mouth": torch.randint(0, 256, (B, T, 88, 88), dtype=torch.uint8, device=dev),
        "audio": torch.randn(B, T * SPF, device=dev) * 0.1,
        "face": torch.randint(0, 256, (B, 3, 128, 128), dtype=torch.uint8, device=dev),
        "word_id": torch.randint(0, a.num_words, (B,), device=dev),
        "speaker_id": torch.randint(0, a.num_speakers, (B,), device=dev),
    }
    t_c = time.time()
    for _ in range(a.warmup):
        step(gpu_batch)
    torch.cuda.synchronize()
    warm_s = time.time() - t_c
    torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    for _ in range(a.steps):
        step(gpu_batch)
    torch.cuda.synchronize()
    compute_s = (time.time() - t0) / a.steps

    # where the time goes: forward of each encoder alone (bf16, no grad)
    parts = {}
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        for name, fn in (
            ("video_fwd", lambda: model.encode_video(gpu_batch["mouth"])),
            ("audio_fwd", lambda: model.encode_audio(gpu_batch["audio"])),
            ("identity_fwd", lambda: model.identity(gpu_batch["face"])),
        ):
            fn()
            torch.cuda.synchronize()
            t = time.time()
            for _ in range(5):
                fn()
            torch.cuda.synchronize()
            parts[name + "_ms"] = round((time.time() - t) / 5 * 1000, 2)

    ds = RandomStore(max(B * 8, 1024), T)
    loader = DataLoader(
        ds,
        batch_size=B,
        shuffle=True,
        num_workers=a.workers,
        pin_memory=True,
        drop_last=True,
        persistent_workers=a.workers > 0,
        prefetch_factor=4 if a.workers else None,
    )

    def to_dev(b: dict) -> dict:
        return {k: torch.as_tensor(v).to(dev, non_blocking=True) for k, v in b.items()}

    n_load, it = 0, iter(loader)
    to_dev(next(it))
    t0 = time.time()
    for _ in range(min(a.steps, len(loader) - 1)):
        to_dev(next(it))
        n_load += B
    torch.cuda.synchronize()
    load_cps = n_load / (time.time() - t0)

    n_e2e, t0 = 0, time.time()
    while n_e2e < a.steps * B:
        for b in loader:
            step(to_dev(b))
            n_e2e += B
            if n_e2e >= a.steps * B:
                break
    torch.cuda.synchronize()
    e2e_cps = n_e2e / (time.time() - t0)

    res = {
        **stamp("torch"),
        "device": torch.cuda.get_device_name(0),
        "config": a.config,
        "params": count_parameters(model),
        "batch_size": B,
        "frames": T,
        "amp_bf16": amp,
        "compile": a.compile,
        "steps": a.steps,
        "warmup_s": round(warm_s, 1),
        "step_ms": round(compute_s * 1000, 1),
        "train_clips_per_s_compute_only": round(B / compute_s, 1),
        "loader_clips_per_s": round(load_cps, 1),
        "loader_workers": a.workers,
        "train_clips_per_s_with_loader": round(e2e_cps, 1),
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        **parts,
    }
    print(json.dumps(res, indent=1))
    if a.out:
        write_result(a.out, res)


if __name__ == "__main__":
    main()

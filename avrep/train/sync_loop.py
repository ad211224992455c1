"""Train a DAVS model's dedicated sync head (`avrep.models.sync_head`) on feature stores, resumably.

The rest of the model is kept as it is (frozen): the sync head is added to a finished DAVS run and only it
learns, so lip reading and retrieval do not move. Each step takes `batch` windows of `window` frames from
the stores' train clips: the video window at frame s, the audio window at s + k for a random k in
[-max_offset, max_offset] that keeps both inside the clip (real content on both sides, as a desynchronised
file has), and the loss `offset_infonce` asks every video frame for its audio frame among the window's.

Augmentation (people the model never saw): mirrored faces, landmark jitter, with probability
`articulation` another speaker's mouth shape and motion amplitude (`avrep.data.augment.articulation`), voice (pitch, tilt, reverb,
noise, gain: `avrep.data.augment.voice`), and for a pixel branch, appearance.

Run dir = a DAVS run (config.json with `model.sync_head`, vocab.json, model.safetensors holding every
weight) + state.json and checkpoints/ (avrep.train.checkpoint) every `checkpoint_every` steps, and, with
`snapshots`, snapshots/step_XXXXXX.safetensors (the sync head's weights) for a training-cost curve. Rerun
the same call to continue where it stopped (a kill loses at most `checkpoint_every` steps).
"""

from __future__ import annotations

import io
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avrep.conventions import SAMPLES_PER_FRAME as SPF
from avrep.data.augment import appearance, articulation, jitter_landmarks, voice
from avrep.data.ibug import mirror_landmarks
from avrep.data.store import FeatureStore
from avrep.errors import AvrepError
from avrep.models.config import SyncHeadConfig
from avrep.models.loading import load_run
from avrep.models.sync_head import SyncHead
from avrep.security import load_json_object
from avrep.train.checkpoint import load_checkpoint, save_checkpoint, save_weights
from avrep.train.losses import offset_clip_ce, offset_infonce, window_match_infonce
from avrep.utils import atomic_write_bytes, atomic_write_json


@dataclass
class SyncTrainArgs:
    """What `train_sync` needs; `stores` maps a feature store path to its sampling weight."""

    init: str  # a finished DAVS run dir: its weights are kept, the sync head is added
    out: str
    stores: dict[str, float]
    steps: int = 4000
    batch: int = 64
    window: int = 17
    max_offset: int = 7
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.1
    frame_loss: float = 1.0  # weight of `offset_infonce` (every frame finds its audio frame in the window)
    clip_loss: float = 0.0  # weight of `offset_clip_ce` (the window's offset, decided as avrep sync does) added
    clip_temperature: float = 0.05
    match_loss: float = 0.0  # weight of `window_match_infonce` (which window's audio, among the batch's) added
    match_temperature: float = 0.05
    head: dict[str, Any] = field(default_factory=dict)  # SyncHeadConfig fields
    augment: bool = True
    articulation: float = 0.0  # probability of `augment.articulation` per window (with augment on)
    synthetic: float = 0.0  # sampling weight of synthetic sentences (`avrep.synth.sync_clips`) beside `stores`
    synthetic_clips: int = 600  # how many (new faces and voices), made once and kept in the run dir
    seed: int = 0
    checkpoint_every: int = 250
    snapshots: bool = True
    threads: int | None = None
    stop_at: int | None = None  # end this call at that step (checkpointed): a session's share of a long run
    head_from_init: bool = False  # start from `init`'s own sync head (fine-tuning) instead of a fresh one


@dataclass
class _Clip:
    landmarks: np.ndarray  # [T, 68, 2]
    audio: np.ndarray  # [T * SPF]
    mouth: np.ndarray | None  # [T, H, W] uint8, only for a pixel branch


def load_clips(store: str | Path, split: str, window: int, mouth: bool = False) -> list[_Clip]:
    """The split's clips with landmarks (+ mouth) and audio at least `window` frames long."""
    fs = FeatureStore(store)
    keys = ("audio", "landmarks") + (("mouth",) if mouth else ())
    out = []
    for i in fs.clips.index[fs.clips["split"] == split]:
        c = fs.clip(int(i), keys=keys)
        lm, au = c.get("landmarks"), c.get("audio")
        if lm is None or au is None or len(lm) < window or len(au) < len(lm) * SPF:
            continue
        out.append(_Clip(np.asarray(lm, np.float32), np.asarray(au, np.float32), c.get("mouth")))
    if not out:
        raise AvrepError(f"{store}: no {split} clips with landmarks and audio of >= {window} frames")
    return out


def synthetic_clips(out: Path, n: int, seed: int, progress: bool = False) -> list[_Clip]:
    """`n` synthetic sentences (landmarks + audio, seeds derived from `seed`), cached in out/synthetic.npz so
    a resumed run reads the same ones back instead of making them again."""
    path = out / "synthetic.npz"
    if path.exists():
        with np.load(path) as z:  # each z[key] reads the whole array again: read each once
            got = {k: z[k] for k in ("n", "seed", "frames", "landmarks", "audio")}
        if int(got["n"]) == n and int(got["seed"]) == seed:
            lm, au, ends = got["landmarks"], got["audio"], np.cumsum(got["frames"])
            return [_Clip(lm[e - t : e], au[(e - t) * SPF : e * SPF], None) for t, e in zip(got["frames"], ends)]
    from tqdm import tqdm

    from avrep.synth.sync_clips import sentence

    made = [sentence(seed * 1_000_003 + i) for i in tqdm(range(n), "synthetic sentences", disable=not progress)]
    buf = io.BytesIO()
    np.savez(
        buf,
        n=n,
        seed=seed,
        frames=np.array([len(lm) for lm, _ in made]),
        landmarks=np.concatenate([lm for lm, _ in made]),
        audio=np.concatenate([au for _, au in made]),
    )
    atomic_write_bytes(path, buf.getvalue())
    return [_Clip(lm, au, None) for lm, au in made]


class WindowSampler:
    """Random (video window, audio window k frames away) pairs from weighted groups of clips."""

    def __init__(self, groups: list[list[_Clip]], weights: list[float], args: SyncTrainArgs, pixels: bool) -> None:
        self.groups, self.args, self.pixels = groups, args, pixels
        w = np.asarray(weights, np.float64)
        self.p = w / w.sum()

    def batch(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        a, W, K = self.args, self.args.window, self.args.max_offset
        lms, auds, offs, mos = [], [], [], []
        for g in rng.choice(len(self.groups), a.batch, p=self.p):
            clips = self.groups[g]
            c = clips[int(rng.integers(len(clips)))]
            T = len(c.landmarks)
            s = int(rng.integers(0, T - W + 1))
            sa = int(rng.integers(max(0, s - K), min(T - W, s + K) + 1))  # audio window start, inside the clip
            lm = c.landmarks[s : s + W]
            au = c.audio[sa * SPF : (sa + W) * SPF]
            mo = c.mouth[s : s + W] if self.pixels and c.mouth is not None else None
            if a.augment:
                if rng.random() < 0.5:  # a mirrored face (the width only shifts x: geometry is translation-free)
                    lm = mirror_landmarks(lm, 96.0)
                    mo = None if mo is None else mo[:, :, ::-1]
                if a.articulation and rng.random() < a.articulation:
                    lm = articulation(lm, rng)
                lm = jitter_landmarks(lm, rng)
                if rng.random() < 0.7:
                    au = voice(au, rng)
                if mo is not None:
                    mo = appearance(np.ascontiguousarray(mo), rng)
            lms.append(lm)
            auds.append(au)
            offs.append(sa - s)
            if self.pixels:
                mos.append(np.ascontiguousarray(mo))
        out = {
            "landmarks": torch.from_numpy(np.stack(lms).astype(np.float32)),
            "audio": torch.from_numpy(np.stack(auds).astype(np.float32)),
            "offset": torch.tensor(offs),
        }
        if self.pixels:
            out["mouth"] = torch.from_numpy(np.stack(mos))
        return out


def _prepare_run(args: SyncTrainArgs) -> tuple[Any, Path]:
    """A DAVS model from `init` with a fresh sync head (or init's own, `head_from_init`); the run dir gets its
    config and vocab."""
    out, init = Path(args.out), Path(args.init)
    model, config, _ = load_run(init)
    head_cfg = SyncHeadConfig.from_dict(args.head, "sync head config")
    config = json.loads(json.dumps(config))
    config["model"]["sync_head"] = asdict(head_cfg)
    config["sync_train"] = {**asdict(args), "init": str(init)}
    torch.manual_seed(args.seed)
    start = getattr(model, "sync_head", None)
    if args.head_from_init:  # fine-tune the head `init` ships (e.g. a new loss on a head that already works)
        if start is None:
            raise AvrepError(f"{init}: has no sync head to start from", param="from_head")
        if replace(start.cfg, blend=0.0) != replace(head_cfg, blend=0.0):
            raise AvrepError(f"{init}: its sync head is configured otherwise than the one asked for", param="from_head")
        model.sync_head = start
    else:
        model.sync_head = SyncHead(head_cfg)
    # the run's features are the head's alone (blend 0) until a blend is chosen after training, whatever init's was
    model.cfg = replace(model.cfg, sync_head=head_cfg)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "state.json").exists():  # resuming: the run's own config decides the head
        saved = load_json_object(out / "config.json")
        was = SyncHeadConfig.from_dict(saved["model"].get("sync_head") or {}, "saved sync head config")
        # compared as typed configs (keys added later take their defaults), blend aside: it is chosen after training
        if replace(was, blend=0.0) != replace(head_cfg, blend=0.0):
            raise AvrepError(f"{out}: holds a run with another sync head config; pick a new output folder")
    else:
        atomic_write_json(out / "config.json", config)
        shutil.copyfile(init / "vocab.json", out / "vocab.json")
        if (init / "manifest.json").exists():
            shutil.copyfile(init / "manifest.json", out / "manifest.json")
    return model, out


def train_sync(
    args: SyncTrainArgs,
    on_checkpoint: Callable[[Any, int], dict[str, Any]] | None = None,
    progress: bool = False,
) -> Path:
    """Train (or continue) the sync head; returns the run dir. `on_checkpoint(model, step)` may return
    metrics (e.g. held-out sync accuracy) that are logged with the step."""
    if args.threads:
        torch.set_num_threads(args.threads)
    model, out = _prepare_run(args)
    head: SyncHead = model.sync_head
    pixels = head.needs_mouth
    groups = [load_clips(s, "train", args.window, pixels) for s in args.stores]
    weights = list(args.stores.values())
    if args.synthetic > 0:
        if pixels:
            raise AvrepError("synthetic sentences carry landmarks only: they cannot train a pixel branch")
        groups.append(synthetic_clips(out, args.synthetic_clips, args.seed, progress))
        weights.append(args.synthetic)
    sampler = WindowSampler(groups, weights, args, pixels)
    model.requires_grad_(False).eval()
    head.requires_grad_(True).train()
    opt = torch.optim.AdamW(head.parameters(), args.lr, weight_decay=args.weight_decay)
    warm = max(1, min(200, args.steps // 20))
    # warm-up then cosine over `steps`; the factor depends on the step alone, so a resumed run continues it
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(i, args.steps) / args.steps))
    )
    step, cpu_total = 0, 0.0
    if (out / "state.json").exists():
        st = load_checkpoint(out, model, opt)
        step, cpu_total = int(st["step"]), float(st.get("cpu_s", 0.0))
        sched.load_state_dict(st["extra"]["scheduler"])
    log_path = out / "log.jsonl"
    cpu0, t0, losses = time.process_time(), time.time(), []
    from tqdm import tqdm

    bar = tqdm(total=args.steps, initial=step, desc="sync head", unit="step", disable=not progress)
    rng = np.random.default_rng([args.seed, step])
    end = min(args.steps, args.stop_at or args.steps)
    while step < end:
        if step % args.checkpoint_every == 0:  # one seed per checkpoint block: a resumed run draws what it would have
            rng = np.random.default_rng([args.seed, step])
        b = sampler.batch(rng)
        vf = head.video_frames(b["landmarks"], b.get("mouth"))
        af = head.audio_frames(b["audio"])
        loss = args.frame_loss * offset_infonce(vf, af, b["offset"], args.temperature)
        if args.clip_loss:
            loss = loss + args.clip_loss * offset_clip_ce(vf, af, b["offset"], args.max_offset, args.clip_temperature)
        if args.match_loss:
            loss = loss + args.match_loss * window_match_infonce(
                vf, af, b["offset"], args.max_offset, args.match_temperature
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        losses.append(float(loss.detach()))
        bar.update(1)
        if step % args.checkpoint_every == 0 or step == end:
            train_cpu = time.process_time() - cpu0  # the held-out evaluation below is not training cost
            head.eval()
            rec: dict[str, Any] = {"step": step, "loss": float(np.mean(losses)), "lr": sched.get_last_lr()[0]}
            if on_checkpoint is not None:
                rec.update(on_checkpoint(model, step))
            head.train()
            cpu_total += train_cpu
            rec["cpu_s"] = round(cpu_total, 3)
            rec["wall_s"] = round(time.time() - t0, 1)
            if args.snapshots:
                save_weights(out / "snapshots" / f"step_{step:06d}.safetensors", head.state_dict())
            save_checkpoint(out, step // args.checkpoint_every, step, model, opt, {"scheduler": sched.state_dict()})
            st = load_json_object(out / "state.json")
            atomic_write_json(out / "state.json", {**st, "cpu_s": rec["cpu_s"]})
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            cpu0, t0, losses = time.process_time(), time.time(), []
    bar.close()
    model.eval()
    return out


__all__ = ["SyncTrainArgs", "WindowSampler", "load_clips", "synthetic_clips", "train_sync"]

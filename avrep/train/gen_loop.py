"""Training the talking-face generator (`avrep train-generator`): data, losses, loop, checkpoints, loading.

Losses per step (weights in the generator config's "loss"):
  L1 on the whole face + extra L1 on the lower half (jaw) + L1 in a soft box around the mouth centre;
  hinge adversarial loss from a spectral-norm PatchGAN on the lower face (after `adv_start_step`);
  lip-sync consistency through a frozen DAVS model (when one is given, after `sync_start_step`): its video
  word encoder reads the generated mouth ROIs; cross-entropy on the word, 1 - cos to the audio clip
  embedding and per-frame 1 - cos to the audio frame features. The cosine terms make the mouth follow the
  speech (synthetic held-out lip reading on generated clips 0.15 -> 0.8 in one 12-epoch ablation); the word
  CE is off in the shipped configs: its gradients paint adversarial blotches the frozen reader accepts.
Speech features come from the frozen DAVS audio encoder, or (50% of clips) its video encoder on the real
mouth, so the decoder serves both `--audio` and `--video` driving; a config with speech.source "own"
trains its own audio encoder instead (no DAVS run needed, used by the tiny tests).

Run dir: config.json, model.safetensors (gen.* and disc.*), davs.safetensors (frozen encoder copy, so
the folder is self-contained), generator.json (marks a generator run), state.json + checkpoints/ (resume),
log.jsonl, manifest.json. Same conventions as `avrep train` (AMP on CUDA, torchrun DDP, exact resume).
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from avrep.errors import AvrepError
from avrep.models.generator import (FACE_SIZE, PatchDiscriminator, TalkingFaceGenerator, create_generator,
                                    face_to_mouth_roi, get_generator_config, mouth_box_mask)
from avrep.utils import atomic_write_json, write_manifest_json

SPF = 640


# ---- data ------------------------------------------------------------------------------------------------
def mouth_centres(landmarks: np.ndarray, stable_window: int = 12) -> np.ndarray:
    """Mouth centre per frame in 128x128 face-crop pixels, from 68 landmarks (source px) [T, 68, 2]."""
    from avrep.data.align import FACE_BOX, MOUTH, apply, reference_transforms

    Ms = reference_transforms(np.asarray(landmarks, np.float64), stable_window).astype(np.float64)
    c = np.stack([apply(M, lm[MOUTH]).mean(0) for M, lm in zip(Ms, np.asarray(landmarks, np.float64))])
    s = FACE_SIZE / (FACE_BOX[2] - FACE_BOX[0])
    return ((c - np.array(FACE_BOX[:2])) * s).astype(np.float32)


class GenDataset(Dataset):
    """Clips for the generator: face uint8 [T,3,128,128], audio [T*640], mouth_centre [T,2], ref uint8
    [3,128,128] (a random frame of the clip in training, frame 0 in eval), word_id, speaker_id, clip_id.

    Source: a feature store (`store_dir`, `split`) or in-memory arrays (`arrays`: face [N,F,128,128,3],
    audio [N,F*640], centres [N,F,2], word_id [N], speaker_id [N]). `frames`: window length (random
    window in training, the first frames in eval); None = whole clips (all of one length).
    """

    def __init__(self, store_dir: str | Path | None = None, split: str | None = "train", frames: int | None = None,
                 train: bool = True, seed: int = 0, arrays: dict[str, np.ndarray] | None = None) -> None:
        self.frames, self.train, self.seed, self._epoch = frames, train, seed, 0
        self.arrays = arrays
        if arrays is not None:
            self.n = len(arrays["face"])
            self.clip_ids = list(arrays.get("clip_id", [f"clip{i}" for i in range(self.n)]))
            return
        from avrep.data.store import FeatureStore

        if store_dir is None:
            raise AvrepError("GenDataset needs a feature store or arrays")
        self.store = FeatureStore(store_dir)
        clips = self.store.clips
        if "status" in clips:
            clips = clips[clips["status"] == "ok"]
        if split is not None:
            clips = clips[clips["split"] == split]
        if len(clips) == 0:
            raise AvrepError(f"{store_dir}: no clips in split {split!r}")
        self.clips = clips.reset_index(drop=True)
        spk = sorted(self.clips["speaker"].astype(str).unique()) if "speaker" in self.clips else ["?"]
        self._spk = {s: i for i, s in enumerate(spk)}
        self.n = len(self.clips)
        self.clip_ids = self.clips["clip_id"].astype(str).tolist()

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch

    def _raw(self, i: int) -> dict[str, Any]:
        if self.arrays is not None:
            a = self.arrays
            return {"face": a["face"][i], "audio": a["audio"][i], "centre": a["centre"][i],
                    "word_id": int(a["word_id"][i]), "speaker_id": int(a["speaker_id"][i])}
        r = self.clips.iloc[i]
        d = self.store.clip(str(r["clip_id"]), keys=("face", "audio", "landmarks"))
        return {"face": d["face"], "audio": d["audio"].astype(np.float32), "centre": mouth_centres(d["landmarks"]),
                "word_id": int(r["word_id"]) if "word_id" in r and r["word_id"] == r["word_id"] else -1,
                "speaker_id": self._spk.get(str(r.get("speaker", "?")), 0)}

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self._epoch, i] if self.train else [self.seed, i])
        d = self._raw(i)
        n = len(d["face"])
        T = self.frames or n
        s = int(rng.integers(0, n - T + 1)) if (self.train and n > T) else 0
        take = min(T, n)
        face = np.asarray(d["face"][s:s + take])
        audio = np.zeros(T * SPF, np.float32)
        seg = np.asarray(d["audio"][s * SPF:(s + take) * SPF], np.float32)
        audio[:len(seg)] = seg
        centre = np.asarray(d["centre"][s:s + take], np.float32)
        if take < T:
            face = np.concatenate([face, np.repeat(face[-1:], T - take, 0)])
            centre = np.concatenate([centre, np.repeat(centre[-1:], T - take, 0)])
        ri = int(rng.integers(0, n)) if self.train else 0
        ref = np.asarray(d["face"][ri])
        return {"face": torch.from_numpy(np.ascontiguousarray(face.transpose(0, 3, 1, 2))),
                "ref": torch.from_numpy(np.ascontiguousarray(ref.transpose(2, 0, 1))),
                "audio": torch.from_numpy(audio), "centre": torch.from_numpy(centre),
                "word_id": d["word_id"], "speaker_id": d["speaker_id"], "clip_id": self.clip_ids[i]}


def synthetic_clip_arrays(split: str = "train", n_clips: int = 16, *, preset: str = "tiny", seed: int = 0,
                          n_words: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Render synthetic clips in memory (corpus plan -> speech -> face -> true-landmark alignment).

    Same identities/voices/splits as `avrep synth` with the same preset and seed, without writing or
    decoding mp4 files. Returns GenDataset arrays plus the true landmarks and full frames.
    """
    from avrep.data.align import crop_clip
    from avrep.synth.corpus import CLIP_SAMPLES, FPS, N_FRAMES, SAMPLE_RATE, SynthConfig, plan
    from avrep.synth.face import Identity, render_sequence
    from avrep.synth.speech import synthesize
    from avrep.synth.visemes import articulation_track

    cfg = SynthConfig(preset=preset, seed=seed, n_words=n_words)
    specs, info = plan(cfg)
    rng = np.random.default_rng([seed, 4242])
    pool = [s for s in specs if s["split"] == split]
    pick = [pool[i] for i in sorted(rng.choice(len(pool), min(n_clips, len(pool)), replace=False))]
    out: dict[str, list] = {k: [] for k in ("face", "audio", "centre", "word_id", "speaker_id", "clip_id",
                                            "mouth", "landmarks", "frames", "identity_id", "word")}
    it = pick
    if progress:
        from tqdm import tqdm

        it = tqdm(pick, desc=f"render {split}", unit="clip")
    for sp_ in it:
        voice = info["voices"][sp_["voice_id"]]
        text = sp_["carrier"].format(w=sp_["word"])
        sp = synthesize(text, voice=voice, rate=sp_["rate"], pitch=sp_["pitch"], sample_rate=SAMPLE_RATE)
        hits = [w for w in sp.words if w[0].lower() == sp_["word"]]
        if not hits:
            continue
        _, w0, w1 = hits[0]
        start = (w0 + w1) // 2 - CLIP_SAMPLES // 2
        audio = np.zeros(CLIP_SAMPLES, np.float32)
        a0, a1 = max(0, start), min(len(sp.audio), start + CLIP_SAMPLES)
        audio[a0 - start:a1 - start] = sp.audio[a0:a1]
        track = articulation_track(sp.phonemes, N_FRAMES, fps=FPS, sample_rate=SAMPLE_RATE, offset_samples=start)
        frames, lms = render_sequence(Identity.sample(seed * 100003 + sp_["identity_id"]), track, sp_["clip_seed"])
        crops = crop_clip(frames, lms)
        out["face"].append(crops.face)
        out["mouth"].append(crops.mouth)
        out["audio"].append(audio)
        out["centre"].append(mouth_centres(lms))
        out["landmarks"].append(lms)
        out["frames"].append(frames)
        out["word_id"].append(sp_["word_id"])
        out["word"].append(sp_["word"])
        out["speaker_id"].append(sp_["identity_id"])
        out["identity_id"].append(sp_["identity_id"])
        out["clip_id"].append(sp_["clip_id"])
    res = {k: (np.stack(v) if k not in ("clip_id", "word") else v) for k, v in out.items()}
    res["words"] = info["words"]
    return res


# ---- frozen DAVS -----------------------------------------------------------------------------------------
def load_davs(run_dir: str | Path, device: str | torch.device = "cpu"):
    """Frozen DAVS model of an `avrep train` run (eval mode, no gradients)."""
    from avrep.models import load_run

    model, cfg, words = load_run(run_dir, str(device))
    model.requires_grad_(False).eval()
    return model, cfg, words


def speech_features(G: TalkingFaceGenerator, davs: nn.Module | None, audio: torch.Tensor,
                    mouth: torch.Tensor | None = None) -> torch.Tensor | None:
    """Per-frame speech features: DAVS audio (or video, if `mouth` is given) frame features; None for
    generators with their own audio encoder (computed inside G.forward)."""
    if davs is None:
        return None
    with torch.no_grad():
        f = davs.frame_features_video(mouth) if mouth is not None else davs.frame_features_audio(audio)
    return f.float()


# ---- loss ------------------------------------------------------------------------------------------------
def hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def recon_losses(fake: torch.Tensor, real: torch.Tensor, centre: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L1 over the face, L1 over the lower half, L1 in a box around the mouth) for [B,T,3,S,S] in [0, 1].

    The mouth is ~4% of the face: without its own term the copy-the-reference solution wins for
    thousands of steps. centre [B, T, 2] in 128-px face-crop coords (None: no mouth term)."""
    l1 = (fake - real).abs()
    box = l1.new_zeros(())
    if centre is not None:
        w = mouth_box_mask(centre, fake.shape[-1]).view(*fake.shape[:2], 1, *fake.shape[-2:])
        box = (l1 * w).sum() / (w.sum() * 3).clamp_min(1.0)
    return l1.mean(), l1[..., l1.shape[-2] // 2:, :].mean(), box


def lipsync_losses(davs: nn.Module, fake: torch.Tensor, centre: torch.Tensor, audio: torch.Tensor,
                   word: torch.Tensor) -> dict[str, torch.Tensor]:
    """The frozen DAVS video encoder reads the generated mouths: word CE, clip cosine, frame cosine."""
    B, T = fake.shape[:2]
    roi = face_to_mouth_roi(fake.reshape(B * T, *fake.shape[2:]).float(), centre.reshape(B * T, 2)).view(B, T, 96, 96)
    vf, ve = davs.encode_video(roi)
    with torch.no_grad():
        af, ae = davs.encode_audio(audio)
    out = {"sync": (1 - F.cosine_similarity(vf.float(), af.float(), dim=-1)).mean(),
           "clip_cos": (1 - F.cosine_similarity(ve.float(), ae.float(), dim=-1)).mean()}
    ok = (word >= 0) & (word < davs.word_head.weight.shape[0])
    if ok.any():
        logits = davs.word_head(ve[ok]).float()
        out["word"] = F.cross_entropy(logits, word[ok])
        out["word_acc"] = (logits.argmax(-1) == word[ok]).float().mean().detach()
    return out


# ---- training --------------------------------------------------------------------------------------------
@dataclass
class GenTrainArgs:
    config: str | dict = "tiny"
    data: str = ""  # feature store dir ("" when datasets are passed in)
    out: str = "runs/gen"
    davs: str | None = None  # DAVS run dir (frozen speech encoder + lip reader)
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    workers: int = 0
    device: str = "auto"
    amp: bool | None = None
    threads: int | None = None
    frames: int | None = None  # training window (default: config train_frames)
    video_driven_p: float = 0.5  # share of clips driven by DAVS video features (DAVS runs only)
    val_split: str = "val"
    val_clips: int = 16


def _loss_cfg(gcfg: dict[str, Any]) -> dict[str, float]:
    d = {"l1": 1.0, "mouth_l1": 2.0, "mouth_box_l1": 0.0, "adv": 0.01, "sync": 0.1, "clip_cos": 0.1, "word": 0.0, "adv_start_step": 0,
         "sync_start_step": 0}
    return {**d, **gcfg.get("loss", {})}


@torch.no_grad()
def evaluate_recon(G: TalkingFaceGenerator, davs: nn.Module | None, ds: Dataset, device: torch.device,
                   max_clips: int = 16, batch_size: int = 4) -> dict[str, float]:
    """Inference-mode reconstruction (reference frame + speech only) on up to max_clips: L1, PSNR."""
    G.eval()
    l1s, psnrs, n = [], [], 0
    for s in range(0, min(len(ds), max_clips), batch_size):
        items = [ds[i] for i in range(s, min(s + batch_size, len(ds), max_clips))]
        face = torch.stack([it["face"] for it in items]).to(device)
        ref = torch.stack([it["ref"] for it in items]).to(device)
        audio = torch.stack([it["audio"] for it in items]).to(device)
        sp = speech_features(G, davs, audio)
        fake = G(ref, sp, None, wave=audio if sp is None else None)
        real = G._resize(face.flatten(0, 1).float() / 255).view_as(fake)
        l1s.append((fake - real).abs().mean((1, 2, 3, 4)))
        mse = ((fake - real) ** 2).mean((2, 3, 4)).clamp_min(1e-10)
        psnrs.append((10 * torch.log10(1 / mse)).mean(1))
        n += len(items)
    G.train()
    return {"val_l1": float(torch.cat(l1s).mean()), "val_psnr": float(torch.cat(psnrs).mean()), "val_n": n}


def train_generator(args: GenTrainArgs, resume: bool = False, train_ds: Dataset | None = None,
                    val_ds: Dataset | None = None, progress: bool = True) -> dict[str, Any]:
    """Train the generator; returns the last epoch's log record."""
    from avrep.train import checkpoint as ckpt
    from avrep.train import ddp
    from avrep.train.loop import _append_log, _rewrite_log, _seed_epoch, lr_at, resume_args

    if args.threads:
        torch.set_num_threads(args.threads)
    args, resuming = resume_args(args, resume, "generator run")
    run = Path(args.out)
    dist = ddp.init_distributed(args.device)
    device = dist.device
    amp = (device.type == "cuda") if args.amp is None else bool(args.amp)
    gcfg = get_generator_config(args.config)
    lcfg = _loss_cfg(gcfg)

    davs, davs_cfg = None, None
    if args.davs:
        davs, davs_cfg, _ = load_davs(args.davs, device)
        dim = int(davs_cfg["model"]["embed_dim"])
        gcfg["speech_dim"] = dim  # speech features are the DAVS frame features
        if gcfg.get("speech", {}).get("source") == "own":
            gcfg["speech"] = {"source": "davs"}
    elif gcfg.get("speech", {}).get("source", "davs") != "own":
        raise AvrepError(f"generator config {gcfg.get('name')!r} takes DAVS speech features: pass --davs RUN_DIR")
    frames = args.frames or int(gcfg.get("train_frames", 29))
    if train_ds is None:
        if not args.data:
            raise AvrepError("--data (a feature store from `avrep preprocess`) is required")
        train_ds = GenDataset(args.data, "train", frames, train=True, seed=args.seed)
        if val_ds is None and args.val_split:
            try:
                val_ds = GenDataset(args.data, args.val_split, None, train=False, seed=args.seed)
            except AvrepError:
                val_ds = None
    if len(train_ds) < args.batch_size * dist.world:
        raise AvrepError(f"{len(train_ds)} training clips is fewer than one batch; lower --batch-size")

    torch.manual_seed(args.seed)
    G = TalkingFaceGenerator(gcfg).to(device)
    D = PatchDiscriminator(list(gcfg.get("disc_channels", [32, 64, 128]))).to(device)
    nets = nn.ModuleDict({"gen": G, "disc": D})
    opt = torch.optim.AdamW([{"params": G.parameters()}, {"params": D.parameters()}], lr=args.lr,
                            betas=(0.5, 0.999), weight_decay=0.0)
    start_epoch, step = 0, 0
    if resuming:
        st = ckpt.load_checkpoint(run, nets, opt, device)
        start_epoch, step = int(st["epoch"]), int(st["step"])
    Gs, Ds = G, D
    if dist.enabled:
        ids = [device.index] if device.type == "cuda" else None
        Gs = nn.parallel.DistributedDataParallel(G, device_ids=ids)
        Ds = nn.parallel.DistributedDataParallel(D, device_ids=ids)

    if dist.main:
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run / "config.json", {"generator": gcfg, "train": asdict(args), "davs": davs_cfg,
                                                "world_size": dist.world})
        atomic_write_json(run / "generator.json", {"kind": "avrep-generator", "config": gcfg.get("name", "custom")})
        if davs is not None and not resuming:
            ckpt.save_weights(run / "davs.safetensors", davs.state_dict())
        write_manifest_json(run, "train-generator", config=gcfg.get("name", "custom"), seed=args.seed,
                            data=str(args.data), davs=args.davs, world_size=dist.world)
        _rewrite_log(run / "log.jsonl", start_epoch)
        if start_epoch == 0 and val_ds is not None:
            rec0 = {"epoch": 0, "step": 0, **evaluate_recon(G, davs, val_ds, device, args.val_clips)}
            _append_log(run / "log.jsonl", rec0)

    sampler = DistributedSampler(train_ds, num_replicas=dist.world, rank=dist.rank, shuffle=True,
                                 seed=args.seed, drop_last=True)
    per_epoch = len(sampler) // args.batch_size
    total = per_epoch * args.epochs
    warm = max(1, min(per_epoch, total // 10))
    ctx = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if amp else contextlib.nullcontext
    rec: dict[str, Any] = {}
    for epoch in range(start_epoch, args.epochs):
        gseed = _seed_epoch(args.seed, epoch, dist.rank)
        sampler.set_epoch(epoch)
        if hasattr(train_ds, "set_epoch"):
            train_ds.set_epoch(epoch)
        loader = DataLoader(train_ds, batch_size=args.batch_size, sampler=sampler, num_workers=args.workers,
                            drop_last=True, pin_memory=device.type == "cuda",
                            generator=torch.Generator().manual_seed(gseed))
        sums: dict[str, float] = {}
        nb = 0
        t0 = time.time()
        it = loader
        if progress and dist.main:
            from tqdm import tqdm

            it = tqdm(loader, desc=f"gen epoch {epoch + 1}/{args.epochs}", unit="batch", leave=False)
        for b in it:
            lr = lr_at(step, total, warm, args.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            face, ref, audio = (b[k].to(device, non_blocking=True) for k in ("face", "ref", "audio"))
            centre = b["centre"].to(device)
            word = torch.as_tensor(b["word_id"]).to(device)
            B, T = face.shape[:2]
            real = G._resize(face.flatten(0, 1).float() / 255).view(B, T, 3, G.size, G.size)
            mouth = None
            if davs is not None and args.video_driven_p > 0 and torch.rand(()) < args.video_driven_p:
                # video-driven batch: DAVS video frame features of the real mouth drive the decoder
                mouth = face_to_mouth_roi(real.flatten(0, 1), centre.reshape(-1, 2)).view(B, T, 96, 96)
            sp = speech_features(G, davs, audio, mouth)
            use_adv = lcfg["adv"] > 0 and step >= lcfg["adv_start_step"]
            with ctx():
                fake = Gs(ref, sp, face, wave=audio if sp is None else None).float()
            terms: dict[str, torch.Tensor] = {}
            if use_adv:  # discriminator step on detached fakes
                with ctx():
                    logits = Ds(torch.cat([real.flatten(0, 1), fake.detach().flatten(0, 1)])).float()
                d_loss = hinge_d(logits[:B * T], logits[B * T:])
                opt.zero_grad(set_to_none=True)
                d_loss.backward()
                opt.step()
                terms["d_loss"] = d_loss.detach()
            l1, ml1, bl1 = recon_losses(fake, real, centre)
            loss = lcfg["l1"] * l1 + lcfg["mouth_l1"] * ml1 + lcfg["mouth_box_l1"] * bl1
            terms.update(l1=l1.detach(), mouth_l1=ml1.detach(), mouth_box_l1=bl1.detach())
            if use_adv:
                with ctx():
                    g_adv = -Ds(fake.flatten(0, 1)).float().mean()
                loss = loss + lcfg["adv"] * g_adv
                terms["g_adv"] = g_adv.detach()
            if davs is not None and step >= lcfg["sync_start_step"] and (
                    lcfg["sync"] > 0 or lcfg["word"] > 0 or lcfg["clip_cos"] > 0):
                with ctx():
                    ls = lipsync_losses(davs, fake, centre, audio, word)
                loss = loss + lcfg["sync"] * ls["sync"] + lcfg["clip_cos"] * ls["clip_cos"]
                if "word" in ls:
                    loss = loss + lcfg["word"] * ls["word"]
                terms.update({k: v.detach() for k, v in ls.items()})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for p in D.parameters():  # the generator step must not move the discriminator
                p.grad = None
            torch.nn.utils.clip_grad_norm_(G.parameters(), 5.0)
            opt.step()
            step += 1
            nb += 1
            terms["loss"] = loss.detach()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            if progress and dist.main and hasattr(it, "set_postfix"):
                it.set_postfix(l1=f"{float(l1):.4f}")
        red = ddp.all_reduce_sum(torch.tensor([sums.get(k, 0.0) for k in sorted(sums)] + [float(nb)]))
        tot = dict(zip(sorted(sums), red[:-1].tolist()))
        nbt = max(float(red[-1]), 1.0)
        rec = {"epoch": epoch + 1, "step": step, "lr": lr if nb else args.lr, "time_s": round(time.time() - t0, 2),
               **{f"train_{k}": v / nbt for k, v in tot.items()}}
        if dist.main:
            if val_ds is not None:
                rec.update(evaluate_recon(G, davs, val_ds, device, args.val_clips))
            _append_log(run / "log.jsonl", rec)
            ckpt.save_checkpoint(run, epoch + 1, step, nets, opt, extra={"train_record": rec})
            if progress:
                print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()}), flush=True)
        ddp.barrier()
    ddp.cleanup()
    return rec


# ---- loading ---------------------------------------------------------------------------------------------
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
        raise AvrepError(f"{p}: is a DAVS encoder run without a generator; train one with "
                         f"`avrep train-generator --davs {p} --data STORE --out {p}/generator`")
    raise AvrepError(f"{p}: not a generator run (no generator.json)")


def load_generator(path: str | Path, device: str | torch.device = "cpu"
                   ) -> tuple[TalkingFaceGenerator, nn.Module | None, dict[str, Any]]:
    """(generator in eval mode, frozen DAVS model or None, config.json) from a generator run dir."""
    from avrep.train.checkpoint import load_weights

    d = resolve_generator_dir(path)
    cfgp, wp = d / "config.json", d / "model.safetensors"
    if not cfgp.exists() or not wp.exists():
        raise AvrepError(f"{d}: generator run has no weights yet (no model.safetensors)")
    cfg = json.loads(cfgp.read_text())
    G = create_generator(cfg["generator"])
    sd = load_weights(wp, "cpu")
    G.load_state_dict({k[4:]: v for k, v in sd.items() if k.startswith("gen.")})
    G.to(device).eval()
    davs = None
    if cfg.get("davs"):
        from avrep.models.factory import create_model

        davs = create_model(cfg["davs"]["model"])
        davs.load_state_dict(load_weights(d / "davs.safetensors", "cpu"))
        davs.to(device).requires_grad_(False).eval()
    return G, davs, cfg

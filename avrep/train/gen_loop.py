"""Training the talking-face generator (`avrep train-generator`): the loop.

Per step (losses in `avrep.train.gen_losses`, weights in the generator config's "loss"): L1 on the face,
the jaw and a box around the mouth; a PatchGAN hinge loss after `adv_start_step`; lip-sync consistency
through a frozen DAVS model after `sync_start_step`: its video encoder reads the generated mouths and its
frame and clip features are pulled to the audio's (cosine). The cosine terms make the mouth follow the
speech (synthetic held-out lip reading on generated clips 0.15 -> 0.8 in one 12-epoch ablation); the word
CE is off in the shipped configs: its gradients paint adversarial blotches the frozen reader accepts.
Speech features come from the frozen DAVS audio encoder, or (50% of clips) its video encoder on the real
mouth, so the decoder serves both `--audio` and `--video` driving; a config with speech.source "own"
trains its own audio encoder instead (no DAVS run needed, used by the tiny tests). Without a DAVS run
given, a config that needs one takes $AVREP_CHECKPOINT, else the shipped model (`default_davs`).

Run dir: config.json, model.safetensors (gen.* and disc.*), davs.safetensors (frozen encoder copy, so
the folder is self-contained), generator.json (marks a generator run), state.json + checkpoints/ (resume),
log.jsonl, manifest.json. Same conventions as `avrep train` (AMP on CUDA, torchrun DDP, exact resume):
the run start, schedule, loaders and end-of-epoch commit are `avrep.train.epochs`. Data is
`avrep.train.gen_data`, loading a finished run `avrep.models.loading.load_generator`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from avrep.conventions import MOUTH_SIZE
from avrep.data.mixture import is_mixture, open_mixture
from avrep.data.sources import data_meta
from avrep.errors import AvrepError
from avrep.loader import open_model
from avrep.models.config import generator_config
from avrep.models.generator import PatchDiscriminator, TalkingFaceGenerator, face_to_mouth_roi, get_generator_config
from avrep.models.pretrained import resolve_checkpoint
from avrep.train import checkpoint as ckpt
from avrep.train import ddp
from avrep.train.checkpoint import save_weights
from avrep.train.epochs import (
    RunStart,
    append_log,
    commit_epoch,
    epoch_batches,
    lr_at,
    make_sampler,
    rewrite_log,
    start_run,
)
from avrep.train.gen_data import GenDataset
from avrep.train.gen_losses import hinge_d, lipsync_losses, loss_weights, recon_losses
from avrep.utils import atomic_write_json, write_manifest_json


# ---- frozen DAVS -----------------------------------------------------------------------------------------
def load_davs(run_dir: str, device: str | torch.device = "cpu"):
    """Frozen DAVS model of an `avrep train` run (eval mode, no gradients)."""
    m = open_model(run_dir, "davs", device)
    m.model.requires_grad_(False).eval()
    return m.model, m.config, m.words


def speech_features(
    G: TalkingFaceGenerator, davs: nn.Module | None, audio: torch.Tensor, mouth: torch.Tensor | None = None
) -> torch.Tensor | None:
    """Per-frame speech features: DAVS audio (or video, if `mouth` is given) frame features; None for
    generators with their own audio encoder (computed inside G.forward)."""
    if davs is None:
        return None
    with torch.no_grad():
        f = davs.frame_features_video(mouth) if mouth is not None else davs.frame_features_audio(audio)
    return f.float()


# ---- training --------------------------------------------------------------------------------------------
@dataclass
class GenTrainArgs:
    config: str | dict = "tiny"
    data: str = ""  # feature store dir, or a mixture `storeA@w+storeB@w` ("" when datasets are passed in)
    epoch_size: int | None = None  # clips drawn per epoch from a mixture (default: the parts' sizes summed)
    out: str = "runs/gen"
    davs: str | None = None  # DAVS run dir (frozen speech encoder + lip reader); None: `default_davs(config)`
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


@dataclass
class GenNets:
    """What one generator step needs: the nets (and their DDP wrappers), optimizer, frozen DAVS, losses."""

    G: TalkingFaceGenerator
    D: PatchDiscriminator
    Gs: nn.Module  # G, or its DDP wrapper
    Ds: nn.Module
    nets: nn.ModuleDict  # {"gen": G, "disc": D}: what checkpoints hold
    opt: torch.optim.Optimizer
    davs: nn.Module | None
    lcfg: dict[str, float]


@torch.no_grad()
def evaluate_recon(
    G: TalkingFaceGenerator,
    davs: nn.Module | None,
    ds: Dataset,
    device: torch.device,
    max_clips: int = 16,
    batch_size: int = 4,
) -> dict[str, float]:
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
        real = G.resize(face.flatten(0, 1).float() / 255).view_as(fake)
        l1s.append((fake - real).abs().mean((1, 2, 3, 4)))
        mse = ((fake - real) ** 2).mean((2, 3, 4)).clamp_min(1e-10)
        psnrs.append((10 * torch.log10(1 / mse)).mean(1))
        n += len(items)
    G.train()
    return {"val_l1": float(torch.cat(l1s).mean()), "val_psnr": float(torch.cat(psnrs).mean()), "val_n": n}


def default_davs(config: str | dict) -> str | None:
    """The frozen DAVS run a generator config trains with when `GenTrainArgs.davs` is None: none for a config
    with its own audio encoder (speech.source "own"), else $AVREP_CHECKPOINT, else the shipped model (logged)."""
    if generator_config(get_generator_config(config)).speech.source == "own":
        return None
    return str(resolve_checkpoint(None))


def _speech_source(args: GenTrainArgs, gcfg: dict[str, Any], device: torch.device):
    """(frozen DAVS or None, its config or None); a DAVS run sets the config's speech features to its own."""
    if args.davs:
        davs, davs_cfg, _ = load_davs(args.davs, device)
        gcfg["speech_dim"] = int(davs_cfg["model"]["embed_dim"])  # speech features are the DAVS frame features
        if generator_config(gcfg).speech.source == "own":
            gcfg["speech"] = {"source": "davs"}
        return davs, davs_cfg
    g = generator_config(gcfg)
    if g.speech.source != "own":
        raise AvrepError(
            f"generator config {g.name!r} takes DAVS speech features: give davs (a DAVS run)", param="davs"
        )
    return None, None


def _open_gen(path: str, split: str, frames: int | None, train: bool, seed: int) -> Dataset:
    """One feature store, or a mixture of several (`a@0.5+b@0.3`: weighted draws, see avrep.data.mixture)."""
    if not is_mixture(path):
        return GenDataset(path, split, frames, train=train, seed=seed)

    def one(p: str, sp: str, fr: int | None, train: bool, augment: str = "basic") -> GenDataset:
        return GenDataset(p, sp, fr, train=train, seed=seed)  # the generator's own augmentation only

    return open_mixture(path, split, frames, train, open_dataset=one, data_meta=data_meta, seed=seed)


def _open_datasets(args: GenTrainArgs, frames: int, train_ds: Dataset | None, val_ds: Dataset | None):
    """The training set (random `frames`-frame windows) and the validation set (whole clips) or None."""
    if train_ds is None:
        if not args.data:
            raise AvrepError(
                "data (a feature store from `avrep preprocess`, or a mixture a@w+b@w) is required", param="data"
            )
        train_ds = _open_gen(args.data, "train", frames, True, args.seed)
        if args.epoch_size and hasattr(train_ds, "epoch_size"):
            train_ds.epoch_size = int(args.epoch_size)
            train_ds.set_epoch(0)
        if val_ds is None and args.val_split:
            # whole clips of one store; a mixture's clips differ in length, so it validates on fixed windows
            vf = frames if is_mixture(args.data) else None
            try:
                val_ds = _open_gen(args.data, args.val_split, vf, False, args.seed)
            except AvrepError:
                val_ds = None
    return train_ds, val_ds


def _build_nets(rs: RunStart, gcfg: dict[str, Any], davs: nn.Module | None) -> GenNets:
    """Generator + discriminator (seeded by args.seed), one AdamW over both, DDP wrappers when distributed."""
    args, device = rs.args, rs.device
    torch.manual_seed(args.seed)
    G = TalkingFaceGenerator(gcfg).to(device)
    D = PatchDiscriminator(list(generator_config(gcfg).disc_channels)).to(device)
    opt = torch.optim.AdamW(
        [{"params": G.parameters()}, {"params": D.parameters()}], lr=args.lr, betas=(0.5, 0.999), weight_decay=0.0
    )
    return GenNets(G, D, G, D, nn.ModuleDict({"gen": G, "disc": D}), opt, davs, loss_weights(gcfg))


def _wrap_ddp(rs: RunStart, n: GenNets) -> None:
    if rs.dist.enabled:
        ids = [rs.device.index] if rs.device.type == "cuda" else None
        n.Gs = nn.parallel.DistributedDataParallel(n.G, device_ids=ids)
        n.Ds = nn.parallel.DistributedDataParallel(n.D, device_ids=ids)


def _write_run_files(
    rs: RunStart, gcfg: dict[str, Any], davs: nn.Module | None, davs_cfg: dict | None, start_epoch: int
) -> None:
    """config.json, generator.json, davs.safetensors (a fresh run's frozen copy), manifest.json; the log
    keeps only the epochs before `start_epoch`."""

    args, run = rs.args, rs.run
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        run / "config.json", {"generator": gcfg, "train": asdict(args), "davs": davs_cfg, "world_size": rs.dist.world}
    )
    name = generator_config(gcfg).name or "custom"
    atomic_write_json(run / "generator.json", {"kind": "avrep-generator", "config": name})
    if davs is not None and not rs.resuming:
        save_weights(run / "davs.safetensors", davs.state_dict())
    write_manifest_json(
        run,
        "train-generator",
        config=name,
        seed=args.seed,
        data=str(args.data),
        davs=args.davs,
        world_size=rs.dist.world,
    )
    rewrite_log(run / "log.jsonl", start_epoch)


def _generator_step(rs: RunStart, n: GenNets, b: dict[str, Any], step: int, ctx) -> tuple[torch.Tensor, dict]:
    """One batch: discriminator step (once the adversarial loss is on), then the generator step.
    Returns (the face L1, {term: detached value})."""
    args, device, G, lcfg, davs = rs.args, rs.device, n.G, n.lcfg, n.davs
    face, ref, audio = (b[k].to(device, non_blocking=True) for k in ("face", "ref", "audio"))
    centre = b["centre"].to(device)
    word = torch.as_tensor(b["word_id"]).to(device)
    B, T = face.shape[:2]
    real = G.resize(face.flatten(0, 1).float() / 255).view(B, T, 3, G.size, G.size)
    mouth = None
    if davs is not None and args.video_driven_p > 0 and torch.rand(()) < args.video_driven_p:
        # video-driven batch: DAVS video frame features of the real mouth drive the decoder
        mouth = face_to_mouth_roi(real.flatten(0, 1), centre.reshape(-1, 2)).view(B, T, MOUTH_SIZE, MOUTH_SIZE)
    sp = speech_features(G, davs, audio, mouth)
    use_adv = lcfg["adv"] > 0 and step >= lcfg["adv_start_step"]
    with ctx():
        fake = n.Gs(ref, sp, face, wave=audio if sp is None else None).float()
    terms: dict[str, torch.Tensor] = {}
    if use_adv:  # discriminator step on detached fakes
        with ctx():
            logits = n.Ds(torch.cat([real.flatten(0, 1), fake.detach().flatten(0, 1)])).float()
        d_loss = hinge_d(logits[: B * T], logits[B * T :])
        n.opt.zero_grad(set_to_none=True)
        d_loss.backward()
        n.opt.step()
        terms["d_loss"] = d_loss.detach()
    l1, ml1, bl1 = recon_losses(fake, real, centre)
    loss = lcfg["l1"] * l1 + lcfg["mouth_l1"] * ml1 + lcfg["mouth_box_l1"] * bl1
    terms.update(l1=l1.detach(), mouth_l1=ml1.detach(), mouth_box_l1=bl1.detach())
    if use_adv:
        with ctx():
            g_adv = -n.Ds(fake.flatten(0, 1)).float().mean()
        loss = loss + lcfg["adv"] * g_adv
        terms["g_adv"] = g_adv.detach()
    if (
        davs is not None
        and step >= lcfg["sync_start_step"]
        and (lcfg["sync"] > 0 or lcfg["word"] > 0 or lcfg["clip_cos"] > 0)
    ):
        with ctx():
            ls = lipsync_losses(davs, fake, centre, audio, word)
        loss = loss + lcfg["sync"] * ls["sync"] + lcfg["clip_cos"] * ls["clip_cos"]
        if "word" in ls:
            loss = loss + lcfg["word"] * ls["word"]
        terms.update({k: v.detach() for k, v in ls.items()})
    n.opt.zero_grad(set_to_none=True)
    loss.backward()
    for p in n.D.parameters():  # the generator step must not move the discriminator
        p.grad = None
    torch.nn.utils.clip_grad_norm_(G.parameters(), 5.0)
    n.opt.step()
    terms["loss"] = loss.detach()
    return l1, terms


def _train_epoch(
    rs: RunStart, n: GenNets, batches, step: int, total: int, warm: int, progress: bool
) -> tuple[dict[str, float], int, int, float]:
    """One pass over the batches -> (summed terms, batches done, step, last learning rate)."""
    args, ctx = rs.args, rs.autocast()
    sums: dict[str, float] = {}
    nb, lr = 0, args.lr
    for b in batches:
        lr = lr_at(step, total, warm, args.lr)
        for g in n.opt.param_groups:
            g["lr"] = lr
        l1, terms = _generator_step(rs, n, b, step, ctx)
        step += 1
        nb += 1
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        if progress and rs.dist.main and hasattr(batches, "set_postfix"):
            batches.set_postfix(l1=f"{float(l1):.4f}")
    return sums, nb, step, lr


def train_generator(
    args: GenTrainArgs,
    resume: bool = False,
    train_ds: Dataset | None = None,
    val_ds: Dataset | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the generator; returns the last epoch's log record."""

    rs = start_run(args, resume, "generator run")
    if rs.args.davs is None:  # resolved once: the run's config.json records the DAVS run it used
        rs.args = replace(rs.args, davs=default_davs(rs.args.config))
    args, dist, device = rs.args, rs.dist, rs.device
    gcfg = get_generator_config(args.config)
    davs, davs_cfg = _speech_source(args, gcfg, device)
    frames = args.frames or generator_config(gcfg).train_frames
    train_ds, val_ds = _open_datasets(args, frames, train_ds, val_ds)
    if len(train_ds) < args.batch_size * dist.world:
        raise AvrepError(
            f"{len(train_ds)} training clips is fewer than one batch; lower batch_size", param="batch_size"
        )

    n = _build_nets(rs, gcfg, davs)
    start_epoch, step = 0, 0
    if rs.resuming:
        st = ckpt.load_checkpoint(rs.run, n.nets, n.opt, device)
        start_epoch, step = int(st["epoch"]), int(st["step"])
    _wrap_ddp(rs, n)
    if dist.main:
        _write_run_files(rs, gcfg, davs, davs_cfg, start_epoch)
        if start_epoch == 0 and val_ds is not None:
            append_log(
                rs.run / "log.jsonl",
                {"epoch": 0, "step": 0, **evaluate_recon(n.G, davs, val_ds, device, args.val_clips)},
            )

    sampler, per_epoch = make_sampler(train_ds, dist, args.seed, args.batch_size)
    total = per_epoch * args.epochs
    warm = max(1, min(per_epoch, total // 10))
    rec: dict[str, Any] = {}
    for epoch in range(start_epoch, args.epochs):
        batches = epoch_batches(train_ds, sampler, epoch, args, dist, progress=progress, what="gen epoch")
        t0 = time.time()
        sums, nb, step, lr = _train_epoch(rs, n, batches, step, total, warm, progress)
        red = ddp.all_reduce_sum(torch.tensor([sums.get(k, 0.0) for k in sorted(sums)] + [float(nb)]))
        tot = dict(zip(sorted(sums), red[:-1].tolist()))
        nbt = max(float(red[-1]), 1.0)
        rec = {
            "epoch": epoch + 1,
            "step": step,
            "lr": lr if nb else args.lr,
            "time_s": round(time.time() - t0, 2),
            **{f"train_{k}": v / nbt for k, v in tot.items()},
        }
        if dist.main and val_ds is not None:
            rec.update(evaluate_recon(n.G, davs, val_ds, device, args.val_clips))
        commit_epoch(rs.run, rec, epoch, step, n.nets, n.opt, dist, progress)
    ddp.cleanup()
    return rec


__all__ = [
    "GenNets",
    "GenTrainArgs",
    "default_davs",
    "evaluate_recon",
    "load_davs",
    "speech_features",
    "train_generator",
]

"""One pass over a dataset collecting logits and embeddings for every evaluation metric."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm


@torch.no_grad()
def extract(
    model: torch.nn.Module,
    dataset,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    workers: int = 0,
    amp: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """-> numpy arrays: logits_video/audio [N,W], emb_video/audio [N,D], sync_video/audio [N,Ds] (the
    "sync" retrieval embeddings), emb_identity [N,Di],
    word_id, speaker_id [N], clip_id list. The model is put in eval mode and restored afterwards."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=device.type == "cuda"
    )
    out: dict[str, list] = {
        k: []
        for k in (
            "logits_video",
            "logits_audio",
            "emb_video",
            "emb_audio",
            "sync_video",
            "sync_audio",
            "emb_identity",
            "word_id",
            "speaker_id",
            "clip_id",
        )
    }
    it = loader
    if progress:
        it = tqdm(loader, desc="extract", unit="batch", leave=False)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()
    try:
        for b in it:
            mouth, audio, face = (b[k].to(device, non_blocking=True) for k in ("mouth", "audio", "face"))
            lms = b["landmarks"].to(device) if "landmarks" in b else None
            with ctx:
                vf, ve = model.encode_video(mouth, lms)
                af, ae = model.encode_audio(audio)
                idf = model.identity(face)
                lv, la = model.word_head(ve), model.word_head(ae)
            out["logits_video"].append(lv.float().cpu())
            out["logits_audio"].append(la.float().cpu())
            out["emb_video"].append(F.normalize(ve.float(), dim=-1).cpu())
            out["emb_audio"].append(F.normalize(ae.float(), dim=-1).cpu())
            if hasattr(model, "sync_embedding"):  # the "sync" retrieval embedding (avrep.models.davs)
                out["sync_video"].append(model.sync_embedding(vf, ve).float().cpu())
                out["sync_audio"].append(model.sync_embedding(af, ae).float().cpu())
            out["emb_identity"].append(F.normalize(idf.float(), dim=-1).cpu())
            out["word_id"].append(torch.as_tensor(b["word_id"]))
            out["speaker_id"].append(torch.as_tensor(b["speaker_id"]))
            out["clip_id"].extend(list(b["clip_id"]))
    finally:
        model.train(was_training)
    res: dict[str, Any] = {k: torch.cat(v).numpy() for k, v in out.items() if k != "clip_id" and v}
    res["clip_id"] = out["clip_id"]
    return res


__all__ = ["extract"]

"""Per-frame features of one stream over a clip of any length: the model runs on the windows it was trained
on and each frame's feature is the Hann-weighted mean over the windows that cover it.

Shared by `avrep sync` / `avrep speakers` (`avrep.apps.agreement`) and search re-ranked by temporal matching
(`avrep.index`), so it lives below both.
"""

from __future__ import annotations

import numpy as np
import torch

from avrep.conventions import CLIP_FRAMES as WINDOW  # features are computed on windows the model knows
from avrep.conventions import SAMPLES_PER_FRAME as SPF
from avrep.utils import window_starts


def _hann(w: int) -> np.ndarray:
    # never exactly 0, so edge frames of the clip still count
    return (0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(w) + 0.5) / w)).astype(np.float32) + 1e-3


@torch.no_grad()
def stream_features(
    model,
    data: np.ndarray,
    video: bool,
    *,
    window: int = WINDOW,
    hop: int = 7,
    batch: int = 32,
    device: str | torch.device = "cpu",
    landmarks: np.ndarray | None = None,
    features: str = "sync",
) -> np.ndarray:
    """Per-frame features [T, D] (L2-normalised) of one stream: mouth uint8 [T, 96, 96] (video=True) or
    audio float32 [T * 640] (video=False), from `window`-frame windows every `hop` frames, each frame's
    feature the Hann-weighted mean over the windows that cover it. landmarks [T, 68, 2]: the mouth's
    landmarks, for models that read lip geometry (`model.sync_needs_landmarks` / `needs_landmarks`). features: "sync" (the model's
    sync head when it has one: offsets) or "word" (the word encoders' frame features: what the speaker
    score of `avrep speakers` is calibrated on)."""
    T = len(data) if video else len(data) // SPF
    if T == 0:
        raise ValueError("empty clip")
    w = min(window, T)
    starts = window_starts(T, w, hop)
    wt = _hann(w)
    if features not in ("sync", "word"):
        raise ValueError(f"features must be 'sync' or 'word', got {features!r}")
    if features == "sync":
        enc = model.sync_frames_video if video else model.sync_frames_audio
    else:
        enc = model.frame_features_video if video else model.frame_features_audio
    lm = None
    needs = getattr(model, "sync_needs_landmarks" if features == "sync" else "needs_landmarks", False)
    if video and needs:
        if landmarks is None or len(landmarks) != T:
            raise ValueError(f"this model reads lip landmarks: pass landmarks [{T}, 68, 2] with the mouth")
        lm = np.asarray(landmarks, np.float32)
    dev = torch.device(device)
    acc = None
    norm = np.zeros(T, np.float32)
    for i in range(0, len(starts), batch):
        ss = starts[i : i + batch]
        if video:
            x = torch.from_numpy(np.stack([data[s : s + w] for s in ss])).to(dev)
        else:
            x = torch.from_numpy(np.stack([data[s * SPF : (s + w) * SPF] for s in ss])).to(dev)
        if lm is not None:
            f = enc(x, torch.from_numpy(np.stack([lm[s : s + w] for s in ss])).to(dev))
        else:
            f = enc(x)
        f = f.float().cpu().numpy()  # [b, w, D]
        if acc is None:
            acc = np.zeros((T, f.shape[-1]), np.float32)
        for s, fi in zip(ss, f):
            acc[s : s + w] += fi * wt[:, None]
            norm[s : s + w] += wt
    feats = acc / norm[:, None]
    return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-8)


__all__ = ["WINDOW", "stream_features"]

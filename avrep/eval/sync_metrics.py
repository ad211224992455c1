"""SyncNet-style audio-video offset estimation from per-frame features, and its benchmark helpers.

Sign convention (the project's, and SyncNet's): **positive offset = audio leads video**. With an offset
of o frames the sound of video frame t sits at audio frame t - o, so we compare video frame t with
audio frame t - o; a file is put back in sync by delaying its audio by o frames (o * 40 ms).

Numbers reported, as SyncNet users expect them:
  min_dist    the mean distance (1 - cosine) at the best offset (lower = better match);
  confidence  median(distance over offsets) - min(distance): how much the best offset stands out
              (SyncNet's "AV confidence"; near 0 = no usable evidence, e.g. no speech or no face).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from avrep.conventions import FRAME_MS, SAMPLES_PER_FRAME, SYNC_SIGN
from avrep.utils import window_starts


def distance_matrix(vf: np.ndarray, af: np.ndarray, max_offset: int) -> np.ndarray:
    """D[t, j] = 1 - cos(video t, audio t - o) for o = offsets[j] = -max..+max; NaN outside the clip.

    vf, af: [T, D] per-frame features (L2-normalised here, whatever they come as).
    """
    vf = np.asarray(vf, np.float32)
    af = np.asarray(af, np.float32)
    if vf.ndim != 2 or vf.shape != af.shape:
        raise ValueError(f"video/audio features must both be [T, D], got {vf.shape} and {af.shape}")
    vf = vf / np.maximum(np.linalg.norm(vf, axis=1, keepdims=True), 1e-8)
    af = af / np.maximum(np.linalg.norm(af, axis=1, keepdims=True), 1e-8)
    T = len(vf)
    offsets = np.arange(-max_offset, max_offset + 1)
    sim = vf @ af.T  # [T video, T audio]
    D = np.full((T, len(offsets)), np.nan, np.float32)
    for j, o in enumerate(offsets):
        t = np.arange(max(0, o), min(T, T + o))  # audio index t - o must be inside [0, T)
        D[t, j] = 1.0 - sim[t, t - o]
    return D


@dataclass
class OffsetEstimate:
    offset: int  # frames, positive = audio leads video
    confidence: float  # median(dist) - min(dist)
    min_dist: float  # distance at the best offset
    dists: list[float]  # mean distance per offset, offsets -max..+max

    @property
    def offset_ms(self) -> float:
        return self.offset * FRAME_MS


def estimate(D: np.ndarray, max_offset: int, min_overlap: int = 1) -> OffsetEstimate:
    """Best offset of a distance matrix (or of rows t0:t1 of it): mean over frames, then argmin.

    Offsets whose overlap has fewer than `min_overlap` frames are not candidates.
    """
    n = np.sum(~np.isnan(D), axis=0)
    with np.errstate(invalid="ignore"):
        mean = np.where(n >= max(1, min_overlap), np.nansum(D, axis=0) / np.maximum(n, 1), np.nan)
    if np.all(np.isnan(mean)):
        return OffsetEstimate(0, 0.0, float("nan"), [float("nan")] * D.shape[1])
    j = int(np.nanargmin(mean))
    mn = float(mean[j])
    conf = float(np.nanmedian(mean) - mn)
    return OffsetEstimate(j - max_offset, conf, mn, [float(x) for x in mean])


@dataclass
class SyncResult:
    """Whole-clip estimate plus per-window estimates (sliding windows over video frames)."""

    offset_frames: int
    offset_ms: float
    confidence: float
    min_dist: float
    max_offset: int
    n_frames: int
    dists: list[float]
    windows: list[dict[str, Any]] = field(default_factory=list)
    sign_convention: str = SYNC_SIGN

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sync_from_features(
    vf: np.ndarray, af: np.ndarray, max_offset: int = 15, window: int = 50, hop: int = 25
) -> SyncResult:
    """SyncNet-style offset from per-frame video/audio features [T, D].

    The whole-clip distance curve averages every frame's distance per offset; per-window offsets use
    `window`-frame spans every `hop` frames (a drifting offset shows up there).
    """
    T = len(vf)
    max_offset = int(max(0, min(max_offset, T - 1)))
    D = distance_matrix(vf, af, max_offset)
    # an offset is only a candidate when at least ~1/3 of the clip overlaps (a few frames decide nothing)
    min_overlap = max(1, min(T - max_offset, T // 3))
    est = estimate(D, max_offset, min_overlap)
    wins = []
    if T > window:
        for s in window_starts(T, window, hop):
            w = estimate(D[s : s + window], max_offset, min_overlap=max(1, window // 3))
            wins.append(
                {
                    "start_frame": s,
                    "end_frame": s + window,
                    "start_s": s * FRAME_MS / 1000,
                    "offset_frames": w.offset,
                    "offset_ms": w.offset_ms,
                    "confidence": round(w.confidence, 4),
                    "min_dist": round(w.min_dist, 4),
                }
            )
    return SyncResult(
        offset_frames=est.offset,
        offset_ms=est.offset_ms,
        confidence=est.confidence,
        min_dist=est.min_dist,
        max_offset=max_offset,
        n_frames=T,
        dists=est.dists,
        windows=wins,
    )


# ---- benchmark helpers ---------------------------------------------------------------------------------
def shifted_pair(
    mouth: np.ndarray, audio: np.ndarray, offset: int, margin: int, samples_per_frame: int = SAMPLES_PER_FRAME
) -> tuple[np.ndarray, np.ndarray]:
    """A desynchronised copy with real content on both sides (no padding the detector could spot).

    Video frames [margin, T - margin) with audio that leads it by `offset` frames (|offset| <= margin):
    output audio frame t = input audio frame t + offset, so the sound of video frame t plays at t - offset.
    """
    T = len(mouth)
    if abs(offset) > margin or T - 2 * margin < 1:
        raise ValueError(f"offset {offset} needs margin >= |offset| and a clip longer than 2 * margin")
    v = mouth[margin : T - margin]
    a0 = (margin + offset) * samples_per_frame
    a = audio[a0 : a0 + len(v) * samples_per_frame]
    return v, a


def offset_accuracy(found: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Share found exactly and within +-1 frame, plus mean absolute error in frames."""
    found, true = np.asarray(found), np.asarray(true)
    err = np.abs(found - true)
    return {
        "n": int(len(err)),
        "exact": float((err == 0).mean()) if len(err) else float("nan"),
        "within_1": float((err <= 1).mean()) if len(err) else float("nan"),
        "mae_frames": float(err.mean()) if len(err) else float("nan"),
    }


__all__ = [
    "FRAME_MS",
    "OffsetEstimate",
    "SyncResult",
    "distance_matrix",
    "estimate",
    "offset_accuracy",
    "shifted_pair",
    "sync_from_features",
]

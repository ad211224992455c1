"""Per-frame audio-visual agreement from the DAVS shared space: the features `avrep sync` and
`avrep speakers` share.

`frame_features` runs the model's sync features (its dedicated sync head when it has one, else the word
encoders, trained with a frame-level sync loss so video frame t matches audio frame t) on 29-frame windows
and blends the overlapping windows per frame.
`agreement` scores how well a mouth agrees with the audio around each frame: over a sliding window it
averages the distance (1 - cosine) between video frame t and audio frame t - o for o in -K..K and returns
the cosine at offset 0 and how far offset 0 stands out (median over offsets minus the distance at 0,
SyncNet's confidence taken at offset 0).
"""

from __future__ import annotations

import numpy as np
import torch

from avrep.conventions import SAMPLES_PER_FRAME as SPF
from avrep.models.frames import WINDOW, _hann, stream_features  # noqa: F401  (re-exported: apps import them here)


def frame_features(
    model,
    mouth: np.ndarray,
    audio: np.ndarray,
    *,
    window: int = WINDOW,
    hop: int = 7,
    batch: int = 32,
    device: str | torch.device = "cpu",
    landmarks: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame video and audio features [T, D] for a clip of any length.

    The encoders run on `window`-frame windows every `hop` frames (the length they were trained on, so
    the features do not depend on how long the file is); each frame's feature is the Hann-weighted mean
    over the windows that cover it, renormalised. mouth: uint8 [T, 96, 96]; audio: float32 [T * 640];
    landmarks [T, 68, 2] (needed by models that read lip geometry).
    """
    T = len(mouth)
    if T == 0:
        raise ValueError("empty clip")
    audio = np.asarray(audio, np.float32)
    if audio.size < T * SPF:
        audio = np.concatenate([audio, np.zeros(T * SPF - audio.size, np.float32)])
    kw = dict(window=window, hop=hop, batch=batch, device=device)
    vf = stream_features(model, mouth, True, landmarks=landmarks, **kw)
    return vf, stream_features(model, audio[: T * SPF], False, **kw)


def agreement(
    vf: np.ndarray, af: np.ndarray, start: int = 0, *, half_window: int = 25, max_offset: int = 6, tolerance: int = 1
):
    """Audio-visual agreement of video features vf [L, D] (frames start..start+L-1 of a file) with the
    file's audio features af [T, D] -> (cos0 [L], conf0 [L]).

    Over frames t-half_window..t+half_window: the mean distance d(o) between video frame u and audio frame
    u - o for o in -max_offset..max_offset (pairs outside the file left out); with d0 = the least d(o) for
    |o| <= tolerance (in-sync give or take a frame: the model's offsets on new faces are often 1 off),
    cos0 = 1 - d0 and conf0 = median_o d(o) - d0. A mouth that speaks the audio has a high cosine near
    offset 0 that stands out from the other offsets; a silent face, or a voice from elsewhere, has neither.
    """
    L, T = len(vf), len(af)
    K = max_offset
    offs = np.arange(-K, K + 1)
    vals = np.zeros((L, len(offs)), np.float64)
    cnt = np.zeros((L, len(offs)), np.float64)
    t = np.arange(start, start + L)
    for j, o in enumerate(offs):
        ok = (t - o >= 0) & (t - o < T)
        vals[ok, j] = 1.0 - np.einsum("ld,ld->l", vf[ok], af[t[ok] - o])
        cnt[ok, j] = 1.0
    # windowed sums by cumulative sums (edges: the frames there are)
    cs_v = np.concatenate([np.zeros((1, len(offs))), np.cumsum(vals, 0)])
    cs_c = np.concatenate([np.zeros((1, len(offs))), np.cumsum(cnt, 0)])
    lo = np.clip(np.arange(L) - half_window, 0, L)
    hi = np.clip(np.arange(L) + half_window + 1, 0, L)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (cs_v[hi] - cs_v[lo]) / (cs_c[hi] - cs_c[lo])
    tol = min(max(0, tolerance), K)
    d0 = m[:, K - tol : K + tol + 1].min(1)
    med = np.nanmedian(m, axis=1)
    return (1.0 - d0).astype(np.float32), (med - d0).astype(np.float32)


__all__ = ["agreement", "frame_features", "stream_features"]

"""`avrep lipread`: word-level lip reading of any talking-face clip with a trained DAVS run.

Raw clip -> the training preprocessing (`avrep.preprocess.process_file`) -> aligned 96x96 mouth ROIs ->
the video word encoder and the shared word classifier -> top-k words with probabilities. Video only by
default; `with_audio` fuses the audio encoder (mean of log-probabilities, as in `avrep eval`).

A word window is 29 frames (1.16 s, LRW-style, word centred). A shorter clip is centred in one window
(edge frames repeated); a longer one is read with sliding windows (stride 5 frames) and also gives a
timeline: the likely word at each time, with consecutive windows of the same word merged into segments.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from avrep.apps.stream import CHUNK_FRAMES, chunk_starts, mouth_chunks, progress_bar, stream_config
from avrep.conventions import CLIP_FRAMES as WINDOW
from avrep.conventions import FRAME_MS
from avrep.conventions import SAMPLES_PER_FRAME as SPF
from avrep.device import resolve_device
from avrep.errors import AvrepError, MediaError
from avrep.io import media
from avrep.utils import window_starts as _window_starts


def pad_to_window(
    mouth: np.ndarray, audio: np.ndarray, window: int = WINDOW, landmarks: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """Centre a clip shorter than a window in one (edge frames repeated, audio zero-padded) -> (mouth, audio),
    plus the landmarks padded like the mouth when given."""
    T = len(mouth)
    if T >= window:
        return (mouth, audio) if landmarks is None else (mouth, audio, landmarks)
    left = (window - T) // 2
    idx = np.clip(np.arange(window) - left, 0, T - 1)
    a = np.zeros(window * SPF, np.float32)
    a[left * SPF : left * SPF + T * SPF] = audio[: T * SPF]
    return (mouth[idx], a) if landmarks is None else (mouth[idx], a, landmarks[idx])


def window_starts(T: int, window: int = WINDOW, stride: int = 5) -> list[int]:
    """Lip-reading window starts (every `stride` frames, the last ending at T)."""
    return _window_starts(T, window, stride)


@torch.no_grad()
def window_probs(
    model,
    mouth: np.ndarray,
    audio: np.ndarray | None,
    starts: list[int],
    *,
    window: int = WINDOW,
    batch: int = 32,
    device: str | torch.device = "cpu",
    landmarks: np.ndarray | None = None,
) -> np.ndarray:
    """Word probabilities [n_windows, W] of the 29-frame windows starting at `starts` (landmarks [T, 68, 2]
    beside the mouth for models that read lip geometry)."""
    dev = torch.device(device)
    needs = getattr(model, "needs_landmarks", False)
    if needs and (landmarks is None or len(landmarks) != len(mouth)):
        raise ValueError(f"this model reads lip landmarks: pass landmarks [{len(mouth)}, 68, 2] with the mouth")
    out = []
    for i in range(0, len(starts), batch):
        ss = starts[i : i + batch]
        m = torch.from_numpy(np.stack([mouth[s : s + window] for s in ss])).to(dev)
        a = None
        if audio is not None:
            a = torch.from_numpy(np.stack([audio[s * SPF : (s + window) * SPF] for s in ss])).to(dev)
        kw = {}
        if needs:
            lm = np.stack([landmarks[s : s + window] for s in ss]).astype(np.float32)  # type: ignore[index]
            kw["landmarks"] = torch.from_numpy(lm).to(dev)
        out.append(model.classify(mouth=m, audio=a, **kw).float().softmax(-1).cpu().numpy())
    return np.concatenate(out)


def _topk(p: np.ndarray, words: list[str], k: int) -> list[dict[str, Any]]:
    idx = np.argsort(-p, kind="stable")[:k]
    return [
        {"word": words[i] if i < len(words) else f"<{i}>", "word_id": int(i), "prob": round(float(p[i]), 4)}
        for i in idx
    ]


def lipread_arrays(
    model,
    words: list[str],
    mouth: np.ndarray,
    audio: np.ndarray | None = None,
    *,
    k: int = 5,
    stride: int = 5,
    device: str | torch.device = "cpu",
    landmarks: np.ndarray | None = None,
) -> dict[str, Any]:
    """Top-k words (and a timeline for long clips) from preprocessed arrays (landmarks [T, 68, 2]: for
    models that read lip geometry)."""
    if k < 1:
        raise AvrepError(f"-k {k}: must be >= 1")
    T = len(mouth)
    if T == 0:
        raise AvrepError("empty clip")
    aud = None if audio is None else np.asarray(audio, np.float32)
    if aud is not None and aud.size < T * SPF:
        aud = np.concatenate([aud, np.zeros(T * SPF - aud.size, np.float32)])
    lm = None
    if landmarks is not None:
        m, a, lm = pad_to_window(mouth, aud if aud is not None else np.zeros(T * SPF, np.float32), landmarks=landmarks)
    else:
        m, a = pad_to_window(mouth, aud if aud is not None else np.zeros(T * SPF, np.float32))
    a = a if aud is not None else None
    starts = window_starts(len(m), WINDOW, stride)
    P = window_probs(model, m, a, starts, device=device, landmarks=lm)
    return summarise(P, starts, words, T, k=k, with_audio=audio is not None)


def summarise(
    P: np.ndarray, starts: list[int], words: list[str], T: int, *, k: int = 5, with_audio: bool = False
) -> dict[str, Any]:
    """The lip-reading result from the word probabilities P [n_windows, W] of the windows at `starts` of a
    T-frame clip: top-k words of the most confident window, and for several windows a timeline and segments."""
    k = min(k, P.shape[1])
    res: dict[str, Any] = {
        "n_frames": int(T),
        "duration_s": round(T * FRAME_MS / 1000, 3),
        "modality": "video+audio" if with_audio else "video",
        "window_frames": WINDOW,
    }
    if len(starts) == 1:
        res["topk"] = _topk(P[0], words, k)
        return res
    # long clip: the most confident window's top-k, plus the timeline
    best = int(np.argmax(P.max(1)))
    res["topk"] = _topk(P[best], words, k)
    res["topk_window"] = {"start_frame": starts[best], "end_frame": starts[best] + WINDOW}
    timeline = []
    for s, p in zip(starts, P):
        j = int(np.argmax(p))
        c = s + WINDOW // 2
        timeline.append(
            {
                "start_frame": s,
                "end_frame": s + WINDOW,
                "centre_s": round(c * FRAME_MS / 1000, 3),
                "word": words[j] if j < len(words) else f"<{j}>",
                "prob": round(float(p[j]), 4),
                "top": _topk(p, words, min(3, k)),
            }
        )
    res["timeline"] = timeline
    segs: list[dict[str, Any]] = []
    for t in timeline:
        if segs and segs[-1]["word"] == t["word"]:
            sg = segs[-1]
            sg["end_frame"] = t["end_frame"]
            sg["n_windows"] += 1
            sg["max_prob"] = max(sg["max_prob"], t["prob"])
        else:
            segs.append(
                {
                    "word": t["word"],
                    "start_frame": t["start_frame"],
                    "end_frame": t["end_frame"],
                    "n_windows": 1,
                    "max_prob": t["prob"],
                }
            )
    for sg in segs:  # centres of the first/last window: where the word is most likely said
        sg["start_s"] = round((sg["start_frame"] + WINDOW // 2) * FRAME_MS / 1000, 3)
        sg["end_s"] = round((sg["end_frame"] - WINDOW // 2) * FRAME_MS / 1000, 3)
    res["segments"] = segs
    return res


def lipread_file(
    path: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    *,
    k: int = 5,
    with_audio: bool = False,
    stride: int = 5,
    device: str = "auto",
    model=None,
    words: list[str] | None = None,
    chunk_frames: int | None = None,
    max_duration: float | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Lip-read one raw clip of any length -> JSON-able dict with top-k words (and timeline/segments when long).

    The video is streamed `chunk_frames` frames at a time (`avrep.apps.stream`: memory bounded by a chunk,
    each window read from the crops the whole file gives); a clip that fits one chunk is read whole.
    """
    from avrep.preprocess import PreprocessConfig

    if stride < 1:
        raise AvrepError(f"stride {stride}: must be >= 1", param="stride")
    if k < 1:
        raise AvrepError(f"-k {k}: must be >= 1")
    cfg = stream_config(PreprocessConfig(require_audio=with_audio), max_duration or media.MAX_STREAM_DURATION)
    dev = resolve_device(device)
    if model is None:
        model, _, words = load_model(checkpoint, str(dev))
    assert words is not None
    info = media.probe(path)
    if not info.has_video:
        raise MediaError(f"{info.path}: no video stream")
    if with_audio and not info.has_audio:
        raise MediaError(f"{info.path}: no audio stream")
    media.check_limits(info, cfg.max_duration, cfg.max_pixels)
    wav = None
    if with_audio:
        wav = media.read_audio(path, info=info, max_duration=cfg.max_duration)
        if not np.any(np.abs(wav) > 1e-4):
            raise MediaError(
                f"{path}: the audio track is silent; read the lips only (with_audio off)", param="with_audio"
            )
    bar = progress_bar(info.n_frames_25, "lipread", progress)
    probs, starts, faces, T = [], [], [], 0
    for ch in mouth_chunks(path, info, cfg.check(), chunk_frames=chunk_frames or CHUNK_FRAMES, on_chunk=bar.update):
        faces.append(ch.face[ch.s - ch.start : ch.e - ch.start])
        T = ch.e
        a = None if wav is None else media.fit_audio(wav[ch.start * SPF :], len(ch.mouth))
        if ch.last and ch.start == 0:  # the whole clip in one chunk: read as a clip (short ones padded)
            res = lipread_arrays(model, words, ch.mouth, a, k=k, stride=stride, device=dev, landmarks=ch.landmarks)
            break
        ss = chunk_starts(ch, WINDOW, stride)
        rel = [s - ch.start for s in ss]
        probs.append(window_probs(model, ch.mouth, a, rel, device=dev, landmarks=ch.landmarks))
        starts += ss
    else:
        res = summarise(np.concatenate(probs), starts, words, T, k=k, with_audio=with_audio)
    bar.close()
    face = np.concatenate(faces)
    if with_audio and wav is not None and not np.any(np.abs(media.fit_audio(wav, T)) > 1e-4):
        raise MediaError(f"{path}: the audio track is silent; read the lips only (with_audio off)", param="with_audio")
    res.update(path=str(path), face_frames=int(face.sum()), checkpoint=str(checkpoint) if checkpoint else None)
    if res["face_frames"] < res["n_frames"]:
        res["note"] = f"no face in {res['n_frames'] - res['face_frames']} of {res['n_frames']} frames"
    return res


def load_model(checkpoint: str | os.PathLike | None, device: str = "cpu"):
    """-> (DAVS model in eval mode, config, words) (`avrep.apps.sync.load_model`)."""
    from avrep.apps.sync import load_model as load

    return load(checkpoint, device)


__all__ = ["lipread_arrays", "lipread_file", "pad_to_window", "summarise", "window_probs", "window_starts"]

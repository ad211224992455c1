"""Word-level lip reading metrics: video-only, audio-only and fused top-k, per-word accuracy, confusion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avrep.plotting import confusion as confusion_png
from avrep.utils import atomic_write_bytes


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def topk_accuracy(logits: np.ndarray, y: np.ndarray, k: int) -> float:
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return float((top == y[:, None]).any(1).mean())


def confusion(pred: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (y, pred), 1)
    return cm


def lipread_metrics(
    logits_video: np.ndarray, logits_audio: np.ndarray, y: np.ndarray, words: list[str], ceiling: float | None = None
) -> dict[str, Any]:
    """Top-1/top-5 per modality and fused (sum of log-probabilities), per-word video accuracy."""
    fused = log_softmax(logits_video) + log_softmax(logits_audio)
    res: dict[str, Any] = {"n": int(len(y)), "num_words": len(words), "chance_top1": 1.0 / max(1, len(words))}
    for name, lg in (("video", logits_video), ("audio", logits_audio), ("fused", fused)):
        res[name] = {"top1": topk_accuracy(lg, y, 1), "top5": topk_accuracy(lg, y, 5)}
    pv, pa, pf = logits_video.argmax(1), logits_audio.argmax(1), fused.argmax(1)
    per_word = {}
    for i, w in enumerate(words):
        m = y == i
        if m.any():
            per_word[w] = {
                "n": int(m.sum()),
                "video": float((pv[m] == i).mean()),
                "audio": float((pa[m] == i).mean()),
                "fused": float((pf[m] == i).mean()),
            }
    res["per_word"] = per_word
    if ceiling is not None:
        res["homophene_ceiling"] = float(ceiling)
        res["video_top1_over_ceiling"] = res["video"]["top1"] / float(ceiling) if ceiling else None
    return res


def plot_confusion(cm: np.ndarray, words: list[str], path: str | Path, title: str = "video confusion") -> None:
    """Row-normalised confusion matrix PNG (large enough to label up to 80 words), written atomically."""
    png = confusion_png(
        cm, words, title, max_inches=40, min_inches=5, inches_per_word=0.18, max_labels=80, font=10, dpi=100
    )
    atomic_write_bytes(path, png)

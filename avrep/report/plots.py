"""Figures for `avrep report`, each returned as PNG bytes (matplotlib Agg; nothing touches a display)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from avrep.plotting import confusion, png_bytes, pyplot


def training_curves(log: list[dict[str, Any]]) -> bytes:
    """Loss terms (left) and train/val accuracies and A->V R@1 (right) per epoch."""
    plt = pyplot()
    ep = [r.get("epoch", i + 1) for i, r in enumerate(log)]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
    loss_keys = sorted({k for r in log for k in r if k.startswith("train_") and not k.endswith("_acc")})
    for k in loss_keys:
        a1.plot(ep, [r.get(k, np.nan) for r in log], label=k[6:], lw=2 if k == "train_loss" else 1)
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.set_yscale("log")
    a1.set_title("training losses")
    a1.legend(fontsize=7, ncol=2)
    acc_keys = [
        k
        for k in (
            "train_video_acc",
            "train_audio_acc",
            "val_video_acc",
            "val_audio_acc",
            "val_fused_acc",
            "val_a2v_R@1",
            "val_a2v_sync_R@1",
        )
        if any(k in r for r in log)
    ]
    for k in acc_keys:
        a2.plot(ep, [r.get(k, np.nan) for r in log], label=k, ls="--" if k.startswith("train") else "-")
    a2.set_ylim(0, 1.02)
    a2.set_xlabel("epoch")
    a2.set_title("accuracy / retrieval")
    a2.legend(fontsize=7)
    fig.tight_layout()
    return png_bytes(fig)


def tsne_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE (scikit-learn, cosine metric) of L2-normalised embeddings."""
    from sklearn.manifold import TSNE

    n = len(x)
    perp = float(max(2.0, min(30.0, (n - 1) / 3.0)))
    return TSNE(
        n_components=2, perplexity=perp, metric="cosine", init="pca", random_state=seed, max_iter=750
    ).fit_transform(np.asarray(x, np.float32))


def _colours(labels: np.ndarray):
    plt = pyplot()
    u, inv = np.unique(labels, return_inverse=True)
    cmap = plt.get_cmap("tab20" if len(u) <= 20 else "nipy_spectral")
    return inv / max(1, len(u) - 1) if len(u) > 20 else inv, cmap, len(u), u


def tsne_panels(xy: np.ndarray, word: np.ndarray, speaker: np.ndarray, words: Sequence[str], title: str) -> bytes:
    """The same 2-D map twice: coloured by word (left) and by identity (right)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, lab, name in ((axes[0], word, "word"), (axes[1], speaker, "identity")):
        c, cmap, n, u = _colours(np.asarray(lab))
        ax.scatter(xy[:, 0], xy[:, 1], c=c, cmap=cmap, s=12, vmin=0, vmax=max(1, n - 1) if n <= 20 else 1)
        ax.set_title(f"{title}: coloured by {name} ({n} classes)")
        ax.set_xticks([])
        ax.set_yticks([])
        if name == "word" and n <= 20:  # label each word's cluster at its median point
            for w in u:
                m = np.asarray(lab) == w
                mx, my = np.median(xy[m], axis=0)
                ax.text(
                    mx,
                    my,
                    words[int(w)] if 0 <= int(w) < len(words) else str(w),
                    fontsize=8,
                    ha="center",
                    weight="bold",
                    bbox=dict(fc="white", alpha=0.6, lw=0, pad=1),
                )
    fig.tight_layout()
    return png_bytes(fig)


def _border(img: np.ndarray, ok: bool, w: int = 4) -> np.ndarray:
    out = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img.copy()
    col = np.array([40, 170, 60] if ok else [210, 40, 40], np.uint8)
    out[:w], out[-w:], out[:, :w], out[:, -w:] = col, col, col, col
    return out


def retrieval_examples(rows: list[dict[str, Any]]) -> bytes:
    """One row per audio query: its own mouth strip, then the top-k retrieved videos' mouth ROIs.

    rows: {"query_word", "query_mouth" uint8 [n,h,w] (frames of the query's own video),
           "hits": [{"word", "mouth" uint8 [h,w], "correct_clip", "correct_word", "score"}]}.
    """
    plt = pyplot()
    k = max(len(r["hits"]) for r in rows)
    nq = len(rows[0]["query_mouth"])
    fig, axes = plt.subplots(len(rows), nq + k, figsize=(1.25 * (nq + k), 1.5 * len(rows)), squeeze=False)
    for i, r in enumerate(rows):
        for j in range(nq):
            ax = axes[i, j]
            ax.imshow(r["query_mouth"][j], cmap="gray", vmin=0, vmax=255)
            if j == 0:
                ax.set_title(f"query audio:\n'{r['query_word']}'", fontsize=7)
        for j in range(k):
            ax = axes[i, nq + j]
            if j < len(r["hits"]):
                h = r["hits"][j]
                ax.imshow(_border(h["mouth"], h["correct_word"]))
                ax.set_title(f"#{j + 1} {h['word']}{' *' if h['correct_clip'] else ''}\n{h['score']:.2f}", fontsize=7)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(
        "audio -> video retrieval: the query's own mouth frames, then the top hits "
        "(green = same word, * = the query's own clip)",
        fontsize=9,
    )
    fig.tight_layout()
    return png_bytes(fig)


def bars(values: dict[str, float], goals: dict[str, float | None], title: str) -> bytes:
    """Horizontal bars of metrics with their goal marked."""
    plt = pyplot()
    names = list(values)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1))
    y = np.arange(len(names))
    ax.barh(y, [values[n] for n in names], color="#4a7fb5")
    for i, n in enumerate(names):
        g = goals.get(n)
        if g is not None:
            ax.plot([g, g], [i - 0.4, i + 0.4], color="#d33", lw=2)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_title(title + " (red = goal)")
    fig.tight_layout()
    return png_bytes(fig)


__all__ = ["bars", "confusion", "retrieval_examples", "training_curves", "tsne_2d", "tsne_panels"]

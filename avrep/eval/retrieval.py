"""Audio<->video retrieval at 1:N: each query's true match is the item with the same index."""

from __future__ import annotations

import numpy as np
import torch


def ranks_of_matches(query: np.ndarray, gallery: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """1-based rank of gallery[i] among all gallery items for query[i] (inner product, ties pessimistic)."""
    q, g = (
        torch.from_numpy(np.ascontiguousarray(query, np.float32)),
        torch.from_numpy(np.ascontiguousarray(gallery, np.float32)),
    )
    if q.shape != g.shape:
        raise ValueError(f"query {tuple(q.shape)} and gallery {tuple(g.shape)} must pair up row by row")
    ranks = []
    for s in range(0, q.shape[0], chunk):
        sim = q[s : s + chunk] @ g.t()
        true = sim[torch.arange(sim.shape[0]), torch.arange(s, s + sim.shape[0])]
        ranks.append((sim >= true[:, None]).sum(1))
    return torch.cat(ranks).numpy().astype(np.int64)


def retrieval_metrics(query: np.ndarray, gallery: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    r = ranks_of_matches(query, gallery)
    out = {f"R@{k}": float((r <= k).mean()) for k in ks}
    out["median_rank"] = float(np.median(r))
    out["N"] = int(len(r))
    out["chance_R@1"] = 1.0 / max(1, len(r))
    return out


def av_retrieval(
    emb_audio: np.ndarray,
    emb_video: np.ndarray,
    sync_audio: np.ndarray | None = None,
    sync_video: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """a2v/v2a with the word embeddings; a2v_sync/v2a_sync with the "sync" embeddings when given."""
    out = {"a2v": retrieval_metrics(emb_audio, emb_video), "v2a": retrieval_metrics(emb_video, emb_audio)}
    if sync_audio is not None and sync_video is not None:
        out["a2v_sync"] = retrieval_metrics(sync_audio, sync_video)
        out["v2a_sync"] = retrieval_metrics(sync_video, sync_audio)
    return out

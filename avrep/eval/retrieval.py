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
    return metrics_from_ranks(ranks_of_matches(query, gallery), ks)


def metrics_from_ranks(r: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """R@k, median rank, N and chance R@1 from the 1-based ranks of the true items."""
    out = {f"R@{k}": float((r <= k).mean()) for k in ks}
    out["median_rank"] = float(np.median(r))
    out["N"] = int(len(r))
    out["chance_R@1"] = 1.0 / max(1, len(r))
    return out


def match_scores(
    queries: list[np.ndarray], gallery: list[np.ndarray], max_offset: int = 1, chunk: int = 1024
) -> np.ndarray:
    """Temporal matching [Nq, Ng]: for each pair of per-frame feature sequences ([T, D], unit rows, any
    lengths, both starting at the clip's first frame), the mean dot product of query frame t + o and gallery
    frame t over the frames both have, maximised over o in [-max_offset, max_offset]. Unlike one pooled
    vector a clip, the score asks that the speech move *when* the lips do; the small offset range forgives
    a file a frame or two off. Pairs with no frames in common score -inf."""
    if not queries or not gallery:
        raise ValueError("match_scores needs at least one query and one gallery item")
    d = queries[0].shape[1]
    tq, tg = max(len(x) for x in queries), max(len(x) for x in gallery)
    T = max(tq, tg) + 2 * max_offset

    def padded(items: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.zeros(len(items), T, d)
        m = torch.zeros(len(items), T)
        for i, f in enumerate(items):
            if f.ndim != 2 or f.shape[1] != d:
                raise ValueError(f"item {i}: features {f.shape} are not [T, {d}]")
            x[i, max_offset : max_offset + len(f)] = torch.from_numpy(np.ascontiguousarray(f, np.float32))
            m[i, max_offset : max_offset + len(f)] = 1.0
        return x, m

    g, mg = padded(gallery)
    out = np.empty((len(queries), len(gallery)), np.float32)
    for s in range(0, len(queries), chunk):
        q, mq = padded(queries[s : s + chunk])
        best = torch.full((q.shape[0], g.shape[0]), -float("inf"))
        for o in range(-max_offset, max_offset + 1):
            qs, ms = torch.roll(q, -o, 1), torch.roll(mq, -o, 1)  # padding >= max_offset: nothing wraps around
            num = torch.einsum("itd,jtd->ij", qs, g)
            cnt = ms @ mg.T
            best = torch.maximum(best, torch.where(cnt > 0, num / cnt.clamp(min=1), -float("inf")))
        out[s : s + chunk] = best.numpy()
    return out


def metrics_from_scores(scores: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """`retrieval_metrics` for a square score matrix whose diagonal holds the true pairs (ties pessimistic)."""
    s = np.asarray(scores, np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"scores must be square [N, N], got {s.shape}")
    return metrics_from_ranks((s >= np.diag(s)[:, None]).sum(1), ks)


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

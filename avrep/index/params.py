"""Per-call FAISS search parameters (never mutate the shared index: that is what keeps search
thread-safe) and the measurement helpers used by the tuner and the benchmark."""

from __future__ import annotations

import time

import faiss
import numpy as np


def kind_of(index: faiss.Index) -> str:
    """'flat' | 'hnsw' | 'ivf' for the index under any OPQ/refine wrappers."""
    idx = faiss.downcast_index(index)
    while True:
        if isinstance(idx, faiss.IndexPreTransform):
            idx = faiss.downcast_index(idx.index)
        elif isinstance(idx, faiss.IndexRefine):
            idx = faiss.downcast_index(idx.base_index)
        else:
            break
    if isinstance(idx, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(idx, faiss.IndexIVF):
        return "ivf"
    return "flat"


def make_params(index: faiss.Index, value: int | None, sel: faiss.IDSelector | None = None, k_factor: float = 4.0):
    """SearchParameters for `index` with efSearch/nprobe = value and an optional id selector.

    Returns (params, keepalive): SWIG does not own nested parameter objects, so the caller keeps
    `keepalive` referenced for the duration of the search."""
    keep: list = []
    idx = faiss.downcast_index(index)
    if isinstance(idx, faiss.IndexPreTransform):
        inner, k2 = make_params(idx.index, value, sel, k_factor)
        p = faiss.SearchParametersPreTransform()
        p.index_params = inner
        keep += [inner, k2]
        return p, keep
    if isinstance(idx, faiss.IndexRefine):
        inner, k2 = make_params(idx.base_index, value, sel, k_factor)
        p = faiss.IndexRefineSearchParameters()
        p.k_factor = k_factor
        p.base_index_params = inner
        keep += [inner, k2]
        if sel is not None:
            p.sel = sel
        return p, keep
    if isinstance(idx, faiss.IndexHNSW):
        p = faiss.SearchParametersHNSW()
        if value:
            p.efSearch = int(value)
    elif isinstance(idx, faiss.IndexIVF):
        p = faiss.SearchParametersIVF()
        if value:
            p.nprobe = int(min(value, idx.nlist))
            q = faiss.downcast_index(idx.quantizer)
            if isinstance(q, faiss.IndexHNSW):  # an HNSW coarse quantizer must see >= nprobe lists
                qp = faiss.SearchParametersHNSW()
                qp.efSearch = max(2 * int(value), 16)
                p.quantizer_params = qp
                keep.append(qp)
    else:
        if sel is None:
            return None, keep
        p = faiss.SearchParameters()
    if sel is not None:
        p.sel = sel
    return p, keep


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean |found[:, :k] ∩ truth[:, :k]| / k over queries (-1 = empty slot, never a hit)."""
    hits = 0
    for f, t in zip(found[:, :k], truth[:, :k]):
        hits += len(np.intersect1d(f[f >= 0], t[t >= 0], assume_unique=False))
    return hits / (k * len(truth))


def latency_ms(search, queries: np.ndarray, k: int, n_single: int = 200) -> dict:
    """p50/p99 single-query latency (ms) and batched throughput (ms/query) of `search(q, k)`."""
    n_single = min(n_single, len(queries))
    for q in queries[: min(10, n_single)]:  # warm caches / page in the index
        search(q[None], k)
    ts = np.empty(n_single)
    for i in range(n_single):
        t0 = time.perf_counter()
        search(queries[i : i + 1], k)
        ts[i] = time.perf_counter() - t0
    t0 = time.perf_counter()
    search(queries, k)
    batch = (time.perf_counter() - t0) / len(queries)
    return {
        "p50_ms": float(np.percentile(ts, 50) * 1e3),
        "p99_ms": float(np.percentile(ts, 99) * 1e3),
        "batch_ms_per_query": float(batch * 1e3),
        "batch_size": int(len(queries)),
    }

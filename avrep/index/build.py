"""`avrep index build`: choose, train, add, tune and write an index folder atomically."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
from tqdm import tqdm

from avrep import __version__
from avrep.errors import AvrepError
from avrep.index.choose import Choice, choose_index, parse_memory
from avrep.index.params import kind_of, latency_ms, make_params
from avrep.index.search import open_index_files
from avrep.index.store import (
    INDEX_FILE,
    MANIFEST_FILE,
    META_FILE,
    Embeddings,
    build_lock,
    clean_stale_temps,
    open_embeddings,
    publish,
    read_json,
    temp_dir_for,
)
from avrep.utils import atomic_write_json, sha256_file

log = logging.getLogger("avrep.index")

# Copied from the embedding manifest into the index manifest (the index must answer the same model).
EMB_FIELDS = ("modality", "kind", "dim", "metric", "normalized", "checkpoint_sha256", "checkpoint", "model")
EF_GRID = [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 4096]
NPROBE_GRID = [
    1,
    2,
    3,
    4,
    6,
    8,
    12,
    16,
    24,
    32,
    48,
    64,
    96,
    128,
    192,
    256,
    384,
    512,
    768,
    1024,
    1536,
    2048,
    3072,
    4096,
    8192,
    16384,
    65536,
]
ADD_BATCH = 65_536


def faiss_metric(metric: str) -> int:
    return faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2


def use_gpu(device: str) -> bool:
    """GPU when asked ('cuda', 'cuda:N' or the older 'gpu') or ('auto') when faiss-gpu sees one."""
    n = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    asked = device in ("gpu", "cuda") or device.startswith("cuda:")
    if asked and n == 0:
        raise AvrepError(
            f"device {device}: faiss sees no GPU (install the faiss-gpu extra: pip install avrep[gpu])", param="device"
        )
    return device != "cpu" and n > 0


def train_index(index: faiss.Index, xt: np.ndarray, gpu: bool) -> None:
    """Train (k-means for IVF, OPQ/PQ codebooks); k-means runs on the GPU(s) when present."""
    if index.is_trained:
        return
    if gpu and kind_of(index) == "ivf":
        ivf = faiss.extract_index_ivf(index)
        # FAISS's own recipe: keep the index on CPU, give k-means a GPU flat index to assign with.
        ivf.clustering_index = faiss.index_cpu_to_all_gpus(faiss.IndexFlat(ivf.d, ivf.metric_type))
    index.train(xt)


def add_vectors(index: faiss.Index, x: np.ndarray, gpu: bool, desc: str = "add") -> faiss.Index:
    """Add in batches with a progress bar; returns the (CPU) index holding them.

    IVF adds run on the GPU(s) when present (list assignment is the cost), then come back to CPU."""
    target = index
    if gpu and kind_of(index) == "ivf" and not isinstance(faiss.downcast_index(index), faiss.IndexRefine):
        target = faiss.index_cpu_to_all_gpus(index)
    with tqdm(total=len(x), desc=desc, unit="vec", disable=len(x) < 4 * ADD_BATCH) as bar:
        for i in range(0, len(x), ADD_BATCH):
            target.add(np.ascontiguousarray(x[i : i + ADD_BATCH]))
            bar.update(min(ADD_BATCH, len(x) - i))
    return faiss.index_gpu_to_cpu(target) if target is not index else index


def train_size(choice: Choice, n: int) -> int:
    """How many vectors to train on: ~64 per IVF list (FAISS warns under 39), >= 10k for PQ."""

    m = re.search(r"IVF(\d+)", choice.factory)
    need = 64 * int(m.group(1)) if m else 0
    if "PQ" in choice.factory:
        need = max(need, 20_000)
    return min(n, max(need, 1000))


# Tuning queries, when the user gives none: members moved off the collection to these cosines (split evenly).
# Users' queries are never members (an audio embedding searching a video index sits at cosine ~0.5-0.9 of its
# pair): a leave-one-out sample of members promised recall@10 0.986 that such queries got only 0.862 of.
PERTURB_COSINES = (0.9, 0.8, 0.7)
N_TUNING_QUERIES = 2000  # half tunes the search parameter, the other half measures the recall recorded


def perturbed_queries(
    x: np.ndarray, n: int, seed: int = 0, cosines: tuple[float, ...] = PERTURB_COSINES
) -> tuple[np.ndarray, np.ndarray]:
    """n non-member queries: a random member rotated by isotropic noise to an exact cosine from `cosines`
    (keeping its norm); returns (queries [n, d] float32, the index into `cosines` of each)."""
    rng = np.random.default_rng(seed + 2)
    src = np.sort(rng.choice(len(x), size=n, replace=len(x) < n))
    base = np.asarray(x[src], dtype=np.float32)
    norms = np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-12)
    u = base / norms
    noise = rng.standard_normal(base.shape).astype(np.float32)
    noise -= (noise * u).sum(1, keepdims=True) * u  # orthogonal to the member: the cosine is exactly c
    noise /= np.maximum(np.linalg.norm(noise, axis=1, keepdims=True), 1e-12)
    group = np.arange(n) % len(cosines)
    c = np.asarray(cosines, dtype=np.float32)[group][:, None]
    return np.ascontiguousarray((c * u + np.sqrt(1 - c * c) * noise) * norms, dtype=np.float32), group


def recalls_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Per-query |found[:, :k] ∩ truth[:, :k]| / k (-1 = empty slot, never a hit)."""
    return np.array([len(np.intersect1d(f[f >= 0], t[t >= 0])) / k for f, t in zip(found[:, :k], truth[:, :k])])


def tune(
    index: faiss.Index,
    choice: Choice,
    queries: np.ndarray,
    truth: np.ndarray,
    groups: np.ndarray,
    k: int,
    recall_target: float,
) -> int | None:
    """Smallest efSearch/nprobe at which every query group's recall@k clears the target by two standard
    errors (binary search on a grid), so that fresh queries of the same kind get the target too."""

    def ok(v) -> bool:
        p, keep = make_params(index, v)
        r = recalls_at_k(index.search(queries, k, params=p)[1], truth, k)
        for g in np.unique(groups):
            rg = r[groups == g]
            if rg.mean() - 2 * rg.std() / np.sqrt(len(rg)) < recall_target:
                return False
        return True

    if choice.param is None:
        return None
    if choice.param == "efSearch":
        grid = [v for v in EF_GRID if v >= k]
    else:
        nlist = faiss.extract_index_ivf(index).nlist
        grid = [v for v in NPROBE_GRID if v < nlist] + [nlist]
    lo, hi = 0, len(grid) - 1
    if not ok(grid[hi]):  # unreachable: settle for the best this index can do
        log.warning("recall target %.3f not reached at %s=%d", recall_target, choice.param, grid[hi])
        return grid[hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(grid[mid]):
            hi = mid
        else:
            lo = mid + 1
    return grid[lo]


def measure(
    index,
    x: np.ndarray,
    choice: Choice,
    k: int,
    recall_target: float,
    metric: str,
    queries: np.ndarray | None,
    seed: int,
    n_queries: int = N_TUNING_QUERIES,
    source: str | None = None,
) -> dict:
    """Tune the search parameter on half of the tuning queries, then record recall@k on the other half
    (held out from tuning) and the latency at the tuned value.

    `queries`: the user's kind of queries (e.g. the paired modality's embeddings); None: perturbed members."""
    rng = np.random.default_rng(seed + 3)
    if queries is not None:
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != x.shape[1]:
            raise AvrepError(f"tuning queries have shape {list(queries.shape)}; the index needs [n, {x.shape[1]}]")
        if len(queries) > n_queries:
            queries = queries[np.sort(rng.choice(len(queries), n_queries, replace=False))]
        queries = np.ascontiguousarray(queries)
        groups = np.zeros(len(queries), dtype=np.int64)
        kind, source = "given", source or "--queries"
        cos_note = None
    else:
        queries, groups = perturbed_queries(x, n_queries, seed)
        kind = "perturbed"
        source = f"members moved off the collection to cosine {'/'.join(map(str, PERTURB_COSINES))} (isotropic noise)"
        cos_note = list(PERTURB_COSINES)
    flat = faiss.IndexFlat(x.shape[1], faiss_metric(metric))
    flat.add(x)
    truth = flat.search(queries, k)[1]
    half = np.arange(len(queries)) % 2 == 0 if len(queries) > 1 else np.ones(len(queries), dtype=bool)
    held = ~half if (~half).any() else half
    value = tune(index, choice, queries[half], truth[half], groups[half], k, recall_target)
    p, keep = make_params(index, value)
    r = recalls_at_k(index.search(queries[held], k, params=p)[1], truth[held], k)
    lat = latency_ms(lambda q, kk: index.search(q, kk, params=p), queries, k)
    out = {
        "search_param": choice.param,
        "search_value": value,
        "recall_at_k": float(r.mean()),
        "k": k,
        "recall_target": recall_target,
        "tuning_queries": int(half.sum()),
        "recall_queries": int(held.sum()),
        "tuning_query_kind": kind,
        "tuning_query_source": source,
        **{f"latency_{a}": b for a, b in lat.items()},
    }
    if cos_note:
        out["tuning_query_cosines"] = cos_note
        g = groups[held]
        out["recall_at_k_by_cosine"] = {str(c): float(r[g == i].mean()) for i, c in enumerate(cos_note)}
    return out


def tuning_queries_from(emb_dir: str | os.PathLike, index_manifest: dict, seed: int = 0) -> tuple[np.ndarray, str]:
    """The paired modality's embeddings (e.g. audio for a video index) as tuning queries: same model, kind
    and dimension as the index, read from an embedding folder. Returns (vectors, a source note)."""
    q = open_embeddings(emb_dir)
    for f in ("kind", "dim", "checkpoint_sha256"):
        a, b = index_manifest.get(f), q.manifest.get(f)
        if f == "kind":
            a, b = a or "word", b or "word"
        if a != b:
            raise AvrepError(f"{emb_dir}: {f} {b!r} does not match the embeddings being indexed ({a!r})")
    return q.sample(N_TUNING_QUERIES, seed), f"paired {q.manifest.get('modality')} embeddings {Path(emb_dir).resolve()}"


def store_search_value(index: faiss.Index, param: str | None, value: int | None) -> None:
    """Store the tuned value in the index itself (as make_params would pass it per call), so plain
    faiss.read_index + search, and avrep's unfiltered fast path, search exactly as tuned."""
    if value is None:
        return
    ps = faiss.ParameterSpace()
    ps.set_index_parameter(index, param, value)
    if param == "nprobe":
        q = faiss.downcast_index(faiss.extract_index_ivf(index).quantizer)
        if isinstance(q, faiss.IndexHNSW):
            q.hnsw.efSearch = max(2 * int(value), 16)


def _finish(tmp: Path, index: faiss.Index, meta: pd.DataFrame, manifest: dict) -> None:
    faiss.write_index(index, str(tmp / INDEX_FILE))
    meta.to_parquet(tmp / META_FILE, index=False)
    manifest["index_bytes"] = os.path.getsize(tmp / INDEX_FILE)
    manifest["index_sha256"] = sha256_file(tmp / INDEX_FILE)
    manifest["n"] = int(index.ntotal)
    atomic_write_json(tmp / MANIFEST_FILE, manifest)


def _base_manifest(emb: Embeddings, command: str) -> dict:
    m = {f: emb.manifest.get(f) for f in EMB_FIELDS}
    m["metric"] = m["metric"] or "ip"
    m.update(
        {
            "command": command,
            "avrep_version": __version__,
            "faiss_version": faiss.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "embeddings": str(emb.path.resolve()),
        }
    )
    return m


def build_index(
    emb_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    max_memory: str | int = "4GB",
    latency_ms_target: float = 10.0,
    metric: str | None = None,
    recall_target: float = 0.95,
    index_type: str = "auto",
    k: int = 10,
    overwrite: bool = False,
    device: str = "auto",
    queries: np.ndarray | None = None,
    tune_queries: str | os.PathLike | None = None,
    seed: int = 0,
    trained: str | None = None,
    shard: tuple[int, int] = (0, 1),
) -> dict:
    """Build an index folder at `out` from `emb_dir`; returns its manifest.

    The search parameter is tuned on queries of the kind users send: `tune_queries` (an embedding folder of
    the paired modality, e.g. audio embeddings for a video index), else `queries` (vectors), else members
    perturbed off the collection; the manifest records which (`tuning_query_kind`, `tuning_query_source`).
    `trained` (a folder from `train_quantizer`) + `shard` build shard i/N of a sharded IVF index."""
    t0 = time.perf_counter()
    emb = open_embeddings(emb_dir)
    if shard != (0, 1):
        if trained is None:
            raise AvrepError(
                "a shard needs trained (a quantizer folder from train_quantizer, `avrep index train-quantizer`)",
                param=("shard", "trained"),
            )
        emb = emb.select(*shard)
        if emb.n == 0:
            raise AvrepError(f"{emb_dir}: shard {shard[0]}/{shard[1]} has no embedding files")
    metric = metric or emb.manifest.get("metric", "ip")
    if metric not in ("ip", "l2"):
        raise AvrepError(f"metric {metric!r}: use ip or l2", param="metric")
    if metric == "ip" and emb.manifest.get("normalized") is False:
        log.warning("%s: inner product on unnormalised embeddings", emb_dir)
    out = Path(out)
    mem = parse_memory(max_memory)
    gpu = use_gpu(device)
    source = None
    if tune_queries is not None:
        if queries is not None:
            raise AvrepError(
                "give tuning queries once: tune_queries (an embedding folder) or queries (vectors)",
                param=("tune_queries", "queries"),
            )
        queries, source = tuning_queries_from(tune_queries, emb.manifest, seed)
    with build_lock(out):
        if out.exists() and not overwrite:
            raise AvrepError(
                f"{out}: already exists (overwrite replaces it; add_to_index extends it)", param=("overwrite", "add")
            )
        clean_stale_temps(out)
        x = emb.vectors()
        n, d = x.shape
        if trained is not None:
            index, qman = load_trained(trained, emb.manifest)
            choice = Choice(qman["factory"], "nprobe", 0, "shared trained quantizer")
        else:
            choice = choose_index(n, d, mem, index_type)
            index = faiss.index_factory(d, choice.factory, faiss_metric(metric))
        log.info("index %s for n=%d d=%d (%s)", choice.factory, n, d, choice.reason)
        t_train = time.perf_counter()
        if not index.is_trained:
            xt = x[np.sort(np.random.default_rng(seed).choice(n, train_size(choice, n), replace=False))]
            train_index(index, xt, gpu)
        t_add = time.perf_counter()
        index = add_vectors(index, x, gpu)
        t_tune = time.perf_counter()
        stats = measure(index, x, choice, k, recall_target, metric, queries, seed, source=source)
        if tune_queries is not None:
            stats["tuning_queries_dir"] = str(Path(tune_queries).resolve())
        store_search_value(index, stats["search_param"], stats["search_value"])
        manifest = _base_manifest(emb, "avrep index build")
        manifest.update(
            {
                "metric": metric,
                "factory": choice.factory,
                "choice_reason": choice.reason,
                "index_kind": kind_of(index),
                "max_memory_bytes": mem,
                "estimated_bytes": choice.est_bytes,
                "latency_target_ms": latency_ms_target,
                "latency_target_met": stats["latency_p99_ms"] <= latency_ms_target,
                "device": "gpu" if gpu else "cpu",
                "seed": seed,
                "train_vectors": int(min(n, train_size(choice, n))),
                "build_seconds": {
                    "train": t_add - t_train,
                    "add": t_tune - t_add,
                    "tune": time.perf_counter() - t_tune,
                    "total": time.perf_counter() - t0,
                },
                **stats,
            }
        )
        if trained is not None:
            manifest.update(
                {
                    "shard": list(shard),
                    "trained_sha256": qman["trained_sha256"],
                    "trained": str(Path(trained).resolve()),
                }
            )
        if not manifest["latency_target_met"]:
            log.warning("p99 latency %.2f ms is above the %.1f ms target", stats["latency_p99_ms"], latency_ms_target)
        with temp_dir_for(out) as tmp:
            _finish(tmp, index, emb.metadata(), manifest)
            publish(tmp, out, replace=overwrite)
    return manifest


def add_to_index(
    emb_dir: str | os.PathLike,
    index_dir: str | os.PathLike,
    *,
    device: str = "auto",
    seed: int = 0,
    retune: bool = True,
) -> dict:
    """Append new embeddings to an existing index folder without a rebuild (atomic swap).

    Rows whose clip_id is already indexed are skipped, so re-adding a folder is harmless."""

    t0 = time.perf_counter()
    out = Path(index_dir)
    emb = open_embeddings(emb_dir)
    gpu = use_gpu(device)
    with build_lock(out):
        clean_stale_temps(out)
        index, meta, man = open_index_files(out)
        check_compatible(man, emb.manifest, f"{emb_dir}", f"{out}")
        new_meta = emb.metadata()
        x = emb.vectors()
        if "clip_id" in new_meta and "clip_id" in meta:
            keep = ~new_meta["clip_id"].isin(set(meta["clip_id"])).to_numpy()
            x, new_meta = x[keep], new_meta[keep].reset_index(drop=True)
        n_new = len(x)
        if n_new:
            index = add_vectors(index, x, gpu, desc="add")
        meta = pd.concat([meta, new_meta], ignore_index=True)
        man = dict(man)
        if retune and n_new and man.get("search_param"):
            choice = Choice(man["factory"], man["search_param"], 0, man.get("choice_reason", ""))
            if kind_of(index) != "ivf":  # IVF codes are lossy: keep the tuned nprobe
                xs = index.reconstruct_n(0, index.ntotal)
                q, source = None, None  # retune on the kind of queries the build tuned on, where still there
                qdir = man.get("tuning_queries_dir")
                if man.get("tuning_query_kind") == "given" and qdir and Path(qdir).is_dir():
                    q, source = tuning_queries_from(qdir, man, seed)
                stats = measure(
                    index, xs, choice, man.get("k", 10), man.get("recall_target", 0.95), man["metric"], q, seed
                )
                if source:
                    stats["tuning_query_source"] = source
                man.update(stats)
                store_search_value(index, man["search_param"], man["search_value"])
        man.setdefault("adds", []).append(
            {
                "embeddings": str(Path(emb_dir).resolve()),
                "added": n_new,
                "skipped_existing": int(emb.n - n_new),
                "seconds": time.perf_counter() - t0,
                "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        )
        with temp_dir_for(out) as tmp:
            _finish(tmp, index, meta, man)
            publish(tmp, out, replace=True)
    return man


def check_compatible(index_man: dict, emb_man: dict, emb_name: str, index_name: str) -> None:
    """Refuse to mix embeddings of another model, modality or dimension into an index."""
    for f in ("modality", "kind", "dim", "checkpoint_sha256"):
        a, b = index_man.get(f), emb_man.get(f)
        if f == "kind":  # manifests written before kinds existed hold word embeddings
            a, b = a or "word", b or "word"
        if a != b:
            raise AvrepError(f"{emb_name}: {f} {b!r} does not match the index {index_name} ({a!r})")


# --- sharded builds (several machines, one trained quantizer) -------------------------------


def train_quantizer(
    emb_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    n_total: int | None = None,
    max_memory: str | int = "4GB",
    index_type: str = "auto",
    metric: str | None = None,
    overwrite: bool = False,
    seed: int = 0,
    device: str = "auto",
) -> dict:
    """Train an empty IVF index on a sample of `emb_dir`, to be shared by every shard build."""
    emb = open_embeddings(emb_dir)
    n_total = int(n_total or emb.n)
    metric = metric or emb.manifest.get("metric", "ip")
    mem = parse_memory(max_memory)
    choice = choose_index(n_total, emb.dim, mem, index_type)
    if choice.param != "nprobe":  # a sharded collection needs lists that shards can fill independently
        choice = choose_index(n_total, emb.dim, mem, "IVF")
    if "Refine" in choice.factory:  # refine tables cannot be merged across shards
        choice = Choice(choice.factory.replace(",Refine(SQ8)", ""), "nprobe", choice.est_bytes, choice.reason)
    index = faiss.index_factory(emb.dim, choice.factory, faiss_metric(metric))
    xt = emb.sample(train_size(choice, n_total), seed)
    t0 = time.perf_counter()
    out = Path(out)
    with build_lock(out):
        if out.exists() and not overwrite:
            raise AvrepError(f"{out}: already exists (overwrite replaces it)", param="overwrite")
        clean_stale_temps(out)
        train_index(index, xt, use_gpu(device))
        man = _base_manifest(emb, "avrep index train-quantizer")
        man.update(
            {
                "metric": metric,
                "factory": choice.factory,
                "n_total": n_total,
                "train_vectors": len(xt),
                "train_seconds": time.perf_counter() - t0,
                "seed": seed,
            }
        )
        with temp_dir_for(out) as tmp:
            faiss.write_index(index, str(tmp / "trained.faiss"))
            man["trained_sha256"] = sha256_file(tmp / "trained.faiss")
            atomic_write_json(tmp / MANIFEST_FILE, man)
            publish(tmp, out, replace=overwrite)
    return man


def load_trained(path: str | os.PathLike, emb_manifest: dict) -> tuple[faiss.Index, dict]:
    path = Path(path)
    man = read_json(path / MANIFEST_FILE)
    check_compatible(man, emb_manifest, "embeddings", str(path))
    f = path / "trained.faiss"
    if not f.exists() or sha256_file(f) != man.get("trained_sha256"):
        raise AvrepError(f"{f}: missing or does not match its manifest hash")
    try:
        return faiss.read_index(str(f)), man
    except RuntimeError as e:
        raise AvrepError(f"{f}: unreadable FAISS index ({str(e).splitlines()[0]})") from None


def merge_shards(
    shard_dirs: list[str | os.PathLike], out: str | os.PathLike, *, ondisk: bool = False, overwrite: bool = False
) -> dict:
    """Merge shard folders built on one trained quantizer, with FAISS's own tools.

    In memory: IndexIVF.merge_from (ids shifted by the rows before each shard). On disk
    (`ondisk`): faiss.contrib.ondisk.merge_ondisk into `merged.ivfdata` next to index.faiss, which
    `Index.open` maps with IO_FLAG_ONDISK_SAME_DIR."""

    shards = []
    for s in shard_dirs:
        idx, meta, man = open_index_files(Path(s))
        shards.append((man.get("shard", [0, 1]), idx, meta, man, Path(s)))
    shards.sort(key=lambda t: t[0][0])
    nsh = shards[0][0][1]
    if sorted(s[0][0] for s in shards) != list(range(nsh)) or any(s[0][1] != nsh for s in shards):
        raise AvrepError(f"merge needs shards 0..{nsh - 1} of one build, got {[s[0] for s in shards]}")
    q = {s[3].get("trained_sha256") for s in shards}
    if len(q) != 1 or None in q:
        raise AvrepError("shards were not built from one trained quantizer (trained_sha256 differs)")
    for s in shards[1:]:
        check_compatible(shards[0][3], s[3], str(s[4]), str(shards[0][4]))
    out = Path(out)
    man = dict(shards[0][3])
    man.pop("shard", None)
    nprobe = max(int(s[3]["search_value"]) for s in shards)
    man.update(
        {
            "command": "avrep index merge",
            "shards": [str(s[4].resolve()) for s in shards],
            "search_value": nprobe,
            "ondisk": ondisk,
            "shard_recall_at_k": [s[3]["recall_at_k"] for s in shards],
            "recall_at_k": min(s[3]["recall_at_k"] for s in shards),
            "recall_note": "min over shards, each tuned on its own rows; nprobe = max over shards",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
    )
    with build_lock(out):
        if out.exists() and not overwrite:
            raise AvrepError(f"{out}: already exists (overwrite replaces it)", param="overwrite")
        clean_stale_temps(out)
        meta = pd.concat([s[2] for s in shards], ignore_index=True)
        with temp_dir_for(out) as tmp:
            if ondisk:
                from faiss.contrib.ondisk import merge_ondisk

                trained = load_trained(man["trained"], man)[0]
                names = []
                for i, s in enumerate(shards):
                    names.append(str(tmp / f"shard{i}.faiss"))
                    faiss.write_index(s[1], names[-1])
                merge_ondisk(trained, names, str(tmp / "merged.ivfdata"), shift_ids=True)
                for nm in names:
                    os.unlink(nm)
                merged = trained
            else:
                merged = shards[0][1]
                ivf = faiss.extract_index_ivf(merged)
                for s in shards[1:]:
                    ivf.merge_from(faiss.extract_index_ivf(s[1]), ivf.ntotal)
                merged.ntotal = ivf.ntotal
            store_search_value(merged, "nprobe", nprobe)
            _finish(tmp, merged, meta, man)
            publish(tmp, out, replace=overwrite)
    return man

"""`avrep.Index`: open an index folder (validated) and search it, optionally filtered by metadata."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from avrep.errors import AvrepError
from avrep.index.params import kind_of, make_params
from avrep.index.store import INDEX_FILE, MANIFEST_FILE, META_FILE, check_embedding_manifest, read_json

# Columns shown by the CLI table (whichever exist in the metadata).
DISPLAY_COLUMNS = ("clip_id", "path", "word", "speaker", "split", "start_s", "end_s")
# Under this fraction of rows selected, a filtered HNSW search scans its flat storage exactly.
EXACT_FILTER_FRACTION = 0.05
_F32 = np.dtype(np.float32)
_reduce = np.add.reduce


def open_index_files(path: Path, mmap: bool = False) -> tuple[faiss.Index, pd.DataFrame, dict]:
    """Read and cross-check index.faiss, metadata.parquet and manifest.json of an index folder."""
    path = Path(path)
    if not path.is_dir():
        raise AvrepError(f"{path}: not an index folder")
    man = check_embedding_manifest(read_json(path / MANIFEST_FILE), path / MANIFEST_FILE)
    f = path / INDEX_FILE
    if not f.exists():
        raise AvrepError(f"{f}: missing")
    if man.get("index_bytes") is not None and os.path.getsize(f) != man["index_bytes"]:
        raise AvrepError(f"{f}: corrupt or truncated ({os.path.getsize(f)} bytes, manifest says {man['index_bytes']})")
    for key in ("n", "index_bytes", "search_value"):
        v = man.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise AvrepError(f"{path / MANIFEST_FILE}: {key!r} must be a non-negative integer, got {v!r}")
    if not isinstance(man.get("checkpoint") or "", str):
        raise AvrepError(f"{path / MANIFEST_FILE}: 'checkpoint' must be a path string")
    # Always: on-disk inverted lists are looked up next to index.faiss, never at a path stored in the file.
    flags = faiss.IO_FLAG_ONDISK_SAME_DIR
    if mmap:
        flags |= faiss.IO_FLAG_MMAP
    try:
        index = faiss.read_index(str(f), flags)
    except (RuntimeError, MemoryError) as e:
        raise AvrepError(f"{f}: corrupt FAISS index ({str(e).strip().splitlines()[0][:200]})") from None
    if index.d != man["dim"]:
        raise AvrepError(f"{f}: index dimension {index.d} but manifest dim {man['dim']}")
    want = faiss.METRIC_INNER_PRODUCT if man.get("metric", "ip") == "ip" else faiss.METRIC_L2
    if index.metric_type != want:
        raise AvrepError(f"{f}: index metric does not match manifest metric {man.get('metric')!r}")
    try:
        meta = pd.read_parquet(path / META_FILE)
    except FileNotFoundError:
        raise AvrepError(f"{path / META_FILE}: missing") from None
    except Exception as e:  # pyarrow raises several error types for a damaged file
        raise AvrepError(f"{path / META_FILE}: unreadable parquet ({e})") from None
    if len(meta) != index.ntotal:
        raise AvrepError(f"{path}: metadata has {len(meta)} rows but the index holds {index.ntotal} vectors")
    if man.get("n") is not None and man["n"] != index.ntotal:
        raise AvrepError(f"{path}: manifest n={man['n']} but the index holds {index.ntotal} vectors")
    return index, meta, man


@dataclass(slots=True)
class SearchResult:
    """Ranked results for nq queries: scores/ids [nq, k] (id -1 = no result) + metadata rows."""

    scores: np.ndarray
    ids: np.ndarray
    metadata: pd.DataFrame

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> pd.DataFrame:
        """Results of query i as a DataFrame (rank, score, id, metadata columns)."""
        return self._frame(np.array([i]))

    def to_frame(self) -> pd.DataFrame:
        """All results as one DataFrame with a `query` column."""
        return self._frame(np.arange(len(self.ids)))

    def records(self) -> list[list[dict]]:
        """One list of result dicts per query (JSON-ready)."""
        df = self.to_frame()
        out: list[list[dict]] = [[] for _ in range(len(self.ids))]
        for row in df.to_dict("records"):
            q = row.pop("query")
            out[q].append({c: _jsonable(v) for c, v in row.items()})
        return out

    def _frame(self, qs: np.ndarray) -> pd.DataFrame:
        ids, scores = self.ids[qs], self.scores[qs]
        q = np.repeat(qs, ids.shape[1])
        rank = np.tile(np.arange(1, ids.shape[1] + 1), len(qs))
        flat_ids, flat_scores = ids.ravel(), scores.ravel()
        ok = flat_ids >= 0
        meta = self.metadata.iloc[flat_ids[ok]].reset_index(drop=True)
        head = pd.DataFrame({"query": q[ok], "rank": rank[ok], "score": flat_scores[ok], "id": flat_ids[ok]})
        return pd.concat([head, meta], axis=1)


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def parse_where(where: Mapping | Iterable[str] | None) -> dict[str, list]:
    """{'split': 'test'} / ['split=test', 'speaker=s1'] -> {column: [values]} (values OR-ed)."""
    if not where:
        return {}
    out: dict[str, list] = {}
    items = where.items() if isinstance(where, Mapping) else []
    if not isinstance(where, Mapping):
        for w in where:
            if "=" not in w:
                raise AvrepError(f"where {w!r}: expected key=value, e.g. split=test", param="where")
            k, v = w.split("=", 1)
            items = [*items, (k.strip(), v.strip())]
    for k, v in items:
        vals = v if isinstance(v, (list, tuple, set)) else [v]
        out.setdefault(k, []).extend(vals)
    return out


class Index:
    """An opened index folder. `search` is safe to call from several threads at once: search
    parameters travel with each call and the index itself is never modified."""

    def __init__(self, path: Path, index: faiss.Index, metadata: pd.DataFrame, manifest: dict):
        self.path, self.faiss_index, self.metadata, self.manifest = path, index, metadata, manifest
        self.kind = kind_of(index)
        self._value = manifest.get("search_value")
        self._sel_cache: dict[tuple, tuple] = {}
        self._lock = threading.Lock()
        self._d = int(manifest["dim"])
        self._raw_search = index.search  # the tuned efSearch/nprobe is stored in the index itself
        inner = faiss.downcast_index(index)
        self._hnsw_storage = faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else None

    @classmethod
    def open(cls, path: str | os.PathLike, mmap: bool = False) -> Index:
        """Open and validate an index folder (manifest, metadata rows, dimensions)."""
        index, meta, man = open_index_files(Path(path), mmap=mmap)
        return cls(Path(path), index, meta, man)

    @property
    def ntotal(self) -> int:
        return int(self.faiss_index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    def __len__(self) -> int:
        return self.ntotal

    def _check_queries(self, queries) -> np.ndarray:
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise AvrepError(f"queries have shape {list(q.shape)}; this index ({self.path}) needs [n, {self.dim}]")
        if not np.isfinite(q).all():
            raise AvrepError("queries contain NaN or inf")
        return np.ascontiguousarray(q)

    def selection(self, where) -> tuple[np.ndarray, faiss.IDSelector | None]:
        """Row ids matching `where` and a FAISS selector over them (cached per filter)."""
        cond = parse_where(where)
        key = tuple(sorted((k, tuple(map(str, v))) for k, v in cond.items()))
        with self._lock:
            if key in self._sel_cache:
                return self._sel_cache[key]
        mask = np.ones(len(self.metadata), dtype=bool)
        for col, vals in cond.items():
            if col not in self.metadata.columns:
                raise AvrepError(
                    f"where {col}=...: no column {col!r} in {self.path / META_FILE} "
                    f"(columns: {', '.join(map(str, self.metadata.columns))})",
                    param="where",
                )
            s = self.metadata[col]
            mask &= s.astype(str).isin([str(v) for v in vals]).to_numpy()
        ids = np.flatnonzero(mask).astype(np.int64)
        sel = faiss.IDSelectorBatch(len(ids), faiss.swig_ptr(ids)) if len(ids) < self.ntotal else None
        with self._lock:
            self._sel_cache[key] = (ids, sel)
        return ids, sel

    def search_arrays(self, queries, k: int = 10, where=None) -> tuple[np.ndarray, np.ndarray]:
        """Scores [nq, k] and ids [nq, k] (-1 where fewer than k rows match)."""
        q = self._check_queries(queries)
        if k < 1:
            raise AvrepError(f"k must be >= 1, got {k}")
        if not where:  # the tuned efSearch/nprobe is stored in the index itself
            return self.faiss_index.search(q, k)
        ids, sel = self.selection(where)
        if len(ids) == 0:
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        if sel is None:
            return self.faiss_index.search(q, k)
        frac = len(ids) / self.ntotal
        if self.kind == "flat":
            p, keep = make_params(self.faiss_index, None, sel)
            return self.faiss_index.search(q, k, params=p)
        if self.kind == "hnsw" and frac < EXACT_FILTER_FRACTION:
            # A graph walk over mostly-excluded nodes loses recall; scanning the selected rows
            # of the flat storage is exact and cheap at this selectivity.
            p, keep = make_params(self._hnsw_storage, None, sel)
            return self._hnsw_storage.search(q, k, params=p)
        # Widen the search in proportion to what the filter removes, so ~the same number of
        # selected candidates is examined as an unfiltered search would.
        value = int(math.ceil((self._value or 1) / frac))
        value = min(value, 4096) if self.kind == "hnsw" else value
        p, keep = make_params(self.faiss_index, value, sel)
        d, i = self.faiss_index.search(q, k, params=p)
        short = (i < 0).sum(1) > max(0, k - len(ids))
        if short.any():  # still under-filled: search those queries exhaustively
            if self.kind == "ivf":
                p2, keep2 = make_params(self.faiss_index, faiss.extract_index_ivf(self.faiss_index).nlist, sel)
                d[short], i[short] = self.faiss_index.search(q[short], k, params=p2)
            else:
                p2, keep2 = make_params(self._hnsw_storage, None, sel)
                d[short], i[short] = self._hnsw_storage.search(q[short], k, params=p2)
        return d, i

    def search(self, queries, k: int = 10, where=None) -> SearchResult:
        """Search [nq, d] (or [d]) float32 queries; `where` filters on metadata inside the search
        ({'split': 'test'} or ['split=test']). Returns a SearchResult (.to_frame(), .records())."""
        q = queries
        # Fast path (the common case, kept to a few attribute checks: it is the whole overhead over
        # raw FAISS). The float32 sum is NaN/inf when any element is (or overflows: also garbage).
        if (
            where is None
            and type(q) is np.ndarray
            and q.dtype == _F32
            and q.ndim == 2
            and q.shape[1] == self._d
            and q.flags.c_contiguous
            and k >= 1
            and math.isfinite(_reduce(q, axis=None))
        ):
            d, i = self._raw_search(q, k)
        else:
            d, i = self.search_arrays(queries, k, where)
        return SearchResult(d, i, self.metadata)

    def embed_query(self, audio=None, video=None, device: str = "auto") -> np.ndarray:
        """Embed an audio or video query with the checkpoint named in the manifest (refusing a
        mismatched checkpoint or dimension)."""
        return embed_query(self.manifest, audio=audio, video=video, device=device, where=str(self.path))


def embed_query(manifest: dict, audio=None, video=None, device: str = "auto", where: str = "index") -> np.ndarray:
    """Embed one query file/array with the model recorded in an index manifest."""
    if (audio is None) == (video is None):
        raise AvrepError("give exactly one of audio or video")
    if manifest.get("modality") == "identity" and video is None:
        raise AvrepError(f"{where}: an identity index needs a video (face) query", param="video")
    emb = index_embedder(manifest, device, where)
    ckpt = manifest.get("checkpoint")
    kind = manifest.get("kind") or "word"  # a sync index needs sync queries: same map, other modality
    vec = (
        emb.embed_audio(audio, kind=kind)
        if audio is not None
        else (emb.embed_face(video) if manifest.get("modality") == "identity" else emb.embed_video(video, kind=kind))
    )
    vec = np.asarray(vec, dtype=np.float32).reshape(1, -1)
    if vec.shape[1] != manifest["dim"]:
        raise AvrepError(f"{ckpt}: embeds to dim {vec.shape[1]} but the index {where} has dim {manifest['dim']}")
    return vec


def index_embedder(manifest: dict, device: str = "auto", where: str = "index"):
    """The `Embedder` of the model an index manifest names, after checking it is here and its hash matches."""
    ckpt = manifest.get("checkpoint")
    if not ckpt or not Path(ckpt).exists():
        raise AvrepError(f"{where}: the checkpoint named in its manifest ({ckpt!r}) is not available here")
    from avrep.embed import checkpoint_sha256

    want = manifest.get("checkpoint_sha256")
    if want and checkpoint_sha256(ckpt) != want:  # ckpt is a run dir (or its model.safetensors)
        raise AvrepError(f"{ckpt}: checkpoint hash does not match the one this index was built with ({where})")
    try:
        from avrep.embed import Embedder
    except ImportError as e:
        raise AvrepError(
            f"audio/video queries need avrep.embed (the Embedder), which is not available ({e}); "
            "query with embedding vectors instead",
            param=("vector", "batch"),
        ) from None
    return Embedder.from_checkpoint(ckpt, device=device)

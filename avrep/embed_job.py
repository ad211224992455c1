"""`avrep embed`: batched, resumable, shardable embedding of a feature store (clip-retrieval layout).

Output: EMB_DIR/emb_XXXXX.npy (float32 [n, d], L2-normalised) + meta_XXXXX.parquet (row-aligned) +
manifest.json. Rows are cut into fixed chunks; a chunk is written atomically (embeddings first, metadata
last, so a metadata file marks a finished chunk) and skipped on re-run. `shard=(i, N)` takes every N-th
chunk, so N machines (or torchrun ranks) split one job and write into one folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avrep.conventions import FPS
from avrep.distributed import run_ray_tasks
from avrep.errors import AvrepError
from avrep.utils import atomic_save_npy, atomic_write_parquet, write_manifest_json

META_COLUMNS = ("clip_id", "path", "word", "word_id", "transcript", "speaker", "split", "start_s", "end_s")


def _meta(clips: pd.DataFrame) -> pd.DataFrame:
    m = pd.DataFrame({"clip_id": clips["clip_id"].astype(str), "path": clips["path"].astype(str)})
    m["word"] = clips["word"].astype("string") if "word" in clips else pd.Series([None] * len(clips), dtype="string")
    m["word_id"] = clips["word_id"].fillna(-1).astype(int) if "word_id" in clips else -1
    # what was said (utterance corpora; search results and `avrep serve` show it)
    none = pd.Series([None] * len(clips), dtype="string")
    m["transcript"] = clips["transcript"].astype("string").to_numpy() if "transcript" in clips else none
    m["speaker"] = clips["speaker"].astype(str) if "speaker" in clips else ""
    m["split"] = clips["split"].astype(str) if "split" in clips else ""
    start = clips["start_frame"].fillna(0).astype(int) if "start_frame" in clips else 0
    m["start_s"] = np.asarray(start, dtype=float) / FPS
    m["end_s"] = m["start_s"] + clips["n_frames"].astype(int).to_numpy() / FPS
    return m.reset_index(drop=True)


def shard_from_env(shard: tuple[int, int]) -> tuple[int, int]:
    """Under torchrun, each rank takes its share from RANK / WORLD_SIZE unless --shard was given."""
    if shard == (0, 1) and "WORLD_SIZE" in os.environ:
        return int(os.environ.get("RANK", 0)), int(os.environ["WORLD_SIZE"])
    return shard


def embed_store(
    store_dir: str | os.PathLike,
    checkpoint: str | os.PathLike,
    modality: str,
    out: str | os.PathLike,
    *,
    split: str | None = None,
    batch_size: int = 64,
    chunk_size: int = 8192,
    shard: tuple[int, int] = (0, 1),
    device: str = "auto",
    workers: int = 0,
    progress: bool = True,
    kind: str = "word",
    backend: str = "local",
    address: str | None = None,
) -> dict[str, Any]:
    """Embed every clip of a store (optionally one split) with one modality; returns a summary.

    kind: "word" (same-word clips are neighbours) or "sync" (the clip in sync with the query wins)."""
    from tqdm import tqdm

    from avrep.data.store import FeatureStore
    from avrep.embed import MODALITIES, Embedder

    if modality not in MODALITIES:
        raise AvrepError(f"modality {modality!r}: choose from {', '.join(MODALITIES)}", param="modality")
    store = FeatureStore(store_dir)
    clips = store.clips if split is None else store.clips[store.clips["split"] == split]
    if not len(clips):
        raise AvrepError(f"{store_dir}: no clips{'' if split is None else f' in split {split!r}'}")
    emb = Embedder.from_checkpoint(checkpoint, device=device)
    dim = emb.dim_of(kind, modality)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    man = out / "manifest.json"
    fields = {
        "modality": modality,
        "kind": kind,
        "dim": dim,
        "metric": "ip",
        "normalized": True,
        "checkpoint": str(emb.run_dir.resolve()),
        "checkpoint_sha256": emb.sha256,
        "model": emb.cfg.name,
        "store": str(Path(store_dir).resolve()),
        "split": split,
        "chunk_size": chunk_size,
        "n": int(len(clips)),
    }
    if man.exists():
        from avrep.security import load_json_object

        old = load_json_object(man)
        for k in ("modality", "kind", "dim", "checkpoint_sha256", "store", "split", "chunk_size"):
            if old.get(k, "word" if k == "kind" else None) != fields[k]:
                raise AvrepError(
                    f"{out}: holds embeddings made with a different {k} ({old.get(k)!r} != {fields[k]!r}); "
                    "use another out folder",
                    param="out",
                )
    i, n_sh = shard_from_env(shard)
    # positions in the split-filtered dataset == positions in `clips`
    n_chunks = (len(clips) + chunk_size - 1) // chunk_size
    mine = [c for c in range(n_chunks) if c % n_sh == i]
    todo = [c for c in mine if not (out / f"meta_{c:05d}.parquet").exists()]
    write_manifest_json(out, "avrep embed", **fields)
    bar = tqdm(
        total=sum(min(chunk_size, len(clips) - c * chunk_size) for c in todo),
        desc=f"embed {modality}",
        unit="clip",
        disable=not progress,
    )
    job = (str(store_dir), str(emb.run_dir), modality, str(out), split, chunk_size, batch_size, device, workers, kind)
    if backend == "ray":  # one task per chunk; each worker loads the model once
        bar.close()
        run_ray_tasks(
            _embed_chunk,
            [(*job, c) for c in todo],
            address=address,
            desc="embed",
            progress=progress,
            gpu_if_present=device != "cpu",
        )
    else:
        _EMBEDDERS[(str(emb.run_dir), device)] = emb
        for c in todo:
            bar.update(_embed_chunk(*job, c))
    bar.close()
    done = sum((out / f"meta_{c:05d}.parquet").exists() for c in range(n_chunks))
    return {
        "out": str(out),
        "chunks_written": len(todo),
        "chunks_done": done,
        "chunks_total": n_chunks,
        "n": int(len(clips)),
        "dim": dim,
        "kind": kind,
        "shard": [i, n_sh],
    }


_EMBEDDERS: dict[tuple[str, str], Any] = {}  # per process: a Ray worker loads the model once


def _embed_chunk(
    store_dir: str,
    checkpoint: str,
    modality: str,
    out: str,
    split: str | None,
    chunk_size: int,
    batch_size: int,
    device: str,
    workers: int,
    kind: str,
    c: int,
) -> int:
    """Embed chunk c and write it (embeddings, then metadata: the marker of a finished chunk) -> its rows."""
    from avrep.data.store import FeatureStore
    from avrep.embed import Embedder

    emb = _EMBEDDERS.get((checkpoint, device))
    if emb is None:
        emb = _EMBEDDERS[(checkpoint, device)] = Embedder.from_checkpoint(checkpoint, device=device)
    clips = FeatureStore(store_dir).clips
    clips = clips if split is None else clips[clips["split"] == split]
    rows = np.arange(c * chunk_size, min((c + 1) * chunk_size, len(clips)))
    vecs = np.zeros((len(rows), emb.dim_of(kind, modality)), np.float32)
    pos = 0
    for _, e in emb.iter_store(
        store_dir, modality, rows=rows, split=split, batch_size=batch_size, workers=workers, kind=kind
    ):
        vecs[pos : pos + len(e)] = e
        pos += len(e)
    atomic_save_npy(Path(out) / f"emb_{c:05d}.npy", vecs)
    atomic_write_parquet(Path(out) / f"meta_{c:05d}.parquet", _meta(clips.iloc[rows]))
    return len(rows)


def load_embeddings(emb_dir: str | os.PathLike) -> tuple[np.ndarray, pd.DataFrame]:
    """All embedding chunks of a folder, concatenated in chunk order (float32 [n, d]), with their metadata.

    A thin wrapper of the one reader, `avrep.index.store.open_embeddings`, so the same checks apply
    (manifest fields, every chunk's metadata present, float32 [n, dim], row counts, finite values)."""
    from avrep.index.store import open_embeddings

    emb = open_embeddings(emb_dir)
    return emb.vectors(), emb.metadata()

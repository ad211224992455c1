"""Corpus recipes: each turns a corpus folder into a recipe manifest (one parquet row per clip).

Manifest columns (docs/architecture.md): clip_id, path (relative to the manifest's root), word,
word_id, transcript, speaker, split, start_frame, end_frame (exclusive, -1 = to the end),
landmarks_path; recipes may add columns (word_start_frame, word_end_frame, ...). The root, the
vocabulary and provenance are stored as JSON in the parquet metadata under b"avrep".
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from avrep.errors import AvrepError

COLUMNS = ["clip_id", "path", "word", "word_id", "transcript", "speaker", "split", "start_frame", "end_frame",
           "landmarks_path"]
VIDEO_EXTS = (".mp4", ".mpg", ".mpeg", ".avi", ".mov", ".webm", ".mkv")
SPLITS = ("train", "val", "test")


def split_keys(keys: list[str], ratios: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Assign each key (e.g. a sentence) to train/val/test with a seeded shuffle; same keys -> same split."""
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise AvrepError(f"split ratios {ratios}: need three non-negative numbers")
    r = np.asarray(ratios, float) / sum(ratios)
    keys = sorted(set(keys))
    order = np.random.default_rng(seed).permutation(len(keys))
    n_train = int(round(r[0] * len(keys)))
    n_val = int(round(r[1] * len(keys)))
    out = {}
    for rank, k in enumerate(order):
        out[keys[k]] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return out


def finalize(rows: list[dict[str, Any]], root: str | os.PathLike) -> pd.DataFrame:
    """Rows -> manifest DataFrame with the standard columns first and checked types."""
    if not rows:
        raise AvrepError(f"{root}: no clips found")
    df = pd.DataFrame(rows)
    for c in COLUMNS:
        if c not in df:
            df[c] = None
    extra = [c for c in df.columns if c not in COLUMNS]
    df = df[COLUMNS + extra]
    df["word_id"] = df["word_id"].fillna(-1).astype("int64")
    df["start_frame"] = df["start_frame"].fillna(0).astype("int64")
    df["end_frame"] = df["end_frame"].fillna(-1).astype("int64")
    df["speaker"] = df["speaker"].astype(str)
    if df["clip_id"].duplicated().any():
        dup = df.loc[df["clip_id"].duplicated(), "clip_id"].iloc[0]
        raise AvrepError(f"{root}: duplicate clip_id {dup!r}")
    return df.reset_index(drop=True)


def write_manifest(df: pd.DataFrame, out: str | os.PathLike, root: str | os.PathLike, *, recipe: str,
                   vocab: list[str] | None = None, **config: Any) -> Path:
    """Write the manifest parquet atomically, with root/vocab/provenance in its metadata."""
    from avrep import __version__
    from avrep.utils import atomic_path

    out = Path(out)
    meta = {"root": str(Path(root).resolve()), "recipe": recipe, "vocab": vocab, "config": config,
            "avrep_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "n_clips": int(len(df))}
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"avrep": json.dumps(meta).encode()})
    with atomic_path(out, ".parquet") as tmp:
        pq.write_table(table, tmp)
    return out


def manifest_meta(path: str | os.PathLike) -> dict[str, Any]:
    md = pq.read_schema(path).metadata or {}
    return json.loads(md[b"avrep"]) if b"avrep" in md else {}


def load_manifest(path: str | os.PathLike, allow_outside_root: bool = False) -> pd.DataFrame:
    """Read a recipe manifest; `path` and `landmarks_path` become absolute. Metadata in df.attrs.

    Column types are validated, and paths that leave the dataset root (the `root` in the metadata,
    else the manifest's folder) are refused unless `allow_outside_root` (untrusted manifests)."""
    from avrep.security import check_inside, validate_recipe_manifest

    p = Path(path)
    if not p.exists():
        raise AvrepError(f"{p}: manifest not found")
    try:
        df = pd.read_parquet(p)
        meta = manifest_meta(p)
    except Exception as e:
        raise AvrepError(f"{p}: not a parquet manifest ({' '.join(str(e).split())[:120]})") from None
    missing = [c for c in ("clip_id", "path") if c not in df]
    if missing:
        raise AvrepError(f"{p}: manifest lacks column(s) {', '.join(missing)}")
    for c in COLUMNS:
        if c not in df:
            df[c] = {"word_id": -1, "start_frame": 0, "end_frame": -1, "split": "test",
                     "speaker": "unknown"}.get(c)
    if not isinstance(meta, dict) or not isinstance(meta.get("root") or "", str):
        raise AvrepError(f"{p}: invalid avrep metadata (expected a JSON object with a string 'root')")
    validate_recipe_manifest(df, p)
    root = Path(meta.get("root") or p.parent.resolve())

    def absolute(x, what):
        if x is None or (isinstance(x, float) and np.isnan(x)) or x == "":
            return None
        return check_inside(root, x, allow_outside_root, what=f"{what} of a clip", where=p)

    df["path"] = df["path"].map(lambda x: absolute(x, "path"))
    df["landmarks_path"] = df["landmarks_path"].map(lambda x: absolute(x, "landmarks_path"))
    df.attrs.update(meta)
    df.attrs["root"] = str(root)
    return df


def find_videos(root: str | os.PathLike, exts: tuple[str, ...] = VIDEO_EXTS) -> list[Path]:
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in exts and p.is_file())

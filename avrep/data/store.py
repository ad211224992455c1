"""Feature store: sharded memmapped arrays plus parquet indexes, written so a kill never shows half a shard.

Layout (see docs/architecture.md)::

    store/plan.json                 what is being built (manifest hash + config), written first
    store/shard_00000/mouth.npy     uint8 [F, 96, 96]
                      face.npy      uint8 [F, 128, 128, 3]
                      audio.npy     float32 [F * 640]
                      landmarks.npy float32 [F, 68, 2] (source-frame pixels)
                      face_mask.npy bool [F] (False: frame had no face, landmarks filled)
                      clips.parquet / failures.parquet (this shard's rows)
    store/clips.parquet, failures.parquet, manifest.json   written last

A compact store (tar shards of encoded samples, `avrep.data.compact`) is read by the same class:
`FeatureStore.clip` and `FeatureStore.read` work on both; `shard` only on this memmap layout.

A shard is built in a hidden temp folder and renamed into place in one step, so finished shards are
complete and a re-run skips them. Clips may share frames (GRID word windows point into the
sentence's frames), so `offset`/`n_frames` address rows of the shard arrays.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avrep.conventions import SAMPLES_PER_FRAME
from avrep.data import compact
from avrep.data.compact import FAILURE_COLUMNS  # one definition for both store formats
from avrep.errors import AvrepError
from avrep.security import validate_store_clips
from avrep.utils import atomic_write_json, atomic_write_parquet, write_manifest_json

ARRAYS = ("mouth", "face", "audio", "landmarks", "face_mask")


def shard_name(i: int) -> str:
    return f"shard_{i:05d}"


def clean_temp(store_dir: str | os.PathLike) -> None:
    """Remove temp shard folders and half-written files (`avrep.utils.atomic_path`'s `.NAME.XXXX.tmp*`, e.g.
    of manifest.json) left by a killed run."""
    for p in Path(store_dir).glob(".shard_*.tmp*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in Path(store_dir).glob(".*.tmp*"):
        if p.is_file():
            p.unlink(missing_ok=True)


def shard_done(store_dir: str | os.PathLike, i: int, clip_ids: list[str] | None = None) -> bool:
    """True if shard i is complete (and, if given, holds exactly these clips)."""
    d = Path(store_dir) / shard_name(i)
    if not (d / "clips.parquet").exists() or not (d / "failures.parquet").exists():
        return False
    if clip_ids is None:
        return True
    got = pd.read_parquet(d / "clips.parquet", columns=["clip_id"])["clip_id"].tolist()
    got += pd.read_parquet(d / "failures.parquet", columns=["clip_id"])["clip_id"].tolist()
    return sorted(got) == sorted(clip_ids)


def write_shard(
    store_dir: str | os.PathLike, i: int, arrays: dict[str, np.ndarray], clips: pd.DataFrame, failures: pd.DataFrame
) -> None:
    """Write one shard into a temp folder, then rename it into place (atomic on one filesystem)."""
    store = Path(store_dir)
    final = store / shard_name(i)
    tmp = store / f".{shard_name(i)}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ARRAYS:
        np.save(tmp / f"{name}.npy", arrays[name])
    clips.to_parquet(tmp / "clips.parquet", index=False)
    failures.reindex(columns=FAILURE_COLUMNS).to_parquet(tmp / "failures.parquet", index=False)
    for f in tmp.iterdir():  # make the data durable before it becomes visible
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def write_index(store_dir: str | os.PathLike, n_shards: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate the shards' tables into clips.parquet and failures.parquet (in shard order)."""
    store = Path(store_dir)
    clips, fails = [], []
    for i in range(n_shards):
        d = store / shard_name(i)
        clips.append(pd.read_parquet(d / "clips.parquet"))
        fails.append(pd.read_parquet(d / "failures.parquet"))
    clips_df = (
        pd.concat([c for c in clips if len(c)], ignore_index=True)
        if any(len(c) for c in clips)
        else (clips[0] if clips else pd.DataFrame())
    )
    fail_df = pd.concat(fails, ignore_index=True) if fails else pd.DataFrame(columns=FAILURE_COLUMNS)
    fail_df = fail_df.reindex(columns=FAILURE_COLUMNS)
    atomic_write_parquet(store / "failures.parquet", fail_df)
    atomic_write_parquet(store / "clips.parquet", clips_df)
    return clips_df, fail_df


class FeatureStore:
    """Read access to a finished store; arrays are opened lazily as read-only memmaps."""

    def __init__(self, store_dir: str | os.PathLike):
        self.dir = Path(store_dir)
        idx = self.dir / "clips.parquet"
        if not idx.exists():
            raise AvrepError(f"{self.dir}: not a feature store (no clips.parquet; run `avrep preprocess`)")
        try:
            self.clips = pd.read_parquet(idx)
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise AvrepError(f"{idx}: unreadable parquet ({' '.join(str(e).split())[:120]})") from None
        if len(self.clips):
            validate_store_clips(self.clips, idx)
        f = self.dir / "failures.parquet"
        self.failures = pd.read_parquet(f) if f.exists() else pd.DataFrame(columns=FAILURE_COLUMNS)
        self._open: dict[int, dict[str, np.ndarray]] = {}

        self.compact = compact.is_compact(self.dir)
        self.format = compact.FORMAT if self.compact else "memmap"
        self._reader = None
        if self.compact:
            self.samples = pd.read_parquet(self.dir / "samples.parquet")
            self._reader = compact.CompactReader(self.dir, self.samples)
            if len(self.clips) and "sample" not in self.clips:
                raise AvrepError(f"{idx}: column 'sample' missing (damaged compact store index)")

    def __len__(self) -> int:
        return len(self.clips)

    def __getstate__(self) -> dict[str, Any]:  # memmaps must not be pickled into DataLoader workers
        st = self.__dict__.copy()
        st["_open"] = {}
        return st

    def shard(self, i: int) -> dict[str, np.ndarray]:
        """Memmapped arrays of shard i (memmap stores only; `read`/`clip` work on both formats)."""
        if self.compact:
            raise AvrepError(f"{self.dir}: a compact store has no memmap shards; read clips with FeatureStore.read")
        if i not in self._open:
            d = self.dir / shard_name(int(i))
            self._open[i] = {n: np.load(d / f"{n}.npy", mmap_mode="r") for n in ARRAYS}
        return self._open[i]

    def clip(
        self, row: int | str, start: int = 0, length: int | None = None, keys: tuple[str, ...] = ARRAYS
    ) -> dict[str, np.ndarray]:
        """Arrays of one clip (by row number or clip_id), frames [start, start+length) of the clip."""
        r = (
            self.clips.iloc[row]
            if isinstance(row, (int, np.integer))
            else self.clips.loc[self.clips["clip_id"] == row].iloc[0]
        )
        n = int(r["n_frames"])
        length = n - start if length is None else length
        where = r["sample"] if self.compact else int(r["shard"])
        return self.read(where, int(r["offset"]) + start, length, keys)

    def read(self, where: int | str, offset: int, length: int, keys: tuple[str, ...] = ARRAYS) -> dict[str, np.ndarray]:
        """Frames [offset, offset+length) of a memmap shard (`where` = shard number) or of a compact
        store's sample (`where` = sample key); audio is the matching 640 samples per frame."""
        a = offset
        if self.compact:
            out = {}
            for k in keys:
                arr = self._reader.array(str(where), k, stop=a + length)
                part = (
                    arr[a * SAMPLES_PER_FRAME : (a + length) * SAMPLES_PER_FRAME]
                    if k == "audio"
                    else arr[a : a + length]
                )
                out[k] = np.array(part)  # a copy: the decoded sample stays cached for the next clip
            return out
        sh = self.shard(int(where))
        out = {}
        for k in keys:
            if k == "audio":
                out[k] = np.asarray(sh[k][a * SAMPLES_PER_FRAME : (a + length) * SAMPLES_PER_FRAME])
            else:
                out[k] = np.asarray(sh[k][a : a + length])
        return out


def convert_store(
    old_dir: str | os.PathLike, new_dir: str | os.PathLike, *, progress: bool = True, overwrite: bool = False
) -> dict[str, Any]:
    """Convert a memmap store into a compact one (same clips, shards and rows; frames through the codecs).

    Each source video's frames in a shard become one sample; clips keep their windows into it."""

    from tqdm import tqdm

    src = FeatureStore(old_dir)
    if src.compact:
        raise AvrepError(f"{old_dir}: already a compact store")
    new = Path(new_dir)
    if new.exists() and any(new.iterdir()):
        if not overwrite:
            raise AvrepError(f"{new}: not empty; use another folder or overwrite", param="overwrite")
        shutil.rmtree(new)
    new.mkdir(parents=True, exist_ok=True)
    clips = src.clips.copy()
    shards = sorted({int(s) for s in clips["shard"]}) if len(clips) else []
    plan_file = src.dir / "plan.json"
    n_shards = json.loads(plan_file.read_text()).get("n_shards", 0) if plan_file.exists() else 0
    n_shards = max([n_shards, *(s + 1 for s in shards)])
    fails = src.failures
    for i in tqdm(range(n_shards), desc="convert", unit="shard", disable=not progress):
        rows = clips[clips["shard"] == i]
        samples = []
        for _, g in rows.groupby("path", sort=False) if len(rows) else []:
            lo = int(g["offset"].min())
            hi = int((g["offset"] + g["n_frames"]).max())
            arrays = src.read(i, lo, hi - lo)
            recs = g.drop(columns=["shard", "sample"], errors="ignore").to_dict("records")
            for r in recs:
                r["offset"] = int(r["offset"]) - lo
            samples.append((arrays, recs))
        # failures carry no shard: keep them all with the first shard
        compact.write_shard(new, i, samples, fails if i == 0 else fails.iloc[:0])
    out_clips, out_fails = compact.write_index(new, n_shards)
    plan = json.loads(plan_file.read_text()) if plan_file.exists() else {}
    plan.update(format="compact", n_shards=n_shards, converted_from=str(src.dir.resolve()))
    plan["plan_id"] = f"{plan.get('plan_id', 'converted')}-compact"
    atomic_write_json(new / "plan.json", plan)
    if (src.dir / "vocab.json").exists():
        shutil.copyfile(src.dir / "vocab.json", new / "vocab.json")
    old_man = src.dir / "manifest.json"
    extra = json.loads(old_man.read_text()) if old_man.exists() else {}
    write_manifest_json(
        new,
        "avrep store convert",
        source=str(src.dir.resolve()),
        store_format="compact",
        vocab=extra.get("vocab"),
        recipe=extra.get("recipe"),
        source_manifest=extra,
    )
    return {"out": str(new), "n_clips": len(out_clips), "n_failed": len(out_fails), "n_shards": n_shards}

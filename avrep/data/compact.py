"""Compact feature store: WebDataset-compatible tar shards of encoded samples + parquet indexes.

Layout (format "avrep-wds/1", see docs/architecture.md)::

    store/plan.json                       what is being built (manifest hash + config + format)
    store/shard_00000.tar                 one sample per source video (its clips share its frames):
        s00000_00000.mouth.mp4            H.264, 96x96 gray in the Y plane (crf 18)
        s00000_00000.face.mp4             H.264 yuv444p, 128x128 RGB as full-range YCrCb (crf 22)
        s00000_00000.audio.flac           16-bit FLAC, 16 kHz, 640 samples per frame
        s00000_00000.landmarks.q16z       [F, 68, 2] in 1/16 px (error <= 1/32 px), zlib of int32 deltas
        s00000_00000.face_mask.npy        bool [F] (exact)
        s00000_00000.json                 {"n_frames", "clips": [clip_id, ...]}
    store/parts/shard_00000.{clips,failures,samples}.parquet   this shard's rows (written before the tar)
    store/clips.parquet, failures.parquet, samples.parquet, manifest.json   written last

A shard's tar is written to a temp file and renamed into place after its parquet parts, so an existing
tar marks a finished shard. `samples.parquet` holds each member's byte offset and size in its tar, so a
small store is read at random (eval) without scanning; `clips.parquet` rows point at a sample (`sample`)
and a frame `offset` in it. Tars are written with fixed metadata, so the same input gives the same bytes.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avrep.conventions import FACE_SIZE, MOUTH_SIZE
from avrep.data import codecs
from avrep.errors import AvrepError
from avrep.utils import atomic_path

FORMAT = "avrep-wds/1"
FAILURE_COLUMNS = ["clip_id", "path", "reason"]  # failures.parquet of both store formats
# member suffix -> (array name, how it is stored)
MEMBERS = {
    "mouth.mp4": "mouth",
    "face.mp4": "face",
    "audio.flac": "audio",
    "landmarks.q16z": "landmarks",
    "face_mask.npy": "face_mask",
}
SUFFIX = {v: k for k, v in MEMBERS.items()}


def tar_name(i: int) -> str:
    return f"shard_{i:05d}.tar"


def sample_key(shard: int, j: int) -> str:
    return f"s{shard:05d}_{j:05d}"


def encode_sample(arrays: dict[str, np.ndarray], crf: dict[str, int] | None = None) -> dict[str, bytes]:
    """One sample's arrays -> {member suffix: bytes}."""
    crf = {**codecs.DEFAULT_CRF, **(crf or {})}
    return {
        "mouth.mp4": codecs.encode_video(arrays["mouth"], "h264", crf=crf["mouth"], preset=codecs.DEFAULT_PRESET),
        "face.mp4": codecs.encode_video(arrays["face"], "h264", crf=crf["face"], preset=codecs.DEFAULT_PRESET),
        "audio.flac": codecs.encode_audio(arrays["audio"], "flac"),
        "landmarks.q16z": codecs.encode_landmarks(arrays["landmarks"]),
        "face_mask.npy": codecs.encode_npy(np.asarray(arrays["face_mask"], bool)),
    }


def decode_member(name: str, data: bytes, stop: int | None = None) -> np.ndarray:
    """Bytes of one member (array `name`) -> its array; `stop` limits video decoding to the first frames."""
    if name == "mouth":
        return codecs.decode_video(data, "h264", (MOUTH_SIZE, MOUTH_SIZE), stop)
    if name == "face":
        return codecs.decode_video(data, "h264", (FACE_SIZE, FACE_SIZE, 3), stop)
    if name == "audio":
        return codecs.decode_audio(data, "flac")
    if name == "landmarks":
        return codecs.decode_landmarks(data)
    return codecs.decode_npy(data)


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = size, 0, 0o644, 0, 0, "", ""
    return ti


def write_tar(path: str | os.PathLike, samples: list[tuple[str, dict[str, bytes]]]) -> pd.DataFrame:
    """Write samples [(key, {suffix: bytes})] to `path` atomically -> their member offsets/sizes
    (one row per sample: key, `<array>_offset`, `<array>_size`)."""
    rows = []
    with atomic_path(path, ".tar") as tmp:
        with open(tmp, "wb") as fh:
            with tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for key, members in samples:
                    row: dict[str, Any] = {"key": key}
                    for suffix, data in members.items():
                        ti = _tarinfo(f"{key}.{suffix}", len(data))
                        header = len(ti.tobuf(tarfile.USTAR_FORMAT))
                        arr = MEMBERS.get(suffix)
                        if arr is not None:
                            row[f"{arr}_offset"], row[f"{arr}_size"] = tar.offset + header, len(data)
                        tar.addfile(ti, io.BytesIO(data))
                    rows.append(row)
            fh.flush()
            os.fsync(fh.fileno())
    return pd.DataFrame(rows)


def iter_tar_samples(fileobj) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Stream a tar (any readable file object, e.g. from fsspec) -> (key, {suffix: bytes}) per sample,
    reading sequentially (WebDataset's grouping: key = name up to the first dot)."""
    cur, members = None, {}
    with tarfile.open(fileobj=fileobj, mode="r|") as tar:
        for ti in tar:
            if not ti.isfile():
                continue
            key, _, suffix = ti.name.partition(".")
            if key != cur:
                if cur is not None:
                    yield cur, members
                cur, members = key, {}
            f = tar.extractfile(ti)
            members[suffix] = f.read() if f is not None else b""
    if cur is not None:
        yield cur, members


def is_compact(store_dir: str | os.PathLike) -> bool:
    return (Path(store_dir) / "samples.parquet").exists()


def open_url(url: str, mode: str = "rb"):
    """A local path or an fsspec URL (http(s)://, s3://, gs:// with their fsspec packages installed)."""
    if "://" not in str(url):
        return open(url, mode)
    try:
        import fsspec
    except ImportError:
        raise AvrepError(f"{url}: reading a URL needs fsspec (pip install -e '.[distributed]')") from None
    return fsspec.open(str(url), mode).open()


def join(root: str, name: str) -> str:
    return f"{str(root).rstrip('/')}/{name}"


class CompactReader:
    """Random access to a compact store's samples: reads members by byte range, keeps a few decoded
    samples (clips of one source video share them)."""

    def __init__(self, store_dir: str | os.PathLike, samples: pd.DataFrame, cache: int = 4):
        self.dir = Path(store_dir)
        self.samples = samples.set_index("key", drop=False)
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._size = cache
        self._fh: dict[int, Any] = {}

    def __getstate__(self) -> dict[str, Any]:  # file handles stay in the process that opened them
        st = self.__dict__.copy()
        st["_fh"], st["_cache"] = {}, OrderedDict()
        return st

    def member(self, key: str, name: str) -> bytes:
        r = self.samples.loc[key]
        shard = int(r["shard"])
        fh = self._fh.get(shard)
        if fh is None:
            p = self.dir / tar_name(shard)
            if not p.exists():
                raise AvrepError(f"{p}: shard missing from the store")
            fh = self._fh[shard] = open(p, "rb")
        fh.seek(int(r[f"{name}_offset"]))
        return fh.read(int(r[f"{name}_size"]))

    def array(self, key: str, name: str, stop: int | None = None) -> np.ndarray:
        """Decoded array `name` of sample `key` (video: at least its first `stop` frames)."""
        ck = (key, name)
        hit = self._cache.get(ck)
        if hit is not None and (stop is None or name not in ("mouth", "face") or len(hit) >= stop):
            self._cache.move_to_end(ck)
            return hit
        a = decode_member(name, self.member(key, name), stop)
        self._cache[ck] = a
        while len(self._cache) > self._size * len(MEMBERS):
            self._cache.popitem(last=False)
        return a


def read_table(root: str, name: str) -> pd.DataFrame:
    """A parquet table of a store given as a local folder or a URL."""
    try:
        with open_url(join(root, name)) as fh:
            return pd.read_parquet(io.BytesIO(fh.read()))
    except AvrepError:
        raise
    except Exception as e:  # missing file, HTTP error, damaged parquet
        raise AvrepError(f"{join(root, name)}: cannot read ({' '.join(str(e).split())[:120]})") from None


def write_meta(arrays: dict[str, np.ndarray], clip_ids: list[str]) -> bytes:
    return json.dumps({"n_frames": int(len(arrays["mouth"])), "clips": clip_ids}, sort_keys=True).encode()


def _part(store: Path, i: int, table: str) -> Path:
    return store / "parts" / f"shard_{i:05d}.{table}.parquet"


def shard_done(store_dir: str | os.PathLike, i: int, clip_ids: list[str] | None = None) -> bool:
    """True if shard i's tar is in place (it is renamed in last) and, if given, holds exactly these clips."""
    store = Path(store_dir)
    if not (store / tar_name(i)).exists():
        return False
    if clip_ids is None:
        return True
    try:
        got = pd.read_parquet(_part(store, i, "clips"), columns=["clip_id"])["clip_id"].tolist()
        got += pd.read_parquet(_part(store, i, "failures"), columns=["clip_id"])["clip_id"].tolist()
    except Exception:  # a part missing or damaged: build the shard again
        return False
    return sorted(got) == sorted(clip_ids)


def write_shard(
    store_dir: str | os.PathLike,
    i: int,
    samples: list[tuple[dict[str, np.ndarray], list[dict[str, Any]]]],
    failures: pd.DataFrame,
    crf: dict[str, int] | None = None,
) -> None:
    """Encode shard i's samples [(arrays, clip rows with frame offsets into the arrays)] and write its
    parquet parts, then its tar (atomically, last: the tar marks the shard done)."""
    from avrep.utils import atomic_write_parquet

    store = Path(store_dir)
    (store / "parts").mkdir(parents=True, exist_ok=True)
    encoded, rows = [], []
    for j, (arrays, clip_rows) in enumerate(samples):
        key = sample_key(i, j)
        members = encode_sample(arrays, crf)
        members["json"] = write_meta(arrays, [r["clip_id"] for r in clip_rows])
        encoded.append((key, members))
        for r in clip_rows:
            rows.append({**r, "shard": i, "sample": key})
    tmp_tar = store / f".{tar_name(i)}.tmp-{os.getpid()}"
    offsets = write_tar(tmp_tar, encoded)
    n_frames = [len(a["mouth"]) for a, _ in samples]
    sam = offsets.assign(shard=i, n_frames=n_frames) if len(offsets) else pd.DataFrame(columns=["key", "shard"])
    atomic_write_parquet(_part(store, i, "samples"), sam)
    atomic_write_parquet(_part(store, i, "clips"), pd.DataFrame(rows))
    atomic_write_parquet(_part(store, i, "failures"), failures.reindex(columns=FAILURE_COLUMNS))
    os.replace(tmp_tar, store / tar_name(i))


def write_index(store_dir: str | os.PathLike, n_shards: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate the shards' parts into clips.parquet, failures.parquet and samples.parquet (shard order)."""
    from avrep.utils import atomic_write_parquet

    store = Path(store_dir)
    tabs: dict[str, list[pd.DataFrame]] = {"clips": [], "failures": [], "samples": []}
    for i in range(n_shards):
        for t in tabs:
            df = pd.read_parquet(_part(store, i, t))
            if len(df):
                tabs[t].append(df)
    clips = pd.concat(tabs["clips"], ignore_index=True) if tabs["clips"] else pd.DataFrame()
    fails = pd.concat(tabs["failures"], ignore_index=True) if tabs["failures"] else pd.DataFrame()
    fails = fails.reindex(columns=FAILURE_COLUMNS)
    samples = pd.concat(tabs["samples"], ignore_index=True) if tabs["samples"] else pd.DataFrame(columns=["key"])
    atomic_write_parquet(store / "failures.parquet", fails)
    atomic_write_parquet(store / "samples.parquet", samples)  # before clips.parquet: that one marks the store
    atomic_write_parquet(store / "clips.parquet", clips)
    return clips, fails


def clean_temp(store_dir: str | os.PathLike) -> None:
    """Remove temp tars left by a killed run."""
    for pat in (".shard_*.tar.tmp*", "..shard_*.tar.tmp*"):
        for p in Path(store_dir).glob(pat):
            p.unlink(missing_ok=True)

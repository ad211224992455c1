"""Embedding folders in, index folders out: reading, validation, locking and atomic folder writes."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from avrep.errors import AvrepError
from avrep.security import load_json_object

MODALITIES = ("audio", "video", "identity")
METRICS = ("ip", "l2")
INDEX_FILE, META_FILE, MANIFEST_FILE = "index.faiss", "metadata.parquet", "manifest.json"


def read_json(path: Path) -> dict:
    """A JSON object (an embedding or index manifest); AvrepError naming the file otherwise."""
    return load_json_object(path)


def check_embedding_manifest(m: dict, where: Path) -> dict:
    """Validate the fields every embedding/index manifest must carry; returns m."""
    dim = m.get("dim")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0:
        raise AvrepError(f"{where}: 'dim' must be a positive integer, got {dim!r}")
    if m.get("modality") not in MODALITIES:
        raise AvrepError(f"{where}: 'modality' must be one of {MODALITIES}, got {m.get('modality')!r}")
    if (m.get("kind") or "word") not in ("word", "sync"):
        raise AvrepError(f"{where}: 'kind' must be 'word' or 'sync', got {m.get('kind')!r}")
    if m.get("metric", "ip") not in METRICS:
        raise AvrepError(f"{where}: 'metric' must be one of {METRICS}, got {m.get('metric')!r}")
    return m


@dataclass
class Embeddings:
    """An embedding folder: row-aligned vectors + metadata + manifest."""

    path: Path
    manifest: dict
    files: list[tuple[Path, Path]]  # (emb_XXXXX.npy, meta_XXXXX.parquet), sorted
    counts: list[int]

    @property
    def n(self) -> int:
        return int(sum(self.counts))

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    def select(self, shard: int, nshards: int) -> Embeddings:
        """Files shard::nshards (shard i of N builds from its own files)."""
        keep = list(range(shard, len(self.files), nshards))
        return Embeddings(self.path, self.manifest, [self.files[i] for i in keep], [self.counts[i] for i in keep])

    def vectors(self) -> np.ndarray:
        """All vectors as one float32 [n, d] array (validated: finite, right dim)."""
        out = np.empty((self.n, self.dim), dtype=np.float32)
        row = 0
        for (ef, _), c in zip(self.files, self.counts):
            out[row : row + c] = np.load(ef, mmap_mode="r")
            row += c
        if not np.isfinite(out).all():
            raise AvrepError(f"{self.path}: embeddings contain NaN or inf")
        return out

    def sample(self, m: int, seed: int = 0) -> np.ndarray:
        """m rows drawn uniformly without loading everything (training sample)."""
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(self.n, size=min(m, self.n), replace=False))
        out = np.empty((len(idx), self.dim), dtype=np.float32)
        starts = np.cumsum([0] + self.counts)
        for i, (ef, _) in enumerate(self.files):
            lo, hi = np.searchsorted(idx, [starts[i], starts[i + 1]])
            if hi > lo:
                out[lo:hi] = np.load(ef, mmap_mode="r")[idx[lo:hi] - starts[i]]
        return out

    def metadata(self) -> pd.DataFrame:
        frames = [pd.read_parquet(mf) for _, mf in self.files]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def open_embeddings(path: str | os.PathLike) -> Embeddings:
    """Read and validate an embedding folder (clip-retrieval layout written by `avrep embed`)."""
    path = Path(path)
    if not path.is_dir():
        raise AvrepError(f"{path}: not an embedding folder")
    m = check_embedding_manifest(read_json(path / MANIFEST_FILE), path / MANIFEST_FILE)
    embs = sorted(path.glob("emb_*.npy"))
    if not embs:
        raise AvrepError(f"{path}: no emb_*.npy files")
    files, counts = [], []
    for ef in embs:
        mf = path / ("meta_" + ef.stem[4:] + ".parquet")
        if not mf.exists():
            raise AvrepError(f"{ef}: no matching metadata file {mf.name}")
        try:
            arr = np.load(ef, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise AvrepError(f"{ef}: unreadable .npy ({e})") from None
        if arr.dtype != np.float32 or arr.ndim != 2 or arr.shape[1] != m["dim"]:
            raise AvrepError(f"{ef}: expected float32 [n, {m['dim']}], got {arr.dtype} {list(arr.shape)}")
        import pyarrow.parquet as pq

        try:
            rows = pq.ParquetFile(mf).metadata.num_rows
        except Exception as e:  # pyarrow raises several types for a bad file
            raise AvrepError(f"{mf}: unreadable parquet ({e})") from None
        if rows != arr.shape[0]:
            raise AvrepError(f"{mf}: {rows} rows but {ef.name} has {arr.shape[0]} vectors")
        files.append((ef, mf))
        counts.append(int(arr.shape[0]))
    return Embeddings(path, m, files, counts)


# --- locking and atomic folders -------------------------------------------------------------


@contextlib.contextmanager
def build_lock(target: Path) -> Iterator[None]:
    """Exclusive lock for building `target`; a second builder errors at once.

    flock is released by the kernel when a build is killed, so a stale lock never blocks a rerun."""
    lock = target.parent / f".{target.name}.lock"
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AvrepError(f"{target}: another build is writing this index (lock {lock})") from None
        try:  # the holder before us may have unlinked the file after we opened it: retry then
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


def clean_stale_temps(target: Path) -> None:
    """Remove temp folders left by killed builds of `target` (call while holding its lock)."""
    for p in target.parent.glob(f".{target.name}.*.tmp*"):
        shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def temp_dir_for(target: Path) -> Iterator[Path]:
    """A temp folder next to `target` (same filesystem, so rename is atomic); removed on failure."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD = -100
    rc = fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(ctypes.get_errno(), f"renameat2 {a} <-> {b}")


def publish(tmp: Path, target: Path, replace: bool) -> None:
    """Move a finished temp folder to `target`: a plain rename, or an atomic swap when replacing."""
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if target.exists():
        if not replace:
            raise AvrepError(f"{target}: already exists (overwrite replaces it)", param="overwrite")
        if _exchange(tmp, target):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous index
        else:  # no renameat2: a short window where target is missing
            old = tmp.with_name(tmp.name + ".old")
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, target)
    _fsync_dir(target.parent)

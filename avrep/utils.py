"""Small shared helpers: atomic writes, hashing, manifest.json, sliding-window starts, --shard parsing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from avrep import __version__
from avrep.errors import AvrepError


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path next to `final`; on success fsync it and rename it into place."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(final: str | os.PathLike, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(final: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(final, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def atomic_write_parquet(final: str | os.PathLike, df) -> None:
    with atomic_path(final, ".parquet") as tmp:
        df.to_parquet(tmp, index=False)


def atomic_save_npy(final: str | os.PathLike, arr: np.ndarray) -> None:
    with atomic_path(final, ".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def write_manifest_json(out_dir: str | os.PathLike, command: str, **fields: Any) -> None:
    """Write `manifest.json` saying what made this folder (command, version, config, seed...)."""

    obj = {"command": command, "avrep_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    obj.update(fields)
    atomic_write_json(Path(out_dir) / "manifest.json", obj)


def window_starts(n: int, window: int, hop: int) -> list[int]:
    """Starts of sliding windows over [0, n): every `hop` frames, plus one ending exactly at n."""
    if n <= window:
        return [0]
    s = list(range(0, n - window + 1, hop))
    if s[-1] != n - window:
        s.append(n - window)
    return s


def parse_shard(spec: str | None) -> tuple[int, int]:
    """Parse 'i/N' into (i, N); None -> (0, 1)."""
    if not spec:
        return 0, 1
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise AvrepError(f"shard {spec!r}: expected i/N, e.g. 0/4", param="shard") from None
    if n < 1 or not 0 <= i < n:
        raise AvrepError(f"shard {spec!r}: need 0 <= i < N", param="shard")
    return i, n

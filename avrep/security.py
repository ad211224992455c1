"""Guards for files avrep did not make: manifest paths escaping a dataset root, pickles posing as
weights, and JSON / .npy / parquet tables whose types are checked before use.

Every refusal is an `AvrepError` whose one-line message names the file and the reason.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from avrep.errors import AvrepError


def check_inside(
    root: str | os.PathLike,
    path: Any,
    allow_outside: bool = False,
    *,
    what: str = "path",
    where: str | os.PathLike | None = None,
) -> str:
    """Absolute, normalised `path` (relative paths are taken from `root`).

    Refuses paths that leave `root` (absolute elsewhere, or `..` climbing out) unless `allow_outside`.
    The check is lexical: a manifest must not point avrep at files outside the dataset it describes;
    symlinks inside the dataset are the dataset owner's choice and are followed.
    """
    src = where or root
    if not isinstance(path, (str, os.PathLike)):
        raise AvrepError(f"{src}: {what} {path!r} is not a string")
    s = os.fspath(path)
    if not s or "\x00" in s:
        raise AvrepError(f"{src}: {what} {s!r} is empty or contains a NUL byte")
    base = os.path.normpath(os.path.abspath(os.fspath(root)))
    full = os.path.normpath(s if os.path.isabs(s) else os.path.join(base, s))
    if not allow_outside and os.path.commonpath([base, full]) != base:
        raise AvrepError(
            f"{src}: {what} {s!r} is outside the dataset root {base} "
            "(refused; allow_outside_root if you trust this manifest)",
            param="allow_outside_root",
        )
    return full


PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
ZIP_MAGIC = b"PK\x03\x04"  # torch.save archives (data.pkl inside)


def refuse_pickle(path: str | os.PathLike) -> None:
    """AvrepError if `path` is a pickle or a torch.save zip: loading those can run arbitrary code."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as e:
        raise AvrepError(f"{path}: cannot read ({e.strerror})") from None
    if head[:2] in PICKLE_MAGIC or head == ZIP_MAGIC:
        raise AvrepError(
            f"{path}: is a pickle / torch.save file; avrep loads weights only from safetensors "
            "(pickles can run code when loaded)"
        )


def load_safetensors(path: str | os.PathLike, device: str = "cpu") -> dict:
    """Tensors of a .safetensors file (never a pickle)."""
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise AvrepError(f"{p}: weights file not found")
    refuse_pickle(p)
    try:
        return load_file(str(p), device=str(device))
    except Exception as e:  # corrupt / truncated / not safetensors
        raise AvrepError(f"{p}: cannot read safetensors weights ({' '.join(str(e).split())[:160]})") from None


def load_torch_weights(path: str | os.PathLike) -> dict:
    """A third-party PyTorch checkpoint, loaded with `weights_only=True` (tensors and plain containers
    only; a pickle that tries to build any other object is refused)."""
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise AvrepError(f"{path}: refused or unreadable checkpoint ({' '.join(str(e).split())[:160]})") from None
    if not isinstance(obj, dict):
        raise AvrepError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    return obj


def load_json(path: str | os.PathLike, max_bytes: int = 64 << 20) -> Any:
    """The JSON value in a file avrep did not necessarily write (size-capped; AvrepError naming the file
    when it is missing, too large or not JSON)."""
    p = Path(path)
    try:
        if p.stat().st_size > max_bytes:
            raise AvrepError(f"{p}: JSON file larger than {max_bytes >> 20} MiB")
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise AvrepError(f"{p}: missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise AvrepError(f"{p}: not valid JSON ({' '.join(str(e).split())[:120]})") from None


def load_json_object(path: str | os.PathLike, max_bytes: int = 64 << 20) -> dict:
    """A JSON object from a file (size-capped; arrays/strings at top level refused)."""
    p = Path(path)
    obj = load_json(p, max_bytes)
    if not isinstance(obj, dict):
        raise AvrepError(f"{p}: expected a JSON object, got {type(obj).__name__}")
    return obj


def load_npy(path: str | os.PathLike, *, mmap: bool = False, dtype: Any = None, ndim: int | None = None) -> np.ndarray:
    """An .npy array without pickles (object arrays refused), optionally type/rank checked."""
    try:
        a = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, EOFError) as e:
        raise AvrepError(f"{path}: unreadable .npy ({' '.join(str(e).split())[:120]})") from None
    if not isinstance(a, np.ndarray):
        raise AvrepError(f"{path}: not a single .npy array")
    if dtype is not None and a.dtype != np.dtype(dtype):
        raise AvrepError(f"{path}: expected dtype {np.dtype(dtype)}, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise AvrepError(f"{path}: expected {ndim} dimensions, got shape {list(a.shape)}")
    return a


def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def check_int_column(df, col: str, where: str | os.PathLike, *, minimum: int | None = None) -> None:
    """Column holds integers (no NaN, no floats with fractions, no strings), each >= minimum."""
    import pandas as pd

    s = df[col]
    if not pd.api.types.is_integer_dtype(s.dtype):
        if not pd.api.types.is_float_dtype(s.dtype) or s.isna().any() or not (s == s.round()).all():
            raise AvrepError(f"{where}: column {col!r} must hold integers, got {s.dtype}")
    if minimum is not None and len(s) and s.min() < minimum:
        raise AvrepError(f"{where}: column {col!r} has value {s.min()} < {minimum}")


def check_str_column(df, col: str, where: str | os.PathLike, *, nullable: bool = True) -> None:
    bad = [x for x in df[col].tolist() if not (isinstance(x, str) or (nullable and _is_missing(x)))]
    if bad:
        raise AvrepError(
            f"{where}: column {col!r} must hold strings{' or nulls' if nullable else ''}, "
            f"got {type(bad[0]).__name__} {bad[0]!r}"
        )


def validate_recipe_manifest(df, where: str | os.PathLike) -> None:
    """Types of a recipe manifest's standard columns (docs/architecture.md) before anything is read."""
    check_str_column(df, "clip_id", where, nullable=False)
    if df["clip_id"].duplicated().any():
        raise AvrepError(f"{where}: duplicate clip_id {df.loc[df['clip_id'].duplicated(), 'clip_id'].iloc[0]!r}")
    for c in ("path", "landmarks_path", "word", "transcript", "speaker", "split"):
        if c in df:
            check_str_column(df, c, where)
    for c, lo in (("start_frame", 0), ("end_frame", -1), ("word_id", -1)):
        if c in df:
            check_int_column(df, c, where, minimum=lo)


def validate_store_clips(df, where: str | os.PathLike) -> None:
    """A feature store's clips.parquet: the addressing columns must be sane integers."""
    for c in ("clip_id", "shard", "offset", "n_frames"):
        if c not in df:
            raise AvrepError(f"{where}: column {c!r} missing (not a feature store index)")
    check_str_column(df, "clip_id", where, nullable=False)
    for c, lo in (("shard", 0), ("offset", 0), ("n_frames", 1)):
        check_int_column(df, c, where, minimum=lo)

"""Batch mode of `avrep sync` / `lipread`: many files in one call, one model load, one results file.

Inputs: video files, folders (searched recursively for video extensions, in name order) and manifests
(.csv / .parquet with a `path` column; relative paths are taken from the manifest's folder). Results: one
record per file, `{"path": ..., **result}` or `{"path": ..., "error": "one-line reason"}` for a file that
failed (bad media, no face...), so nothing else is lost.

Output `-o out.jsonl`: each record is appended and flushed as its file finishes (an interrupted run loses at
most the file in progress; a torn last line is dropped on the next run). `-o out.parquet`: records go to
`out.parquet.partial.jsonl` the same way and the parquet is written atomically at the end (nested values as
JSON strings). Rerunning with the same output skips every path already recorded (done or failed).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from avrep.errors import AvrepError

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv", ".ts")
MANIFEST_EXTS = (".csv", ".parquet")
PATH_COLUMN = "path"


def is_batch(inputs: Iterable[str | os.PathLike], out: str | os.PathLike | None = None) -> bool:
    """Batch mode: several inputs, a folder, a manifest, or a .jsonl/.parquet output."""
    inputs = list(inputs)
    if len(inputs) != 1 or (out is not None and str(out).lower().endswith((".jsonl", ".parquet"))):
        return True
    p = Path(inputs[0])
    return p.is_dir() or p.suffix.lower() in MANIFEST_EXTS


def expand_inputs(inputs: Iterable[str | os.PathLike], column: str = PATH_COLUMN) -> list[str]:
    """Files, folders and manifests -> the list of video paths, in the order given (folders: sorted)."""
    out: list[str] = []
    for x in inputs:
        p = Path(x)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTS and not f.is_dir())
            if not found:
                raise AvrepError(f"{p}: no video files in this folder ({', '.join(VIDEO_EXTS[:4])}...)")
            out += [str(f) for f in found]
        elif p.suffix.lower() in MANIFEST_EXTS:
            out += _manifest_paths(p, column)
        else:
            out.append(str(p))
    seen: set[str] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


def _manifest_paths(p: Path, column: str) -> list[str]:
    import pandas as pd

    if not p.is_file():
        raise AvrepError(f"{p}: manifest not found")
    try:
        df = pd.read_parquet(p) if p.suffix.lower() == ".parquet" else pd.read_csv(p)
    except Exception as e:
        raise AvrepError(f"{p}: cannot read the manifest ({' '.join(str(e).split())[:160]})") from None
    if column not in df.columns:
        raise AvrepError(f"{p}: the manifest has no {column!r} column (columns: {', '.join(map(str, df.columns))})")
    return [str(q if Path(q).is_absolute() else p.parent / q) for q in df[column].astype(str)]


def _jsonl_path(out: Path) -> Path:
    return out if out.suffix.lower() == ".jsonl" else out.with_name(out.name + ".partial.jsonl")


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of a results file (.jsonl, or .parquet plus its partial .jsonl); a torn last line is dropped."""
    out = Path(path)
    recs: list[dict[str, Any]] = []
    if out.suffix.lower() == ".parquet" and out.exists():
        import pandas as pd

        recs += pd.read_parquet(out).to_dict("records")
    j = _jsonl_path(out)
    if j.exists():
        for line in j.read_text(encoding="utf-8").splitlines():
            try:
                recs.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the line an interrupted run was writing
    return recs


def _repair_tail(j: Path) -> None:
    """Cut a torn last line (an interrupted write) so the next append starts on a fresh line."""
    if not j.exists() or j.stat().st_size == 0:
        return
    data = j.read_bytes()
    if data.endswith(b"\n"):
        return
    keep = data[: data.rfind(b"\n") + 1]
    with open(j, "r+b") as f:
        f.truncate(len(keep))


def _write_parquet(out: Path, recs: list[dict[str, Any]]) -> None:
    import pandas as pd

    from avrep.utils import atomic_write_parquet

    rows = [{k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()} for r in recs]
    atomic_write_parquet(out, pd.DataFrame(rows))


def run_batch(
    paths: list[str],
    fn: Callable[[str], dict[str, Any]],
    out: str | os.PathLike | None,
    *,
    progress: bool = True,
    desc: str = "files",
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run `fn(path)` on every path not yet in `out`, recording a result or an AvrepError per file.

    `out` None: records are passed to `echo` (JSON lines on stdout) and nothing is resumable.
    -> {"n": files asked, "done": new results, "failed": [(path, reason)] new failures, "skipped": already in out}.
    Errors other than AvrepError (bugs) stop the run; what was written stays.
    """
    from tqdm import tqdm

    j = None
    done_paths: set[str] = set()
    if out is not None:
        out = Path(out)
        if out.suffix.lower() not in (".jsonl", ".parquet"):
            raise AvrepError(f"{out}: batch results go to a .jsonl or .parquet file")
        out.parent.mkdir(parents=True, exist_ok=True)
        j = _jsonl_path(out)
        _repair_tail(j)
        done_paths = {str(r.get("path")) for r in read_records(out)}
    todo = [p for p in paths if p not in done_paths]
    failed: list[tuple[str, str]] = []
    n_done = 0
    f = open(j, "a", encoding="utf-8") if j is not None else None
    try:
        for p in tqdm(todo, desc=desc, unit="file", disable=not (progress and sys.stderr.isatty())):
            try:
                rec = {"path": p, **fn(p)}
                n_done += 1
            except AvrepError as e:
                rec = {"path": p, "error": str(e)}
                failed.append((p, str(e)))
            line = json.dumps(rec, allow_nan=True, default=_default)
            if f is not None:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
            elif echo is not None:
                echo(line)
    finally:
        if f is not None:
            f.close()
    if out is not None and Path(out).suffix.lower() == ".parquet":
        _write_parquet(Path(out), read_records(out))
        assert j is not None
        j.unlink(missing_ok=True)
    return {"n": len(paths), "done": n_done, "failed": failed, "skipped": len(paths) - len(todo)}


def _default(x: Any) -> Any:
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


__all__ = ["MANIFEST_EXTS", "VIDEO_EXTS", "expand_inputs", "is_batch", "read_records", "run_batch"]

"""Any folder of videos -> recipe manifest; optional sidecar transcripts (`clip.txt` next to `clip.mp4`)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from avrep.data.recipes import VIDEO_EXTS, finalize, find_videos, split_keys
from avrep.errors import AvrepError


def read_transcript(path: Path) -> str | None:
    """First non-empty line of a sidecar, without an LRS-style 'Text:' prefix."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = re.sub(r"^\s*Text:\s*", "", line).strip()
        if line:
            return line
    return None


def prepare_folder(root: str | os.PathLike, *, split: str = "test", seed: int = 0,
                   ratios: tuple[float, float, float] | None = None,
                   exts: tuple[str, ...] = VIDEO_EXTS) -> pd.DataFrame:
    """Every video under root is one clip. speaker = first sub-folder (nested) or the file stem (flat).

    split: all clips get `split`, unless `ratios` are given (seeded split by speaker).
    """
    root = Path(root)
    if not root.is_dir():
        raise AvrepError(f"{root}: not a folder")
    videos = find_videos(root, exts)
    if not videos:
        raise AvrepError(f"{root}: no videos ({', '.join(exts)}) found")
    rows = []
    for v in videos:
        rel = v.relative_to(root)
        speaker = rel.parts[0] if len(rel.parts) > 1 else v.stem
        txt = v.with_suffix(".txt")
        cid = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(rel.with_suffix("")))
        rows.append(dict(clip_id=cid, path=str(rel), word=None, word_id=-1,
                         transcript=read_transcript(txt) if txt.exists() else None, speaker=speaker, split=split,
                         start_frame=0, end_frame=-1))
    df = finalize(rows, root)
    if ratios is not None:
        m = split_keys(df["speaker"].tolist(), ratios, seed)
        df["split"] = df["speaker"].map(m)
    return df

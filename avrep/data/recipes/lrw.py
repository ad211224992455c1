"""LRW layout `WORD/{train,val,test}/WORD_NNNNN.mp4` (+ `.txt`) -> recipe manifest.

Clips are 29 frames with the word centred; the `.txt` gives the word duration ("Duration: 0.35
seconds"), turned into word_start_frame/word_end_frame (centred) for boundary-aware models.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from avrep.conventions import CLIP_FRAMES, FPS
from avrep.data.recipes import SPLITS, RecipeManifest, finalize
from avrep.errors import AvrepError

WINDOW = CLIP_FRAMES  # LRW clips are 29 frames


def read_lrw_txt(path: str | os.PathLike) -> tuple[str | None, float | None]:
    """(word, duration in seconds) from an LRW .txt; None where absent."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    w = re.search(r"^\s*Text:\s*(.+?)\s*$", text, re.M)
    d = re.search(r"Duration:\s*([0-9.]+)", text)
    return (w.group(1).strip() if w else None), (float(d.group(1)) if d else None)


def prepare_lrw(root: str | os.PathLike) -> RecipeManifest:
    """LRW tree -> manifest + vocab. word_id indexes the sorted word folders."""
    root = Path(root)
    if not root.is_dir():
        raise AvrepError(f"{root}: not a folder")
    words = sorted(p.name for p in root.iterdir() if p.is_dir() and any((p / s).is_dir() for s in SPLITS))
    if not words:
        raise AvrepError(f"{root}: no LRW word folders (WORD/train|val|test/WORD_00001.mp4)")
    wid = {w: i for i, w in enumerate(words)}
    rows = []
    for w in words:
        for split in SPLITS:
            for v in sorted((root / w / split).glob("*.mp4")):
                txt = v.with_suffix(".txt")
                word, dur = read_lrw_txt(txt) if txt.exists() else (None, None)
                if word is not None and word.upper() != w.upper():
                    raise AvrepError(f"{txt}: says {word!r} but lies in folder {w!r}")
                ws = we = None
                if dur is not None:
                    n = max(1, int(round(dur * FPS)))
                    ws = max(0, (WINDOW - n) // 2)
                    we = min(WINDOW, ws + n)
                rows.append(
                    dict(
                        clip_id=f"{w}_{split}_{v.stem}",
                        path=str(v.relative_to(root)),
                        word=w.lower(),
                        word_id=wid[w],
                        transcript=w.lower(),
                        speaker="unknown",
                        split=split,
                        start_frame=0,
                        end_frame=-1,
                        word_start_frame=ws,
                        word_end_frame=we,
                        word_duration=dur,
                    )
                )
    return RecipeManifest(finalize(rows, root), [w.lower() for w in words], "lrw", root)

"""LRS2 / LRS3 layout (`NNNNN.mp4` + `NNNNN.txt`) -> manifest of 29-frame word clips and/or whole utterances.

A `.txt` holds `Key:  value` header lines (`Text:` the utterance, `Conf:`, LRS3's `Ref:` ...) and, in the
pretrain sets, a word timing table: a `WORD START END ASDSCORE` header, then one row per word with times
in seconds (`MAKE 0.08 0.33 7.4`). The main/test sets of LRS2 have no table: their clips give utterances
but no word clips.

Layouts: a flat folder of clips (each clip is its own speaker), or nested folders such as LRS2's
`main/<show id>/00001.mp4` and LRS3's `trainval/<speaker id>/00001.mp4` (speaker = the folder holding the
clip, so `main/X/` and `pretrain/X/` share speaker X). A speaker table (`clip,identity`) overrides both.

Word level: one row per timed word, a `CLIP_FRAMES`-frame window centred on the word (the GRID recipe's
`word_window`, kept inside the video's 25 fps frame count), with word_start_frame/word_end_frame relative
to the window. Utterance level: one row per clip (the whole video, transcript, word_id -1). Words and
transcripts are lower-cased; word ids index a vocabulary (given, or the corpus' words in sorted order).
The split is by speaker (seeded), so no speaker is in two splits. Clips whose `.txt` is missing or has no
`Text:` line are skipped and listed in attrs (`no_txt`, `bad_txt`); clips with no timing table give no word
rows (`no_timing`); a malformed table row raises AvrepError naming the file and line.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from avrep.conventions import CLIP_FRAMES, FPS
from avrep.data.recipes import (
    RecipeManifest,
    finalize,
    find_videos,
    n_frames_25,
    speaker_videos,
    split_keys,
)
from avrep.data.recipes.grid import word_window
from avrep.errors import AvrepError

WINDOW = CLIP_FRAMES
LEVELS = ("word", "utterance", "both")
_HEADER = re.compile(r"^\s*([A-Za-z]+):\s?(.*)$")


@dataclass
class LrsText:
    """A parsed LRS2/LRS3 `.txt`: the utterance, and the timed words (None: the file has no table)."""

    text: str | None
    words: list[tuple[str, float, float, float | None]] | None  # (word, start s, end s, ASD score)
    conf: str | None = None


def read_lrs_txt(path: str | os.PathLike) -> LrsText:
    """Parse an LRS2/LRS3 `.txt`; a malformed timing row raises AvrepError `path:line: ...`."""
    fields: dict[str, str] = {}
    cols: list[str] | None = None
    words: list[tuple[str, float, float, float | None]] | None = None
    with open(path, encoding="utf-8", errors="replace", newline=None) as fh:
        for ln, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if cols is None:
                up = [p.upper() for p in parts]
                if up[0] == "WORD" and "START" in up and "END" in up:
                    cols, words = up, []
                    continue
                m = _HEADER.match(line)
                if m and m.group(1).lower() not in fields:
                    fields[m.group(1).lower()] = m.group(2).strip()
                continue
            assert words is not None
            bad = f"{path}:{ln}: malformed word timing line {line.strip()!r} (expected {' '.join(cols)})"
            if len(parts) != len(cols):
                raise AvrepError(bad)
            try:
                start, end = float(parts[cols.index("START")]), float(parts[cols.index("END")])
                score = float(parts[cols.index("ASDSCORE")]) if "ASDSCORE" in cols else None
            except ValueError:
                raise AvrepError(bad) from None
            if not (0 <= start <= end):
                raise AvrepError(f"{bad}: needs 0 <= START <= END")
            words.append((parts[cols.index("WORD")], start, end, score))
    return LrsText(fields.get("text") or None, words, fields.get("conf"))


def _load_vocab(vocab: Sequence[str] | str | os.PathLike) -> list[str]:
    if isinstance(vocab, (str, os.PathLike)):
        p = Path(vocab)
        if not p.is_file():
            raise AvrepError(f"{p}: vocabulary file not found")
        vocab = [w for w in p.read_text(encoding="utf-8").split()]
    out = [str(w).strip().lower() for w in vocab]
    if not out or len(set(out)) != len(out) or not all(out):
        raise AvrepError("vocabulary: needs distinct non-empty words")
    return out


def prepare_lrs2(
    root: str | os.PathLike,
    *,
    level: str = "word",
    seed: int = 0,
    ratios: tuple[float, float, float] | None = (0.8, 0.1, 0.1),
    split: str = "test",
    speakers: str | os.PathLike | None = None,
    drop_unlisted: bool = False,
    vocab: Sequence[str] | str | os.PathLike | None = None,
    min_count: int = 1,
    window: int = WINDOW,
    probe_frames: bool = True,
) -> RecipeManifest:
    """LRS2/LRS3 folder -> manifest + vocabulary (module docstring for the layout and the rules).

    level: 'word' (29-frame word clips from the timing tables), 'utterance' (whole clips) or 'both' (column
    `level` tells them apart). ratios: seeded speaker-disjoint train/val/test split; None puts every clip in
    `split`. speakers: a `clip,identity` CSV (speaker := identity; unlisted clips are an error unless
    `drop_unlisted`). vocab: words in word_id order (a list or a file of words), else the corpus' words
    seen at least `min_count` times, sorted; other words get word_id -1.
    """
    root = Path(root)
    if not root.is_dir():
        raise AvrepError(f"{root}: not a folder")
    if level not in LEVELS:
        raise AvrepError(f"level {level!r}: use word, utterance or both", param="level")
    if min_count < 1:
        raise AvrepError(f"min_count {min_count}: must be >= 1", param="min_count")
    videos = find_videos(root, (".mp4",))
    if not videos:
        raise AvrepError(f"{root}: no LRS2/LRS3 clips (NNNNN.mp4 + NNNNN.txt) found")
    videos, spk_of, unlisted = speaker_videos(videos, root, speakers, drop_unlisted=drop_unlisted)
    no_txt, bad_txt, no_timing, outside = [], [], [], []
    items = []
    for v in videos:
        rel = v.relative_to(root)
        txt = v.with_suffix(".txt")
        if not txt.is_file():
            no_txt.append(str(v))
            continue
        t = read_lrs_txt(txt)
        if t.text is None:
            bad_txt.append(str(txt))
            continue
        if t.words is None and level != "utterance":
            no_timing.append(str(v))
        spk = spk_of.get(v) or (v.parent.name if len(rel.parts) > 1 else v.stem)
        cid = re.sub(r"[^A-Za-z0-9_.-]+", "_", rel.with_suffix("").as_posix())
        items.append((v, rel, cid, spk, t))
    if level != "utterance":
        counts: dict[str, int] = {}
        for *_, t in items:
            for w, *_ in t.words or ():
                counts[w.lower()] = counts.get(w.lower(), 0) + 1
        words = _load_vocab(vocab) if vocab is not None else sorted(w for w, c in counts.items() if c >= min_count)
    else:
        words = _load_vocab(vocab) if vocab is not None else None
    wid = {w: i for i, w in enumerate(words or ())}
    if ratios is not None:
        assign = split_keys([spk for *_, spk, _ in items], ratios, seed)
    rows = []
    for v, rel, cid, spk, t in items:
        sp = assign[spk] if ratios is not None else split
        transcript = " ".join(t.text.lower().split())
        common = dict(path=rel.as_posix(), transcript=transcript, speaker=spk, split=sp, utterance=cid)
        if level in ("utterance", "both"):
            rows.append(
                dict(clip_id=cid, word=None, word_id=-1, start_frame=0, end_frame=-1, level="utterance", **common)
            )
        if level == "utterance" or not t.words:
            continue
        n = (n_frames_25(v) if probe_frames else 0) or max(math.floor(e * FPS + 0.5) + 1 for _, _, e, _ in t.words)
        for k, (w, ts, te, score) in enumerate(t.words):
            s = math.floor(ts * FPS + 0.5)
            e = min(max(math.floor(te * FPS + 0.5), s + 1), n)
            if s >= n:  # the table runs past the video
                outside.append(f"{cid}:{k}")
                continue
            w0, w1 = word_window(s, e, n, window)
            w = w.lower()
            rows.append(
                dict(
                    clip_id=f"{cid}_{k}_{re.sub(r'[^a-z0-9]+', '', w) or 'w'}",
                    word=w,
                    word_id=wid.get(w, -1),
                    start_frame=w0,
                    end_frame=w1,
                    level="word",
                    word_start_frame=max(0, s - w0),
                    word_end_frame=min(window, e - w0),
                    word_start=ts,
                    word_end=te,
                    asd_score=score,
                    **common,
                )
            )
    if not rows:
        why = (
            f"{len(no_timing)} clip(s) without a word timing table"
            if no_timing
            else f"{len(no_txt)} without .txt, {len(bad_txt)} without Text:"
        )
        raise AvrepError(f"{root}: no {level} clips ({why})")
    df = finalize(rows, root)
    df.attrs.update(no_txt=no_txt, bad_txt=bad_txt, no_timing=no_timing, outside=outside, unlisted=unlisted)
    given = split if ratios is None else list(ratios)
    config = {
        "level": level,
        "seed": seed,
        "split": given,
        "min_count": min_count,
        "speakers": str(speakers) if speakers is not None else None,
    }
    return RecipeManifest(df, words, "lrs2", root, config)

"""GRID audio-visual sentence corpus -> manifest of word clips (LRW-style 29-frame windows) or sentences.

Layouts found automatically under DIR:
- `video/*.mp4` + `align/*.align` (the one-speaker layout of shared/data/grid_s1),
- Zenodo release: speaker folders `sN/` of `.mpg` (any depth) with alignments in `sN/align/`,
  `alignments/sN/` or `alignments/sN/align/`,
- a flat folder of `.mpg`/`.mp4` with `.align` files beside them.

`.align` lines are `start end word` with CRLF endings; numbers / 1000 = video frame index at 25 fps
(seconds = value / 25000; lhotse divides by 1000 and gets seconds wrong). `sil`/`sp` are not words.
Files are never modified. The split is by sentence with a seeded shuffle, so no sentence is in two splits.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from avrep.conventions import CLIP_FRAMES
from avrep.data.recipes import VIDEO_EXTS, RecipeManifest, finalize, n_frames_25, split_keys
from avrep.errors import AvrepError

COMMANDS = {"b": "bin", "l": "lay", "p": "place", "s": "set"}
COLOURS = {"b": "blue", "g": "green", "r": "red", "w": "white"}
PREPOSITIONS = {"a": "at", "b": "by", "i": "in", "w": "with"}
DIGITS = {
    "z": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
}
ADVERBS = {"a": "again", "n": "now", "p": "please", "s": "soon"}
LETTERS = [c for c in "abcdefghijklmnopqrstuvxyz"]  # GRID has no 'w' letter
VOCAB = sorted(
    set(COMMANDS.values())
    | set(COLOURS.values())
    | set(PREPOSITIONS.values())
    | set(LETTERS)
    | set(DIGITS.values())
    | set(ADVERBS.values())
)  # 51 words; word_id = index
WORD_ID = {w: i for i, w in enumerate(VOCAB)}
WINDOW = CLIP_FRAMES  # LRW-style word windows
SILENCE = {"sil", "sp"}


def sentence_from_name(name: str) -> list[str] | None:
    """Decode a GRID file name (e.g. 'bbaf2n') into its six words, or None if it is not one."""
    n = name.lower()
    if len(n) != 6 or n[3] not in LETTERS:
        return None
    try:
        return [COMMANDS[n[0]], COLOURS[n[1]], PREPOSITIONS[n[2]], n[3], DIGITS[n[4]], ADVERBS[n[5]]]
    except KeyError:
        return None


def read_align(path: str | os.PathLike) -> list[tuple[int, int, str]]:
    """Words of an .align file as (start_frame, end_frame_exclusive, word), silences dropped."""
    out = []
    with open(path, encoding="utf-8", errors="replace", newline=None) as fh:  # handles CRLF
        for ln, line in enumerate(fh, 1):
            parts = line.strip().split()
            if not parts:
                continue
            if len(parts) != 3:
                raise AvrepError(f"{path}:{ln}: expected 'start end word', got {line.strip()!r}")
            try:
                s, e = int(parts[0]), int(parts[1])
            except ValueError:
                raise AvrepError(f"{path}:{ln}: non-integer time in {line.strip()!r}") from None
            w = parts[2].lower()
            if w in SILENCE:
                continue
            out.append((int(round(s / 1000)), max(int(round(e / 1000)), int(round(s / 1000)) + 1), w))
    return out


def word_window(start: int, end: int, n_frames: int, window: int = WINDOW) -> tuple[int, int]:
    """First frame of a `window`-frame window centred on [start, end), kept inside [0, n_frames)."""
    w0 = (start + end - window) // 2
    if n_frames >= window:
        w0 = min(max(w0, 0), n_frames - window)
    else:
        w0 = 0  # shorter than a window: preprocessing pads by repeating the edge frames
    return w0, w0 + window


def _speaker_of(path: Path, root: Path) -> str:
    for part in reversed(path.relative_to(root).parts[:-1]):
        if re.fullmatch(r"s\d+", part.lower()):
            return part.lower()
    m = re.search(r"(?:^|[^a-z])(s\d+)(?:$|[^0-9])", root.name.lower())
    return m.group(1) if m else root.name


def _find_align(video: Path, root: Path, speaker: str) -> Path | None:
    stem = video.stem
    cands = [
        video.with_suffix(".align"),
        video.parent / "align" / f"{stem}.align",
        video.parent.parent / "align" / f"{stem}.align",
        root / "align" / f"{stem}.align",
        root / speaker / "align" / f"{stem}.align",
        root / "alignments" / speaker / f"{stem}.align",
        root / "alignments" / speaker / "align" / f"{stem}.align",
    ]
    return next((c for c in cands if c.exists()), None)


def prepare_grid(
    root: str | os.PathLike,
    *,
    level: str = "word",
    seed: int = 0,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    window: int = WINDOW,
    probe_frames: bool = True,
) -> RecipeManifest:
    """GRID folder -> manifest (level 'word': 29-frame word clips; 'sentence': whole videos) + VOCAB.

    Word clips carry word_start_frame/word_end_frame relative to the window and `sentence` (the
    sentence id); windows are clamped inside the video (length from the container when probe_frames).
    Rows whose .align words disagree with the file name's sentence are dropped (attrs['mismatched']).
    """
    root = Path(root)
    if not root.is_dir():
        raise AvrepError(f"{root}: not a folder")
    if level not in ("word", "sentence"):
        raise AvrepError(f"level {level!r}: use word or sentence", param="level")
    videos = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in VIDEO_EXTS and p.is_file() and sentence_from_name(p.stem) is not None
    )
    if not videos:
        raise AvrepError(f"{root}: no GRID videos (files named like bbaf2n.mpg) found")
    items = []
    mismatched, no_align = [], []
    for v in videos:
        spk = _speaker_of(v, root)
        al = _find_align(v, root, spk)
        words = read_align(al) if al is not None else None
        expect = sentence_from_name(v.stem)
        if words is not None and [w for *_, w in words] != expect:
            mismatched.append(str(v))
            continue
        if words is None:
            no_align.append(str(v))
            if level == "word":
                continue
        items.append((v, spk, words, expect))
    keys = [f"{spk}/{v.stem}" for v, spk, _, _ in items]
    split = split_keys(keys, ratios, seed)
    rows = []
    for (v, spk, words, expect), key in zip(items, keys):
        rel = str(v.relative_to(root))
        transcript = " ".join(expect)
        if level == "sentence":
            rows.append(
                dict(
                    clip_id=f"{spk}_{v.stem}",
                    path=rel,
                    word=None,
                    word_id=-1,
                    transcript=transcript,
                    speaker=spk,
                    split=split[key],
                    start_frame=0,
                    end_frame=-1,
                    sentence=v.stem,
                )
            )
            continue
        n = n_frames_25(v) if probe_frames else 0
        n = n or max(e for _, e, _ in words)
        for k, (s, e, w) in enumerate(words):
            w0, w1 = word_window(s, e, n, window)
            rows.append(
                dict(
                    clip_id=f"{spk}_{v.stem}_{k}_{w}",
                    path=rel,
                    word=w,
                    word_id=WORD_ID[w],
                    transcript=transcript,
                    speaker=spk,
                    split=split[key],
                    start_frame=w0,
                    end_frame=w1,
                    word_start_frame=max(0, s - w0),
                    word_end_frame=min(window, e - w0),
                    sentence=v.stem,
                )
            )
    df = finalize(rows, root)
    df.attrs.update(mismatched=mismatched, no_align=no_align)
    return RecipeManifest(df, VOCAB, "grid", root, {"level": level, "seed": seed, "ratios": ratios})

"""Any folder of videos -> recipe manifest, with optional transcripts and a speaker table.

Transcripts: a sidecar `clip.txt` next to `clip.mp4` (LRS-style `Text:` prefix dropped), else a word list
`<stem>.csv` (a `word` header, then one word a line, as lrc_ar's `words/`) or `<stem>.txt` in the
transcripts folder: `transcripts=DIR` (`--transcripts`), or by default a `words/` folder found beside
the videos' folder (`ROOT/video/x.mp4` -> `ROOT/words/x.csv`) or in ROOT itself.

Speakers: the first sub-folder (nested) or the file stem (flat), unless a speaker table `clip,identity`
(`--speakers identities.csv`) is given: speaker := identity, so a split by ratios is identity-disjoint.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from avrep.data.recipes import (
    VIDEO_EXTS,
    RecipeManifest,
    finalize,
    find_videos,
    speaker_videos,
    split_keys,
)
from avrep.errors import AvrepError


def read_transcript(path: Path) -> str | None:
    """First non-empty line of a sidecar, without an LRS-style 'Text:' prefix."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = re.sub(r"^\s*Text:\s*", "", line).strip()
        if line:
            return line
    return None


def read_word_list(path: Path) -> str | None:
    """A word-list CSV (optional `word` header, one word a line, first column) -> the words joined by spaces."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        cells = [row[0].strip() for row in csv.reader(fh) if row and row[0].strip()]
    if cells and cells[0].lower() == "word":
        cells = cells[1:]
    return " ".join(cells) or None


def _transcript_dirs(v: Path, root: Path, transcripts: Path | None) -> list[Path]:
    if transcripts is not None:
        return [transcripts]
    return [d for d in dict.fromkeys((v.parent.parent / "words", root / "words")) if d.is_dir() and d != v.parent]


def find_transcript(v: Path, root: Path, transcripts: Path | None = None) -> str | None:
    """The transcript of video `v`: sidecar .txt, else `<stem>.csv`/`.txt` in the transcripts folder."""
    if v.with_suffix(".txt").is_file():
        return read_transcript(v.with_suffix(".txt"))
    rel = v.relative_to(root).with_suffix("")
    for d in _transcript_dirs(v, root, transcripts):
        for base in dict.fromkeys((d / rel, d / v.stem)):
            for ext, read in ((".csv", read_word_list), (".txt", read_transcript)):
                f = base.with_name(base.name + ext)
                if f.is_file():
                    return read(f)
    return None


def prepare_folder(
    root: str | os.PathLike,
    *,
    split: str = "test",
    seed: int = 0,
    ratios: tuple[float, float, float] | None = None,
    exts: tuple[str, ...] = VIDEO_EXTS,
    speakers: str | os.PathLike | None = None,
    drop_unlisted: bool = False,
    transcripts: str | os.PathLike | None = None,
) -> RecipeManifest:
    """Every video under root is one clip. speaker = first sub-folder (nested) or the file stem (flat),
    or its identity in the `speakers` table (`clip,identity`; videos missing from it are an error unless
    `drop_unlisted`, which leaves them out, listed in attrs['unlisted']).

    split: all clips get `split`, unless `ratios` are given (seeded split by speaker, so speaker-disjoint).
    transcripts: folder of `<stem>.csv` word lists / `<stem>.txt` (default: a `words/` folder found beside
    the videos). No fixed vocabulary.
    """
    root = Path(root)
    if not root.is_dir():
        raise AvrepError(f"{root}: not a folder")
    tdir = Path(transcripts) if transcripts is not None else None
    if tdir is not None and not tdir.is_dir():
        raise AvrepError(f"{tdir}: transcripts folder not found")
    videos = find_videos(root, exts)
    if not videos:
        raise AvrepError(f"{root}: no videos ({', '.join(exts)}) found")
    videos, spk_of, unlisted = speaker_videos(videos, root, speakers, drop_unlisted=drop_unlisted)
    if not videos:
        raise AvrepError(f"{speakers}: lists none of the videos under {root}")
    rows = []
    for v in videos:
        rel = v.relative_to(root)
        speaker = spk_of.get(v) or (rel.parts[0] if len(rel.parts) > 1 else v.stem)
        cid = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(rel.with_suffix("")))
        rows.append(
            dict(
                clip_id=cid,
                path=str(rel),
                word=None,
                word_id=-1,
                transcript=find_transcript(v, root, tdir),
                speaker=speaker,
                split=split,
                start_frame=0,
                end_frame=-1,
            )
        )
    df = finalize(rows, root)
    df.attrs["unlisted"] = unlisted
    if ratios is not None:
        m = split_keys(df["speaker"].tolist(), ratios, seed)
        df["split"] = df["speaker"].map(m)
    given = split if ratios is None else ",".join(f"{r:g}" for r in ratios)
    return RecipeManifest(
        df,
        None,
        "folder",
        root,
        {"split": given, "seed": seed, "speakers": str(speakers) if speakers is not None else None},
    )

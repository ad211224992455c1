"""Corpus recipes: each turns a corpus folder into a recipe manifest (one parquet row per clip).

The contract (after lhotse): `prepare_<name>(corpus_dir, **options) -> RecipeManifest` for every recipe
(synth, grid, lrw, lrs2, folder); `RecipeManifest.write(out)` writes the parquet. A speaker table
(`clip,identity` CSV: `read_speaker_table`, `assign_speakers`) makes any split speaker-disjoint.
The CLI only parses options.

Manifest columns (docs/architecture.md): clip_id, path (relative to the manifest's root), word,
word_id, transcript, speaker, split, start_frame, end_frame (exclusive, -1 = to the end),
landmarks_path; recipes may add columns (word_start_frame, word_end_frame, ...). The root, the
vocabulary and provenance are stored as JSON in the parquet metadata under b"avrep".
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from avrep import __version__
from avrep.errors import AvrepError
from avrep.io.media import probe
from avrep.security import check_inside, validate_recipe_manifest
from avrep.utils import atomic_path


@dataclass(frozen=True)
class ClipRow:
    """One row of a recipe manifest, typed (the columns `COLUMNS`; recipes may add more to the dict)."""

    clip_id: str
    path: str  # relative to the manifest's root, or absolute
    word: str | None = None
    word_id: int = -1
    transcript: str | None = None
    speaker: str = "unknown"
    split: str = "test"
    start_frame: int = 0
    end_frame: int = -1  # exclusive, -1 = to the end
    landmarks_path: str | None = None

    @classmethod
    def single_video(cls, path: str | os.PathLike, **kw: Any) -> ClipRow:
        """The row of one whole video (no word, speaker unknown, split test), its stem as the clip id."""
        p = Path(path)
        return cls(clip_id=kw.pop("clip_id", p.stem), path=kw.pop("path", str(p.resolve())), **kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = [f.name for f in fields(ClipRow)]
VIDEO_EXTS = (".mp4", ".mpg", ".mpeg", ".avi", ".mov", ".webm", ".mkv")
SPLITS = ("train", "val", "test")


def split_keys(keys: list[str], ratios: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Assign each key (e.g. a sentence) to train/val/test with a seeded shuffle; same keys -> same split."""
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise AvrepError(f"split ratios {ratios}: need three non-negative numbers")
    r = np.asarray(ratios, float) / sum(ratios)
    keys = sorted(set(keys))
    order = np.random.default_rng(seed).permutation(len(keys))
    n_train = int(round(r[0] * len(keys)))
    n_val = int(round(r[1] * len(keys)))
    out = {}
    for rank, k in enumerate(order):
        out[keys[k]] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return out


def single_video_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """A one-row manifest (absolute path) for preprocessing a single video (`avrep preprocess VIDEO`)."""
    return pd.DataFrame([ClipRow.single_video(path).to_dict()])


def finalize(rows: list[dict[str, Any]], root: str | os.PathLike) -> pd.DataFrame:
    """Rows -> manifest DataFrame with the standard columns first and checked types."""
    if not rows:
        raise AvrepError(f"{root}: no clips found")
    df = pd.DataFrame(rows)
    for c in COLUMNS:
        if c not in df:
            df[c] = None
    extra = [c for c in df.columns if c not in COLUMNS]
    df = df[COLUMNS + extra]
    df["word_id"] = df["word_id"].fillna(-1).astype("int64")
    df["start_frame"] = df["start_frame"].fillna(0).astype("int64")
    df["end_frame"] = df["end_frame"].fillna(-1).astype("int64")
    df["speaker"] = df["speaker"].astype(str)
    if df["clip_id"].duplicated().any():
        dup = df.loc[df["clip_id"].duplicated(), "clip_id"].iloc[0]
        raise AvrepError(f"{root}: duplicate clip_id {dup!r}")
    return df.reset_index(drop=True)


def write_manifest(
    df: pd.DataFrame,
    out: str | os.PathLike,
    root: str | os.PathLike,
    *,
    recipe: str,
    vocab: list[str] | None = None,
    **config: Any,
) -> Path:
    """Write the manifest parquet atomically, with root/vocab/provenance in its metadata."""
    out = Path(out)
    meta = {
        "root": str(Path(root).resolve()),
        "recipe": recipe,
        "vocab": vocab,
        "config": config,
        "avrep_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "n_clips": int(len(df)),
    }
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"avrep": json.dumps(meta).encode()})
    with atomic_path(out, ".parquet") as tmp:
        pq.write_table(table, tmp)
    return out


@dataclass
class RecipeManifest:
    """What every recipe returns: the manifest table, its vocabulary in word_id order (None: no fixed
    vocabulary), the recipe's name, the corpus root and the options it was made with (provenance)."""

    manifest: pd.DataFrame
    vocab: list[str] | None
    recipe: str
    root: Path
    config: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:
        """`df, vocab = prepare_x(...)` (the pair the synth and lrw recipes returned before)."""
        return iter((self.manifest, self.vocab))

    def write(self, out: str | os.PathLike) -> Path:
        """The manifest parquet at `out` (atomic), with root/vocab/provenance in its metadata."""
        return write_manifest(self.manifest, out, self.root, recipe=self.recipe, vocab=self.vocab, **self.config)


def manifest_meta(path: str | os.PathLike) -> dict[str, Any]:
    md = pq.read_schema(path).metadata or {}
    return json.loads(md[b"avrep"]) if b"avrep" in md else {}


def load_manifest(path: str | os.PathLike, allow_outside_root: bool = False) -> pd.DataFrame:
    """Read a recipe manifest; `path` and `landmarks_path` become absolute. Metadata in df.attrs.

    Column types are validated, and paths that leave the dataset root (the `root` in the metadata,
    else the manifest's folder) are refused unless `allow_outside_root` (untrusted manifests)."""
    p = Path(path)
    if not p.exists():
        raise AvrepError(f"{p}: manifest not found")
    try:
        df = pd.read_parquet(p)
        meta = manifest_meta(p)
    except Exception as e:
        raise AvrepError(f"{p}: not a parquet manifest ({' '.join(str(e).split())[:120]})") from None
    missing = [c for c in ("clip_id", "path") if c not in df]
    if missing:
        raise AvrepError(f"{p}: manifest lacks column(s) {', '.join(missing)}")
    for c in COLUMNS:
        if c not in df:
            df[c] = {"word_id": -1, "start_frame": 0, "end_frame": -1, "split": "test", "speaker": "unknown"}.get(c)
    if not isinstance(meta, dict) or not isinstance(meta.get("root") or "", str):
        raise AvrepError(f"{p}: invalid avrep metadata (expected a JSON object with a string 'root')")
    validate_recipe_manifest(df, p)
    root = Path(meta.get("root") or p.parent.resolve())

    def absolute(x, what):
        if x is None or (isinstance(x, float) and np.isnan(x)) or x == "":
            return None
        return check_inside(root, x, allow_outside_root, what=f"{what} of a clip", where=p)

    df["path"] = df["path"].map(lambda x: absolute(x, "path"))
    df["landmarks_path"] = df["landmarks_path"].map(lambda x: absolute(x, "landmarks_path"))
    df.attrs.update(meta)
    df.attrs["root"] = str(root)
    return df


def n_frames_25(path: str | os.PathLike) -> int:
    """A video's frame count at 25 fps from its container (no decoding); 0 when unreadable: recipes keep the
    rows and preprocessing records the reason."""
    try:
        return probe(path).n_frames_25
    except AvrepError:
        return 0


def find_videos(root: str | os.PathLike, exts: tuple[str, ...] = VIDEO_EXTS) -> list[Path]:
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in exts and p.is_file())


def read_speaker_table(path: str | os.PathLike) -> dict[str, str]:
    """A speaker table CSV (`clip,identity`; `speaker` is accepted for `identity`) -> {clip key: speaker}.

    The clip key is a file stem (`00139`) or a path relative to the corpus folder, with or without its
    extension (`video/00139`, `video/00139.mp4`); rows with an empty identity are ignored."""
    p = Path(path)
    if not p.is_file():
        raise AvrepError(f"{p}: speaker table not found")
    try:
        tab = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as e:
        raise AvrepError(f"{p}: not a CSV speaker table ({' '.join(str(e).split())[:120]})") from None
    cols = {c.strip().lower(): c for c in tab.columns}
    who = cols.get("identity") or cols.get("speaker")
    if "clip" not in cols or who is None:
        raise AvrepError(f"{p}: speaker table needs columns clip,identity (has {', '.join(map(str, tab.columns))})")
    out: dict[str, str] = {}
    for ln, (clip, ident) in enumerate(zip(tab[cols["clip"]], tab[who]), 2):
        key, ident = _clip_key(clip), str(ident).strip()
        if not key or not ident:
            continue
        if out.get(key, ident) != ident:
            raise AvrepError(f"{p}:{ln}: clip {clip!r} is listed as both {out[key]!r} and {ident!r}")
        out[key] = ident
    if not out:
        raise AvrepError(f"{p}: speaker table has no clip,identity rows")
    return out


def _clip_key(clip: Any) -> str:
    key = str(clip).strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    return key[: -len(Path(key).suffix)] if Path(key).suffix.lower() in VIDEO_EXTS else key


def assign_speakers(
    videos: list[Path],
    root: str | os.PathLike,
    table: dict[str, str],
    table_path: str | os.PathLike,
    *,
    drop_unlisted: bool = False,
) -> tuple[dict[Path, str], list[str]]:
    """Speaker of each video from a speaker table: ({video: speaker}, relative paths of unlisted videos).

    A video matches the row keyed by its relative path without extension, else by its file stem (a stem
    shared by several videos must be keyed by path). Unlisted videos raise AvrepError (how many and the
    first few) unless `drop_unlisted`, which leaves them out of the mapping."""
    root = Path(root)
    rels = [v.relative_to(root) for v in videos]
    stems: dict[str, int] = {}
    for r in rels:
        stems[r.stem] = stems.get(r.stem, 0) + 1
    found: dict[Path, str] = {}
    unlisted, ambiguous = [], []
    for v, r in zip(videos, rels):
        key = r.with_suffix("").as_posix()
        if key in table:
            found[v] = table[key]
        elif r.stem in table:
            if stems[r.stem] > 1:
                ambiguous.append(key)
            found[v] = table[r.stem]
        else:
            unlisted.append(r.as_posix())
    if ambiguous:
        raise AvrepError(
            f"{table_path}: {len(ambiguous)} clip stem(s) name several videos under {root} "
            f"(first: {', '.join(ambiguous[:3])}); key those rows by relative path"
        )
    if unlisted and not drop_unlisted:
        raise AvrepError(
            f"{table_path}: {len(unlisted)} of {len(videos)} videos under {root} have no row "
            f"(first: {', '.join(unlisted[:3])}); add them, or drop_unlisted to leave them out",
            param="drop_unlisted",
        )
    return found, unlisted


def speaker_videos(
    videos: list[Path], root: str | os.PathLike, speakers: str | os.PathLike | None, *, drop_unlisted: bool = False
) -> tuple[list[Path], dict[Path, str], list[str]]:
    """(the videos kept, {video: speaker}, relative paths of unlisted videos) from the speaker table at
    `speakers` (see `assign_speakers`); None: every video, no mapping."""
    if speakers is None:
        return videos, {}, []
    table = read_speaker_table(speakers)
    spk_of, unlisted = assign_speakers(videos, root, table, speakers, drop_unlisted=drop_unlisted)
    return [v for v in videos if v in spk_of], spk_of, unlisted

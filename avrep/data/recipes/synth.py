"""Synthetic corpus (`avrep synth`) -> recipe manifest, keeping the true landmarks for each clip."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from avrep.data.recipes import RecipeManifest, finalize
from avrep.errors import AvrepError
from avrep.security import load_json


def prepare_synth(root: str | os.PathLike) -> RecipeManifest:
    """Read `manifest.parquet` of a synthetic corpus -> manifest + vocab (word_id order, from vocab.json).

    speaker = the face identity (what the video encoder sees); the voice is kept as extra columns.
    """
    root = Path(root)
    src = root / "manifest.parquet"
    if not src.exists():
        raise AvrepError(f"{root}: no manifest.parquet (not a synthetic corpus made by `avrep synth`)")
    m = pd.read_parquet(src)
    need = ["clip_id", "path", "word", "word_id", "split"]
    missing = [c for c in need if c not in m]
    if missing:
        raise AvrepError(f"{src}: missing column(s) {', '.join(missing)}")
    rows = []
    for r in m.to_dict("records"):
        lm = root / "landmarks" / f"{r['clip_id']}.npy"
        rows.append(
            dict(
                clip_id=r["clip_id"],
                path=r["path"],
                word=r["word"],
                word_id=int(r["word_id"]),
                transcript=r.get("text"),
                speaker=f"id{int(r['identity_id']):04d}" if "identity_id" in r else "unknown",
                split=r["split"],
                start_frame=0,
                end_frame=-1,
                landmarks_path=str(lm.relative_to(root)) if lm.exists() else None,
                word_start_frame=r.get("word_start_frame"),
                word_end_frame=r.get("word_end_frame"),
                voice=r.get("voice"),
                voice_id=r.get("voice_id"),
                identity_id=r.get("identity_id"),
            )
        )
    vocab = None
    vf = root / "vocab.json"
    if vf.exists():
        v = load_json(vf)
        vocab = v.get("words") if isinstance(v, dict) else v
    return RecipeManifest(finalize(rows, root), vocab, "synth", root)

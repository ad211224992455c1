"""Opening training/eval data by name: a feature store (`FeatureDataset`) or the built-in `toy` set.

`--data toy` or `--data toy:n_words=8,n_speakers=4,clips_per_pair=8` selects `ToyAVDataset`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avrep.conventions import CLIP_FRAMES
from avrep.errors import AvrepError
from avrep.security import load_json


@dataclass
class DataMeta:
    """What the model and evaluation need to know about the data."""

    words: list[str]
    num_speakers: int
    ceiling: float | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _toy_kwargs(spec: str) -> dict[str, int]:
    kw: dict[str, int] = {}
    if ":" in spec:
        for part in spec.split(":", 1)[1].split(","):
            if not part:
                continue
            try:
                k, v = part.split("=")
                kw[k.strip()] = int(v)
            except ValueError:
                raise AvrepError(f"data {spec!r}: expected toy:key=int,key=int", param="data") from None
    return kw


def is_toy(spec: str) -> bool:
    """True for `toy` and `toy:key=int,...` data specs."""
    return spec == "toy" or spec.startswith("toy:")


def open_dataset(spec: str, split: str, frames: int = CLIP_FRAMES, train: bool = False, augment: str = "basic"):
    """A Dataset of item dicts (mouth, audio, face, landmarks, word_id, speaker_id, clip_id); a mixture spec
    (`store_a@0.6+store_b@0.4`) gives a `MixtureDataset` over several corpora. `augment`: the training
    augmentation level of feature stores (avrep.data.augment.AUGMENT_LEVELS)."""
    from avrep.data.mixture import is_mixture, open_mixture

    if is_mixture(spec):
        return open_mixture(spec, split, frames, train, open_dataset=open_dataset, data_meta=data_meta, augment=augment)
    if is_toy(spec):
        from avrep.data.toy import ToyAVDataset

        return ToyAVDataset(split, frames=frames, **_toy_kwargs(spec))
    store = Path(spec)
    if not (store / "clips.parquet").exists():
        raise AvrepError(f"{store}: not a feature store (no clips.parquet); run `avrep preprocess` first")
    try:
        from avrep.data.dataset import FeatureDataset
    except ImportError as e:
        raise AvrepError(f"cannot open feature stores: avrep.data.dataset is unavailable ({e})") from None
    # uint8: 4x less to move
    ds = FeatureDataset(store, split, frames=frames, train=train, mouth_uint8=True, augment=augment)
    if len(ds) == 0:
        raise AvrepError(f"{store}: split {split!r} has no clips")
    return ds


def data_meta(spec: str, split: str = "train") -> DataMeta:
    """Vocabulary (word_id order), number of speakers in `split`, homophene ceiling if known."""
    from avrep.data.mixture import is_mixture

    if is_mixture(spec):
        ds = open_dataset(spec, split)
        return DataMeta(list(ds.words), ds.num_speakers, None, spec, {"parts": ds.counts()})
    if is_toy(spec):
        ds = open_dataset(spec, split)
        return DataMeta(list(ds.words), ds.num_speakers, None, spec)
    import pandas as pd

    store = Path(spec)
    cp = store / "clips.parquet"
    if not cp.exists():
        raise AvrepError(f"{store}: not a feature store (no clips.parquet)")
    df = pd.read_parquet(cp, columns=None)
    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    words: list[str] = []
    ceiling = None
    vp = store / "vocab.json"
    if vp.exists():
        v = load_json(vp)
        if isinstance(v, dict):
            words = list(v.get("words", []))
            ceiling = v.get("ceiling")
            if isinstance(ceiling, dict):  # {"visual": ...} or similar
                ceiling = ceiling.get("ceiling", ceiling.get("visual"))
        else:
            words = list(v)
    if not words:
        known = df[df["word_id"] >= 0][["word_id", "word"]].drop_duplicates().sort_values("word_id")
        n = int(known["word_id"].max()) + 1 if len(known) else 0
        words = [f"<{i}>" for i in range(n)]
        for wid, w in zip(known["word_id"], known["word"]):
            words[int(wid)] = str(w)
    sub = df[df["split"] == split]
    if len(sub) == 0:
        raise AvrepError(f"{cp}: split {split!r} has no clips")
    return DataMeta(words, int(sub["speaker"].nunique()), float(ceiling) if ceiling is not None else None, str(store))

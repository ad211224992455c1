"""Several corpora as one training set: `--data lrc_ar_store@0.5+grid_store@0.3+lrs2_store@0.2`.

Each part is a dataset of the usual item dicts. The mixture gives them one vocabulary (the union of the
parts' words, the first part's order first, so a word said in two corpora is one class) and one speaker
numbering (`<part>/<speaker>`, never merged across corpora). Every epoch draws `epoch_size` items,
`weight` of them from each part (without replacement while a part has enough clips, with it beyond),
reproducibly from (seed, epoch). Items keep `word_id = -1` where their corpus has no word labels: the
loss then skips the word terms for them (each batch takes the losses its labels allow).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from avrep.errors import AvrepError


@dataclass
class MixturePart:
    name: str
    dataset: Any
    weight: float
    words: list[str]


def parse_mixture(spec: str) -> list[tuple[str, float]]:
    """'a@0.5+b@0.3+c' -> [(a, 0.5), (b, 0.3), (c, 1.0)] (weights need not sum to 1)."""
    out = []
    for part in spec.split("+"):
        part = part.strip()
        if not part:
            continue
        path, _, w = part.rpartition("@") if "@" in part else (part, "", "")
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise AvrepError(f"data {spec!r}: weight {w!r} of {path!r} is not a number", param="data") from None
        if weight < 0:
            raise AvrepError(f"data {spec!r}: weight of {path!r} must be >= 0", param="data")
        out.append((path, weight))
    if not out or sum(w for _, w in out) <= 0:
        raise AvrepError(f"data {spec!r}: no part with a positive weight", param="data")
    return out


def is_mixture(spec: str) -> bool:
    """A data spec naming several parts (or one with a weight)."""
    return "+" in spec or "@" in spec


def union_vocab(vocabs: list[list[str]]) -> list[str]:
    """Words of every part, first part's order first; placeholders like '<3>' are kept per part."""
    out: list[str] = []
    seen: set[str] = set()
    for v in vocabs:
        for w in v:
            if w not in seen:
                seen.add(w)
                out.append(w)
    return out


class MixtureDataset(Dataset):
    """Weighted mixture of datasets with a shared vocabulary and speaker numbering (see module doc)."""

    def __init__(self, parts: list[MixturePart], *, epoch_size: int | None = None, seed: int = 0) -> None:
        if not parts:
            raise AvrepError("a data mixture needs at least one part")
        self.parts = parts
        self.words = union_vocab([p.words for p in parts])
        wid = {w: i for i, w in enumerate(self.words)}
        self._word_map = [np.array([wid[w] for w in p.words] + [-1], np.int64) for p in parts]  # [-1] -> -1
        self.speakers: list[str] = []
        self._spk_offset = []
        for p in parts:
            self._spk_offset.append(len(self.speakers))
            spk = getattr(p.dataset, "speakers", None) or [str(i) for i in range(int(p.dataset.num_speakers))]
            self.speakers += [f"{p.name}/{s}" for s in spk]
        self.num_speakers = len(self.speakers)
        self.ceiling = None
        w = np.array([p.weight for p in parts], np.float64)
        self.weights = w / w.sum()
        self.epoch_size = int(epoch_size or sum(len(p.dataset) for p in parts))
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's items: (part, index) pairs, reproducible from (seed, epoch)."""
        rng = np.random.default_rng([self.seed, epoch, 7919])
        counts = np.floor(self.weights * self.epoch_size).astype(int)
        counts[np.argmax(self.weights)] += self.epoch_size - counts.sum()
        table = []
        for k, (p, n) in enumerate(zip(self.parts, counts)):
            m = len(p.dataset)
            if n <= 0 or m == 0:
                continue
            reps = [rng.permutation(m) for _ in range(int(np.ceil(n / m)))]
            idx = np.concatenate(reps)[:n]
            table.append(np.stack([np.full(n, k), idx], 1))
            if hasattr(p.dataset, "set_epoch"):
                p.dataset.set_epoch(epoch)
        self._table = np.concatenate(table) if table else np.zeros((0, 2), np.int64)

    def __len__(self) -> int:
        return len(self._table)

    def counts(self) -> dict[str, int]:
        """Items per part in the current epoch."""
        return {p.name: int((self._table[:, 0] == k).sum()) for k, p in enumerate(self.parts)}

    def __getitem__(self, j: int) -> dict[str, Any]:
        k, i = (int(x) for x in self._table[j])
        item = dict(self.parts[k].dataset[i])
        w = int(item.get("word_id", -1))
        item["word_id"] = int(self._word_map[k][w]) if w >= 0 else -1
        item["speaker_id"] = int(item["speaker_id"]) + self._spk_offset[k]
        item["corpus"] = k
        return item


def open_mixture(
    spec: str,
    split: str,
    frames: int,
    train: bool,
    *,
    open_dataset: Callable,
    data_meta: Callable,
    seed: int = 0,
    augment: str = "basic",
) -> MixtureDataset:
    """Open every part of a mixture spec for `split` with the single-corpus openers of avrep.data.sources
    (passed in, so this module does not import the one that imports it)."""
    parts = []
    for path, weight in parse_mixture(spec):
        try:
            ds = open_dataset(path, split, frames, train=train, augment=augment)
        except AvrepError:
            if train:
                raise
            continue  # a part without this eval split (e.g. no val clips) is left out of it
        words = list(getattr(ds, "words", None) or data_meta(path, split).words)
        # evaluation takes every clip of every part once (weights by size); training mixes by the weights
        parts.append(MixturePart(Path(path).name or path, ds, weight if train else float(len(ds)), words))
    if not parts:
        raise AvrepError(f"data {spec!r}: no part has clips in split {split!r}", param="data")
    return MixtureDataset(parts, seed=seed)

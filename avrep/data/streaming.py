"""Sequential reading of a compact store from a local folder or a URL (fsspec: http(s)://, s3://, gs://).

`StreamingFeatureDataset` reads the tar shards front to back (no seeks, so any fsspec URL works), keeps
a shuffle buffer of undecoded clips, and yields FeatureDataset's items. Shards are split over DataLoader
workers (and DDP ranks with `rank`/`world_size`); the shard order and buffer draws follow (seed, epoch).
Resumable: `state_dict()` gives the position (items yielded this epoch); `load_state_dict` skips that
many items on the next pass without decoding them (exact with 0 or 1 loader workers; with W workers
each skips its share, so resume to a batch boundary).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from avrep.conventions import CLIP_FRAMES
from avrep.conventions import SAMPLES_PER_FRAME as SPF
from avrep.data import compact


class _Arrays:
    """A sample's members decoded on first use (clips skipped on resume never decode)."""

    def __init__(self, members: dict[str, bytes]):
        self.members, self.cache = members, {}

    def read(self, offset: int, length: int, keys: tuple[str, ...]) -> dict[str, np.ndarray]:

        out = {}
        for k in keys:
            if k not in self.cache:
                self.cache[k] = compact.decode_member(k, self.members[compact.SUFFIX[k]])
            a = self.cache[k]
            part = a[offset * SPF : (offset + length) * SPF] if k == "audio" else a[offset : offset + length]
            out[k] = np.array(part)  # a copy: other clips of this sample read the same cache
        return out


class StreamingFeatureDataset(IterableDataset):
    """Items as FeatureDataset's, streamed from `root` (folder or URL of a compact store)."""

    def __init__(
        self,
        root: str,
        split: str | None = "train",
        frames: int | None = CLIP_FRAMES,
        train: bool = True,
        *,
        shuffle_buffer: int = 256,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        **item_kw: Any,
    ):
        from avrep.data.dataset import FeatureDataset

        self.root = str(root)
        clips = compact.read_table(self.root, "clips.parquet")
        plan = compact.read_table(self.root, "samples.parquet")
        self.shards = sorted({int(s) for s in plan["shard"]}) if len(plan) else []
        # FeatureDataset does the per-item work (windows, augmentation, ids) from arrays we hand it
        self._ds = FeatureDataset.from_table(clips, split, frames=frames, train=train, seed=seed, **item_kw)
        self._row = {cid: i for i, cid in enumerate(self._ds.clips["clip_id"].astype(str))}
        self.shuffle_buffer, self.seed, self.train = shuffle_buffer, seed, train
        self.rank, self.world_size = rank, world_size
        self.epoch, self._skip, self.position = 0, 0, 0

    def __len__(self) -> int:
        return len(self._ds)

    @property
    def speakers(self) -> list[str]:
        return self._ds.speakers

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._ds.set_epoch(epoch)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.set_epoch(int(state["epoch"]))
        self._skip = int(state["position"])

    def _my_shards(self) -> tuple[list[int], int, int]:
        order = list(self.shards)
        if self.train:
            np.random.default_rng([self.seed, self.epoch]).shuffle(order)
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        k, n = self.rank * nw + wid, self.world_size * nw
        return order[k::n], k, n

    def _clips(self, shards: list[int]) -> Iterator[tuple[int, _Arrays]]:
        for s in shards:
            with compact.open_url(compact.join(self.root, compact.tar_name(s))) as fh:
                for _key, members in compact.iter_tar_samples(fh):
                    meta = json.loads(members["json"])
                    arrays = _Arrays(members)
                    for cid in meta["clips"]:
                        i = self._row.get(cid)
                        if i is not None:  # a clip of another split
                            yield i, arrays

    def __iter__(self) -> Iterator[dict[str, Any]]:
        shards, k, n = self._my_shards()
        rng = np.random.default_rng([self.seed, self.epoch, k])
        skip = self._skip // n + (1 if k < self._skip % n else 0)
        self._skip = 0
        buf: list[tuple[int, _Arrays]] = []
        src = self._clips(shards)

        def emit(item: tuple[int, _Arrays]) -> dict[str, Any] | None:
            nonlocal skip
            self.position += 1
            if skip:
                skip -= 1
                return None
            i, arrays = item
            return self._ds.item(i, arrays.read)

        self.position = 0
        for item in src:
            if not self.train or self.shuffle_buffer <= 1:
                out = emit(item)
            else:
                buf.append(item)
                if len(buf) < self.shuffle_buffer:
                    continue
                j = int(rng.integers(len(buf)))
                buf[j], buf[-1] = buf[-1], buf[j]
                out = emit(buf.pop())
            if out is not None:
                yield out
        if buf:
            rng.shuffle(buf)
        while buf:
            out = emit(buf.pop())
            if out is not None:
                yield out

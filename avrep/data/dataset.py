"""PyTorch Dataset over a feature store, with cheap augmentation (random 88x88 crop, flip, time mask).

Reads are memmap slices (a compact store decodes the clip's sample instead); frames stay uint8 until the final float conversion of the 88x88 crop, so a
DataLoader with 1-2 workers keeps up with a small model on 2 CPU cores.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avrep.conventions import CLIP_FRAMES
from avrep.conventions import MOUTH_CROP as CROP
from avrep.conventions import SAMPLES_PER_FRAME as SPF
from avrep.data import augment as aug
from avrep.data.augment import AUGMENT_LEVELS
from avrep.data.ibug import mirror_landmarks
from avrep.data.store import FeatureStore
from avrep.errors import AvrepError


class FeatureDataset(Dataset):
    """Items: mouth float32 [T, 88, 88] in [0, 1], audio float32 [T*640], face uint8 [3, 128, 128]
    (one random frame in training, the middle one in eval), landmarks float32 [T, 68, 2] (source pixels,
    mirrored with the mouth), word_id, speaker_id (index over the split's sorted speakers), clip_id; plus
    word_start/word_end (frames in the window, -1 if unknown).

    augment: "basic" (crop, flip, time mask) or "strong" (+ avrep.data.augment: appearance, landmark
    jitter, voice; training only).

    frames: window length (clips longer are cut at random in training / centred in eval; shorter are
    padded by repeating the last frame); None keeps each clip's own length (batch with batch_size 1
    or a custom collate).
    """

    def __init__(
        self,
        store_dir: str | os.PathLike,
        split: str | None = "train",
        frames: int | None = CLIP_FRAMES,
        train: bool = True,
        *,
        flip: bool = True,
        time_mask: int = 5,
        crop: int = CROP,
        seed: int = 0,
        mouth_uint8: bool = False,
        augment: str = "basic",
        table: Any = None,
    ):
        """table: a store's clips table whose frames the caller hands to `item` (streaming): no store is
        opened and `store_dir` only names it in messages."""
        self.store = FeatureStore(store_dir) if table is None else None
        clips = self.store.clips if self.store is not None else table
        self._setup(clips, store_dir, split, frames, train, flip, time_mask, crop, seed, mouth_uint8)
        self._set_augment(augment)
        compact = self.store is not None and self.store.compact
        self._sample = self.clips["sample"].astype(str).to_numpy() if compact else None

    @classmethod
    def from_table(cls, clips: Any, *args: Any, **kw: Any) -> FeatureDataset:
        """A dataset over a store's clips table whose frames the caller hands to `item` (streaming); the other
        arguments are FeatureDataset's."""
        return cls("store", *args, table=clips, **kw)

    def _set_augment(self, augment: str) -> None:
        if augment not in AUGMENT_LEVELS:
            raise AvrepError(f"augment {augment!r}: use one of {', '.join(AUGMENT_LEVELS)}")
        self.augment = augment

    def _setup(self, clips, store_dir, split, frames, train, flip, time_mask, crop, seed, mouth_uint8) -> None:
        if split is not None:
            if "split" not in clips or split not in set(clips["split"]):
                have = sorted(set(clips["split"])) if "split" in clips else []
                raise AvrepError(f"{store_dir}: no clips in split {split!r} (has {have})")
            clips = clips[clips["split"] == split]
        self.clips = clips.reset_index(drop=True)
        self.frames, self.train, self.flip, self.time_mask, self.crop = frames, train, flip, time_mask, crop
        self.mouth_uint8 = mouth_uint8
        self.speakers = sorted(self.clips["speaker"].astype(str).unique())
        spk = {s: i for i, s in enumerate(self.speakers)}
        self._speaker_id = self.clips["speaker"].astype(str).map(spk).to_numpy()
        self._word_id = (
            self.clips["word_id"].fillna(-1).astype(int).to_numpy()
            if "word_id" in self.clips
            else np.full(len(self.clips), -1)
        )
        ws = self.clips["word_start_frame"] if "word_start_frame" in self.clips else None
        we = self.clips["word_end_frame"] if "word_end_frame" in self.clips else None
        self._ws = ws.fillna(-1).astype(int).to_numpy() if ws is not None else np.full(len(self.clips), -1)
        self._we = we.fillna(-1).astype(int).to_numpy() if we is not None else np.full(len(self.clips), -1)
        self._shard = self.clips["shard"].to_numpy()
        self._offset = self.clips["offset"].to_numpy()
        self._n = self.clips["n_frames"].to_numpy()
        self.seed = seed
        self._epoch = 0

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        """Different (but reproducible) augmentation each epoch."""
        self._epoch = epoch

    def _rng(self, i: int) -> np.random.Generator:
        if self.train:
            info = torch.utils.data.get_worker_info()
            base = torch.initial_seed() if info is not None else None
            return np.random.default_rng([self.seed, self._epoch, i] if base is None else [base % 2**32, i])
        return np.random.default_rng([self.seed, i])

    def __getitem__(self, i: int) -> dict[str, Any]:
        if self._sample is None:
            return self.item(i)
        key = self._sample[i]
        return self.item(i, lambda off, n, keys: self.store.read(key, off, n, keys))

    def item(self, i: int, read=None) -> dict[str, Any]:
        """Item i; its frames from the memmap store, or from `read(offset, length, keys) -> arrays`
        (offset into the clip's sample, as in clips.parquet) for compact and streamed stores."""
        rng = self._rng(i)
        n = int(self._n[i])
        T = self.frames or n
        if n > T:
            start = int(rng.integers(0, n - T + 1)) if self.train else (n - T) // 2
        else:
            start = 0
        take = min(T, n)
        a = int(self._offset[i]) + start
        if read is not None:  # compact store: decode the sample's frames (same draws as below)
            d = read(a, take, ("mouth", "audio", "landmarks"))
            mouth, audio = d["mouth"], np.asarray(d["audio"], np.float32)
            lms = np.asarray(d["landmarks"], np.float32)
            j = int(rng.integers(0, take)) if self.train else take // 2
            face = np.asarray(read(a + j, 1, ("face",))["face"][0])  # decodes the face video only up to frame j
        else:
            sh = self.store.shard(int(self._shard[i]))
            mouth = sh["mouth"][a : a + take]
            audio = np.array(sh["audio"][a * SPF : (a + take) * SPF], np.float32)
            lms = np.array(sh["landmarks"][a : a + take], np.float32)
            fi = a + (int(rng.integers(0, take)) if self.train else take // 2)
            face = np.asarray(sh["face"][fi])
        if take < T:  # pad by repeating the last frame; silence for audio
            mouth = np.concatenate([mouth, np.repeat(mouth[-1:], T - take, 0)])
            audio = np.concatenate([audio, np.zeros((T - take) * SPF, np.float32)])
            lms = np.concatenate([lms, np.repeat(lms[-1:], T - take, 0)])
        strong = self.train and self.augment == "strong"
        if strong:
            mouth = aug.appearance(np.asarray(mouth), rng)
            lms = aug.jitter_landmarks(lms, rng)
            audio = aug.voice(audio, rng)
        H = mouth.shape[1]
        c = self.crop
        if self.train:
            y, x = int(rng.integers(0, H - c + 1)), int(rng.integers(0, mouth.shape[2] - c + 1))
        else:
            y, x = (H - c) // 2, (mouth.shape[2] - c) // 2
        m = np.array(mouth[:, y : y + c, x : x + c])  # copy of the crop only (uint8)
        if self.train and self.flip and rng.random() < 0.5:
            m = m[:, :, ::-1].copy()
            lms = mirror_landmarks(lms, 0.0)  # the same mirror for the geometry stream
        if self.train and self.time_mask > 0 and T > 1:
            w = int(rng.integers(0, self.time_mask + 1))
            if w:
                s = int(rng.integers(0, T - w + 1))
                m[s : s + w] = int(m.mean())
        # numpy for the float conversion: single-threaded and cheap, no torch thread-pool wake-ups
        mt = torch.from_numpy(m) if self.mouth_uint8 else torch.from_numpy(m.astype(np.float32) * np.float32(1 / 255))
        ws, we = int(self._ws[i]), int(self._we[i])
        if ws >= 0 and start:
            ws, we = max(0, ws - start), max(0, we - start)
        return {
            "mouth": mt,
            "audio": torch.from_numpy(audio),
            "face": torch.from_numpy(np.ascontiguousarray(face.transpose(2, 0, 1))),
            "landmarks": torch.from_numpy(np.ascontiguousarray(lms, dtype=np.float32)),
            "word_id": int(self._word_id[i]),
            "speaker_id": int(self._speaker_id[i]),
            "clip_id": str(self.clips["clip_id"].iat[i]),
            "word_start": ws,
            "word_end": we,
        }


def _worker_init(_: int) -> None:

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def make_loader(
    store_dir: str | os.PathLike,
    split: str | None = "train",
    *,
    batch_size: int = 32,
    train: bool | None = None,
    frames: int | None = CLIP_FRAMES,
    workers: int = 1,
    seed: int = 0,
    drop_last: bool | None = None,
    **dataset_kw: Any,
) -> DataLoader:
    """DataLoader over FeatureDataset: shuffled + augmented for training, ordered for eval."""
    train = (split == "train") if train is None else train
    ds = FeatureDataset(store_dir, split, frames=frames, train=train, seed=seed, **dataset_kw)
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=train,
        drop_last=train if drop_last is None else drop_last,
        num_workers=workers,
        generator=g,
        worker_init_fn=_worker_init if workers else None,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers else None,
    )

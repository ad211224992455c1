"""A small learnable audio-visual word dataset generated on the fly (tests, smoke runs, benchmarks).

Same item dict as `avrep.data.dataset.FeatureDataset`. Each word has its own mouth-opening /
lip-rounding trajectory (video) and matching syllable tones with the same envelope (audio), so
frame-level sync is learnable; each speaker has a face colour (identity) plus nuisance in the
mouth ROI (brightness, stripe texture) and in the voice (a hum), which the word encoders must drop.
Each clip has its own time shift and amplitude, so clip-level retrieval is learnable too.
Splits: train/val share speakers (different clips); test uses unseen speakers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from avrep.conventions import CLIP_FRAMES, FACE_SIZE, MOUTH_CROP, SAMPLE_RATE
from avrep.conventions import SAMPLES_PER_FRAME as SPF
from avrep.errors import AvrepError


class ToyAVDataset(Dataset):
    def __init__(
        self,
        split: str = "train",
        n_words: int = 6,
        n_speakers: int = 4,
        n_test_speakers: int = 2,
        clips_per_pair: int = 8,
        frames: int = CLIP_FRAMES,
        size: int = MOUTH_CROP,
        seed: int = 0,
    ) -> None:
        if split not in ("train", "val", "test"):
            raise AvrepError(f"toy dataset: unknown split {split!r}")
        self.split, self.frames, self.size, self.seed = split, frames, size, seed
        self.words = [f"word{i}" for i in range(n_words)]
        g = np.random.default_rng(seed)  # the "world": words and speakers, shared by all splits
        self.word_syl = g.integers(2, 4, n_words)
        self.word_amp = g.uniform(0.3, 1.0, (n_words, 3))
        self.word_round = g.uniform(0.4, 1.0, (n_words, 3))
        self.word_freq = g.uniform(300, 2400, (n_words, 3))
        total_spk = n_speakers + n_test_speakers
        self.spk_color = g.uniform(30, 225, (total_spk, 3))
        self.spk_bright = g.uniform(-40, 40, total_spk)
        self.spk_stripe = g.uniform(0.1, 0.6, total_spk)
        self.spk_hum = g.uniform(80, 250, total_spk)
        spk = list(range(n_speakers)) if split != "test" else list(range(n_speakers, total_spk))
        self.speakers = [f"spk{s}" for s in spk]
        n_clips = clips_per_pair if split != "val" else max(2, clips_per_pair // 4)
        self.items = [(w, si, s, k) for w in range(n_words) for si, s in enumerate(spk) for k in range(n_clips)]
        self.ceiling = None

    @property
    def num_words(self) -> int:
        return len(self.words)

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)

    def __len__(self) -> int:
        return len(self.items)

    def _envelopes(self, w: int, shift: float, amp: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.arange(self.frames, dtype=np.float64)
        n = self.word_syl[w]
        centres = self.frames / 2 + shift + (np.arange(n) - (n - 1) / 2) * 4.0
        bumps = np.exp(-0.5 * ((t[None] - centres[:, None]) / 1.3) ** 2)  # [n, T]
        opening = amp * (self.word_amp[w, :n, None] * bumps).sum(0)
        rounding = (self.word_round[w, :n, None] * bumps).sum(0)
        return opening, rounding, bumps

    def __getitem__(self, i: int) -> dict:
        w, si, s, k = self.items[i]
        split_code = {"train": 0, "val": 1, "test": 2}[self.split]
        r = np.random.default_rng([self.seed, split_code, w, s, k])
        shift, amp = r.uniform(-3, 3), r.uniform(0.8, 1.2)
        opening, rounding, bumps = self._envelopes(w, shift, amp)
        # video: dark mouth ellipse on a speaker-tinted, striped background
        sz = self.size
        yy, xx = np.mgrid[0:sz, 0:sz].astype(np.float32) - sz / 2
        hh = 2 + 22 * opening[:, None, None]
        ww = 26 - 10 * rounding[:, None, None]
        inside = (xx[None] / ww) ** 2 + (yy[None] / hh) ** 2 <= 1.0
        bg = 150 + self.spk_bright[s] + 25 * np.sin(yy * self.spk_stripe[s])[None]
        mouth = np.where(inside, 40.0, bg) + r.normal(0, 8, (self.frames, sz, sz))
        # audio: syllable tones with the mouth's envelope (in step per frame) + speaker hum + noise
        n = self.frames * SPF
        ts = np.arange(n) / SAMPLE_RATE
        fr = np.repeat(np.arange(self.frames), SPF) + (np.arange(n) % SPF) / SPF  # frame time of each sample
        audio = np.zeros(n)
        for j in range(self.word_syl[w]):
            env = np.interp(fr, np.arange(self.frames), amp * self.word_amp[w, j] * bumps[j])
            audio += 0.3 * env * np.sin(2 * np.pi * self.word_freq[w, j] * ts)
        audio += 0.05 * np.sin(2 * np.pi * self.spk_hum[s] * ts) + r.normal(0, 0.01, n)
        face = self.spk_color[s][:, None, None] + r.normal(0, 12, (3, FACE_SIZE, FACE_SIZE))
        return {
            "mouth": torch.from_numpy(np.clip(mouth, 0, 255).astype(np.uint8)),
            "audio": torch.from_numpy(audio.astype(np.float32)),
            "face": torch.from_numpy(np.clip(face, 0, 255).astype(np.uint8)),
            "word_id": w,
            "speaker_id": si,
            "clip_id": f"toy_{self.split}_{w}_{s}_{k}",
        }

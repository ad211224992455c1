"""Data for the talking-face generator: `GenDataset` (a feature store or in-memory arrays), the mouth
centre in face-crop pixels, and synthetic clips rendered in memory (`synthetic_clip_arrays`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from avrep.conventions import FACE_SIZE
from avrep.conventions import SAMPLES_PER_FRAME as SPF
from avrep.data.align import FACE_BOX, MOUTH, apply, reference_transforms
from avrep.errors import AvrepError
from avrep.synth.speech import synthesize
from avrep.synth.visemes import articulation_track


def mouth_centres(landmarks: np.ndarray, stable_window: int = 12) -> np.ndarray:
    """Mouth centre per frame in 128x128 face-crop pixels, from 68 landmarks (source px) [T, 68, 2]."""
    Ms = reference_transforms(np.asarray(landmarks, np.float64), stable_window).astype(np.float64)
    c = np.stack([apply(M, lm[MOUTH]).mean(0) for M, lm in zip(Ms, np.asarray(landmarks, np.float64))])
    s = FACE_SIZE / (FACE_BOX[2] - FACE_BOX[0])
    return ((c - np.array(FACE_BOX[:2])) * s).astype(np.float32)


class GenDataset(Dataset):
    """Clips for the generator: face uint8 [T,3,128,128], audio [T*640], mouth_centre [T,2], ref uint8
    [3,128,128] (a random frame of the clip in training, frame 0 in eval), word_id, speaker_id, clip_id.

    Source: a feature store (`store_dir`, `split`) or in-memory arrays (`arrays`: face [N,F,128,128,3],
    audio [N,F*640], centres [N,F,2], word_id [N], speaker_id [N]). `frames`: window length (random
    window in training, the first frames in eval); None = whole clips (all of one length).
    """

    def __init__(
        self,
        store_dir: str | Path | None = None,
        split: str | None = "train",
        frames: int | None = None,
        train: bool = True,
        seed: int = 0,
        arrays: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.frames, self.train, self.seed, self._epoch = frames, train, seed, 0
        self.arrays = arrays
        if arrays is not None:
            self.n = len(arrays["face"])
            self.num_speakers = len(set(int(x) for x in arrays["speaker_id"]))
            self.clip_ids = list(arrays.get("clip_id", [f"clip{i}" for i in range(self.n)]))
            return
        from avrep.data.store import FeatureStore

        if store_dir is None:
            raise AvrepError("GenDataset needs a feature store or arrays")
        self.store = FeatureStore(store_dir)
        clips = self.store.clips
        if "status" in clips:
            clips = clips[clips["status"] == "ok"]
        if split is not None:
            clips = clips[clips["split"] == split]
        if len(clips) == 0:
            raise AvrepError(f"{store_dir}: no clips in split {split!r}")
        self.clips = clips.reset_index(drop=True)
        spk = sorted(self.clips["speaker"].astype(str).unique()) if "speaker" in self.clips else ["?"]
        self._spk = {s: i for i, s in enumerate(spk)}
        self.speakers = spk  # what a MixtureDataset numbers per corpus
        self.num_speakers = len(spk)
        self.n = len(self.clips)
        self.clip_ids = self.clips["clip_id"].astype(str).tolist()

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch

    def _raw(self, i: int) -> dict[str, Any]:
        if self.arrays is not None:
            a = self.arrays
            return {
                "face": a["face"][i],
                "audio": a["audio"][i],
                "centre": a["centre"][i],
                "word_id": int(a["word_id"][i]),
                "speaker_id": int(a["speaker_id"][i]),
            }
        r = self.clips.iloc[i]
        d = self.store.clip(str(r["clip_id"]), keys=("face", "audio", "landmarks"))
        return {
            "face": d["face"],
            "audio": d["audio"].astype(np.float32),
            "centre": mouth_centres(d["landmarks"]),
            "word_id": int(r["word_id"]) if "word_id" in r and r["word_id"] == r["word_id"] else -1,
            "speaker_id": self._spk.get(str(r.get("speaker", "?")), 0),
        }

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self._epoch, i] if self.train else [self.seed, i])
        d = self._raw(i)
        n = len(d["face"])
        T = self.frames or n
        s = int(rng.integers(0, n - T + 1)) if (self.train and n > T) else 0
        take = min(T, n)
        face = np.asarray(d["face"][s : s + take])
        audio = np.zeros(T * SPF, np.float32)
        seg = np.asarray(d["audio"][s * SPF : (s + take) * SPF], np.float32)
        audio[: len(seg)] = seg
        centre = np.asarray(d["centre"][s : s + take], np.float32)
        if take < T:
            face = np.concatenate([face, np.repeat(face[-1:], T - take, 0)])
            centre = np.concatenate([centre, np.repeat(centre[-1:], T - take, 0)])
        ri = int(rng.integers(0, n)) if self.train else 0
        ref = np.asarray(d["face"][ri])
        return {
            "face": torch.from_numpy(np.ascontiguousarray(face.transpose(0, 3, 1, 2))),
            "ref": torch.from_numpy(np.ascontiguousarray(ref.transpose(2, 0, 1))),
            "audio": torch.from_numpy(audio),
            "centre": torch.from_numpy(centre),
            "word_id": d["word_id"],
            "speaker_id": d["speaker_id"],
            "clip_id": self.clip_ids[i],
        }


def synthetic_clip_arrays(
    split: str = "train",
    n_clips: int = 16,
    *,
    preset: str = "tiny",
    seed: int = 0,
    n_words: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Render synthetic clips in memory (corpus plan -> speech -> face -> true-landmark alignment).

    Same identities/voices/splits as `avrep synth` with the same preset and seed, without writing or
    decoding mp4 files. Returns GenDataset arrays plus the true landmarks and full frames.
    """
    from avrep.data.align import crop_clip
    from avrep.synth.corpus import CLIP_SAMPLES, FPS, N_FRAMES, SAMPLE_RATE, SynthConfig, plan
    from avrep.synth.face import Identity, render_sequence

    cfg = SynthConfig(preset=preset, seed=seed, n_words=n_words)
    specs, info = plan(cfg)
    rng = np.random.default_rng([seed, 4242])
    pool = [s for s in specs if s["split"] == split]
    pick = [pool[i] for i in sorted(rng.choice(len(pool), min(n_clips, len(pool)), replace=False))]
    out: dict[str, list] = {
        k: []
        for k in (
            "face",
            "audio",
            "centre",
            "word_id",
            "speaker_id",
            "clip_id",
            "mouth",
            "landmarks",
            "frames",
            "identity_id",
            "word",
        )
    }
    it = pick
    if progress:
        it = tqdm(pick, desc=f"render {split}", unit="clip")
    for sp_ in it:
        voice = info["voices"][sp_["voice_id"]]
        text = sp_["carrier"].format(w=sp_["word"])
        sp = synthesize(text, voice=voice, rate=sp_["rate"], pitch=sp_["pitch"], sample_rate=SAMPLE_RATE)
        hits = [w for w in sp.words if w[0].lower() == sp_["word"]]
        if not hits:
            continue
        _, w0, w1 = hits[0]
        start = (w0 + w1) // 2 - CLIP_SAMPLES // 2
        audio = np.zeros(CLIP_SAMPLES, np.float32)
        a0, a1 = max(0, start), min(len(sp.audio), start + CLIP_SAMPLES)
        audio[a0 - start : a1 - start] = sp.audio[a0:a1]
        track = articulation_track(sp.phonemes, N_FRAMES, fps=FPS, sample_rate=SAMPLE_RATE, offset_samples=start)
        frames, lms = render_sequence(Identity.sample(seed * 100003 + sp_["identity_id"]), track, sp_["clip_seed"])
        crops = crop_clip(frames, lms)
        out["face"].append(crops.face)
        out["mouth"].append(crops.mouth)
        out["audio"].append(audio)
        out["centre"].append(mouth_centres(lms))
        out["landmarks"].append(lms)
        out["frames"].append(frames)
        out["word_id"].append(sp_["word_id"])
        out["word"].append(sp_["word"])
        out["speaker_id"].append(sp_["identity_id"])
        out["identity_id"].append(sp_["identity_id"])
        out["clip_id"].append(sp_["clip_id"])
    res = {k: (np.stack(v) if k not in ("clip_id", "word") else v) for k, v in out.items()}
    res["words"] = info["words"]
    return res


__all__ = ["GenDataset", "mouth_centres", "synthetic_clip_arrays"]

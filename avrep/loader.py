"""One way to load a model, open_clip-style: `avrep.load(checkpoint, kind, device) -> (model, transform)`.

The checkpoint resolves argument -> environment -> the registry of shipped models
(`avrep.models.pretrained`: $AVREP_CHECKPOINT and `DEFAULT_DAVS` for kind="davs", $AVREP_GENERATOR and
`DEFAULT_GENERATOR` for kind="generator"). The transform is the raw-clip transform: a video file (or
arrays) -> what the model eats (centre-cropped mouth ROIs, lip landmarks for models that read them, 16 kHz
audio), through the training preprocessing (`avrep.preprocess.process_file`).

`open_model` returns everything a caller may need besides (run dir, config, vocabulary, a generator's
frozen DAVS); `load` is its two-value face. Every command, app and the Embedder load through it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avrep.conventions import MOUTH_CROP, SAMPLE_RATE, SAMPLES_PER_FRAME
from avrep.errors import AvrepError
from avrep.io import media
from avrep.models.loading import load_generator, load_run
from avrep.models.pretrained import resolve_checkpoint, resolve_generator

KINDS = ("davs", "generator")
MAX_CLIP_SECONDS = 120.0  # one embedding is one clip; longer files are refused with what to do instead


def center_crop(mouth: np.ndarray, size: int = MOUTH_CROP) -> np.ndarray:
    """[T, H, W] -> centre [T, size, size] (eval-time crop of the 96x96 ROI)."""
    h, w = mouth.shape[-2:]
    if h < size or w < size:
        raise AvrepError(f"mouth ROI {h}x{w} is smaller than the {size}x{size} crop")
    y, x = (h - size) // 2, (w - size) // 2
    return mouth[..., y : y + size, x : x + size]


def check_clip_length(path: str | os.PathLike, max_seconds: float = MAX_CLIP_SECONDS) -> None:
    """Refuse a file too long to be one clip: an embedding summarises one clip (a word is ~1 s, a sentence a
    few), so a long recording is cut into the clips wanted first (or read by `avrep lipread` / `avrep sync`,
    which take any length)."""
    d = media.probe(path).duration
    if d > max_seconds:
        raise AvrepError(
            f"{path}: {d:.0f} s is too long to embed as one clip (at most {max_seconds:g} s): cut the part you "
            "want first (e.g. ffmpeg -ss START -t SECONDS -i IN -c copy OUT.mp4); `avrep lipread` and "
            "`avrep sync` read files of any length"
        )


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


@dataclass(frozen=True)
class ClipTransform:
    """Raw clip -> model input. `needs_landmarks`: the model reads lip geometry (landmarks required with arrays)."""

    needs_landmarks: bool = False
    max_seconds: float = MAX_CLIP_SECONDS

    def mouth(self, x: Any, landmarks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """A video file (preprocessed here; lips only, a silent video is fine) or a mouth array [T, H, W]
        (+ its landmarks [T, 68, 2]) -> (mouth uint8 [T, 88, 88], landmarks [T, 68, 2] or None)."""
        if _is_path(x):
            from avrep.preprocess import PreprocessConfig, process_file

            check_clip_length(x, self.max_seconds)
            pv = process_file(x, PreprocessConfig(require_audio=False))
            x, landmarks = pv.mouth, pv.landmarks
        x = np.asarray(x)
        if x.ndim != 3:
            raise AvrepError(f"mouth array must be [T, H, W], got shape {x.shape}")
        if landmarks is not None and len(landmarks) != len(x):
            raise AvrepError(f"landmarks must be [{len(x)}, 68, 2] like the mouth, got {np.shape(landmarks)}")
        if landmarks is None and self.needs_landmarks:
            raise AvrepError("this model reads lip landmarks: pass landmarks [T, 68, 2] with the mouth array")
        return (center_crop(x) if x.shape[-1] != MOUTH_CROP else x), landmarks

    @staticmethod
    def audio(x: Any) -> np.ndarray:
        """An audio/video file (read at 16 kHz) or mono samples -> float32 [n * 640] (whole frames)."""
        if _is_path(x):
            from avrep.io.media import read_audio

            x = read_audio(x, SAMPLE_RATE)
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 1 or len(x) < SAMPLES_PER_FRAME:
            raise AvrepError(f"audio must be mono 16 kHz samples (>= {SAMPLES_PER_FRAME}), got shape {x.shape}")
        return x[: len(x) // SAMPLES_PER_FRAME * SAMPLES_PER_FRAME]

    def __call__(self, x: Any, landmarks: np.ndarray | None = None) -> dict[str, np.ndarray | None]:
        """A clip -> {"mouth", "landmarks", "audio"} (audio None for arrays and silent files)."""
        mouth, lm = self.mouth(x, landmarks)
        audio = None
        if _is_path(x):
            if media.probe(x).has_audio:
                audio = media.fit_audio(self.audio(x), len(mouth))
        return {"mouth": mouth, "landmarks": lm, "audio": audio}


@dataclass
class Loaded:
    """A loaded model and what came with it. kind="generator": `model` is the generator, `davs` its frozen
    speech encoder (or None), `words` empty."""

    model: Any
    transform: ClipTransform
    run_dir: Path
    config: dict[str, Any]
    words: list[str]
    kind: str = "davs"
    davs: Any = None


def open_model(
    checkpoint: str | os.PathLike | None = None, kind: str = "davs", device: Any = "cpu", *, quiet: bool = False
) -> Loaded:
    """Resolve `checkpoint` (argument -> environment -> shipped registry) and load it on `device` (eval mode)."""
    if kind not in KINDS:
        raise AvrepError(f"kind {kind!r}: choose from {', '.join(KINDS)}")  # a Python argument only: no flag
    if kind == "generator":
        d = resolve_generator(checkpoint, quiet=quiet)
        G, davs, cfg = load_generator(d, device)
        needs = bool(getattr(davs, "needs_landmarks", False))
        return Loaded(G, ClipTransform(needs), Path(d), cfg, [], kind, davs)
    run = resolve_checkpoint(checkpoint, quiet=quiet)
    model, config, words = load_run(run, str(device))
    return Loaded(model, ClipTransform(bool(getattr(model, "needs_landmarks", False))), run, config, words, kind)


def load(
    checkpoint: str | os.PathLike | None = None, kind: str = "davs", device: Any = "cpu", *, quiet: bool = False
) -> tuple[Any, ClipTransform]:
    """-> (model in eval mode, raw-clip transform), like `open_clip.create_model_and_transforms`.

    `checkpoint`: a run dir (or a file in one), a shipped model's name, or None (environment, then the
    default shipped model). kind: "davs" (the encoders) or "generator" (the talking-face generator)."""
    m = open_model(checkpoint, kind, device, quiet=quiet)
    return m.model, m.transform


__all__ = ["ClipTransform", "Loaded", "center_crop", "check_clip_length", "load", "open_model"]

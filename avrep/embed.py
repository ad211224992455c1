"""`Embedder`: the Python API for embeddings (video, audio, identity) from a trained DAVS run.

Raw files go through the same preprocessing as training (dlib landmarks -> aligned mouth ROI and face
crop; PyAV audio at 16 kHz); arrays skip it. Every embedding is float32 and L2-normalised.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from avrep.conventions import FACE_SIZE
from avrep.data.align import crop_clip
from avrep.device import resolve_device
from avrep.errors import AvrepError
from avrep.io.media import read_video
from avrep.loader import ClipTransform, open_model
from avrep.loader import center_crop as center_crop  # noqa: F401  (benchmarks/unseen.py imports it from here)
from avrep.models.config import davs_config
from avrep.models.pretrained import weights_sha256

MODALITIES = ("audio", "video", "identity")
KINDS = ("word", "sync")  # see avrep.models.davs: same-word neighbours vs the clip that is in sync


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """sha256 of the weights of a run (its dir or a file in it)."""
    return weights_sha256(path)


class Embedder:
    """Embeds raw clips or preprocessed arrays with one trained run."""

    def __init__(
        self, model: torch.nn.Module, config: dict[str, Any], words: list[str], run_dir: Path, device: torch.device
    ):
        self.model, self.words, self.run_dir, self.device = model, words, run_dir, device
        # load_run gives the run's config.json ({"model": ..., "train": ...}); embed_dim/frames/name live in "model"
        self.run_config = config
        self.config = config["model"] if isinstance(config.get("model"), dict) else config
        self.cfg = davs_config(self.config)  # typed view: defaults of keys the run's config lacks filled in
        self.dim = self.cfg.embed_dim
        self._sha: str | None = None
        self.transform = ClipTransform(bool(getattr(model, "needs_landmarks", False)))  # raw clip -> model input

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None = None, device: str = "auto") -> Embedder:
        """A trained run (its dir, a file in it, or a shipped model's name); None: $AVREP_CHECKPOINT, else the
        default shipped model (`avrep.loader.open_model`)."""
        dev = resolve_device(device)
        m = open_model(path, "davs", dev)
        return cls(m.model, m.config, m.words, m.run_dir, dev)

    @property
    def sha256(self) -> str:
        if self._sha is None:
            self._sha = checkpoint_sha256(self.run_dir)
        return self._sha

    # ---- inputs ---------------------------------------------------------------------------
    @staticmethod
    def _is_path(x: Any) -> bool:
        return isinstance(x, (str, os.PathLike))

    def _mouth(self, x: Any, landmarks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """-> (mouth [T, 88, 88], landmarks [T, 68, 2] or None) through the raw-clip transform (a path is
        preprocessed; one clip: a file longer than `MAX_CLIP_SECONDS` is refused, see `check_clip_length`)."""
        return self.transform.mouth(x, landmarks)

    @staticmethod
    def _audio(x: Any) -> np.ndarray:
        return ClipTransform.audio(x)

    def _face(self, x: Any) -> np.ndarray:
        if self._is_path(x):
            x = face_crop_from_file(x)
        x = np.asarray(x)
        if x.ndim == 4:
            x = x[len(x) // 2]
        if x.shape != (FACE_SIZE, FACE_SIZE, 3):
            raise AvrepError(f"face must be an aligned {FACE_SIZE}x{FACE_SIZE}x3 crop, got shape {x.shape}")
        return x

    # ---- single items ---------------------------------------------------------------------
    def dim_of(self, kind: str = "word", modality: str = "video") -> int:
        """Embedding dimension of a kind ("word" | "sync"); identity embeddings have their own."""
        _check_kind(kind, modality)
        if modality == "identity":
            return int(self.model.identity.out_dim)
        return self.dim if kind == "word" else int(self.model.sync_dim)

    @torch.inference_mode()
    def embed_video(self, path_or_array: Any, kind: str = "word", landmarks: np.ndarray | None = None) -> np.ndarray:
        """One clip's lip embedding: a video file (preprocessed here) or a mouth array [T, H, W] (with its
        landmarks [T, 68, 2] for models that read lip geometry)."""
        _check_kind(kind)
        mouth, lm = self._mouth(path_or_array, landmarks)
        m = torch.from_numpy(np.ascontiguousarray(mouth))[None].to(self.device)
        lt = None if lm is None else torch.from_numpy(np.asarray(lm, np.float32))[None].to(self.device)
        f = self.model.embed_video if kind == "word" else self.model.embed_video_sync
        return f(m, lt)[0].float().cpu().numpy()

    @torch.inference_mode()
    def embed_audio(self, path_or_array: Any, kind: str = "word") -> np.ndarray:
        _check_kind(kind)
        a = torch.from_numpy(self._audio(path_or_array))[None].to(self.device)
        f = self.model.embed_audio if kind == "word" else self.model.embed_audio_sync
        return f(a)[0].float().cpu().numpy()

    @torch.inference_mode()
    def embed_face(self, path_or_array: Any) -> np.ndarray:
        f = torch.from_numpy(np.ascontiguousarray(self._face(path_or_array).transpose(2, 0, 1)))[None].to(self.device)
        return self.model.embed_identity(f)[0].float().cpu().numpy()

    # ---- batches over a feature store -----------------------------------------------------
    @torch.inference_mode()
    def embed_batch(self, batch: dict[str, torch.Tensor], modality: str, kind: str = "word") -> np.ndarray:
        _check_kind(kind, modality)
        sync = kind == "sync"
        if modality == "video":
            m = batch["mouth"].to(self.device)
            lm = batch.get("landmarks")
            lm = lm.to(self.device) if lm is not None and getattr(self.model, "needs_landmarks", False) else None
            out = self.model.embed_video_sync(m, lm) if sync else self.model.embed_video(m, lm)
        elif modality == "audio":
            a = batch["audio"].to(self.device)
            out = self.model.embed_audio_sync(a) if sync else self.model.embed_audio(a)
        elif modality == "identity":
            out = self.model.embed_identity(batch["face"].to(self.device))
        else:
            raise AvrepError(f"modality {modality!r}: choose from {', '.join(MODALITIES)}", param="modality")
        return out.float().cpu().numpy().astype(np.float32)

    def iter_store(
        self,
        store_dir: str | os.PathLike,
        modality: str,
        rows: np.ndarray | None = None,
        split: str | None = None,
        batch_size: int = 64,
        workers: int = 0,
        kind: str = "word",
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (row indices, embeddings) over a feature store's clips (eval-time crops, no augmentation)."""
        from avrep.data.dataset import FeatureDataset

        ds = FeatureDataset(store_dir, split, frames=self.cfg.frames, train=False)
        idx = np.arange(len(ds)) if rows is None else np.asarray(rows)
        if len(idx) == 0:
            return
        dl = DataLoader(Subset(ds, idx.tolist()), batch_size=batch_size, shuffle=False, num_workers=workers)
        pos = 0
        for batch in dl:
            n = len(batch["word_id"])
            yield idx[pos : pos + n], self.embed_batch(batch, modality, kind)
            pos += n


def _check_kind(kind: str, modality: str = "video") -> None:
    if kind not in KINDS:
        raise AvrepError(f"kind {kind!r}: choose from {', '.join(KINDS)}", param="kind")
    if modality == "identity" and kind != "word":
        raise AvrepError(
            "kind 'sync' is for audio/video word embeddings; identity embeddings have one kind", param="kind"
        )


def face_crop_from_file(path: str | os.PathLike) -> np.ndarray:
    """Detect + align the largest face in an image (or a video's middle frame) -> 128x128x3 uint8."""
    img = read_image_or_frame(path)
    from avrep.data.landmarks import track_landmarks

    tr = track_landmarks(img[None], detect_every=1, name=str(path))
    if not tr.face.any():
        raise AvrepError(f"{path}: no face found")
    return crop_clip(img[None], tr.landmarks).face[0]


IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def read_image_or_frame(path: str | os.PathLike, max_pixels: int = 50_000_000) -> np.ndarray:
    """RGB uint8 [H, W, 3] from a photo, or the middle frame of a video."""
    import cv2

    p = Path(path)
    if not p.exists():
        raise AvrepError(f"{p}: no such file")
    if p.suffix.lower() in IMAGE_EXT:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise AvrepError(f"{p}: not a readable image")
        if img.shape[0] * img.shape[1] > max_pixels:
            raise AvrepError(f"{p}: image too large ({img.shape[1]}x{img.shape[0]})")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    frames = read_video(p).frames
    if not len(frames):
        raise AvrepError(f"{p}: no frames")
    return np.ascontiguousarray(frames[len(frames) // 2])

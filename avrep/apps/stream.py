"""Stream a video of any length through the training preprocessing, chunk by chunk (`avrep sync`, `lipread`).

A chunk's core is `chunk_frames` frames [s, e); it is decoded with context frames [s - left, e + right) and
goes through exactly the steps of `avrep.preprocess.process_file` (dlib faces on every `detect_every`-th
frame, landmarks on every `landmark_every`-th, aligned 96x96 mouth ROIs). Chunk edges sit on multiples of
lcm(detect_every, landmark_every) and the context covers a model window (29 frames), the crop's temporal
smoothing and the next key frame, so where the face is found on the key frames around a seam the crops of a
window, and so the model's features, are the ones the whole file gives (`tests/test_batch.py` checks it on
a real clip with a tiny chunk). Where a face appears or leaves near a seam the face range can differ by a
few frames. Memory is bounded by one chunk (frames + grays), not the file; the audio (16 kHz float32,
38 MB for 10 minutes) is held whole.

Windows of `window` frames every `hop` frames are laid on the whole file (`avrep.utils.window_starts`:
the last one ends at the file's end) and each is computed in the chunk whose core holds its start.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from avrep.conventions import CLIP_FRAMES
from avrep.data.align import crop_clip
from avrep.errors import MediaError, NoFaceError
from avrep.io import media
from avrep.models.frames import _hann

CHUNK_FRAMES = 250  # frames per chunk core (10 s at 25 fps)


@dataclass
class MouthChunk:
    """Preprocessed frames [start, start + len(mouth)) of a video; this chunk owns windows starting in [s, e)."""

    start: int
    s: int
    e: int
    mouth: np.ndarray  # uint8 [n, 96, 96]
    landmarks: np.ndarray  # float32 [n, 68, 2], source pixels
    face: np.ndarray  # bool [n]
    n_faces: int
    last: bool  # the video ends in this chunk: e is its frame count

    @property
    def end(self) -> int:
        return self.start + len(self.mouth)


def chunk_layout(
    detect_every: int, landmark_every: int, chunk_frames: int, window: int = CLIP_FRAMES, stable: int = 12
):
    """-> (chunk core, left context, right context) in frames: multiples of lcm(detect_every, landmark_every),
    the context wide enough for a window, the crop smoothing and the next key frame beyond them."""
    align = math.lcm(detect_every, landmark_every)
    need = window + stable // 2 + 5  # a window past the core's end + crop smoothing + landmark fill/smoothing
    left = align * max(1, math.ceil(need / align))
    core = align * max(1, math.ceil(chunk_frames / align))
    return core, left, left + 1  # right: up to and including the key frame `left` after the core


def stream_config(config=None, max_duration: float | None = None):
    """The preprocessing config of the streamed commands: `config` (or the default, audio required) with the
    streamed duration limit (`avrep.io.media.MAX_STREAM_DURATION` unless `max_duration` says otherwise)."""
    from avrep.preprocess import PreprocessConfig

    cfg = config or PreprocessConfig(require_audio=True)
    if config is None or max_duration is not None:
        cfg = replace(cfg, max_duration=float(max_duration or media.MAX_STREAM_DURATION))
    return cfg


def mouth_chunks(
    path: str | os.PathLike,
    info: media.MediaInfo,
    config,
    *,
    chunk_frames: int = CHUNK_FRAMES,
    on_chunk: Callable[[int], None] | None = None,
) -> Iterator[MouthChunk]:
    """Yield the preprocessed chunks of `path` in order (config: an `avrep.preprocess.PreprocessConfig`).

    Raises NoFaceError when no chunk has a face. A chunk without any face gets the previous chunk's last
    landmarks (or, before the first face, the frame centre) and face=False, as the whole-file path fills
    frames outside the face range. `on_chunk(n)` is told how many core frames each chunk finished.
    """
    from avrep.data.landmarks import to_gray

    core, left, right = chunk_layout(
        config.detect_every, config.landmark_every, chunk_frames, stable=config.stable_window
    )
    s, any_face, prev_lm = 0, False, None
    while True:
        a = max(0, s - left)
        try:
            v = media.read_video(
                path,
                a,
                s + core + right,
                info=info,
                max_duration=config.max_duration,
                max_pixels=config.max_pixels,
                max_side=config.max_side,
            )
        except MediaError as e:
            if s > 0 and "outside the video" in str(e):  # the previous chunk ended exactly at the end
                break
            raise
        n = len(v.frames)
        last = a + n < s + core + right
        e = a + n if last else s + core
        grays = to_gray(v.frames)
        try:
            tr = config.track(grays, v.scale, str(path))
            lms, face, n_faces = tr.landmarks, tr.face, tr.n_faces
            any_face = True
        except NoFaceError:
            if last and not any_face:  # the whole file is faceless: the whole-file path's error
                raise NoFaceError(f"{info.path}: no face found") from None
            lms = np.repeat(_fallback_landmarks(prev_lm, v), n, 0)
            face, n_faces = np.zeros(n, bool), 0
        crops = crop_clip(
            v.frames, lms, frame_scale=v.scale, stable_window=config.stable_window, grays=grays, want_face=False
        )
        prev_lm = lms[min(e, a + n) - a - 1][None]
        del v, grays
        yield MouthChunk(a, s, e, crops.mouth, lms, face, n_faces, last)
        if on_chunk is not None:
            on_chunk(e - s)
        if last:
            break
        s += core
    if not any_face:
        raise NoFaceError(f"{info.path}: no face found")


def _fallback_landmarks(prev: np.ndarray | None, v: media.Video) -> np.ndarray:
    """[1, 68, 2] landmarks for a chunk without a face: the previous face's, else the mean face in the middle."""
    if prev is not None:
        return prev.astype(np.float32)
    from avrep.data.align import MEAN_FACE

    h, w = v.frames.shape[1:3]
    mf = np.asarray(MEAN_FACE, np.float32)
    mf = (mf - mf.mean(0)) / max(np.ptp(mf[:, 0]), 1e-6) * (0.5 * min(h, w)) + np.array([w / 2, h / 2], np.float32)
    return (mf * v.scale)[None].astype(np.float32)


def chunk_starts(ch: MouthChunk, window: int, hop: int) -> list[int]:
    """Starts of the file's windows (`avrep.utils.window_starts` over the whole file) this chunk computes."""
    if ch.last and ch.e <= window:
        return [0]
    hi = ch.e - window if ch.last else ch.e - 1
    starts = list(range(-(-ch.s // hop) * hop, hi + 1, hop))
    if ch.last and (ch.e - window) % hop != 0:
        starts.append(ch.e - window)
    return starts


class FrameAccumulator:
    """Per-frame features as the Hann-weighted mean of the windows covering each frame (grows as it goes),
    the rule of `avrep.apps.agreement.stream_features`."""

    def __init__(self) -> None:
        self.acc: np.ndarray | None = None
        self.norm = np.zeros(0, np.float32)

    def add(self, start: int, feats: np.ndarray, weights: np.ndarray) -> None:
        n = start + len(feats)
        if self.acc is None:
            self.acc = np.zeros((max(n, 1024), feats.shape[-1]), np.float32)
            self.norm = np.zeros(len(self.acc), np.float32)
        if n > len(self.acc):
            grow = max(n, 2 * len(self.acc))
            self.acc = np.concatenate([self.acc, np.zeros((grow - len(self.acc), self.acc.shape[1]), np.float32)])
            self.norm = np.concatenate([self.norm, np.zeros(grow - len(self.norm), np.float32)])
        self.acc[start:n] += feats * weights[:, None]
        self.norm[start:n] += weights

    def result(self, T: int) -> np.ndarray:
        assert self.acc is not None
        f = self.acc[:T] / np.maximum(self.norm[:T], 1e-12)[:, None]
        return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-8)


@torch.no_grad()
def video_frame_features(
    model,
    chunks: Iterator[MouthChunk],
    *,
    window: int = CLIP_FRAMES,
    hop: int = 7,
    batch: int = 32,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-frame video features [T, D] of a whole streamed file, as `avrep.apps.agreement.stream_features`
    gives them for the whole mouth array -> (features, face mask [T], most faces seen in a frame)."""
    acc = FrameAccumulator()
    faces: list[np.ndarray] = []
    n_faces, T = 0, 0
    needs = getattr(model, "sync_needs_landmarks", False)  # these features feed sync: the sync head's
    dev = torch.device(device)
    for ch in chunks:
        w = min(window, ch.e) if ch.last else window
        wt = _hann(w)
        starts = chunk_starts(ch, w, hop)
        for i in range(0, len(starts), batch):
            ss = starts[i : i + batch]
            x = torch.from_numpy(np.stack([ch.mouth[p - ch.start : p - ch.start + w] for p in ss])).to(dev)
            if needs:
                lm = np.stack([ch.landmarks[p - ch.start : p - ch.start + w] for p in ss]).astype(np.float32)
                f = model.sync_frames_video(x, torch.from_numpy(lm).to(dev))
            else:
                f = model.sync_frames_video(x)
            for p, fi in zip(ss, f.float().cpu().numpy()):
                acc.add(p, fi, wt)
        faces.append(ch.face[ch.s - ch.start : ch.e - ch.start])
        n_faces, T = max(n_faces, ch.n_faces), ch.e
    return acc.result(T), np.concatenate(faces), n_faces


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar over frames on stderr, shown only when stderr is a terminal (disabled: a no-op one)."""

    on = enabled and sys.stderr.isatty()
    return tqdm(total=max(1, total), desc=desc, unit="frame", disable=not on, leave=False)


__all__ = [
    "CHUNK_FRAMES",
    "FrameAccumulator",
    "MouthChunk",
    "chunk_layout",
    "chunk_starts",
    "mouth_chunks",
    "progress_bar",
    "stream_config",
    "video_frame_features",
]

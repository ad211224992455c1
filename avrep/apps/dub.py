"""`avrep dub`: a talking-face video re-voiced with new audio - only the mouth region is regenerated.

The face's own frames give head pose, eyes, background and light; the generator (the shipped one by default)
redraws the lower face from the audio, the way Wav2Lip dubs. Three streamed passes over the video, `block`
frames decoded at a time, so memory stays bounded whatever the length:
  1. dlib HOG on every `detect_every`-th frame (and the last): the largest face's box, interpolated between
     detections; frames before the first / after the last detection have no face and are left as they are;
  2. 68 landmarks on every face frame from its box -> per-frame similarity transforms to the aligned 128x128
     face crop (the training preprocessing's alignment: smoothed stable points, `avrep.data.align`);
  3. per output chunk: the face crops are the pose frames of `generate_frames(pose=...)` (their lower half is
     masked inside the generator; the reference is the first face frame's crop), and the generator's change
     to each crop (its output minus the crop as the generator sees it) is warped back under the feathered
     lower-face mask (`paste_back`) and encoded (`Mp4Writer`) with the new audio.

Length rule: the output is exactly as long as the audio. A longer video is cut at the audio's end; a shorter
one is played forward then backward (ping-pong, no jump at the seam) until the audio ends.
The output is written at 25 fps (avrep's frame rate) at the video's own size.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from avrep.apps.generate import check_speech, conditioning, generate_frames, paste_back, seen_by
from avrep.conventions import FACE_SIZE, FPS
from avrep.conventions import MOUTH_LANDMARKS as MOUTH
from avrep.conventions import SAMPLES_PER_FRAME as SPF
from avrep.data.align import FACE_BOX, reference_transforms
from avrep.device import resolve_device
from avrep.errors import AvrepError, MediaError, NoFaceError
from avrep.io import media

MAX_DURATION = 3600.0  # seconds of video or audio dub reads (streamed: memory does not grow with it)
MAX_SIDE = 4096  # frames are dubbed at their own size up to this side
DETECT_EVERY = 10  # HOG face detection on every k-th frame (boxes interpolated between)
BLOCK = 100  # frames decoded at a time in the analysis passes (4 s, at most DECODE_MAX_SIDE a side)
CHUNK = 64  # frames decoded, generated, pasted and encoded at a time (at the video's own size)


@dataclass
class FaceTrack:
    """The face of every source frame: `face` [N] bool, landmarks [N, 68, 2] (source px), transforms
    [N, 2, 3] source px -> 128x128 aligned face-crop px, mouth centres [N, 2] in crop px. Frames without a face
    carry the nearest face frame's values (and are not changed by dubbing)."""

    face: np.ndarray
    landmarks: np.ndarray
    transforms: np.ndarray
    mouth_centres: np.ndarray

    @property
    def n_frames(self) -> int:
        return len(self.face)

    @property
    def first(self) -> int:
        return int(np.flatnonzero(self.face)[0])


def _blocks(path: str, info: media.MediaInfo, block: int, max_duration: float):
    """Yield (first frame index, RGB frames uint8 [n, h, w, 3] decoded at most DECODE_MAX_SIDE a side, source px
    per decoded px) over the whole video, `block` frames at a time."""
    s = 0
    while True:
        try:
            v = media.read_video(path, s, s + block, info=info, max_duration=max_duration)
        except MediaError as e:
            if s > 0 and "outside the video" in str(e):
                return
            raise
        yield s, v.frames, v.scale
        if len(v.frames) < block:
            return
        s += block


def _interp(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Linear interpolation of values [N, ...] over frames where `known` is False (edges hold the nearest)."""
    idx = np.flatnonzero(known)
    flat = values.reshape(len(values), -1).astype(np.float64)
    t = np.arange(len(values))
    out = np.stack([np.interp(t, idx, flat[idx, k]) for k in range(flat.shape[1])], 1)
    return out.reshape(values.shape).astype(np.float32)


def face_transforms(landmarks: np.ndarray, stable_window: int = 12) -> np.ndarray:
    """Frame px -> 128x128 aligned face-crop px, [N, 2, 3], as `avrep.data.align.crop_clip` warps its crops."""
    Ms = reference_transforms(landmarks.astype(np.float64), stable_window).astype(np.float64)
    fx0, fy0, fx1, _ = FACE_BOX
    fs = FACE_SIZE / (fx1 - fx0)
    Mf = Ms * fs
    Mf[:, :, 2] -= np.array([fx0 * fs, fy0 * fs])
    return Mf


def track_face(
    path: str | os.PathLike,
    *,
    info: media.MediaInfo | None = None,
    detect_every: int = DETECT_EVERY,
    block: int = BLOCK,
    max_duration: float = MAX_DURATION,
    progress: bool = False,
) -> FaceTrack:
    """Passes 1 and 2 (see the module doc) over `path`, streamed; NoFaceError when no frame has a face."""

    from avrep.data.landmarks import detect_faces, is_blank, predict_landmarks, smooth, to_gray

    info = info or media.probe(path)
    n_est = max(1, info.n_frames_25)
    found: dict[int, np.ndarray] = {}
    N, last_gray = 0, None
    with tqdm(total=n_est, desc="faces", unit="frame", disable=not progress, leave=False) as bar:
        for s, frames, _ in _blocks(info.path, info, block, max_duration):
            G = to_gray(frames)
            for i in range(0, len(G)):
                if (s + i) % detect_every == 0 and not is_blank(G[i]):
                    b = detect_faces(G[i])
                    if len(b):
                        found[s + i] = b[0]
            N, last_gray = s + len(G), G[-1]
            bar.update(len(G))
    if N == 0:
        raise MediaError(f"{info.path}: video has no frames")
    if (N - 1) % detect_every and not is_blank(last_gray):  # the last frame is a key frame too
        b = detect_faces(last_gray)
        if len(b):
            found[N - 1] = b[0]
    if not found:
        raise NoFaceError(f"{info.path}: no face found")
    keys = sorted(found)
    face = np.zeros(N, bool)
    face[keys[0] : keys[-1] + 1] = True
    boxes = np.zeros((N, 4), np.float32)
    known = np.zeros(N, bool)
    for k in keys:
        boxes[k], known[k] = found[k], True
    boxes = _interp(boxes, known)
    lms = np.zeros((N, 68, 2), np.float32)
    with tqdm(total=N, desc="landmarks", unit="frame", disable=not progress, leave=False) as bar:
        for s, frames, scale in _blocks(info.path, info, block, max_duration):
            G = to_gray(frames)
            for i in range(len(G)):
                if face[s + i]:
                    lms[s + i] = predict_landmarks(G[i], boxes[s + i]) * scale  # -> source px
            bar.update(len(G))
    lms = _interp(smooth(_interp(lms, face), 3), face)
    Mf = face_transforms(lms)
    centres = np.einsum("tij,tj->ti", Mf[:, :, :2], lms[:, MOUTH].mean(1)) + Mf[:, :, 2]
    return FaceTrack(face, lms, Mf.astype(np.float32), centres.astype(np.float32))


def source_frames(n_out: int, n_src: int) -> np.ndarray:
    """Source frame of each output frame: the video cut to `n_out` frames, or played forward then backward
    (ping-pong) until `n_out` when it is shorter."""
    t = np.arange(n_out)
    if n_src <= 1:
        return np.zeros(n_out, np.int64)
    period = 2 * (n_src - 1)
    k = t % period
    return np.where(k < n_src, k, period - k).astype(np.int64)


def face_crops(frames: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Aligned face crops uint8 [n, 128, 128, 3] of frames [n, H, W, 3] (one transform a frame)."""
    import cv2

    out = np.empty((len(frames), FACE_SIZE, FACE_SIZE, 3), np.uint8)
    for t, (f, M) in enumerate(zip(frames, transforms)):
        cv2.warpAffine(
            f, M, (FACE_SIZE, FACE_SIZE), dst=out[t], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    return out


def compose(G, frames: np.ndarray, gen: np.ndarray, pose: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Each frame plus the generator's change to its crop (generated crop minus the pose crop as the generator
    sees it), warped back under the feathered lower-face mask: `paste_back` frame by frame."""
    out = np.empty_like(frames)
    for t in range(len(frames)):
        out[t] = paste_back(frames[t], gen[t : t + 1], transforms[t].astype(np.float64), ref_seen=seen_by(G, pose[t]))[
            0
        ]
    return out


def check_out_path(out: str | os.PathLike, *inputs: str | os.PathLike) -> Path:
    """`out` must be a new .mp4 that is none of the inputs."""
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise AvrepError(f"{out}: the output is an .mp4 file; give a name ending in .mp4")
    for p in inputs:
        if Path(p).exists() and out.exists() and out.resolve() == Path(p).resolve():
            raise AvrepError(f"{out}: the output must not overwrite an input")
    return out


def dub_video(
    video: str | os.PathLike,
    audio: str | os.PathLike,
    out: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "auto",
    progress: bool = True,
    batch: int = 16,
    chunk: int = CHUNK,
    max_duration: float = MAX_DURATION,
    model: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """Write `out` (.mp4): `video`'s face speaking `audio` (any file PyAV reads, a video's sound track too).

    `checkpoint`: a generator run, a DAVS run holding generator/, or None for the shipped generator; `model`:
    an already loaded (generator, DAVS) pair instead. `chunk`: frames decoded, generated, pasted and encoded at a
    time (rounded up to a multiple of `batch`; the bytes written do not depend on it). Returns a summary dict.
    Raises AvrepError (one line naming the file) for unreadable input, no face, or no speech."""

    from avrep.io.encode import Mp4Writer

    out = check_out_path(out, video, audio)
    vinfo = media.probe(video)
    if not vinfo.has_video:
        raise MediaError(f"{vinfo.path}: no video stream")
    media.check_limits(vinfo, max_duration)
    if max(vinfo.width, vinfo.height) > MAX_SIDE:
        raise MediaError(f"{vinfo.path}: video {vinfo.width}x{vinfo.height} is larger than {MAX_SIDE} px a side")
    wav = media.read_audio(audio, max_duration=max_duration)
    check_speech(wav, str(audio))
    n_out = int(np.ceil(len(wav) / SPF))
    wav = media.fit_audio(wav, n_out)
    dev = resolve_device(device)
    if model is None:
        from avrep.loader import open_model

        m = open_model(checkpoint, "generator", dev, quiet=not progress)
        G, davs = m.model, m.davs
    else:
        G, davs = model
    t0 = time.perf_counter()
    track = track_face(vinfo.path, info=vinfo, max_duration=max_duration, progress=progress)
    src = source_frames(n_out, track.n_frames)
    cond = conditioning(G, davs, n_out, audio=wav, device=dev)  # davs None: the generator's own audio encoder
    chunk = max(batch, -(-chunk // batch) * batch)  # whole batches: the same frames meet in every batch
    first = track.first
    ref_frame = _read(vinfo, first, first + 1, max_duration)[0]
    ref = face_crops(ref_frame[None], track.transforms[first : first + 1])[0]
    H, W = ref_frame.shape[:2]
    with (
        tqdm(total=n_out, desc="dub", unit="frame", disable=not progress) as bar,
        Mp4Writer(out, W, H, wav) as writer,
    ):
        for s in range(0, n_out, chunk):
            idx = src[s : s + chunk]
            lo = int(idx.min())
            frames = _read(vinfo, lo, int(idx.max()) + 1, max_duration)[idx - lo]
            M = track.transforms[idx]
            pose = face_crops(frames, M)
            gen = generate_frames(G, ref, cond[s : s + chunk], batch=batch, progress=False, device=dev, pose=pose)
            dubbed = compose(G, frames, gen, pose, M)
            keep = ~track.face[idx]
            dubbed[keep] = frames[keep]  # no face: the frame as it was
            writer.write(dubbed)
            bar.update(len(dubbed))
    took = time.perf_counter() - t0
    return {
        "out": str(out),
        "frames": n_out,
        "seconds": n_out / FPS,
        "video_frames": track.n_frames,
        "face_frames": int(track.face.sum()),
        "length_rule": "cut" if n_out <= track.n_frames else "ping-pong",
        "size": [int(W), int(H)],
        "dub_fps": n_out / max(took, 1e-9),
    }


def _read(info: media.MediaInfo, start: int, end: int, max_duration: float) -> np.ndarray:
    """Frames [start, end) of the video, RGB uint8, at its own size (up to MAX_SIDE)."""
    return media.read_video(info.path, start, end, info=info, max_side=MAX_SIDE, max_duration=max_duration).frames


__all__ = [
    "FaceTrack",
    "check_out_path",
    "compose",
    "dub_video",
    "face_crops",
    "face_transforms",
    "source_frames",
    "track_face",
]

"""Decode talking-face media: video with decord (any fps -> 25 fps), audio with PyAV (-> 16 kHz mono).

Every failure becomes a one-line `MediaError` naming the file and the reason, so batch jobs can record
it and single-file commands can print it. Limits on duration and pixel count refuse decompression
bombs before anything large is allocated.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avrep.errors import MediaError

FPS = 25.0
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = 640
MAX_DURATION = 120.0  # seconds
MAX_PIXELS = 4096 * 4096  # per frame, in the source
MIN_SIDE = 32  # smaller frames cannot hold a usable face (and decord fails on them)
DECODE_MAX_SIDE = 720  # frames larger than this are scaled down while decoding (landmarks stay in source px)


@dataclass
class MediaInfo:
    """What `probe` learns from the container without decoding."""

    path: str
    duration: float  # seconds (0 if unknown)
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    n_frames: int = 0  # source frames (estimated from duration when the container does not say)
    sample_rate: int = 0
    channels: int = 0
    video_codec: str = ""
    audio_codec: str = ""

    @property
    def n_frames_25(self) -> int:
        """Frame count after conversion to 25 fps."""
        if self.fps <= 0:
            return 0
        return max(1, int(round(self.n_frames * FPS / self.fps)))


def _check_file(path: str | os.PathLike) -> str:
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p}: file not found")
    if not p.is_file():
        raise MediaError(f"{p}: not a file")
    if p.stat().st_size == 0:
        raise MediaError(f"{p}: empty file (zero length)")
    return str(p)


def _short(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg[:160]


def probe(path: str | os.PathLike) -> MediaInfo:
    """Read stream metadata with PyAV; raise MediaError for missing, empty or non-media files."""
    import av

    p = _check_file(path)
    try:
        with av.open(p) as c:
            vs = next((s for s in c.streams if s.type == "video"), None)
            as_ = next((s for s in c.streams if s.type == "audio"), None)
            dur = float(c.duration) / 1e6 if c.duration else 0.0
            info = MediaInfo(path=p, duration=dur, has_video=vs is not None, has_audio=as_ is not None)
            if vs is not None:
                cc = vs.codec_context
                info.width, info.height = int(cc.width or 0), int(cc.height or 0)
                rate = vs.average_rate or vs.base_rate or vs.guessed_rate
                info.fps = float(rate) if rate else 0.0
                info.video_codec = cc.name or ""
                vdur = float(vs.duration * vs.time_base) if vs.duration and vs.time_base else dur
                info.n_frames = int(vs.frames) if vs.frames else int(round(vdur * info.fps))
                if not info.duration:
                    info.duration = vdur
            if as_ is not None:
                info.sample_rate = int(as_.codec_context.sample_rate or as_.rate or 0)
                info.channels = int(as_.codec_context.channels or 0)
                info.audio_codec = as_.codec_context.name or ""
    except MediaError:
        raise
    except Exception as e:  # PyAV raises many error types for non-media/corrupt input
        raise MediaError(f"{p}: not a readable media file ({_short(e)})") from None
    return info


def check_limits(info: MediaInfo, max_duration: float = MAX_DURATION, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse media too long or too large to decode safely (decompression bombs)."""
    if info.has_video and info.width * info.height > max_pixels:
        raise MediaError(
            f"{info.path}: resolution {info.width}x{info.height} exceeds --max-pixels {max_pixels}")
    if info.duration > max_duration:
        raise MediaError(f"{info.path}: duration {info.duration:.1f}s exceeds --max-duration {max_duration:g}s")


def frame_indices_25(n_src: int, src_fps: float, fps: float = FPS) -> np.ndarray:
    """Nearest source frame for every output frame at `fps` (identity when src_fps == fps)."""
    if n_src <= 0:
        return np.zeros(0, dtype=np.int64)
    if abs(src_fps - fps) < 1e-3 or src_fps <= 0:
        return np.arange(n_src, dtype=np.int64)
    n_out = max(1, int(round(n_src * fps / src_fps)))
    idx = np.floor((np.arange(n_out) + 0.5) * src_fps / fps).astype(np.int64)
    return np.minimum(idx, n_src - 1)


def _decode_size(w: int, h: int, max_side: int) -> tuple[int, int]:
    """Target (w, h) with the longest side capped, even sizes; (-1, -1) = native."""
    if max(w, h) <= max_side:
        return -1, -1
    s = max_side / max(w, h)
    return int(round(w * s / 2) * 2), int(round(h * s / 2) * 2)


@dataclass
class Video:
    """Frames at 25 fps plus the scale from decoded to source pixels."""

    frames: np.ndarray  # uint8 [T, H, W, 3] RGB (possibly downscaled)
    scale: float  # source px = decoded px * scale
    info: MediaInfo


def read_video(path: str | os.PathLike, start: int = 0, end: int = -1, *, max_duration: float = MAX_DURATION,
               max_pixels: int = MAX_PIXELS, max_side: int = DECODE_MAX_SIDE,
               info: MediaInfo | None = None) -> Video:
    """Decode frames [start, end) (25 fps indices; end=-1: to the end) as RGB uint8 with decord."""
    import decord

    info = info or probe(path)
    if not info.has_video:
        raise MediaError(f"{info.path}: no video stream")
    check_limits(info, max_duration, max_pixels)
    if info.width <= 0 or info.height <= 0:
        raise MediaError(f"{info.path}: video stream has no frame size")
    if min(info.width, info.height) < MIN_SIDE:  # decord cannot copy frames under 32 px wide
        raise MediaError(f"{info.path}: resolution {info.width}x{info.height} is too small (minimum {MIN_SIDE} px a side)")
    dw, dh = _decode_size(info.width, info.height, max_side)
    try:
        decord.logging.set_level(decord.logging.QUIET)
        vr = decord.VideoReader(info.path, ctx=decord.cpu(0), width=dw, height=dh, num_threads=1)
        n_src = len(vr)
        src_fps = float(vr.get_avg_fps()) or info.fps
    except Exception as e:
        raise MediaError(f"{info.path}: cannot decode video ({_short(e)})") from None
    if n_src == 0:
        raise MediaError(f"{info.path}: video has no frames")
    if n_src / max(src_fps, 1e-6) > max_duration + 1:
        raise MediaError(f"{info.path}: duration {n_src / src_fps:.1f}s exceeds --max-duration {max_duration:g}s")
    idx = frame_indices_25(n_src, src_fps)
    end = len(idx) if end is None or end < 0 else min(end, len(idx))
    idx = idx[max(0, start):end]
    if len(idx) == 0:
        raise MediaError(f"{info.path}: frames [{start}, {end}) are outside the video ({n_src} frames)")
    try:
        frames = vr.get_batch(idx.tolist()).asnumpy()
    except Exception as e:
        raise MediaError(f"{info.path}: cannot decode video ({_short(e)})") from None
    if frames.ndim != 4 or frames.shape[0] != len(idx):
        raise MediaError(f"{info.path}: decoded {frames.shape[0]} of {len(idx)} frames (truncated?)")
    scale = info.width / frames.shape[2]
    return Video(frames=np.ascontiguousarray(frames), scale=float(scale), info=info)


def read_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, *, max_duration: float = MAX_DURATION,
               info: MediaInfo | None = None) -> np.ndarray:
    """Decode the first audio stream, downmixed to mono and resampled, as float32 in [-1, 1].

    The waveform starts at the video's start time (leading samples are cut or zero-padded) so that
    sample n * 640 lines up with video frame n.
    """
    import av

    info = info or probe(path)
    if not info.has_audio:
        raise MediaError(f"{info.path}: no audio stream")
    check_limits(info, max_duration, MAX_PIXELS * 64)
    chunks: list[np.ndarray] = []
    t0: float | None = None
    v0 = 0.0
    try:
        with av.open(info.path) as c:
            a = c.streams.audio[0]
            vs = c.streams.video[0] if c.streams.video else None
            if vs is not None and vs.start_time is not None and vs.time_base:
                v0 = float(vs.start_time * vs.time_base)
            res = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            limit = int((max_duration + 1) * sample_rate)
            total = 0
            for frame in c.decode(a):
                if t0 is None and frame.time is not None:
                    t0 = float(frame.time)
                for f in res.resample(frame):
                    arr = f.to_ndarray().reshape(-1)
                    chunks.append(arr)
                    total += arr.size
                if total > limit:
                    raise MediaError(f"{info.path}: audio longer than --max-duration {max_duration:g}s")
            for f in res.resample(None):
                chunks.append(f.to_ndarray().reshape(-1))
    except MediaError:
        raise
    except Exception as e:
        raise MediaError(f"{info.path}: cannot decode audio ({_short(e)})") from None
    if not chunks:
        raise MediaError(f"{info.path}: audio stream has no samples")
    wav = np.concatenate(chunks).astype(np.float32, copy=False)
    shift = int(round(((t0 or 0.0) - v0) * sample_rate))
    if shift > 0:  # audio starts after the video: pad the front with silence
        wav = np.concatenate([np.zeros(shift, np.float32), wav])
    elif shift < 0:
        wav = wav[-shift:]
    return np.clip(wav, -1.0, 1.0)


def fit_audio(wav: np.ndarray, n_frames: int, samples_per_frame: int = SAMPLES_PER_FRAME) -> np.ndarray:
    """Zero-pad or trim a waveform to exactly n_frames * 640 samples."""
    n = n_frames * samples_per_frame
    if wav.size >= n:
        return wav[:n]
    return np.concatenate([wav, np.zeros(n - wav.size, np.float32)])


def read_av(path: str | os.PathLike, *, max_duration: float = MAX_DURATION, max_pixels: int = MAX_PIXELS,
            max_side: int = DECODE_MAX_SIDE, require_audio: bool = True) -> tuple[Video, np.ndarray]:
    """Frames at 25 fps and audio (16 kHz mono) trimmed/padded to 640 samples per frame."""
    info = probe(path)
    if not info.has_video:
        raise MediaError(f"{info.path}: no video stream")
    if require_audio and not info.has_audio:
        raise MediaError(f"{info.path}: no audio stream")
    video = read_video(path, info=info, max_duration=max_duration, max_pixels=max_pixels, max_side=max_side)
    wav = read_audio(path, info=info, max_duration=max_duration) if info.has_audio else np.zeros(0, np.float32)
    return video, fit_audio(wav, len(video.frames))


def duration_frames(seconds: float) -> int:
    return int(math.floor(seconds * FPS + 1e-6))

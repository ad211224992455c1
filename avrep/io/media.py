"""Decode talking-face media with PyAV: video placed by presentation time (any rate -> 25 fps), audio
resampled to 16 kHz mono and aligned to the video's start.

Every failure becomes a one-line `MediaError` naming the file and the reason, so batch jobs can record
it and single-file commands can print it. Limits on duration and pixel count refuse decompression
bombs before anything large is allocated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avrep.conventions import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME  # noqa: F401  (re-exported)
from avrep.errors import MediaError

MAX_DURATION = 120.0  # seconds: files decoded whole (preprocessing, query clips)
# streamed commands (sync, lipread, speakers: memory bounded by a chunk) refuse only beyond this: a guard against
# a few KB declaring hours (25 fps output frames are made for the whole declared length), not a memory limit
MAX_STREAM_DURATION = 2 * 3600.0
MAX_PIXELS = 4096 * 4096  # per frame, in the source
MIN_SIDE = 32  # smaller frames cannot hold a usable face
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
    container: str = ""
    video_start: float = 0.0  # s, the video stream's start time (output frame 0 starts here)
    audio_start: float = 0.0  # s, the audio stream's start time as the container declares it

    @property
    def av_offset_ms(self) -> float:
        """How much later the audio stream starts than the video (ms); avrep pads/trims audio by it."""
        return (self.audio_start - self.video_start) * 1000.0 if self.has_video and self.has_audio else 0.0

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
            info = MediaInfo(
                path=p, duration=dur, has_video=vs is not None, has_audio=as_ is not None, container=c.format.name or ""
            )
            if vs is not None:
                info.video_start = video_origin(vs)
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
                if as_.start_time is not None and as_.time_base:
                    info.audio_start = float(as_.start_time * as_.time_base)
    except MediaError:
        raise
    except Exception as e:  # PyAV raises many error types for non-media/corrupt input
        raise MediaError(f"{p}: not a readable media file ({_short(e)})") from None
    return info


def check_limits(info: MediaInfo, max_duration: float = MAX_DURATION, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse media too long or too large to decode safely (decompression bombs)."""
    if info.has_video and info.width * info.height > max_pixels:
        raise MediaError(
            f"{info.path}: resolution {info.width}x{info.height} exceeds max_pixels {max_pixels}", param="max_pixels"
        )
    if info.duration > max_duration:
        raise MediaError(
            f"{info.path}: duration {info.duration:.1f}s exceeds max_duration {max_duration:g}s", param="max_duration"
        )


def frame_indices_25(n_src: int, src_fps: float, fps: float = FPS) -> np.ndarray:
    """For a constant-rate source, the source frame each output frame shows (`_FrameSampler`'s rule).

    Output frame k shows the latest source frame that starts before (k+1)/fps, so 25 -> 25 is the identity.
    """
    if n_src <= 0:
        return np.zeros(0, dtype=np.int64)
    if abs(src_fps - fps) < 1e-3 or src_fps <= 0:
        return np.arange(n_src, dtype=np.int64)
    n_out = max(1, int(round(n_src * fps / src_fps)))
    idx = np.ceil(((np.arange(n_out) + 1) / fps - _FrameSampler.TOL) * src_fps).astype(np.int64) - 1
    return np.clip(idx, 0, n_src - 1)


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


def video_origin(vs) -> float:
    """Time (s) that output frame 0 and audio sample 0 start at: the video stream's start time.

    One definition for video and audio, so a stream that starts late (or early) keeps its offset.
    """
    if vs is not None and vs.start_time is not None and vs.time_base:
        return float(vs.start_time * vs.time_base)
    return 0.0


class _FrameSampler:
    """Turn decoded frames (any rate, VFR, any start time) into 25 fps frames by presentation time.

    Output frame k covers [k/25, (k+1)/25) s after the video's start, like audio samples
    [k*640, (k+1)*640); it shows the latest source picture that started before that interval ends
    (the picture on screen at its end). So an event at time t lands in frame floor(t*25) in video and
    audio alike, and a 25 fps source maps frame i -> i exactly.
    """

    TOL = 1e-3  # s: timestamps a hair before a frame boundary still belong to the next frame

    def __init__(self, start: int, end: int, convert) -> None:
        self.start, self.end, self.convert = start, end, convert
        self.k = 0  # next output frame to emit
        self.prev = None  # (source frame, cached array or None)
        self.out: list[np.ndarray] = []

    def _emit_until(self, t: float, cur) -> None:
        while self.k < self.end and (self.k + 1) / FPS - self.TOL <= t:
            if self.k >= self.start:
                src = self.prev if self.prev is not None else cur  # before the first picture: show it
                if src[1] is None:
                    src[1] = self.convert(src[0])
                self.out.append(src[1])
            self.k += 1

    def push(self, frame, t: float) -> None:
        cur = [frame, None]
        self._emit_until(t, cur)
        self.prev = cur

    def finish(self, n_out: int) -> None:
        """Emit the frames after the last picture up to n_out (the stream's end)."""
        if self.prev is None:
            return
        self._emit_until((min(n_out, self.end)) / FPS, self.prev)

    @property
    def done(self) -> bool:
        return self.k >= self.end


def frames_at_25(last_time: float, last_duration: float) -> int:
    """25 fps frames of a video whose last picture starts at `last_time` s (after its start) and lasts
    `last_duration` s (the interval before it, or 1/fps): `read_video` returns exactly this many."""
    return max(1, int(round((last_time + last_duration) * FPS)))


def read_video(
    path: str | os.PathLike,
    start: int = 0,
    end: int = -1,
    *,
    max_duration: float = MAX_DURATION,
    max_pixels: int = MAX_PIXELS,
    max_side: int = DECODE_MAX_SIDE,
    info: MediaInfo | None = None,
) -> Video:
    """Decode frames [start, end) (25 fps indices; end=-1: to the end) as RGB uint8.

    Every frame is placed by its presentation timestamp (PyAV), whatever the container and rate:
    decord's frame index is off by a GOP on MPEG-1/2 program streams (GRID's `.mpg` read 12 frames
    late) and it ignores timestamps on variable-rate video.
    """
    import av
    from av.video.reformatter import VideoReformatter

    info = info or probe(path)
    if not info.has_video:
        raise MediaError(f"{info.path}: no video stream")
    check_limits(info, max_duration, max_pixels)
    if info.width <= 0 or info.height <= 0:
        raise MediaError(f"{info.path}: video stream has no frame size")
    if min(info.width, info.height) < MIN_SIDE:
        raise MediaError(
            f"{info.path}: resolution {info.width}x{info.height} is too small (minimum {MIN_SIDE} px a side)"
        )
    dw, dh = _decode_size(info.width, info.height, max_side)
    size = {} if dw < 0 else {"width": dw, "height": dh}
    stop = 1 << 62 if end is None or end < 0 else int(end)
    start = max(0, int(start))
    # one reformatter for the whole clip: it keeps its swscale context (frame.to_ndarray builds a new one per
    # frame, 6x slower on 256x256 H.264, with the same pixels)
    rgb = VideoReformatter()
    sampler = _FrameSampler(start, stop, lambda f: rgb.reformat(f, format="rgb24", **size).to_ndarray())
    last_t, step, n_dec = 0.0, 1.0 / (info.fps or FPS), 0
    try:
        with av.open(info.path) as c:
            vs = c.streams.video[0]
            vs.thread_type = "AUTO"
            t0 = video_origin(vs)
            if start > 10 * FPS and vs.time_base:  # long clip, late window: seek to a key frame before it
                c.seek(int((start / FPS + t0 - 1.0) / vs.time_base), stream=vs, backward=True)
            for frame in c.decode(vs):
                t = (float(frame.time) - t0) if frame.time is not None else (last_t + step if n_dec else 0.0)
                if n_dec and t > last_t:
                    step = min(t - last_t, 1.0)  # the source's frame duration, for the last frame's end
                if t > max_duration + 1:
                    raise MediaError(
                        f"{info.path}: video longer than max_duration {max_duration:g}s", param="max_duration"
                    )
                sampler.push(frame, t)
                last_t, n_dec = max(last_t, t), n_dec + 1
                if sampler.done:
                    break
            n_out = frames_at_25(last_t, step)
            sampler.finish(n_out)
    except MediaError:
        raise
    except Exception as e:
        raise MediaError(f"{info.path}: cannot decode video ({_short(e)})") from None
    if n_dec == 0:
        raise MediaError(f"{info.path}: video has no frames")
    if not sampler.out:
        raise MediaError(f"{info.path}: frames [{start}, {end}) are outside the video ({n_out} frames at 25 fps)")
    frames = np.stack(sampler.out)
    scale = info.width / frames.shape[2]
    return Video(frames=np.ascontiguousarray(frames), scale=float(scale), info=info)


def read_audio(
    path: str | os.PathLike,
    sample_rate: int = SAMPLE_RATE,
    *,
    max_duration: float = MAX_DURATION,
    info: MediaInfo | None = None,
) -> np.ndarray:
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
            v0 = video_origin(vs)
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
                    raise MediaError(
                        f"{info.path}: audio longer than max_duration {max_duration:g}s", param="max_duration"
                    )
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


def read_av(
    path: str | os.PathLike,
    *,
    max_duration: float = MAX_DURATION,
    max_pixels: int = MAX_PIXELS,
    max_side: int = DECODE_MAX_SIDE,
    require_audio: bool = True,
) -> tuple[Video, np.ndarray]:
    """Frames at 25 fps and audio (16 kHz mono) trimmed/padded to 640 samples per frame."""
    info = probe(path)
    if not info.has_video:
        raise MediaError(f"{info.path}: no video stream")
    if require_audio and not info.has_audio:
        raise MediaError(f"{info.path}: no audio stream")
    video = read_video(path, info=info, max_duration=max_duration, max_pixels=max_pixels, max_side=max_side)
    wav = read_audio(path, info=info, max_duration=max_duration) if info.has_audio else np.zeros(0, np.float32)
    return video, fit_audio(wav, len(video.frames))

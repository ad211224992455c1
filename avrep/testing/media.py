"""Small test media written with PyAV (video and/or audio in any container, odd timestamps), for the tests
and the benchmarks (tests/mediautil.py re-exports them beside the shared-data markers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_media(
    path: Path,
    frames: np.ndarray | None,
    audio: np.ndarray | None = None,
    *,
    fps: float = 25,
    sr: int = 16000,
    channels: int = 1,
    container: str | None = None,
    faststart: bool = False,
    pts: list[int] | None = None,
    codec: str = "libx264",
    x264_options: dict[str, str] | None = None,
) -> Path:
    """Video (RGB uint8 [T, H, W, 3]) and/or audio (float [-1, 1]) into any container PyAV writes.

    `pts` (frame timestamps in 1/fps units) lets a tiny file declare a huge duration."""
    from fractions import Fraction

    import av

    from avrep.io.encode import mux

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opts = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format=container, options=opts) as c:
        vs = as_ = None
        rate = Fraction(fps).limit_denominator(1001)
        if frames is not None:
            vs = c.add_stream(codec, rate=rate)
            vs.width, vs.height = frames.shape[2], frames.shape[1]
            vs.pix_fmt = "yuv420p"
            if codec == "libx264":
                vs.options = x264_options or {"preset": "ultrafast", "crf": "23", "threads": "1"}
        if audio is not None:
            as_ = c.add_stream("aac", rate=sr)
            as_.layout = "mono" if channels == 1 else "stereo"
        if vs is not None:
            for i, f in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
                if pts is not None:
                    vf.pts = pts[i]
                    vf.time_base = 1 / rate
                mux(c, vs, vf)
            mux(c, vs)
        if as_ is not None:
            a = np.clip(np.asarray(audio, np.float32), -1, 1)
            a = np.repeat(a[None], channels, 0) if channels > 1 else a[None]
            a = (a * 32767).astype(np.int16)
            if channels > 1:
                a = np.ascontiguousarray(a.T.reshape(1, -1))
            fr = av.AudioFrame.from_ndarray(a, format="s16", layout=as_.layout.name)
            fr.sample_rate = sr
            mux(c, as_, fr)
            mux(c, as_)
    return path


def write_mp4(
    path: Path,
    frames: np.ndarray,
    fps: float = 25,
    audio: np.ndarray | None = None,
    sr: int = 16000,
    faststart: bool = False,
) -> Path:
    """H.264 yuv420p (+ AAC mono) mp4 from RGB uint8 frames [T, H, W, 3] (CRF 18)."""
    return write_media(
        path, frames, audio, fps=fps, sr=sr, faststart=faststart, x264_options={"crf": "18", "preset": "ultrafast"}
    )


def tone(seconds: float, sr: int = 16000, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


__all__ = ["tone", "write_media", "write_mp4"]

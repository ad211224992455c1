"""Helpers for avrep's data tests: locate the shared real data and write small test media with PyAV."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "grid").is_dir(), reason="shared real data absent")


def write_mp4(path: Path, frames: np.ndarray, fps: float = 25, audio: np.ndarray | None = None, sr: int = 16000,
              faststart: bool = False) -> Path:
    """H.264 yuv420p (+ AAC mono) mp4 from RGB uint8 frames [T, H, W, 3]."""
    import av
    from fractions import Fraction

    path = Path(path)
    opts = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=opts) as c:
        vs = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        vs.options = {"crf": "18", "preset": "ultrafast"}
        as_ = None
        if audio is not None:
            as_ = c.add_stream("aac", rate=sr)
            as_.layout = "mono"
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if as_ is not None:
            a = (np.clip(audio, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
            fr = av.AudioFrame.from_ndarray(a, format="s16", layout="mono")
            fr.sample_rate = sr
            for p in as_.encode(fr):
                c.mux(p)
            for p in as_.encode():
                c.mux(p)
    return path


def tone(seconds: float, sr: int = 16000, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def grid_frames(n: int = 29, name: str = "bbaf2n", start: int = 20) -> np.ndarray:
    """Real GRID frames (a frontal face) to build test videos from."""
    import decord

    vr = decord.VideoReader(str(DATA / "grid" / f"{name}.mpg"))
    idx = [min(len(vr) - 1, start + i) for i in range(n)]
    return vr.get_batch(idx).asnumpy()

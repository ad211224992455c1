"""Write talking-face clips: H.264 video + AAC audio in mp4, through PyAV."""

from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np

from avrep.conventions import FPS, SAMPLE_RATE
from avrep.utils import atomic_path


def mux(out: av.container.OutputContainer, stream: av.stream.Stream, frame: av.frame.Frame | None = None) -> None:
    """Encode one frame into `stream` (None: flush its encoder) and mux the packets into `out`."""
    for pkt in stream.encode(frame):
        out.mux(pkt)


class Mp4Writer:
    """Stream RGB frames (and one mono audio track) into an H.264 + AAC mp4, atomically: frames go to the
    encoder chunk by chunk, so a long video never sits in memory whole.

        with Mp4Writer(path, width, height, audio=wav) as w:
            for chunk in chunks:
                w.write(chunk)  # uint8 [n, H, W, 3]

    One encoder thread keeps the bytes deterministic for a given input. The file appears (os.replace) only
    when the block exits without an exception.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        audio: np.ndarray | None = None,
        fps: int = FPS,
        sample_rate: int = SAMPLE_RATE,
        crf: int = 18,
    ) -> None:
        self.path, self.fps, self.sample_rate, self.crf = path, fps, sample_rate, crf
        self.audio = audio
        self.width, self.height = int(width) - int(width) % 2, int(height) - int(height) % 2
        self.n = 0

    def __enter__(self) -> Mp4Writer:
        self._atomic = atomic_path(self.path, ".mp4")
        tmp = self._atomic.__enter__()
        self._out = av.open(str(tmp), mode="w", format="mp4")
        vs = self._out.add_stream("libx264", rate=self.fps)
        vs.width, vs.height = self.width, self.height
        vs.pix_fmt = "yuv420p"
        # mbtree/lookahead made x264 output differ run to run (seen with PyAV 18): off for determinism
        vs.options = {"crf": str(self.crf), "preset": "veryfast", "threads": "1", "x264-params": "asm=0"}
        vs.thread_count = 1
        self._vs = vs
        self._as = None
        if self.audio is not None:
            self._as = self._out.add_stream("aac", rate=self.sample_rate)
            self._as.layout = "mono"
            self._as.thread_count = 1
        return self

    def write(self, frames: np.ndarray) -> None:
        """Encode frames uint8 [n, H, W, 3] (RGB; odd sizes lose their last row/column)."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 [T,H,W,3], got {frames.dtype} {frames.shape}")
        for f in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: self.height, : self.width]), format="rgb24")
            vf.pts = self.n
            vf.time_base = Fraction(1, self.fps)
            self.n += 1
            mux(self._out, self._vs, vf)

    def __exit__(self, et, ev, tb) -> None:
        try:
            if et is None:
                mux(self._out, self._vs)
                if self._as is not None:
                    a = np.clip(np.asarray(self.audio, dtype=np.float32), -1.0, 1.0).reshape(1, -1)
                    af = av.AudioFrame.from_ndarray(a, format="flt", layout="mono")
                    af.sample_rate = self.sample_rate
                    af.pts = 0
                    af.time_base = Fraction(1, self.sample_rate)
                    mux(self._out, self._as, af)
                    mux(self._out, self._as)
        finally:
            self._out.close()
            self._atomic.__exit__(et, ev, tb)


def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray,
    audio: np.ndarray | None = None,
    fps: int = FPS,
    sample_rate: int = SAMPLE_RATE,
    crf: int = 18,
) -> None:
    """Encode frames uint8 [T,H,W,3] (RGB) and mono float32 audio into an mp4, atomically."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T,H,W,3], got {frames.dtype} {frames.shape}")
    with Mp4Writer(path, frames.shape[2], frames.shape[1], audio, fps, sample_rate, crf) as w:
        w.write(frames)


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float audio as 16-bit PCM wav, atomically."""
    import soundfile as sf

    with atomic_path(path, ".wav") as tmp:
        sf.write(str(tmp), np.asarray(audio, dtype=np.float32), sample_rate, subtype="PCM_16", format="WAV")


def transcode(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    vcodec: str = "mpeg1video",
    acodec: str = "mp2",
    container: str | None = "mpeg",
    sample_rate: int = 44100,
    bitrate: int = 2_000_000,
) -> str:
    """Re-encode a clip into another container/codec with every frame at its own presentation time.

    Used to make MPEG-1 program streams (GRID's original format) from mp4s, and test media in other
    formats; audio is resampled to `sample_rate` mono and starts where the video starts.
    """
    from avrep.io.media import probe, video_origin

    info = probe(src)
    with av.open(str(src)) as c:
        vin = c.streams.video[0]
        t0 = video_origin(vin)
        rate = vin.average_rate or Fraction(FPS)
        frames = [(f.to_ndarray(format="rgb24"), float(f.time) - t0) for f in c.decode(vin)]
    wav = None
    if info.has_audio:
        from avrep.io.media import read_audio

        wav = read_audio(src, sample_rate, info=info)
    suffix = os.path.splitext(str(dst))[1] or ".mpg"
    with atomic_path(dst, suffix) as tmp:
        with av.open(str(tmp), mode="w", format=container) as out:
            vs = out.add_stream(vcodec, rate=rate)
            h, w = frames[0][0].shape[:2]
            vs.width, vs.height = w - (w % 2), h - (h % 2)
            vs.pix_fmt = "yuv420p"
            vs.bit_rate = bitrate
            as_ = None
            if wav is not None:
                as_ = out.add_stream(acodec, rate=sample_rate)
                as_.layout = "mono"
            for img, t in frames:
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: vs.height, : vs.width]), format="rgb24")
                vf.pts = int(round(t * rate))
                vf.time_base = 1 / rate
                mux(out, vs, vf)
            mux(out, vs)
            if as_ is not None:
                pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16)
                step = as_.codec_context.frame_size or 1152
                for j in range(0, len(pcm), step):
                    af = av.AudioFrame.from_ndarray(pcm[None, j : j + step].copy(), format="s16", layout="mono")
                    af.sample_rate = sample_rate
                    af.pts = j
                    af.time_base = Fraction(1, sample_rate)
                    mux(out, as_, af)
                mux(out, as_)
    return str(dst)

"""Clapper clips: a picture that flashes and audio that clicks at the same known instants, written with
PyAV in any container/codec/rate, and the detectors that find both again after decoding.

A flash starts on a source frame's presentation time and lasts `FLASH_S`; its click starts on the same
instant. Whatever the source rate, both must land in 25 fps frame floor(t * 25) once avrep has read
the clip (audio sample n belongs to frame n // 640)."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from avrep.conventions import FPS, SAMPLES_PER_FRAME

FLASH_S = 0.16  # long enough to span >= 2 source frames at any rate tested
DARK, BRIGHT = 40, 215


@dataclass(frozen=True)
class Clapper:
    """One way of writing a clip: container + codecs + rates + stream start offsets."""

    name: str
    suffix: str
    vcodec: str
    acodec: str
    fps: Fraction
    sr: int = 44100
    container: str | None = None
    vopts: dict = field(default_factory=dict)
    pix_fmt: str = "yuv420p"
    audio_delay: float = 0.0  # s the audio stream starts after the video (written as its first pts)
    vfr: bool = False  # frame durations alternate 1x / 2x the nominal period
    seconds: float = 3.2
    size: int = 96

    def frame_times(self) -> np.ndarray:
        """Presentation times (s) of the source frames."""
        period = 1 / float(self.fps)
        if not self.vfr:
            n = int(self.seconds * float(self.fps))
            return np.arange(n) * period
        steps = np.tile([period, 2 * period], int(self.seconds / (3 * period)) + 1)
        t = np.concatenate([[0.0], np.cumsum(steps)])
        return t[t < self.seconds]

    def flash_times(self) -> np.ndarray:
        """Flash onsets: source frame times near 0.45, 1.15, 1.9, 2.55 s (off the 25 fps grid on purpose)."""
        ft = self.frame_times()
        return np.array([ft[np.argmin(np.abs(ft - x))] for x in (0.45, 1.15, 1.9, 2.55)])


CASES = [
    Clapper(
        "mp4-h264-bframes-25",
        ".mp4",
        "libx264",
        "aac",
        Fraction(25),
        16000,
        vopts={"preset": "medium", "bf": "3", "crf": "23", "threads": "1"},
    ),
    Clapper(
        "mp4-h264-bframes-29.97",
        ".mp4",
        "libx264",
        "aac",
        Fraction(30000, 1001),
        48000,
        vopts={"preset": "medium", "bf": "3", "threads": "1"},
    ),
    Clapper("mov-h264-30", ".mov", "libx264", "aac", Fraction(30), 44100, vopts={"threads": "1"}),
    Clapper("mp4-h264-50", ".mp4", "libx264", "aac", Fraction(50), 48000, vopts={"threads": "1", "bf": "2"}),
    Clapper("mp4-h264-60", ".mp4", "libx264", "aac", Fraction(60), 44100, vopts={"threads": "1", "bf": "2"}),
    Clapper(
        "mpg-mpeg1-25", ".mpg", "mpeg1video", "mp2", Fraction(25), 44100, container="mpeg", vopts={"bf": "2", "g": "12"}
    ),
    Clapper(
        "mpg-mpeg1-29.97",
        ".mpg",
        "mpeg1video",
        "mp2",
        Fraction(30000, 1001),
        44100,
        container="mpeg",
        vopts={"bf": "2"},
    ),
    Clapper(
        "mpg-mpeg2-25", ".mpg", "mpeg2video", "mp2", Fraction(25), 48000, container="vob", vopts={"bf": "2", "g": "15"}
    ),
    Clapper(
        "ts-mpeg2-25-late-audio",
        ".ts",
        "mpeg2video",
        "mp2",
        Fraction(25),
        48000,
        container="mpegts",
        vopts={"bf": "2"},
        audio_delay=0.2,
    ),
    # AVI stores no presentation times: with B-frames ffmpeg's muxer shifts the video a frame late (its
    # own players agree), so the AVI case is written without them, as AVI encoders are meant to.
    Clapper("avi-mpeg4-25", ".avi", "mpeg4", "pcm_s16le", Fraction(25), 22050, vopts={"bf": "0"}),
    Clapper(
        "webm-vp9-30",
        ".webm",
        "libvpx-vp9",
        "libopus",
        Fraction(30),
        48000,
        vopts={"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"},
    ),
    Clapper("mkv-h264-vfr", ".mkv", "libx264", "aac", Fraction(30), 44100, vopts={"threads": "1"}, vfr=True),
    Clapper(
        "mkv-h264-25-late-audio",
        ".mkv",
        "libx264",
        "aac",
        Fraction(25),
        16000,
        vopts={"threads": "1"},
        audio_delay=0.12,
    ),
]


def write_clapper(case: Clapper, out_dir: Path) -> Path:
    """Write the clip; frames are flat grey (dark, bright while flashing), audio silent but for clicks."""
    import av

    path = Path(out_dir) / f"{case.name}{case.suffix}"
    ft, flashes = case.frame_times(), case.flash_times()
    tb = Fraction(1, 90000) if case.vfr else 1 / case.fps
    with av.open(str(path), "w", format=case.container) as c:
        vs = c.add_stream(case.vcodec, rate=case.fps)
        vs.width = vs.height = case.size
        vs.pix_fmt = case.pix_fmt
        vs.options = dict(case.vopts)
        if case.vfr:
            vs.time_base = tb
            vs.codec_context.time_base = tb
        as_ = c.add_stream(case.acodec, rate=case.sr)
        as_.layout = "mono"
        for i, t in enumerate(ft):
            lit = np.any((t >= flashes - 1e-9) & (t < flashes + FLASH_S - 1e-9))
            img = np.full((case.size, case.size, 3), BRIGHT if lit else DARK, np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = int(round(t / tb)) if case.vfr else i
            vf.time_base = tb
            for p in vs.encode(vf):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        wav = np.zeros(int(case.seconds * case.sr), np.float32)
        n_click = int(0.01 * case.sr)
        for t in flashes:  # audio time 0 = its own stream start, `audio_delay` after the video's
            s = int(round((t - case.audio_delay) * case.sr))
            if s >= 0:
                wav[s : s + n_click] = 0.8 * np.sin(2 * np.pi * 1000 * np.arange(n_click) / case.sr)
        pcm = (wav * 32767).astype(np.int16)
        chunk = 1024 if case.acodec not in ("libopus",) else 960
        fmt = "s16"
        for j in range(0, len(pcm), chunk):
            fr = av.AudioFrame.from_ndarray(pcm[None, j : j + chunk].copy(), format=fmt, layout="mono")
            fr.sample_rate = case.sr
            fr.pts = j + int(round(case.audio_delay * case.sr))
            fr.time_base = Fraction(1, case.sr)
            for p in as_.encode(fr):
                c.mux(p)
        for p in as_.encode():
            c.mux(p)
    return path


def expected_frames(case: Clapper) -> list[int]:
    """The 25 fps frame each flash/click belongs to."""
    return [int(np.floor(t * FPS + 1e-6)) for t in case.flash_times()]


def flash_frames(brightness: np.ndarray) -> list[int]:
    """Frames where the picture turns bright (onsets), from per-frame mean brightness."""
    lit = brightness > (DARK + BRIGHT) / 2
    return [int(i) for i in np.flatnonzero(lit & ~np.concatenate([[False], lit[:-1]]))]


def click_frames(wav: np.ndarray) -> list[int]:
    """Frames where a click starts (first loud sample after >= 0.1 s of quiet)."""
    loud = np.flatnonzero(np.abs(wav) > 0.2)
    onsets, last = [], -(10**9)
    for s in loud:
        if s - last > 1600:
            onsets.append(int(s) // SAMPLES_PER_FRAME)
        last = s
    return onsets

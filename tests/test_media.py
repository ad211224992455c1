"""Media decoding: real files, frame-rate conversion, audio resampling, and every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from mediautil import DATA, grid_frames, needs_data, tone, write_mp4

from avrep.errors import AvrepError, MediaError
from avrep.io import media


@needs_data
def test_real_grid_mpg_and_wild_decode():
    v, a = media.read_av(DATA / "grid" / "bbaf2n.mpg")  # MPEG-1 + MP2 44.1 kHz stereo
    assert v.frames.shape == (75, 288, 360, 3) and v.frames.dtype == np.uint8
    assert a.dtype == np.float32 and a.shape == (75 * 640,)
    assert 0.01 < np.abs(a).max() <= 1.0
    v, a = media.read_av(DATA / "wild" / "lrs2_demo.mp4")
    assert v.frames.shape[0] == 22 and a.shape == (22 * 640,)


def test_odd_fps_and_sample_rate_are_converted(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.repeat(np.arange(30, dtype=np.uint8)[:, None, None, None] * 8, 64, 1).repeat(64, 2).repeat(3, 3)
    frames = (frames + rng.integers(0, 3, frames.shape)).astype(np.uint8)
    p = write_mp4(tmp_path / "odd.mp4", frames, fps=30, audio=tone(1.0, sr=44100, hz=500), sr=44100)
    info = media.probe(p)
    assert info.fps == pytest.approx(30) and info.sample_rate == 44100
    v, a = media.read_av(p)
    assert len(v.frames) == 25  # 1 s at 25 fps
    # timestamp mapping: output frame k shows the latest source frame starting before (k+1)/25 s
    src = media.frame_indices_25(30, 30.0)
    assert np.allclose(v.frames[:, 32, 32, 0].astype(int), src * 8, atol=6)
    assert a.shape == (25 * 640,)
    spec = np.abs(np.fft.rfft(a[2000:14000]))
    peak_hz = np.argmax(spec) * 16000 / 12000
    assert abs(peak_hz - 500) < 5  # resampled 44.1 kHz -> 16 kHz keeps the pitch


@pytest.mark.parametrize("kind", ["missing", "zero", "text", "corrupt", "truncated", "dir"])
def test_bad_files_raise_one_line_media_error(tmp_path, kind):
    good = write_mp4(tmp_path / "good.mp4", np.zeros((10, 32, 32, 3), np.uint8) + 100, audio=tone(0.4))
    p = tmp_path / f"{kind}.mp4"
    if kind == "zero":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("hello, I am not a video\n" * 20)
    elif kind == "corrupt":
        b = bytearray(good.read_bytes())
        rng = np.random.default_rng(1)
        for i in rng.integers(0, len(b), 400):
            b[i] = rng.integers(0, 256)
        p.write_bytes(bytes(b[:64]) + bytes(rng.integers(0, 256, len(b)).astype(np.uint8)))
    elif kind == "truncated":
        p.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    elif kind == "dir":
        p.mkdir()
    with pytest.raises(MediaError) as ei:
        media.read_av(p)
    msg = str(ei.value)
    assert "\n" not in msg and str(p) in msg
    assert isinstance(ei.value, AvrepError)


def test_no_audio_and_limits(tmp_path):
    p = write_mp4(tmp_path / "silent.mp4", np.zeros((10, 32, 32, 3), np.uint8))
    with pytest.raises(MediaError, match="no audio stream"):
        media.read_av(p)
    v, a = media.read_av(p, require_audio=False)
    assert len(v.frames) == 10
    big = write_mp4(tmp_path / "big.mp4", np.zeros((2, 1088, 1920, 3), np.uint8), audio=tone(0.1))
    with pytest.raises(MediaError, match="max_pixels"):
        media.read_av(big, max_pixels=1920 * 1080 // 2)
    v, _ = media.read_av(big)  # allowed, but decoded scaled down to the max side
    assert max(v.frames.shape[1:3]) <= media.DECODE_MAX_SIDE and v.scale == pytest.approx(1920 / v.frames.shape[2])
    long = write_mp4(tmp_path / "long.mp4", np.zeros((60, 16, 16, 3), np.uint8), fps=10, audio=tone(6.0))
    with pytest.raises(MediaError, match="max_duration") as e:
        media.read_av(long, max_duration=2.0)
    assert e.value.param == "max_duration"  # the CLI adds the flag, --max-duration


def test_zero_frame_window_is_an_error(tmp_path):
    p = write_mp4(tmp_path / "a.mp4", np.zeros((10, 32, 32, 3), np.uint8), audio=tone(0.4))
    with pytest.raises(MediaError, match="outside the video"):
        media.read_video(p, start=50, end=60)


@needs_data
def test_reencoded_grid_roundtrip(tmp_path):
    fr = grid_frames(29)
    p = write_mp4(tmp_path / "g.mp4", fr, audio=tone(29 / 25))
    v, a = media.read_av(p)
    assert v.frames.shape == fr.shape
    assert np.abs(v.frames.astype(int) - fr.astype(int)).mean() < 6

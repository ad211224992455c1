"""Clapper tests: every flash and its click land in the same 25 fps frame, for every container, codec and
rate avrep reads (README "Formats"), through the paths training uses: read_av, process_file and the
feature store. And GRID's MPEG-1 originals: the mouth moves with the audio (decord read them 12 frames
late)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clapper import CASES, Clapper, click_frames, expected_frames, flash_frames, write_clapper
from mediautil import DATA, needs_data

from avrep.conventions import SAMPLES_PER_FRAME
from avrep.io import media
from avrep.preprocess import PreprocessConfig, preprocess, process_file


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clapper")
    return {c.name: write_clapper(c, d) for c in CASES}


def _landmarks(n: int, size: int) -> np.ndarray:
    """A mean face filling the frame (the picture is flat, so any placement crops the same brightness)."""
    from avrep.data.align import MEAN_FACE

    pts = MEAN_FACE * (size / 256.0)
    return np.repeat(pts[None], n, 0).astype(np.float32)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_flash_and_click_in_the_same_frame(clips, case: Clapper):
    v, wav = media.read_av(clips[case.name])
    want = expected_frames(case)
    assert flash_frames(v.frames.reshape(len(v.frames), -1).mean(1)) == want, "video off its timestamps"
    assert click_frames(wav) == want, "audio off the video's time base"
    assert len(wav) == len(v.frames) * SAMPLES_PER_FRAME
    assert abs(len(v.frames) - case.seconds * 25) <= 1  # resampled to 25 fps by time, not by count


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.name.startswith(("mpg", "ts", "mkv-h264-vfr", "webm"))], ids=lambda c: c.name
)
def test_windows_cut_from_the_middle_keep_time(clips, case: Clapper):
    """process_file on a window [start, end): frames and audio are cut at the same instant."""
    p = clips[case.name]
    n = len(media.read_video(p).frames)
    lm = _landmarks(n, case.size)
    lm_path = p.with_suffix(".npy")
    np.save(lm_path, lm)
    start, end = 20, 60
    pv = process_file(p, PreprocessConfig(landmarks="true"), start=start, end=end, landmarks_path=str(lm_path))
    want = [f - start for f in expected_frames(case) if start <= f < end]
    assert flash_frames(pv.mouth.reshape(len(pv.mouth), -1).mean(1)) == want
    assert click_frames(pv.audio) == want


def test_feature_store_keeps_every_clapper_in_sync(clips, tmp_path):
    """The store training reads (preprocess -> shards): mouth flashes and audio clicks agree for every case."""
    rows = []
    for c in CASES:
        p = clips[c.name]
        n = len(media.read_video(p).frames)
        lm_path = tmp_path / f"{c.name}.npy"
        np.save(lm_path, _landmarks(n, c.size))
        rows.append(
            {
                "clip_id": c.name,
                "path": str(p),
                "word": None,
                "word_id": -1,
                "transcript": None,
                "speaker": "clap",
                "split": "test",
                "start_frame": 0,
                "end_frame": -1,
                "landmarks_path": str(lm_path),
            }
        )
    df = pd.DataFrame(rows)
    df.attrs["root"] = "/"
    res = preprocess(
        df,
        tmp_path / "store",
        config=PreprocessConfig(landmarks="true"),
        progress=False,
        allow_outside_root=True,
        store_format="memmap",  # raw arrays: the timing is checked on exact frames and samples
    )
    assert res.n_failed == 0 and res.n_ok == len(CASES)
    clips_df = pd.read_parquet(tmp_path / "store" / "clips.parquet")
    for c in CASES:
        r = clips_df.set_index("clip_id").loc[c.name]
        sh = tmp_path / "store" / f"shard_{int(r['shard']):05d}"
        mouth = np.load(sh / "mouth.npy", mmap_mode="r")[r["offset"] : r["offset"] + r["n_frames"]]
        audio = np.load(sh / "audio.npy", mmap_mode="r")
        audio = audio[r["offset"] * SAMPLES_PER_FRAME : (r["offset"] + r["n_frames"]) * SAMPLES_PER_FRAME]
        want = expected_frames(c)
        assert flash_frames(np.asarray(mouth).reshape(len(mouth), -1).mean(1)) == want, c.name
        assert click_frames(np.asarray(audio, np.float32)) == want, c.name


def _mouth_opening(lm: np.ndarray) -> np.ndarray:
    iod = np.linalg.norm(lm[:, 36] - lm[:, 45], axis=1)
    return np.linalg.norm(lm[:, [50, 51, 52]] - lm[:, [58, 57, 56]], axis=2).mean(1) / iod


def _lag_correlation(video: np.ndarray, audio: np.ndarray, max_lag: int = 15) -> np.ndarray:
    """corr(video[t + L], audio[t]) for L = -max_lag..max_lag."""
    out = []
    for L in range(-max_lag, max_lag + 1):
        a, b = (video[L:], audio[: len(audio) - L]) if L >= 0 else (video[:L], audio[-L:])
        out.append(np.corrcoef(a, b)[0, 1])
    return np.array(out)


@needs_data
def test_grid_mpg_originals_mouth_moves_with_the_audio():
    """GRID's MPEG-1 files: over all five sentences, the lip opening follows the loudness at lag 0 (±2 frames).

    decord returned frame i + 12 for frame i on these files, which puts this lag at -11."""
    total = np.zeros(31)
    for p in sorted((DATA / "grid").glob("*.mpg")):
        pv = process_file(p)
        env = np.log(np.sqrt((pv.audio.reshape(-1, SAMPLES_PER_FRAME) ** 2).mean(1)) + 1e-4)
        total += _lag_correlation(_mouth_opening(pv.landmarks), env)
    assert abs(int(np.argmax(total)) - 15) <= 2, f"mouth/audio lag {int(np.argmax(total)) - 15} frames"


@needs_data
def test_grid_mpg_reads_like_its_mp4(tmp_path):
    """A GRID s1 sentence transcoded to MPEG-1 program stream (as GRID is distributed) reads on the same
    timeline as the H.264 mp4 it came from: frame i of one is closest to frame i of the other."""
    from avrep.io.encode import transcode

    src = DATA / "grid_s1" / "video" / "bbaf2n.mp4"
    mpg = transcode(
        src, tmp_path / "bbaf2n.mpg", vcodec="mpeg1video", acodec="mp2", container="mpeg", sample_rate=44100
    )
    a, wa = media.read_av(src)
    b, wb = media.read_av(mpg)
    assert len(a.frames) == len(b.frames)
    fa = a.frames.reshape(len(a.frames), -1).astype(np.float32)
    fb = b.frames.reshape(len(b.frames), -1).astype(np.float32)
    for i in range(0, len(fa), 7):
        d = np.abs(fb - fa[i]).mean(1)
        assert int(np.argmin(d)) == i or d[i] <= d.min() + 0.5, f"frame {i} read as {int(np.argmin(d))}"
    env_a = np.sqrt((wa.reshape(-1, SAMPLES_PER_FRAME) ** 2).mean(1))
    env_b = np.sqrt((wb.reshape(-1, SAMPLES_PER_FRAME) ** 2).mean(1))
    assert int(np.argmax(_lag_correlation(env_b, env_a, 5))) == 5  # audio on the same clock too


def test_probe_shows_what_avrep_reads(clips):
    """`avrep probe --json`: start times, the offset applied, and the 25 fps frame count read_video gives."""
    import json
    import subprocess
    import sys

    for name in ("ts-mpeg2-25-late-audio", "mkv-h264-vfr", "mp4-h264-bframes-29.97"):
        r = subprocess.run(
            [sys.executable, "-m", "avrep", "probe", "--json", str(clips[name])],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        d = json.loads(r.stdout)
        assert d["video"]["frames_at_25fps"] == len(media.read_video(clips[name]).frames)
        if name.startswith("ts"):
            assert 150 < d["audio"]["offset_vs_video_ms"] < 250 and d["audio"]["applied"].startswith("pad")
        assert d["video"]["variable_frame_rate"] == (name == "mkv-h264-vfr")
    r = subprocess.run(
        [sys.executable, "-m", "avrep", "probe", "/nonexistent/clip.mpg"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "file not found" in r.stderr

"""avrep speakers: the IoU tracker on synthetic boxes, hysteresis, a real two-face composite (shared data),
and the one-line errors for a clip without a face and a file without audio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avrep.data.tracks import IoUTracker, iou_matrix, track_boxes

ROOT = Path(__file__).resolve().parents[1]


# ---- tracker (synthetic boxes) ----------------------------------------------------------------------------
def _box(x: float, y: float, s: float = 50.0) -> np.ndarray:
    return np.array([x, y, x + s, y + s], np.float32)


def test_iou_matrix():
    a = np.stack([_box(0, 0), _box(100, 0)])
    m = iou_matrix(a, np.stack([_box(0, 0), _box(25, 0), _box(300, 300)]))
    assert m.shape == (2, 3)
    assert m[0, 0] == pytest.approx(1.0) and m[0, 1] == pytest.approx(1 / 3) and m[1].max() == 0.0


def test_tracks_survive_a_dropped_detection():
    """Two faces moving slowly; face A is missed on one key frame (and B on two): both keep their ids, and
    the box of A is interpolated over the gap. A face gone for longer than max_missed key frames is closed;
    one that appears later gets a new track."""
    tr = IoUTracker(iou_min=0.3, max_missed=2, hold=4)
    for f in range(0, 100, 5):
        boxes = []
        if f != 40:  # A dropped on frame 40
            boxes.append(_box(10 + f * 0.5, 20))
        if f not in (60, 65):  # B dropped on two key frames in a row
            boxes.append(_box(200 - f * 0.3, 30))
        if f >= 70:  # C enters at frame 70
            boxes.append(_box(400, 40))
        # detection order varies: matching must not depend on it
        tr.update(f, np.stack(boxes[::-1] if f % 10 else boxes))
    tracks = tr.finish(100)
    assert [t.id for t in tracks] == [0, 1, 2]
    a, b, c = tracks
    assert (a.first, a.last) == (0, 99) and 40 not in a.frames
    assert (b.first, b.last) == (0, 99) and 60 not in b.frames
    assert c.first == 70 and c.last == 99
    ba = track_boxes(a)
    assert len(ba) == 100
    assert ba[40, 0] == pytest.approx(10 + 40 * 0.5)  # linear through the gap
    # A leaves for good after frame 100: closed after max_missed misses, ending at its last detection + hold
    tr2 = IoUTracker(iou_min=0.3, max_missed=1, hold=4)
    for f in range(0, 50, 5):
        tr2.update(f, np.stack([_box(10, 20)]) if f <= 20 else np.zeros((0, 4)))
    tr2.update(50, np.stack([_box(10, 20)]))  # comes back after the track was closed: a new track
    t0, t1 = tr2.finish(51)
    assert (t0.first, t0.last) == (0, 24) and (t1.first, t1.last) == (50, 50)


def test_hysteresis_and_runs():
    from avrep.apps.speakers import hysteresis, runs

    p = np.array([0.1, 0.6, 0.45, 0.35, 0.2, 0.55, 0.9, 0.9, 0.9, 0.1, np.nan])
    on = hysteresis(p, on=0.5, off=0.3)
    assert on.tolist() == [False, True, True, True, False, True, True, True, True, False, False]
    assert runs(on) == [(1, 4), (5, 9)]
    assert hysteresis(p, 0.5, 0.3, min_run=4).tolist() == [False] * 5 + [True] * 4 + [False] * 2


# ---- real composite ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    import torch

    from avrep.apps.sync import load_model

    torch.set_num_threads(2)
    return load_model(None)[0]


def test_two_face_composite_finds_the_speaker(shared_data, model, tmp_path):
    """Two GRID speakers the model never trained on, side by side, with the audio of one: that face is the
    speaker (and with the other's audio, the other face)."""
    from avrep.apps.speakers import speakers
    from avrep.io.encode import write_mp4
    from avrep.io.media import read_av

    (va, aa), (vb, ab) = (read_av(shared_data / "grid" / f) for f in ("bbaf2n.mpg", "swiz3n.mpg"))
    T = min(len(va.frames), len(vb.frames))
    frames = np.concatenate([va.frames[:T], vb.frames[:T]], axis=2)
    for side, audio in ((0, aa), (1, ab)):
        p = tmp_path / f"two_{side}.mp4"
        write_mp4(p, frames, audio[: T * 640])
        r = speakers(p, model=model, progress=False)
        assert len(r.tracks) == 2
        left = min(r.tracks, key=lambda t: t.boxes[:, 0].mean())
        right = max(r.tracks, key=lambda t: t.boxes[:, 0].mean())
        spk, other = (left, right) if side == 0 else (right, left)
        assert r.main_track() is spk
        assert spk.speaking.mean() > 0.8 and other.speaking.mean() < 0.2
        assert spk.scores.mean() > other.scores.mean() + 0.3
        assert all(sg["track"] == spk.id for sg in r.segments) and r.segments
        assert (r.speaker_per_frame() == spk.id).mean() > 0.8
    # --out: the video boxed (green on the speaker), with the original audio
    from avrep.apps.speakers import write_annotated

    ann = write_annotated(p, r, tmp_path / "annotated.mp4", progress=False)
    vo, ao = read_av(ann)
    assert len(vo.frames) == r.n_frames and np.abs(ao).max() > 0.05
    x0, y0, x1, y1 = spk.boxes[30].round().astype(int)
    edge = vo.frames[30, y0 - 1 : y0 + 2, x0 + 5 : x1 - 5].reshape(-1, 3).astype(int)
    assert ((edge[:, 1] > 150) & (edge[:, 0] < 100)).mean() > 0.5  # green line along the top of the box
    # avrep sync on the two-face file measures on the speaking face and says so
    from avrep.apps.sync import sync_file

    d = sync_file(p, model=model, max_offset=7)
    assert d["speaker_track"] == spk.id and d["n_tracks"] == 2 and "track" in d["note"]
    assert abs(d["offset_frames"]) <= 1, d["offset_frames"]
    # streamed in small chunks (seams every 20 frames, decoded with context): the same answer
    from avrep.apps.speakers import SpeakersConfig

    rc = speakers(p, model=model, config=SpeakersConfig(chunk_frames=20), progress=False)
    assert [(t.first, t.last) for t in rc.tracks] == [(t.first, t.last) for t in r.tracks]
    for a, b in zip(rc.tracks, r.tracks):
        assert np.abs(a.scores - b.scores).mean() < 0.05
        assert (a.speaking == b.speaking).mean() > 0.95


# ---- one-line errors ---------------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avrep", *args], capture_output=True, text=True, cwd=ROOT)


def test_no_face_is_one_line_error(tmp_path, model):
    from avrep.apps.speakers import speakers
    from avrep.errors import NoFaceError
    from avrep.io.encode import write_mp4

    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (1, 96, 128, 3), dtype=np.uint8), 30, 0)  # texture, no face
    t = np.arange(30 * 640) / 16000
    p = tmp_path / "noface.mp4"
    write_mp4(p, frames, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    with pytest.raises(NoFaceError, match="no face found"):
        speakers(p, model=model, progress=False)
    r = _cli("speakers", str(p), "--quiet")
    assert r.returncode == 1  # failed input (2 = usage)
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("avrep: error")]
    assert err == [f"avrep: error: {p}: no face found"], r.stderr
    assert "Traceback" not in r.stderr


def test_no_audio_stream_is_one_line_error(tmp_path):
    from avrep.io.encode import write_mp4

    p = tmp_path / "mute.mp4"
    write_mp4(p, np.full((10, 64, 64, 3), 128, np.uint8))  # video only
    r = _cli("speakers", str(p), "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == f"avrep: error: {p}: no audio stream; speaker detection needs the sound"

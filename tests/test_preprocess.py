"""Preprocessing: real GRID faces/landmarks/ROIs, bad inputs in a batch, resume, workers, true landmarks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from mediautil import DATA, grid_frames, needs_data, tone, write_mp4

from avrep.data.align import FACE_BOX, FACE_SIZE, MEAN_FACE, MOUTH, crop_clip
from avrep.data.landmarks import detect_faces, predict_landmarks, track_landmarks
from avrep.data.recipes import write_manifest
from avrep.data.recipes.folder import prepare_folder
from avrep.data.store import FeatureStore
from avrep.errors import NoFaceError
from avrep.io import media
from avrep.preprocess import PreprocessConfig, preprocess, preview, process_file


@needs_data
@pytest.mark.parametrize("name", ["bbaf2n", "lbax4n", "pwij3p", "swiz3n", "swwp2s"])
def test_real_grid_face_landmarks_and_centred_mouth(name):
    pv = process_file(DATA / "grid" / f"{name}.mpg")
    T = len(pv.mouth)
    assert T == 75 and pv.face_mask.all() and pv.n_faces == 1  # a face + 68 landmarks in every frame
    assert pv.landmarks.shape == (75, 68, 2) and np.isfinite(pv.landmarks).all()
    assert pv.mouth.shape == (75, 96, 96) and pv.face.shape == (75, 128, 128, 3)
    assert pv.audio.shape == (75 * 640,)
    # Independent check of the warp: dlib, run afresh on the aligned face crop, finds the mouth where
    # the mean face puts it (so the mouth ROI, cut around that point, is centred on the mouth).
    s = FACE_SIZE / (FACE_BOX[2] - FACE_BOX[0])
    expect = (MEAN_FACE[MOUTH].mean(0) - np.array(FACE_BOX[:2])) * s
    offs = []
    for t in range(0, 75, 15):
        g = pv.face[t].mean(-1).astype(np.uint8)
        up = np.kron(g, np.ones((2, 2), np.uint8))
        boxes = detect_faces(up)
        assert len(boxes), f"no face in aligned crop {name}:{t}"
        lm = predict_landmarks(up, boxes[0]) / 2
        offs.append(np.linalg.norm(lm[MOUTH].mean(0) - expect))
    assert np.median(offs) < 4.0, offs  # px in the 128 crop (mouth ROI is 96 px of the 256 frame)


@needs_data
def test_grey_leading_frames_are_flagged_not_failed():
    v, _ = media.read_av(DATA / "grid_s1" / "video" / "bbizzn.mp4")
    tr = track_landmarks(v.frames)
    assert not tr.face[0] and tr.face[20:].all()
    assert np.allclose(tr.landmarks[0], tr.landmarks[np.argmax(tr.face)])  # edge-filled


def test_no_face_clip_raises(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.stack(
        [
            np.full((96, 128, 3), 40 + 3 * i, np.uint8) + rng.integers(0, 60, (96, 128, 3), dtype=np.uint8)
            for i in range(12)
        ]
    )
    p = write_mp4(tmp_path / "noface.mp4", frames, audio=tone(12 / 25))
    with pytest.raises(NoFaceError, match="no face"):
        process_file(p)


def _bad_inputs(d):
    """A folder with good clips and one of every bad kind."""
    fr = grid_frames(29)
    write_mp4(d / "good1.mp4", fr, audio=tone(29 / 25))
    write_mp4(d / "good30fps.mp4", grid_frames(35, "lbax4n"), fps=30, audio=tone(35 / 30, sr=44100), sr=44100)
    write_mp4(d / "noaudio.mp4", fr[:10])
    rng = np.random.default_rng(0)
    write_mp4(d / "noface.mp4", rng.integers(0, 255, (12, 64, 64, 3), dtype=np.uint8), audio=tone(0.5))
    (d / "zero.mp4").write_bytes(b"")
    (d / "text.avi").write_text("not a video at all\n" * 10)
    good = (d / "good1.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(good[: len(good) // 3])
    (d / "corrupt.mov").write_bytes(bytes(rng.integers(0, 256, 5000, dtype=np.uint8)))
    write_mp4(d / "huge.mp4", np.zeros((2, 2160, 3840, 3), np.uint8), audio=tone(0.1))


@needs_data
def test_batch_bad_inputs_recorded_others_processed(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _bad_inputs(src)
    df = prepare_folder(src).manifest
    df = pd.concat([df, df.iloc[:1].assign(clip_id="missing", path="missing.mp4")], ignore_index=True)
    m = write_manifest(df, tmp_path / "m.parquet", src, recipe="folder")
    cfg = PreprocessConfig(max_pixels=1920 * 1080, shard_size=3)
    res = preprocess(m, tmp_path / "store", config=cfg, progress=False)
    fs = FeatureStore(tmp_path / "store")
    assert sorted(fs.clips["clip_id"]) == ["good1", "good30fps"]
    reasons = dict(zip(fs.failures["clip_id"], fs.failures["reason"]))
    assert set(reasons) == {"noaudio", "noface", "zero", "text", "truncated", "corrupt", "huge", "missing"}
    assert "no audio" in reasons["noaudio"] and "no face" in reasons["noface"]
    assert "zero length" in reasons["zero"] and "max_pixels" in reasons["huge"]
    assert "not found" in reasons["missing"]
    assert all("\n" not in r and len(r) < 300 for r in reasons.values())
    c = fs.clip("good30fps")
    assert len(c["mouth"]) == 29 and c["audio"].shape == (29 * 640,)  # 35 frames @30 fps -> 29 @25
    assert res.n_ok == 2 and res.n_failed == 8


@needs_data
def test_single_file_cli_error_and_success(tmp_path):
    p = write_mp4(tmp_path / "noaudio.mp4", grid_frames(10))
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "from avrep.cli import main; main()",
            "preprocess",
            str(p),
            "--out",
            str(tmp_path / "s1"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "no audio stream" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "from avrep.cli import main; main()",
            "preprocess",
            str(tmp_path / "nope.mp4"),
            "--out",
            str(tmp_path / "s2"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "file not found" in r.stderr


@needs_data
def test_resume_and_workers_give_identical_store(tmp_path):
    from avrep.data.recipes.grid import prepare_grid

    df = prepare_grid(DATA / "grid_s1").manifest
    keep = sorted(set(df["sentence"]))[:4]
    df = df[df["sentence"].isin(keep)]
    m = write_manifest(df, tmp_path / "m.parquet", DATA / "grid_s1", recipe="grid")
    cfg = PreprocessConfig(shard_size=1)
    mm = {"store_format": "memmap"}  # the memmap layout's resume (compact: tests/test_store_compact.py)
    a = preprocess(m, tmp_path / "a", config=cfg, workers=1, progress=False, **mm)
    assert a.n_ok == 24 and a.n_shards == 4
    # word windows share the sentence's frames: 4 sentences stored once, not 24 x 29 frames
    assert a.n_frames < 24 * 29
    b = preprocess(m, tmp_path / "b", config=cfg, workers=2, progress=False, **mm)
    # simulate a kill: one shard half-written (temp) and the index not yet written
    import shutil

    shutil.rmtree(tmp_path / "b" / "shard_00002")
    (tmp_path / "b" / "clips.parquet").unlink()
    (tmp_path / "b" / ".shard_00002.tmp-999").mkdir()
    b2 = preprocess(m, tmp_path / "b", config=cfg, workers=1, progress=False, **mm)
    assert b2.n_shards_skipped == 3
    fa, fb = FeatureStore(tmp_path / "a"), FeatureStore(tmp_path / "b")
    assert fa.clips.drop(columns=[]).equals(fb.clips)
    for i in range(4):
        for k in ("mouth", "face", "audio", "landmarks"):
            assert np.array_equal(fa.shard(i)[k], fb.shard(i)[k])
    assert not list((tmp_path / "b").glob(".shard_*"))
    import json

    man = json.loads((tmp_path / "a" / "manifest.json").read_text())  # what made the landmarks is recorded
    assert man["config"]["landmark_every"] == cfg.landmark_every == man["landmarks"]["landmark_every"]
    assert man["landmarks"]["counts"]["predictions"] < 0.7 * man["landmarks"]["counts"]["frames"]
    # a word clip = the right window of the sentence
    r = fa.clips.iloc[7]
    sent = fa.clips[fa.clips["path"] == r["path"]]
    lo, hi = int(sent["start_frame"].min()), int(sent["end_frame"].max())
    pv = process_file(r["path"], start=lo, end=hi)  # the sentence range decoded once for its words
    c = fa.clip(7)
    s = int(r["start_frame"]) - lo
    assert np.array_equal(c["mouth"], pv.mouth[s : s + 29])
    assert np.array_equal(c["audio"], pv.audio[s * 640 : (s + 29) * 640])
    full = process_file(r["path"])  # whole video: same crops up to detection key-frame placement
    s0 = int(r["start_frame"])
    assert np.abs(full.mouth[s0 : s0 + 29].astype(int) - c["mouth"].astype(int)).mean() < 3
    assert np.allclose(full.audio[s0 * 640 : (s0 + 29) * 640], c["audio"], atol=1e-6)
    png = preview(tmp_path / "a", tmp_path / "p.png", n_clips=4)
    assert png.stat().st_size > 1000


@needs_data
def test_true_landmarks_and_dlib_error(tmp_path):
    """Synthetic-style clips with known landmarks: 'true' uses them; 'dlib' reports its error."""
    rows = []
    (tmp_path / "landmarks").mkdir()
    for i, name in enumerate(["bbaf2n", "pwij3p"]):
        fr = grid_frames(29, name)
        truth = track_landmarks(fr, detect_every=1, landmark_every=1, smooth_window=1).landmarks  # lossless frames
        np.save(tmp_path / "landmarks" / f"c{i}.npy", truth)
        write_mp4(tmp_path / f"c{i}.mp4", fr, audio=tone(29 / 25))
        rows.append(
            dict(
                clip_id=f"c{i}",
                path=f"c{i}.mp4",
                word="x",
                word_id=0,
                transcript=None,
                speaker=name,
                split="train",
                start_frame=0,
                end_frame=-1,
                landmarks_path=f"landmarks/c{i}.npy",
            )
        )
    m = write_manifest(pd.DataFrame(rows), tmp_path / "m.parquet", tmp_path, recipe="synth")
    t = preprocess(m, tmp_path / "t", config=PreprocessConfig(landmarks="true"), progress=False)
    assert t.n_ok == 2
    assert np.array_equal(FeatureStore(tmp_path / "t").clip("c0")["landmarks"], np.load(tmp_path / "landmarks/c0.npy"))
    d = preprocess(m, tmp_path / "d", config=PreprocessConfig(landmarks="dlib"), progress=False)
    assert d.lm_error_px is not None and 0.2 < d.lm_error_px < 3.0 and d.lm_error_iod < 0.05


@needs_data
def test_several_faces_takes_largest():
    import cv2

    big = grid_frames(12)[:, 40:288, 60:300]  # 240 px wide, face ~125 px
    small = np.stack([cv2.resize(f, (180, 186)) for f in big])
    frames = np.zeros((12, 248, 420, 3), np.uint8) + 90
    frames[:, :, :240] = big
    frames[:, 30:216, 240:420] = small
    tr = track_landmarks(frames)
    assert tr.n_faces == 2 and tr.face.all()
    assert tr.landmarks[:, :, 0].max() < 240  # landmarks on the big face


@needs_data
def test_wild_clip_processes_with_downscaled_decode():
    pv = process_file(DATA / "wild" / "retalking_3.mp4", PreprocessConfig(max_side=320))
    assert pv.face_mask.mean() > 0.9
    assert pv.landmarks[..., 0].max() > 320  # landmarks stay in the 590-px source frame
    c = crop_clip(media.read_video(DATA / "wild" / "retalking_3.mp4").frames[:5], pv.landmarks[:5])
    assert np.abs(c.mouth.astype(int) - pv.mouth[:5].astype(int)).mean() < 12


@needs_data
@pytest.mark.parametrize("name", ["bbaf2n", "swwp2s"])
def test_fast_landmarks_stay_close_to_per_frame(name):
    """Shape predictor on every 2nd frame (the default) + interpolation vs on every frame, real GRID."""
    v = media.read_video(DATA / "grid" / f"{name}.mpg")
    ref = track_landmarks(v.frames, landmark_every=1, detect_every=10)  # the per-frame path
    fast = track_landmarks(v.frames)
    assert fast.n_predictions <= 0.55 * ref.n_predictions and fast.n_detections < ref.n_detections
    assert np.array_equal(fast.face, ref.face)
    a, b = fast.landmarks[:, MOUTH], ref.landmarks[:, MOUTH]
    iod = np.linalg.norm(ref.landmarks[:, 36] - ref.landmarks[:, 45], axis=-1)
    d = np.linalg.norm(a - b, axis=-1)  # [T, 20] px
    # measured: 0.29-0.35% of the inter-ocular distance, p95 ~0.5 px (every 6th frame: 0.8-0.9%, 1.7 px)
    assert (d.mean(1) / iod).mean() < 0.006 and np.percentile(d, 95) < 1.2, (d.mean(), np.percentile(d, 95))
    centre = np.linalg.norm(a.mean(1) - b.mean(1), axis=-1)  # = mouth-ROI centre in the frame
    assert (centre / iod).mean() < 0.004 and centre.max() < 1.0
    o_f = np.linalg.norm(fast.landmarks[:, 62] - fast.landmarks[:, 66], axis=-1)  # inner-lip opening
    o_r = np.linalg.norm(ref.landmarks[:, 62] - ref.landmarks[:, 66], axis=-1)
    assert np.corrcoef(o_f, o_r)[0, 1] > 0.93  # measured 0.96-0.99 (every 6th frame: 0.87-0.9)
    # the mouth ROIs cut from both barely differ (grey levels)
    ca, cb = crop_clip(v.frames, fast.landmarks), crop_clip(v.frames, ref.landmarks)
    assert np.abs(ca.mouth.astype(int) - cb.mouth.astype(int)).mean() < 1.0
    # and the interpolation is doing the work: frames without a prediction are not just copies
    assert not np.allclose(fast.landmarks[1::2], fast.landmarks[0:-1:2])


def test_clean_temp_sweeps_half_written_files(tmp_path):
    """A kill during an atomic write (e.g. of manifest.json) leaves `.manifest.json.XXXX.tmp`: the next run's
    sweep removes it and leaves finished files and shards alone."""
    from avrep.data.store import clean_temp

    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / ".manifest.json.k3j2.tmp").write_text("{")
    (tmp_path / ".shard_00001.tmp-99").mkdir()
    (tmp_path / "shard_00000").mkdir()
    clean_temp(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "shard_00000"]

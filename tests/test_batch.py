"""Long inputs streamed in chunks and batch mode (issue 24), on real clips (skipped when the data is absent)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from avrep.apps.batch import expand_inputs, read_records, run_batch
from avrep.apps.stream import MouthChunk, chunk_layout, chunk_starts
from avrep.errors import AvrepError
from avrep.utils import window_starts


@pytest.fixture(scope="module")
def model():
    from avrep.apps.sync import load_model

    torch.set_num_threads(1)
    return load_model(None, "cpu")


@pytest.fixture(scope="module")
def long_clip(shared_data, tmp_path_factory):
    """Two real GRID s1 sentences of one speaker back to back: 150 frames, 3 chunks at chunk_frames=50."""
    from avrep.io import media
    from avrep.io.encode import write_mp4

    src = [shared_data / "grid_s1" / "video" / f"{n}.mp4" for n in ("bbaf2n", "bbaf4p")]
    if not all(p.exists() for p in src):
        pytest.skip("grid_s1 clips absent")
    vs = [media.read_av(p) for p in src]
    p = tmp_path_factory.mktemp("long") / "two.mp4"
    write_mp4(p, np.concatenate([v.frames for v, _ in vs]), np.concatenate([w for _, w in vs]))
    return p


def test_chunk_windows_are_the_whole_file_windows():
    """Every window of `window_starts` over the file is computed by exactly one chunk, whatever the length."""
    core, left, right = chunk_layout(25, 2, 50)
    assert (core, left, right) == (50, 50, 51)
    for T in (1, 20, 29, 30, 50, 101, 102, 149, 150, 151, 333):
        for w, hop in ((29, 7), (29, 5)):
            got, s = [], 0
            while True:
                a = max(0, s - left)
                last = T < s + core + right
                e = T if last else s + core
                ch = MouthChunk(a, s, e, np.zeros((min(T, s + core + right) - a, 1, 1)), None, None, 0, last)
                ww = min(w, T) if last else w
                for p in chunk_starts(ch, ww, hop):
                    assert ch.start <= p and p + ww <= ch.end, (T, p)
                got += chunk_starts(ch, ww, hop)
                if last:
                    break
                s += core
            assert got == window_starts(T, min(w, T), hop), (T, w, hop)


def test_streamed_features_equal_whole_file(model, long_clip):
    """A tiny chunk (50 frames: 3 chunks) gives the whole file's features, offset and lip-reading."""
    from avrep.apps.agreement import frame_features
    from avrep.apps.lipread import lipread_file
    from avrep.apps.stream import mouth_chunks, stream_config, video_frame_features
    from avrep.apps.sync import sync_file
    from avrep.io import media
    from avrep.preprocess import process_file

    m, _, words = model
    pv = process_file(long_clip)
    vf0, _ = frame_features(m, pv.mouth, pv.audio, landmarks=pv.landmarks)
    vf, face, _ = video_frame_features(
        m, mouth_chunks(long_clip, media.probe(long_clip), stream_config(), chunk_frames=50)
    )
    assert vf.shape == vf0.shape == (150, vf0.shape[1])
    np.testing.assert_allclose(vf, vf0, atol=1e-5)
    assert face.sum() == pv.face_mask.sum()
    a = sync_file(long_clip, model=m, device="cpu")
    b = sync_file(long_clip, model=m, device="cpu", chunk_frames=50)
    assert a["offset_frames"] == b["offset_frames"] and abs(a["confidence"] - b["confidence"]) < 1e-4
    la = lipread_file(long_clip, model=m, words=words, device="cpu")
    lb = lipread_file(long_clip, model=m, words=words, device="cpu", chunk_frames=50)
    assert [t["word"] for t in la["timeline"]] == [t["word"] for t in lb["timeline"]]
    np.testing.assert_allclose([t["prob"] for t in la["timeline"]], [t["prob"] for t in lb["timeline"]], atol=1e-3)
    assert la["topk"][0]["word"] == lb["topk"][0]["word"]


def test_run_batch_resumes_and_records_failures(tmp_path):
    """A record per path; failures recorded, not raised; a rerun skips what the output holds; a torn last line
    (an interrupted write) is dropped and redone."""
    calls = []

    def fn(p):
        calls.append(p)
        if p.endswith("bad"):
            raise AvrepError(f"{p}: broken")
        return {"n": len(p)}

    out = tmp_path / "r.jsonl"
    r = run_batch(["a", "bb", "c_bad"], fn, out, progress=False)
    assert r["done"] == 2 and [p for p, _ in r["failed"]] == ["c_bad"]
    with open(out, "a") as f:
        f.write('{"path": "dd", "n"')  # torn
    r = run_batch(["a", "bb", "c_bad", "dd"], fn, out, progress=False)
    assert r["skipped"] == 3 and r["done"] == 1 and calls[-1] == "dd" and len(calls) == 4
    recs = read_records(out)
    assert [x["path"] for x in recs] == ["a", "bb", "c_bad", "dd"] and "broken" in recs[2]["error"]
    pq = tmp_path / "r.parquet"
    run_batch(["a", "c_bad"], fn, pq, progress=False)
    assert [x["path"] for x in read_records(pq)] == ["a", "c_bad"] and not (
        tmp_path / "r.parquet.partial.jsonl"
    ).exists()
    with pytest.raises(AvrepError, match=r"\.jsonl or \.parquet"):
        run_batch(["a"], fn, tmp_path / "r.txt", progress=False)


def test_manifest_paths(tmp_path):
    import pandas as pd

    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "x.mp4").write_bytes(b"")
    pd.DataFrame({"path": ["v/x.mp4", "/abs/y.mp4"]}).to_csv(tmp_path / "m.csv", index=False)
    assert expand_inputs([tmp_path / "m.csv"]) == [str(tmp_path / "v" / "x.mp4"), "/abs/y.mp4"]
    pd.DataFrame({"file": ["a"]}).to_csv(tmp_path / "n.csv", index=False)
    with pytest.raises(AvrepError, match="no 'path' column"):
        expand_inputs([tmp_path / "n.csv"])
    assert expand_inputs([tmp_path / "v"]) == [str(tmp_path / "v" / "x.mp4")]


def test_sync_folder_one_call(shared_data, tmp_path):
    """`avrep sync DIR -o out.jsonl`: 12 real clips + 2 corrupt in one call with one model load; the corrupt ones
    are listed (record with an error, count on stderr), the rest done; a rerun does nothing new."""
    clips = sorted((shared_data / "lrc_ar" / "video").glob("*.mp4"))[:12]
    if len(clips) < 12:
        pytest.skip("lrc_ar clips absent")
    d = tmp_path / "clips"
    d.mkdir()
    for c in clips:
        (d / c.name).symlink_to(c)
    (d / "zz_text.mp4").write_text("not a video\n")
    (d / "zz_truncated.mp4").write_bytes(clips[0].read_bytes()[:2000])
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "avrep", "sync", str(d), "-o", str(out), "--device", "cpu"]  # no -q: it hides notes
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 14
    bad = sorted(x["path"].rsplit("/", 1)[1] for x in recs if x.get("error"))
    assert bad == ["zz_text.mp4", "zz_truncated.mp4"]
    good = [x for x in recs if not x.get("error")]
    assert len(good) == 12 and all("confidence" in x and "offset_frames" in x for x in good)
    assert "12 done, 2 failed" in r.stderr and r.stderr.count("skipped: ") == 2
    assert r.stderr.count("using the shipped pretrained model") == 1  # one model load for 14 files
    r2 = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0 and "14 already in" in r2.stderr and len(out.read_text().splitlines()) == 14


def test_embed_refuses_a_long_file_with_what_to_do(tmp_path):
    """One embedding is one clip: a file declaring 10 minutes is refused (one line saying to cut it) before any
    decoding; sync/lipread take it (their limit is --max-duration, 2 h)."""
    from mediautil import write_media

    from avrep.io import media
    from avrep.loader import check_clip_length

    frames = np.full((2, 64, 64, 3), 128, np.uint8)
    p = write_media(tmp_path / "long.mp4", frames, pts=[0, 25 * 600])
    assert media.probe(p).duration > 590
    with pytest.raises(AvrepError, match=r"600 s is too long to embed as one clip.*cut the part"):
        check_clip_length(p)
    media.check_limits(media.probe(p), media.MAX_STREAM_DURATION)  # the streamed commands accept it


def test_speakers_and_lipread_batch(shared_data, tmp_path):
    """`avrep speakers A B BAD -o out.parquet` and `avrep lipread manifest.csv` (JSON lines on stdout): a record
    per file, the bad one with its error; exit 0 because some files gave a result."""
    import pandas as pd

    clips = sorted((shared_data / "lrc_ar" / "video").glob("*.mp4"))[:2]
    if len(clips) < 2:
        pytest.skip("lrc_ar clips absent")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    out = tmp_path / "who.parquet"
    base = [sys.executable, "-m", "avrep"]
    r = subprocess.run(
        [*base, "speakers", *map(str, clips), str(bad), "-o", str(out), "--device", "cpu", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    df = pd.read_parquet(out)
    assert list(df["path"]) == [*map(str, clips), str(bad)]
    assert df["error"].isna().tolist() == [True, True, False] and "tracks" in df.columns
    assert "2 done, 1 failed" in r.stderr
    pd.DataFrame({"path": [c.name for c in clips]}).to_csv(tmp_path / "m.csv", index=False)
    for c in clips:
        (tmp_path / c.name).symlink_to(c)
    r = subprocess.run(
        [*base, "lipread", str(tmp_path / "m.csv"), "--device", "cpu", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["path"] for x in recs] == [str(tmp_path / c.name) for c in clips] and all(x["topk"] for x in recs)

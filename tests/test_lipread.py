"""avrep lipread end to end on synthetic clips with a tiny DAVS trained for real (fixture in test_sync)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from test_sync import synth_run  # noqa: F401  (session fixture: tiny run trained on the tiny corpus)

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avrep", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_window_helpers():
    from avrep.apps.lipread import pad_to_window, window_starts

    assert window_starts(29) == [0] and window_starts(10) == [0]
    s = window_starts(75, 29, 5)
    assert s[0] == 0 and s[-1] == 75 - 29 and all(b - a <= 5 for a, b in zip(s, s[1:]))
    m, a = pad_to_window(np.arange(11)[:, None, None] * np.ones((1, 2, 2), np.uint8), np.ones(11 * 640, np.float32))
    assert len(m) == 29 and a.size == 29 * 640 and m[0, 0, 0] == 0 and m[-1, 0, 0] == 10
    assert m[9, 0, 0] == 0 and m[10, 0, 0] == 1  # centred: 9 frames of padding before
    assert a[: 9 * 640].sum() == 0 and a[9 * 640 : 20 * 640].sum() == 11 * 640


def test_lipread_raw_clip_matches_store_path(synth_run):  # noqa: F811
    """A raw mp4 through `lipread_file` gives the probabilities the model gives on the feature store's
    arrays for the same clip: the app really uses the training preprocessing."""
    from avrep.apps.lipread import lipread_file
    from avrep.data.store import FeatureStore
    from avrep.models import load_run

    model, _, words = load_run(synth_run["run"])
    fs = FeatureStore(synth_run["store"])
    c = fs.clips
    row = c[c["split"] == "test"].iloc[0]
    path = Path(row["path"])
    path = path if path.is_absolute() else synth_run["corpus"] / path
    res = lipread_file(path, synth_run["run"], k=4, device="cpu")
    assert res["modality"] == "video" and res["n_frames"] == 29 and "timeline" not in res
    assert len(res["topk"]) == 4
    probs = [t["prob"] for t in res["topk"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    mouth = fs.clip(str(row["clip_id"]), keys=("mouth",))["mouth"]
    with torch.no_grad():
        p = model.classify(mouth=torch.from_numpy(np.asarray(mouth)[None])).softmax(-1)[0].numpy()
    top = np.argsort(-p)[:4]
    assert [t["word_id"] for t in res["topk"]] == top.tolist()
    assert np.allclose(probs, p[top], atol=2e-3)


def test_lipread_with_audio_reads_training_clips_above_chance(synth_run):  # noqa: F811
    """Fused (lips + audio) top-1 on raw clips of the training split, 10 words: chance is 0.1."""
    from avrep.apps.lipread import lipread_file
    from avrep.models import load_run

    model, _, words = load_run(synth_run["run"])
    clips = sorted((synth_run["corpus"] / "clips" / "train").glob("*.mp4"))[::6][:10]
    hits = 0
    for c in clips:
        r = lipread_file(c, model=model, words=words, k=3, with_audio=True, device="cpu")
        hits += r["topk"][0]["word"] == c.stem.rsplit("_", 1)[0]
    assert hits / len(clips) >= 0.5, hits


def test_lipread_long_clip_timeline_and_cli(synth_run, tmp_path):  # noqa: F811
    """Three word clips joined (87 frames): sliding windows give a timeline and merged segments."""
    from avrep.io import media
    from avrep.io.encode import write_mp4

    clips = sorted((synth_run["corpus"] / "clips" / "test").glob("*.mp4"))[:3]
    v, a = zip(*[media.read_av(c) for c in clips])
    long = tmp_path / "three words.mp4"
    write_mp4(long, np.concatenate([x.frames for x in v]), np.concatenate(a))
    p = _cli("lipread", str(long), "--checkpoint", str(synth_run["run"]), "-k", "3", "--json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["n_frames"] == 87 and len(res["topk"]) == 3
    tl = res["timeline"]
    assert tl[0]["start_frame"] == 0 and tl[-1]["end_frame"] == 87
    assert all(b["start_frame"] - a["start_frame"] <= 5 for a, b in zip(tl, tl[1:]))
    segs = res["segments"]
    assert sum(s["n_windows"] for s in segs) == len(tl)
    assert all(s["word"] != t["word"] for s, t in zip(segs, segs[1:]))
    p = _cli("lipread", str(long), "-c", str(synth_run["run"]))
    assert p.returncode == 0 and "87 frames" in p.stdout


def test_lipread_error_paths(synth_run, tmp_path):  # noqa: F811
    from mediautil import write_mp4 as write_test_mp4

    run = str(synth_run["run"])
    rng = np.random.default_rng(0)
    noface = write_test_mp4(tmp_path / "noface.mp4", rng.integers(0, 255, (30, 96, 96, 3), dtype=np.uint8))
    p = _cli("lipread", str(noface), "-c", run)
    assert p.returncode == 1 and "face" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    txt = tmp_path / "notes.mov"
    txt.write_text("hello\n" * 50)
    p = _cli("lipread", str(txt), "-c", run)
    assert p.returncode == 1 and str(txt) in p.stderr and len(p.stderr.strip().splitlines()) == 1
    # video-only clip works without audio; --with-audio on it is a clear error
    clip = sorted((synth_run["corpus"] / "clips" / "test").glob("*.mp4"))[0]
    from avrep.io.media import read_video

    mute = write_test_mp4(tmp_path / "mute.mp4", read_video(clip).frames)
    assert _cli("lipread", str(mute), "-c", run).returncode == 0
    p = _cli("lipread", str(mute), "-c", run, "--with-audio")
    assert p.returncode == 1 and "no audio stream" in p.stderr
    p = _cli("lipread", str(clip), "-c", run, "-k", "0")
    assert p.returncode == 1 and "-k" in p.stderr
    env_missing = subprocess.run(
        [sys.executable, "-m", "avrep", "lipread", str(clip)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={k: v for k, v in __import__("os").environ.items() if k != "AVREP_CHECKPOINT"},
    )
    # no --checkpoint and no $AVREP_CHECKPOINT: the shipped pretrained model, said on stderr (unseen-people issue;
    # the error when no model is shipped is tested in test_pretrained.py)
    assert env_missing.returncode == 0 and "shipped pretrained model" in env_missing.stderr

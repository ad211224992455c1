"""The synthetic corpus: decodable, in sync, disjoint splits, deterministic, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import av
import numpy as np
import pandas as pd

from avrep.synth.corpus import CLIP_SAMPLES, SynthConfig, generate, plan


def _audio(path) -> np.ndarray:
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        assert s.rate == 16000 and s.codec_context.layout.nb_channels == 1
        return np.concatenate([f.to_ndarray()[0] for f in c.decode(s)])[:CLIP_SAMPLES]


def _frames(path) -> tuple[np.ndarray, float]:
    """All video frames (RGB) and the stream's frame rate, decoded by PyAV directly."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(s)]), float(s.average_rate)


def test_clips_decode_and_word_is_inside(tiny_corpus):
    df = pd.read_parquet(tiny_corpus / "manifest.parquet")
    assert len(df) == 80 and df.word.nunique() == 10
    for row in df.head(12).itertuples():
        vr, fps = _frames(tiny_corpus / row.path)
        assert len(vr) == 29 and abs(fps - 25) < 1e-6
        assert vr[0].shape[0] >= 160 and vr[0].shape[1] >= 160
        assert 0 <= row.word_start_frame < row.word_end_frame <= 29
        mid = (row.word_start_frame + row.word_end_frame) / 2
        assert abs(mid - 14.5) <= 2, "word is centred in the clip"
        a = _audio(tiny_corpus / row.path)
        assert len(a) == CLIP_SAMPLES
        w = a[row.word_start_frame * 640 : row.word_end_frame * 640]
        assert np.sqrt(np.mean(w**2)) > 0.01, "speech energy during the word"
        lm = np.load(tiny_corpus / row.landmarks_path)
        assert lm.shape == (29, 68, 2) and np.isfinite(lm).all()


def test_mouth_opening_follows_audio_energy(tiny_corpus):
    df = pd.read_parquet(tiny_corpus / "manifest.parquet")
    opening, energy = [], []
    for row in df.itertuples():
        lm = np.load(tiny_corpus / row.landmarks_path)
        inter_ocular = np.linalg.norm(lm[:, 36:42].mean(1) - lm[:, 42:48].mean(1), axis=1)
        opening.append(np.linalg.norm(lm[:, 62] - lm[:, 66], axis=1) / inter_ocular)
        a = _audio(tiny_corpus / row.path).reshape(29, 640)
        energy.append(np.log(np.mean(a**2, axis=1) + 1e-6))
    r = np.corrcoef(np.concatenate(opening), np.concatenate(energy))[0, 1]
    assert r > 0.3, f"mouth opening vs audio energy Pearson r = {r:.3f}"


def test_splits_disjoint_in_identity_and_voice(tiny_corpus):
    df = pd.read_parquet(tiny_corpus / "manifest.parquet")
    for col in ("identity_id", "voice_id", "voice"):
        sets = {s: set(df[df.split == s][col]) for s in ("train", "val", "test")}
        assert sets["train"] and sets["test"]
        assert not sets["train"] & sets["test"] and not sets["train"] & sets["val"] and not sets["val"] & sets["test"]
    assert set(df.split) == {"train", "val", "test"}
    vocab = json.loads((tiny_corpus / "vocab.json").read_text())
    assert 0 < vocab["ceiling"] <= 1 and len(vocab["words"]) == 10


def test_plan_covers_presets_and_lrw500_identities():
    specs, info = plan(SynthConfig(preset="lrw500", seed=0))
    assert len(specs) == 500 * 1000
    assert len({s["identity_id"] for s in specs}) >= 200 and len(info["voices"]) >= 20
    a, _ = plan(SynthConfig(preset="lrw500", seed=0, shard=(1, 4)))
    assert len(a) == 125000 and all(s["index"] % 4 == 1 for s in a)


def test_deterministic_and_resumable(tmp_path):
    cfg = SynthConfig(preset="tiny", seed=0, n_words=2, clips_per_word=3)
    a = generate(cfg, tmp_path / "a", progress=False)
    # simulate an interrupted run: drop one finished clip's record and its video, then resume
    b_dir = tmp_path / "b"
    generate(cfg, b_dir, progress=False)
    df = pd.read_parquet(b_dir / "manifest.parquet")
    victim = df.iloc[2]
    (b_dir / ".rows" / f"{victim.clip_id}.json").unlink()
    (b_dir / victim.path).unlink()
    res = generate(cfg, b_dir, progress=False)
    assert res["n_rendered"] == 1
    da, db = pd.read_parquet(tmp_path / "a" / "manifest.parquet"), pd.read_parquet(b_dir / "manifest.parquet")
    pd.testing.assert_frame_equal(da, db)
    assert a["n_clips"] == 6
    for p in da.path:
        fa, fb = _frames(tmp_path / "a" / p)[0], _frames(b_dir / p)[0]
        assert len(fa) == 29 and np.array_equal(fa, fb)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "avrep", *args], capture_output=True, text=True)


def test_cli_errors(tmp_path):
    r = _cli("synth", "--preset", "huge", "--out", str(tmp_path / "x"))
    assert r.returncode != 0 and "unknown preset" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    r = _cli("synth", "--preset", "tiny", "--out", str(tmp_path / "full"))
    assert r.returncode != 0 and "not empty" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _cli("synth", "--stats", str(tmp_path / "nothing"))
    assert r.returncode != 0 and "not a synthetic corpus" in r.stderr


def test_cli_stats(tiny_corpus):
    r = _cli("synth", "--stats", str(tiny_corpus), "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["clips"] == 80 and 0 < st["visual_ceiling"] <= 1


def test_cli_version_help():
    r = _cli("--version")
    assert r.returncode == 0 and "avrep" in r.stdout
    r = _cli("--help")
    assert r.returncode == 0 and "synth" in r.stdout

"""avrep sync: offset maths on constructed features, a tiny DAVS trained for real finds known shifts,
the CLI end to end (--json, --fix) and its error paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avrep.eval.sync_metrics import distance_matrix, offset_accuracy, shifted_pair, sync_from_features

ROOT = Path(__file__).resolve().parents[1]


# ---- pure maths -------------------------------------------------------------------------------------
def _features(T: int = 120, D: int = 16, seed: int = 0) -> np.ndarray:
    """Smoothly varying random unit features (like speech: neighbouring frames alike)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T + 8, D))
    x = np.stack([x[i : i + 8].mean(0) for i in range(T)])
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("lead", [-12, -3, 0, 1, 7, 15])
def test_offset_sign_convention_on_constructed_features(lead):
    """audio leading by `lead` frames (sound of video t at audio t - lead) -> offset = lead."""
    f = _features()
    vf = f[20:100]
    af = f[20 + lead : 100 + lead]  # audio frame u carries the content of video frame u + lead
    r = sync_from_features(vf, af, 15)
    assert r.offset_frames == lead and r.offset_ms == lead * 40
    assert r.min_dist < 1e-5 and r.confidence > 0.2
    assert all(w["offset_frames"] == lead for w in r.windows) and len(r.windows) >= 2
    assert "audio leads" in r.sign_convention


def test_noise_gives_low_confidence_and_matrix_shape():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(60, 8)), rng.normal(size=(60, 8))
    D = distance_matrix(a, b, 5)
    assert D.shape == (60, 11) and np.isnan(D[59, 0]) and np.isnan(D[4, -1]) and not np.isnan(D[5, -1])
    good = sync_from_features(_features(60), _features(60), 5)
    bad = sync_from_features(a, b, 5)
    assert bad.confidence < good.confidence


def test_shifted_pair_and_accuracy():
    T, m = 60, 10
    mouth = np.arange(T)[:, None, None] * np.ones((1, 2, 2), np.int64)
    audio = np.repeat(np.arange(T, dtype=np.float32), 640)
    v, a = shifted_pair(mouth, audio, 4, m)
    assert len(v) == T - 2 * m and a.size == len(v) * 640
    # sound of video frame t (original frame t + m) must sit at audio frame t - 4
    assert a[(7 - 4) * 640] == v[7, 0, 0]
    with pytest.raises(ValueError):
        shifted_pair(mouth, audio, 11, m)
    acc = offset_accuracy(np.array([0, 1, 5]), np.array([0, 0, 0]))
    assert acc["exact"] == pytest.approx(1 / 3) and acc["within_1"] == pytest.approx(2 / 3)


# ---- a tiny model trained for real --------------------------------------------------------------------
@pytest.fixture(scope="session")
def synth_run(tiny_corpus, tmp_path_factory):
    """tiny DAVS trained a few epochs on the tiny synthetic corpus (dlib preprocessing, as the apps use)."""
    import torch

    from avrep.data.recipes import write_manifest
    from avrep.data.recipes.synth import prepare_synth
    from avrep.preprocess import preprocess
    from avrep.train.loop import TrainArgs, train

    torch.set_num_threads(2)
    # a fixed folder under the session's base temp: test_lipread/test_report import this fixture, and the
    # run is trained once and reused by them
    work = tmp_path_factory.getbasetemp() / "avrep_apps_run"
    out = {"run": work / "run", "store": work / "store", "corpus": tiny_corpus}
    if (work / "run" / "state.json").exists() and json.loads((work / "run" / "state.json").read_text())["epoch"] == 12:
        return out
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    df, vocab = prepare_synth(tiny_corpus)
    write_manifest(df, work / "m.parquet", tiny_corpus, recipe="synth", vocab=vocab)
    res = preprocess(work / "m.parquet", work / "store", workers=2, progress=False)
    assert res.n_failed == 0
    run = work / "run"
    # sync weighted up: this fixture exists to check the frame-level alignment the sync app reads
    train(
        TrainArgs(
            config="tiny",
            data=str(work / "store"),
            out=str(run),
            epochs=12,
            batch_size=8,
            lr=5e-3,
            device="cpu",
            workers=0,
            threads=2,
            seed=0,
            val_split="",
            loss={"sync": 2.0},
        ),
        progress=False,
    )
    return out


def _sequences(store: Path, split: str, per_seq: int = 3):
    from avrep.data.store import FeatureStore

    fs = FeatureStore(store)
    c = fs.clips.reset_index(drop=True)
    out = []
    for _, g in c[c["split"] == split].groupby("speaker"):
        rows = g.index.tolist()
        for i in range(0, len(rows) - per_seq + 1, per_seq):
            parts = [fs.clip(int(r), keys=("mouth", "audio")) for r in rows[i : i + per_seq]]
            out.append((np.concatenate([p["mouth"] for p in parts]), np.concatenate([p["audio"] for p in parts])))
    if len(out) < 2:  # few clips per identity: join across identities of the split
        idx = c.index[c["split"] == split].tolist()
        for i in range(0, len(idx) - per_seq + 1, per_seq):
            parts = [fs.clip(int(r), keys=("mouth", "audio")) for r in idx[i : i + per_seq]]
            out.append((np.concatenate([p["mouth"] for p in parts]), np.concatenate([p["audio"] for p in parts])))
    return out


def test_trained_model_finds_known_shifts_well_above_chance(synth_run):
    """Held-out clips shifted by known offsets: a trained tiny model beats chance by far, an untrained
    one of the same architecture does not."""
    import torch

    from avrep.apps.sync import sync_arrays
    from avrep.models import create_model, load_run

    model, cfg, _ = load_run(synth_run["run"])
    seqs = _sequences(synth_run["store"], "test")[:4] + _sequences(synth_run["store"], "val")[:2]
    assert len(seqs) >= 3
    offsets = [-12, -7, -3, 0, 4, 9, 13]
    torch.manual_seed(0)
    untrained = create_model(cfg["model"]).eval()
    found, found0, true = [], [], []
    for m, a in seqs:
        for o in offsets:
            v, aa = shifted_pair(m, a, o, 13)
            found.append(sync_arrays(model, v, aa, 15).offset_frames)
            found0.append(sync_arrays(untrained, v, aa, 15).offset_frames)
            true.append(o)
    acc = offset_accuracy(np.array(found), np.array(true))
    acc0 = offset_accuracy(np.array(found0), np.array(true))
    # chance within +-1 over 31 offsets is ~3/31 = 0.10
    assert acc["within_1"] >= 0.5, (acc, list(zip(true, found)))
    assert acc["within_1"] >= acc0["within_1"] + 0.25, (acc, acc0)


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "avrep", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def test_sync_cli_json_and_fix(synth_run, tmp_path):
    """Full path on a raw mp4 (decode, dlib, crops, features); --fix delays the audio by the offset found."""
    from avrep.io import media
    from avrep.io.encode import write_mp4

    clips = sorted((synth_run["corpus"] / "clips" / "test").glob("*.mp4"))[:3]
    frames, audio = zip(*[media.read_av(c) for c in clips])
    v = np.concatenate([f.frames for f in frames])
    a = np.concatenate(audio)
    src = tmp_path / "shifted.mp4"
    write_mp4(src, v[8:-8], a[(8 + 5) * 640 : (8 + 5) * 640 + (len(v) - 16) * 640])  # audio leads by 5
    out = tmp_path / "fixed.mp4"
    p = _cli("sync", str(src), "--checkpoint", str(synth_run["run"]), "--json", "--fix", str(out))
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["sign_convention"].startswith("positive = audio leads")
    assert len(res["dists"]) == 31 and res["max_offset"] == 15
    assert res["offset_ms"] == 40 * res["offset_frames"]
    assert res["confidence"] == pytest.approx(np.nanmedian(res["dists"]) - np.nanmin(res["dists"]), abs=1e-5)
    assert res["min_dist"] == pytest.approx(np.nanmin(res["dists"]), abs=1e-6)
    assert res["n_frames"] == len(v) - 16
    # the fixed file's audio is the input's delayed by exactly offset frames (cross-correlation peak)
    a_in = media.read_audio(src)
    a_out = media.read_audio(out)
    n = min(a_in.size, a_out.size) - 16 * 640
    o = res["offset_frames"]
    lags = range(-20 * 640, 20 * 640 + 1, 160)
    xc = [
        float(np.dot(a_out[16 * 640 + l : 16 * 640 + l + n // 2], a_in[16 * 640 : 16 * 640 + n // 2]))
        if 16 * 640 + l >= 0
        else -1e9
        for l in lags
    ]
    best = list(lags)[int(np.argmax(xc))]
    assert abs(best - o * 640) <= 160, (best, o)
    assert len(media.read_video(out).frames) == res["n_frames"]
    # human output states the sign convention in words
    p2 = _cli("sync", str(src), "-c", str(synth_run["run"]))
    assert p2.returncode == 0 and ("audio leads" in p2.stdout or "audio lags" in p2.stdout or "in sync" in p2.stdout)
    h = _cli("sync", "--help")
    assert "AUDIO LEADS" in h.stdout


def test_sync_error_paths(synth_run, tmp_path):
    from mediautil import write_mp4 as write_test_mp4

    from avrep.io.media import read_video

    run = str(synth_run["run"])
    clip = sorted((synth_run["corpus"] / "clips" / "test").glob("*.mp4"))[0]
    # no audio stream
    silent = write_test_mp4(tmp_path / "noaudio.mp4", read_video(clip).frames)
    p = _cli("sync", str(silent), "-c", run)
    assert p.returncode == 1 and "no audio stream" in p.stderr and str(silent) in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    # unreadable file
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video at all" * 10)
    p = _cli("sync", str(bad), "-c", run)
    assert p.returncode == 1 and str(bad) in p.stderr and len(p.stderr.strip().splitlines()) == 1
    # no face: noise frames with speech-like audio
    rng = np.random.default_rng(0)
    noface = write_test_mp4(
        tmp_path / "noface.mp4",
        rng.integers(0, 255, (30, 96, 96, 3), dtype=np.uint8),
        audio=rng.normal(0, 0.1, 30 * 640).astype(np.float32),
    )
    p = _cli("sync", str(noface), "-c", run)
    assert p.returncode == 1 and "face" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    # missing file, missing/invalid checkpoint, bad --fix name
    p = _cli("sync", str(tmp_path / "nope.mp4"), "-c", run)
    assert p.returncode == 1 and "not found" in p.stderr
    p = _cli("sync", str(clip), "-c", str(tmp_path))
    assert p.returncode == 1 and "not a trained avrep run" in p.stderr
    p = _cli("sync", str(clip), "-c", run, "--fix", str(tmp_path / "out.avi"))
    assert p.returncode == 1 and ".mp4" in p.stderr


def test_sync_head_training_resumes_exactly_and_serves_the_sync_command(synth_run, tmp_path):
    """train_sync adds a sync head to a finished run; 6 steps in one go == 3 steps, stop, resume (same
    weights); the run then answers `avrep sync` on a raw mp4 through its head (landmarks from dlib)."""
    import torch

    from avrep.models import load_run
    from avrep.security import load_safetensors
    from avrep.train.sync_loop import SyncTrainArgs, train_sync

    def args(out: Path, stop_at: int | None = None) -> SyncTrainArgs:
        return SyncTrainArgs(
            init=str(synth_run["run"]),
            out=str(out),
            stores={str(synth_run["store"]): 1.0},
            steps=6,
            stop_at=stop_at,
            batch=4,
            window=13,
            max_offset=4,
            head={"hidden": 16, "out": 8},
            checkpoint_every=3,
            threads=1,
            articulation=0.5,
            synthetic=0.5,  # synthetic sentences beside the store: made once, kept in the run for the resume
            synthetic_clips=2,
        )

    straight = train_sync(args(tmp_path / "a"))
    train_sync(args(tmp_path / "b", stop_at=3))  # a session that ends half way
    resumed = train_sync(args(tmp_path / "b"))
    wa = load_safetensors(straight / "model.safetensors")
    wb = load_safetensors(resumed / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(k.startswith("sync_head.") for k in wa)
    base = load_safetensors(synth_run["run"] / "model.safetensors")
    assert all(torch.equal(base[k], wa[k]) for k in base)  # the rest of the model is untouched
    log = [json.loads(x) for x in (resumed / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [3, 6] and log[-1]["cpu_s"] > log[0]["cpu_s"]
    model, _, _ = load_run(straight)
    assert model.sync_head is not None and model.sync_needs_landmarks
    assert len(list((straight / "snapshots").glob("step_*.safetensors"))) == 2
    assert (straight / "synthetic.npz").exists()

    clip = sorted((synth_run["corpus"] / "clips" / "test").glob("*.mp4"))[0]
    p = _cli("sync", str(clip), "-c", str(straight), "--json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert len(res["dists"]) == 2 * res["max_offset"] + 1 and np.isfinite(res["min_dist"])


def test_train_sync_cli_with_every_lever(synth_run, tmp_path):
    """`avrep train-sync` end to end with articulation, synthetic sentences, the window-level and retrieval losses; a store
    that does not exist is a one-line error naming it."""
    out = tmp_path / "head"
    common = ["--init", str(synth_run["run"]), "--steps", "2", "--batch-size", "4", "--window", "13"]
    common += ["--max-offset", "4", "--hidden", "16", "--checkpoint-every", "2", "--threads", "1", "-q"]
    p = _cli("train-sync", "--data", str(synth_run["store"]), "-o", str(out), *common,
             "--articulation", "0.5", "--synthetic", "0.5", "--synthetic-clips", "3", "--clip-loss", "1", "--match-loss", "0.5")  # fmt: skip
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["step"] == 2 and np.isfinite(res["loss"])
    cfg = json.loads((out / "config.json").read_text())["sync_train"]
    assert (
        cfg["synthetic"] == 0.5
        and cfg["clip_loss"] == 1.0
        and cfg["match_loss"] == 0.5
        and (out / "synthetic.npz").exists()
    )
    p = _cli("train-sync", "--data", str(tmp_path / "nope"), "-o", str(tmp_path / "h2"), *common)
    assert p.returncode != 0 and "Traceback" not in p.stderr and "nope" in p.stderr
    p = _cli("train-sync", "--data", str(synth_run["store"]), "-o", str(tmp_path / "h3"), *common, "--from-head")
    assert p.returncode != 0 and "Traceback" not in p.stderr and "no sync head to start from" in p.stderr
    # the run just trained has one: fine-tuning it starts from its weights (step 2 of 4 picks up where they are)
    p = _cli("train-sync", "--data", str(synth_run["store"]), "-o", str(tmp_path / "h4"), *common[2:], "--init",
             str(out), "--from-head", "--match-loss", "1")  # fmt: skip
    assert p.returncode == 0, p.stderr
    import torch

    from avrep.models import load_run
    from avrep.train.sync_loop import SyncTrainArgs, _prepare_run

    args = SyncTrainArgs(init=str(out), out=str(tmp_path / "h5"), stores={}, head={"hidden": 16}, head_from_init=True)
    model, _ = _prepare_run(args)
    ref = load_run(out)[0].sync_head.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in model.sync_head.state_dict().items())

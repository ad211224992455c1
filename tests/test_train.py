"""Training for real on the built-in toy set: learning, exact resume after a kill, DDP, checkpoints, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from avrep.errors import AvrepError
from avrep.models import load_run
from avrep.security import load_safetensors as load_weights
from avrep.train.loop import TrainArgs, train

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
SMALL_TOY = "toy:n_words=4,clips_per_pair=4"  # 64 train clips: ~1 s per tiny epoch
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _log(run: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "tiny"
    train(
        TrainArgs(config="tiny", data="toy", out=str(run), epochs=8, batch_size=16, lr=5e-3, device="cpu", threads=1),
        progress=False,
    )
    return run


def test_tiny_learns_both_modalities_and_retrieval(tiny_run):
    last = _log(tiny_run)[-1]
    chance = 1 / 6
    assert last["epoch"] == 8
    assert last["val_video_acc"] > 3 * chance, last
    assert last["val_audio_acc"] > 4 * chance, last
    assert last["val_fused_acc"] >= min(last["val_video_acc"], last["val_audio_acc"])
    assert last["val_a2v_R@1"] > 3 / last["val_n"], last  # 1:N retrieval, chance = 1/N
    first = _log(tiny_run)[0]
    assert last["train_loss"] < 0.8 * first["train_loss"]


def test_run_dir_contents_are_pickle_free(tiny_run):
    for name in ("config.json", "vocab.json", "model.safetensors", "state.json", "log.jsonl", "manifest.json"):
        assert (tiny_run / name).exists(), name
    state = json.loads((tiny_run / "state.json").read_text())
    assert state["epoch"] == 8
    ck = tiny_run / state["checkpoint"]
    for f in ("model.safetensors", "optimizer.safetensors", "rng.safetensors"):
        with safe_open(str(ck / f), "pt") as fh:
            assert fh.metadata()["epoch"] == "8"
    assert not list(tiny_run.rglob("*.pt")) and not list(tiny_run.rglob("*.pkl"))
    # weights_only torch.load also works on the tensors (for users who convert)
    w = load_weights(tiny_run / "model.safetensors")
    p = tiny_run / "w.pt"
    torch.save(w, p)
    assert torch.equal(torch.load(p, weights_only=True)["word_head.weight"], w["word_head.weight"])
    p.unlink()


def test_load_run_api(tiny_run):
    model, config, words = load_run(tiny_run, "cpu")
    assert words == [f"word{i}" for i in range(6)] and config["model"]["name"] == "tiny"
    from avrep.data.toy import ToyAVDataset

    ds = ToyAVDataset("val")
    items = [ds[i] for i in range(0, len(ds), 4)]
    mouth = torch.stack([it["mouth"] for it in items])
    wave = torch.stack([it["audio"] for it in items])
    y = torch.tensor([it["word_id"] for it in items])
    with torch.no_grad():
        acc = (model.classify(mouth=mouth, audio=wave).argmax(1) == y).float().mean().item()
        ev, ea = model.embed_video(mouth), model.embed_audio(wave)
    assert acc > 0.5
    assert ev.shape == ea.shape and torch.allclose(ev.norm(dim=1), torch.ones(len(items)), atol=1e-4)


def test_eval_cli_writes_json_and_png(tiny_run, tmp_path):
    out = tmp_path / "ev.json"
    r = subprocess.run(
        [
            PY,
            "-m",
            "avrep",
            "eval",
            str(tiny_run),
            "--data",
            "toy",
            "--split",
            "test",
            "--device",
            "cpu",
            "--workers",
            "0",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    lr = res["lipread"]
    assert lr["audio"]["top1"] > 0.5 and lr["video"]["top1"] > 0.35  # unseen speakers, chance 1/6
    assert lr["video"]["top5"] >= lr["video"]["top1"]
    assert set(res["retrieval"]) == {"a2v", "v2a", "a2v_sync", "v2a_sync"} and res["retrieval"]["a2v"]["N"] == lr["n"]
    # the sync embedding (word + time-aligned frames) finds the clip itself at least as well as the word one
    assert res["retrieval"]["a2v_sync"]["R@1"] >= res["retrieval"]["a2v"]["R@1"] - 0.05
    pr = res["probes"]
    assert pr["word_from_word_features"]["accuracy"] > pr["word_from_identity_features"]["accuracy"] + 0.3
    assert pr["speaker_from_identity_features"]["accuracy"] > pr["speaker_from_identity_features"]["chance"] + 0.2
    assert (tmp_path / res["confusion_png"]).read_bytes()[:4] == b"\x89PNG"


def _args(out: Path, epochs: int) -> TrainArgs:
    return TrainArgs(
        config="tiny",
        data=SMALL_TOY,
        out=str(out),
        epochs=epochs,
        batch_size=16,
        lr=3e-3,
        device="cpu",
        threads=1,
        seed=3,
    )


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    ref = tmp_path / "ref"
    train(_args(ref, 4), progress=False)
    run = tmp_path / "killed"
    code = (
        "import torch; torch.set_num_threads(1)\n"
        "from avrep.train.loop import TrainArgs, train\n"
        f"train(TrainArgs(config='tiny', data={SMALL_TOY!r}, out={str(run)!r}, epochs=4, batch_size=16, "
        "lr=3e-3, device='cpu', threads=1, seed=3), progress=False)\n"
    )
    proc = subprocess.Popen([PY, "-c", code], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "state.json").exists() and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # mid-epoch 2 (or later): the last complete checkpoint survives
    proc.wait()
    killed_at = json.loads((run / "state.json").read_text())["epoch"]
    assert 1 <= killed_at <= 4
    train(_args(run, 4), resume=True, progress=False)
    a, b = load_weights(ref / "model.safetensors"), load_weights(run / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["epoch"] for r in _log(run)] == [1, 2, 3, 4]
    assert [r["train_loss"] for r in _log(run)] == [r["train_loss"] for r in _log(ref)]


def test_refuses_to_overwrite_and_resume_needs_a_run(tmp_path):
    run = tmp_path / "r"
    train(_args(run, 1), progress=False)
    with pytest.raises(AvrepError, match="already holds"):
        train(_args(run, 1), progress=False)
    r = subprocess.run(
        [
            PY,
            "-m",
            "avrep",
            "train",
            "--config",
            "nope",
            "--data",
            "toy",
            "--out",
            str(tmp_path / "x"),
            "--workers",
            "0",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert r.returncode == 1 and r.stderr.startswith("avrep: error:") and "nope" in r.stderr
    r = subprocess.run(
        [
            PY,
            "-m",
            "avrep",
            "train",
            "--data",
            str(tmp_path / "missing_store"),
            "--out",
            str(tmp_path / "y"),
            "--workers",
            "0",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert r.returncode == 1 and "missing_store" in r.stderr and "clips.parquet" in r.stderr


def test_ddp_two_processes_gloo_matches_single_process(tmp_path):
    common = [
        "--config",
        "tiny",
        "--data",
        SMALL_TOY,
        "--epochs",
        "3",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--quiet",
        "--seed",
        "1",
    ]
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = subprocess.run(
        [PY, "-m", "avrep", "train", "--out", str(one), "--batch-size", "16", *common],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert r1.returncode == 0, r1.stderr
    import socket

    with socket.socket() as s:  # a free port for the gloo rendezvous
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    r2 = subprocess.run(
        [
            PY,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            port,
            "-m",
            "avrep",
            "train",
            "--out",
            str(two),
            "--batch-size",
            "8",
            *common,
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert json.loads((two / "config.json").read_text())["world_size"] == 2
    l1, l2 = _log(one), _log(two)
    assert len(l1) == len(l2) == 3
    for a, b in zip(l1, l2):
        # same global batch and sample order; only per-rank BatchNorm statistics differ
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.05), (a, b)
    assert l2[-1]["train_loss"] < l2[0]["train_loss"]

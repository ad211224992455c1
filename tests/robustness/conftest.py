"""Fixtures for the robustness suite: one tiny corpus -> store -> trained run -> embeddings -> indexes,
made once per session (the same settings the kill/resume trials re-run as subprocesses)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

SYNTH = dict(preset="tiny", seed=0, n_words=4, clips_per_word=6)
TRAIN = dict(config="tiny", epochs=2, batch_size=8, workers=0, device="cpu", threads=1, seed=0)
# CI runs one SIGKILL trial per command; the benchmark (or AVREP_KILL_TRIALS=n) runs many.
KILL_TRIALS = int(os.environ.get("AVREP_KILL_TRIALS", "1"))


def train_argv(store: Path, out: Path) -> list[str]:
    t = TRAIN
    return [
        "train",
        "--config",
        t["config"],
        "--data",
        str(store),
        "--out",
        str(out),
        "--epochs",
        str(t["epochs"]),
        "--batch-size",
        str(t["batch_size"]),
        "--workers",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--seed",
        str(t["seed"]),
        "--quiet",
    ]


@pytest.fixture(scope="session")
def rb_root(tmp_path_factory) -> Path:
    import torch

    torch.set_num_threads(1)
    return tmp_path_factory.mktemp("robust")


@pytest.fixture(scope="session")
def rb_corpus(rb_root) -> Path:
    from avrep.synth.corpus import SynthConfig, generate

    out = rb_root / "corpus"
    res = generate(SynthConfig(**SYNTH), out, workers=1, progress=False)
    assert not res["failures"], res["failures"]
    return out


@pytest.fixture(scope="session")
def rb_manifest(rb_corpus, rb_root) -> Path:
    from avrep.data.recipes import write_manifest
    from avrep.data.recipes.synth import prepare_synth

    df, vocab = prepare_synth(rb_corpus)
    return write_manifest(df, rb_root / "manifest.parquet", rb_corpus, recipe="synth", vocab=vocab)


@pytest.fixture(scope="session")
def rb_store(rb_manifest, rb_root) -> Path:
    from avrep.preprocess import PreprocessConfig, preprocess

    out = rb_root / "store"
    res = preprocess(rb_manifest, out, config=PreprocessConfig(landmarks="true", shard_size=4), progress=False)
    assert res.n_ok == 24 and res.n_failed == 0
    return out


@pytest.fixture(scope="session")
def rb_run(rb_store, rb_root) -> Path:
    from avrep.train.loop import TrainArgs, train

    out = rb_root / "run"
    train(TrainArgs(data=str(rb_store), out=str(out), **TRAIN), progress=False)
    return out


@pytest.fixture(scope="session")
def rb_emb(rb_store, rb_run, rb_root) -> dict[str, Path]:
    from avrep.embed_job import embed_store

    out = {}
    for m in ("video", "audio"):
        out[m] = rb_root / f"emb_{m}"
        embed_store(rb_store, rb_run, m, out[m], chunk_size=4, device="cpu", progress=False)
    return out


@pytest.fixture(scope="session")
def rb_index(rb_emb, rb_root) -> dict[str, Path]:
    from avrep.index import build_index

    out = {}
    for m, d in rb_emb.items():
        out[m] = rb_root / f"index_{m}"
        build_index(d, out[m], device="cpu")
    return out


@pytest.fixture(scope="session")
def rb_gen_run(rb_store, rb_run, rb_root) -> Path:
    """A generator trained for one epoch on the store with the DAVS run (so --video works)."""
    from avrep.train.gen_loop import GenTrainArgs, train_generator

    out = rb_root / "gen"
    train_generator(
        GenTrainArgs(
            config="tiny",
            data=str(rb_store),
            davs=str(rb_run),
            out=str(out),
            epochs=1,
            batch_size=4,
            device="cpu",
            threads=1,
            val_clips=2,
        ),
        progress=False,
    )
    return out

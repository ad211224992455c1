"""FeatureDataset/make_loader over a small real store: shapes, augmentation, determinism, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from mediautil import DATA

from avrep.data.dataset import FeatureDataset, make_loader
from avrep.data.recipes import write_manifest
from avrep.preprocess import PreprocessConfig, preprocess


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    if not (DATA / "grid_s1").is_dir():
        pytest.skip("shared real data absent")
    from avrep.data.recipes.grid import prepare_grid

    d = tmp_path_factory.mktemp("ds")
    df = prepare_grid(DATA / "grid_s1").manifest
    sents = sorted(set(df["sentence"]))[:6]
    df = df[df["sentence"].isin(sents)].copy()
    df["split"] = np.where(df["sentence"].isin(sents[:4]), "train", "test")
    m = write_manifest(df, d / "m.parquet", DATA / "grid_s1", recipe="grid")
    sent = prepare_grid(DATA / "grid_s1", level="sentence").manifest
    sent = sent[sent["sentence"].isin(sents[:2])]
    m2 = write_manifest(sent, d / "s.parquet", DATA / "grid_s1", recipe="grid")
    preprocess(m, d / "words", config=PreprocessConfig(shard_size=2), progress=False)
    preprocess(m2, d / "sent", progress=False)
    return d


def test_items_and_eval_determinism(store):
    ds = FeatureDataset(store / "words", "test", train=False)
    assert len(ds) == 12
    it = ds[3]
    assert it["mouth"].shape == (29, 88, 88) and it["mouth"].dtype == torch.float32
    assert 0 <= it["mouth"].min() and it["mouth"].max() <= 1
    assert it["audio"].shape == (29 * 640,) and it["face"].shape == (3, 128, 128) and it["face"].dtype == torch.uint8
    assert it["word_id"] >= 0 and it["speaker_id"] == 0 and 0 <= it["word_start"] < it["word_end"] <= 29
    assert torch.equal(ds[3]["mouth"], it["mouth"])  # eval: centre crop, no randomness
    raw = ds.store.clip(ds.clips["clip_id"].iat[3])["mouth"]
    assert torch.equal((it["mouth"] * 255).round().to(torch.uint8), torch.from_numpy(raw[:, 4:92, 4:92].copy()))


def test_training_augmentation_varies_but_is_seeded(store):
    a = FeatureDataset(store / "words", "train", train=True, seed=1)
    b = FeatureDataset(store / "words", "train", train=True, seed=1)
    assert torch.equal(a[0]["mouth"], b[0]["mouth"])
    outs = []
    for e in range(6):
        a.set_epoch(e)
        outs.append(a[0]["mouth"])
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_sentence_clips_random_windows(store):
    ds = FeatureDataset(store / "sent", None, frames=29, train=False)
    it = ds[0]
    assert it["mouth"].shape == (29, 88, 88) and it["word_id"] == -1
    full = FeatureDataset(store / "sent", None, frames=None, train=False)[0]
    assert full["mouth"].shape[0] == 75 and full["audio"].shape == (75 * 640,)
    pad = FeatureDataset(store / "sent", None, frames=90, train=False)[0]
    assert pad["mouth"].shape[0] == 90 and torch.equal(pad["mouth"][-1], pad["mouth"][74])


def test_loader_batches_fast(store):
    dl = make_loader(store / "words", "train", batch_size=8, workers=0)
    t = time.perf_counter()
    n = 0
    for b in dl:
        assert b["mouth"].shape == (8, 29, 88, 88) and b["audio"].shape == (8, 29 * 640)
        n += len(b["mouth"])
    rate = n / (time.perf_counter() - t)
    assert n == 24 and rate > 30, rate  # clips/s from memmaps on one (shared, busy) core


def test_landmarks_ride_with_the_mouth_and_flip_with_it(store):
    ds = FeatureDataset(store / "words", "test", train=False)
    it = ds[3]
    lm = it["landmarks"]
    assert lm.shape == (29, 68, 2) and lm.dtype == torch.float32
    raw = ds.store.clip(ds.clips["clip_id"].iat[3])["landmarks"]
    assert np.allclose(lm.numpy(), raw[: len(lm)], atol=1e-4)
    # in training, a flipped mouth comes with mirrored landmarks (x -> -1 - x, points renumbered so that
    # point 48 is still the corner on the image's left)
    tr = FeatureDataset(store / "words", "train", train=True, seed=0, time_mask=0)
    flipped = plain = 0
    for e in range(8):
        tr.set_epoch(e)
        lmk = tr[0]["landmarks"].numpy()
        assert (lmk[:, 48, 0] < lmk[:, 54, 0]).all()
        mirrored = lmk[..., 0].mean() < 0
        flipped += mirrored
        plain += not mirrored
    assert flipped and plain  # both happen over a few epochs


def test_strong_augmentation_changes_pixels_and_voice_but_not_shapes(store):
    a = FeatureDataset(store / "words", "train", train=True, seed=3, augment="strong", flip=False, time_mask=0)
    b = FeatureDataset(store / "words", "train", train=True, seed=3, augment="basic", flip=False, time_mask=0)
    x, y = a[1], b[1]
    assert x["mouth"].shape == y["mouth"].shape and x["audio"].shape == y["audio"].shape
    assert not torch.equal(x["mouth"], y["mouth"]) or not torch.equal(x["audio"], y["audio"])
    assert torch.equal(a[1]["mouth"], x["mouth"])  # seeded
    with pytest.raises(Exception, match="augment"):
        FeatureDataset(store / "words", "train", augment="wild")


def test_geometry_model_trains_on_a_real_store_with_strong_augmentation(store, tmp_path):
    """The lip-geometry variant through the real training loop: landmarks reach the model, the loss falls,
    snapshots and CPU seconds are recorded, and the run loads and embeds with landmarks."""
    import json

    from avrep.models import get_config, load_run
    from avrep.train.loop import TrainArgs, train

    cfg = get_config("tiny", video={"geometry": 16})
    run = tmp_path / "geo"
    train(
        TrainArgs(
            config=cfg,
            data=str(store / "words"),
            out=str(run),
            epochs=4,
            batch_size=8,
            lr=5e-3,
            device="cpu",
            threads=1,
            val_split="test",
            augment="strong",
            snapshots=True,
            loss={"sync_shift_max": 3},
        ),
        progress=False,
    )
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    assert all(r["cpu_s"] > 0 for r in log)
    assert len(list((run / "snapshots").glob("epoch_*.safetensors"))) == 4
    model, _, _ = load_run(run, "cpu")
    assert model.needs_landmarks
    # the geometry branch learned something (it starts at exactly zero)
    assert float(model.video.geometry.net[-1].weight.detach().abs().sum()) > 0
    it = FeatureDataset(store / "words", "test", train=False)[0]
    with torch.no_grad():
        e = model.embed_video(it["mouth"][None], it["landmarks"][None])
    assert e.shape[0] == 1 and torch.isfinite(e).all()

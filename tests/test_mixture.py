"""Training over several corpora at once, and learning without word labels (the unseen-people issue)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from mediautil import DATA, needs_data
from torch.utils.data import Dataset

from avrep.data.mixture import MixtureDataset, MixturePart, parse_mixture
from avrep.data.sources import data_meta, open_dataset
from avrep.data.toy import ToyAVDataset
from avrep.errors import AvrepError
from avrep.train.loop import TrainArgs, init_from, train

torch.set_num_threads(1)


class Unlabelled(Dataset):
    """A corpus without word labels (like most real video): the toy clips with word_id -1."""

    def __init__(self, ds) -> None:
        self.ds, self.speakers, self.num_speakers = ds, [str(i) for i in range(ds.num_speakers)], ds.num_speakers

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i):
        return {**self.ds[i], "word_id": -1}


def test_parse_mixture_and_errors():
    assert parse_mixture("a@0.5+b@0.25+c") == [("a", 0.5), ("b", 0.25), ("c", 1.0)]
    assert parse_mixture("toy:n_words=4,n_speakers=3@2") == [("toy:n_words=4,n_speakers=3", 2.0)]
    for bad in ("a@x", "a@-1", "a@0"):
        with pytest.raises(AvrepError, match="data") as e:
            parse_mixture(bad)
        assert e.value.param == "data"  # the CLI adds (--data)


def test_mixture_vocab_speakers_and_weights():
    spec = "toy:n_words=4,n_speakers=3@0.75+toy:n_words=6,n_speakers=2,seed=1@0.25"
    ds = open_dataset(spec, "train", 29, train=True)
    assert ds.words[:4] == data_meta("toy:n_words=4,n_speakers=3", "train").words  # first part's ids kept
    assert len(ds.words) == 6 and ds.num_speakers == 5
    c = ds.counts()
    assert abs(list(c.values())[0] / len(ds) - 0.75) < 0.01
    items = [ds[j] for j in range(len(ds))]
    second = [it for it in items if it["corpus"] == 1]
    assert {it["speaker_id"] for it in second} <= {3, 4}  # speakers numbered after the first corpus's
    a = [ds[j]["clip_id"] for j in range(20)]
    ds.set_epoch(1)
    b = [ds[j]["clip_id"] for j in range(20)]
    ds.set_epoch(0)
    assert a == [ds[j]["clip_id"] for j in range(20)] and a != b  # reproducible per epoch, new each epoch


def test_training_with_an_unlabelled_corpus_learns_sync_and_words(tmp_path):
    """Half the clips have no word label: the word head learns from the rest, the shared space from all."""
    lab = ToyAVDataset("train", n_words=4, n_speakers=3, clips_per_pair=4)
    unl = Unlabelled(ToyAVDataset("train", n_words=4, n_speakers=3, clips_per_pair=4, seed=5))
    mix = MixtureDataset([MixturePart("lab", lab, 0.5, list(lab.words)), MixturePart("unl", unl, 0.5, list(lab.words))])
    val = ToyAVDataset("val", n_words=4, n_speakers=3, clips_per_pair=4)
    run = tmp_path / "run"
    last = train(
        TrainArgs(
            config="tiny", data="mixture", out=str(run), epochs=8, batch_size=16, lr=5e-3, device="cpu", threads=1
        ),
        train_ds=mix,
        val_ds=val,
        progress=False,
    )
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert last["val_video_acc"] > 0.5 and last["val_audio_acc"] > 0.5, last  # chance 0.25
    assert last["val_a2v_R@1"] >= 3 / last["val_n"], last  # chance 1 / val_n
    assert np.isfinite(last["train_loss"]) and last["train_loss"] < 0.8 * log[0]["train_loss"]


def test_unlabelled_only_trains_and_init_copies_matching_weights(tmp_path):
    """No word label anywhere: still trains (word terms skipped, not NaN); --init copies what fits."""
    unl = Unlabelled(ToyAVDataset("train", n_words=4, n_speakers=3, clips_per_pair=4))
    mix = MixtureDataset([MixturePart("unl", unl, 1.0, ["a", "b", "c", "d"])])
    run = tmp_path / "r"
    last = train(
        TrainArgs(
            config="tiny", data="mixture", out=str(run), epochs=2, batch_size=16, device="cpu", threads=1, val_split=""
        ),
        train_ds=mix,
        progress=False,
    )
    assert np.isfinite(last["train_loss"]) and last["train_cls"] == 0.0
    from avrep.models import create_model, get_config

    m = create_model(get_config("tiny", num_words=6, num_speakers=5))
    r = init_from(m, str(run), ["a", "b", "c", "d", "e", "f"])
    assert r["copied"] > 10
    from avrep.models import load_run

    trained, _, _ = load_run(run)
    got, want = m.state_dict(), trained.state_dict()
    same = [k for k in want if k in got and got[k].shape == want[k].shape]
    assert len(same) > 10 and all(torch.equal(got[k], want[k]) for k in same)
    assert torch.equal(m.word_head.weight[:4], trained.word_head.weight)  # vocabulary prefix: rows copied


@needs_data
@pytest.mark.slow
def test_sync_objective_on_real_clips_beats_chance_on_unseen_people(tmp_path):
    """A tiny model trained without word labels on ~100 real lrc_ar clips (4 minutes of CPU) finds the shifts of
    held-out clips of identities it never saw above chance: found and true offsets correlate, and more are
    exact than the 1 in 15 a guess gets."""
    from avrep.apps.sync import frame_features
    from avrep.data.recipes.folder import prepare_folder
    from avrep.eval.sync_metrics import offset_accuracy, sync_from_features
    from avrep.models import load_run
    from avrep.preprocess import preprocess

    res = prepare_folder(DATA / "lrc_ar", speakers=DATA / "lrc_ar" / "identities.csv", ratios=(0.7, 0.1, 0.2), seed=0)
    df = res.manifest
    df = pd.concat(
        [df[df["split"] == "train"].sample(110, random_state=0), df[df["split"] == "test"].sample(16, random_state=0)],
        ignore_index=True,
    )
    df["path"] = [str(DATA / "lrc_ar" / p) for p in df["path"]]  # a DataFrame manifest: absolute paths
    store = tmp_path / "store"
    r = preprocess(df, store, workers=2, progress=False, allow_outside_root=True)
    assert r.n_ok >= 120, r
    run = tmp_path / "run"
    train(
        TrainArgs(
            config="tiny",
            data=str(store),
            out=str(run),
            epochs=36,
            batch_size=16,
            lr=5e-3,
            device="cpu",
            threads=2,
            val_split="",
        ),
        progress=False,
    )
    model, _, words = load_run(run)
    assert words == ["<unk>"]  # no word labels anywhere: one placeholder class
    test = open_dataset(str(store), "test", frames=None, train=False)
    train_ids = set(open_dataset(str(store), "train", train=False).speakers)
    assert not train_ids & set(test.speakers)  # people the model never saw
    found, true = [], []
    for i in range(len(test)):
        c = test.store.clip(test.clips["clip_id"].iat[i], keys=("mouth", "audio"))
        T = len(c["mouth"])
        if T < 24:
            continue
        vf, af = frame_features(model, c["mouth"], c["audio"])
        for o in range(-7, 8):  # video [7, T-7) against the audio moved by o, features in context (unseen.py)
            found.append(sync_from_features(vf[7 : T - 7], af[7 + o : T - 7 + o], 7).offset_frames)
            true.append(o)
    acc = offset_accuracy(np.array(found), np.array(true))
    corr = float(np.corrcoef(found, true)[0, 1])
    assert corr > 0.3 and acc["exact"] > 1.2 / 15, (corr, acc)


def test_sync_loss_follows_a_rolled_audio_and_the_roll_breaks_the_position_shortcut():
    """sync_shift_max: the audio is rolled, and the targets move with it; features that only say where a frame
    sits in its window (what zero padding gives both encoders for free) no longer solve the term."""
    import torch.nn.functional as F

    from avrep.train.losses import roll_audio, sync_loss

    torch.manual_seed(0)
    T, B = 29, 4
    content = F.normalize(torch.randn(B, T, 16), dim=-1)
    s = torch.tensor([0, 3, -5, 6])
    rolled = torch.stack([torch.roll(content[b], int(s[b]), 0) for b in range(B)])
    assert float(sync_loss(content, rolled, 0.05, s)) < 0.01  # content features: right targets, tiny loss
    assert float(sync_loss(content, rolled, 0.05)) > 1.0  # the unshifted targets would be wrong
    position = F.normalize(torch.eye(T)[None].repeat(B, 1, 1), dim=-1)  # "I am frame t of the window"
    assert float(sync_loss(position, position, 0.05)) < 0.01  # solves the unrolled term without any content...
    assert float(sync_loss(position, position, 0.05, s)) > 1.0  # ...but not the rolled one
    wave = torch.arange(T * 8, dtype=torch.float32)[None].repeat(3, 1)
    r, sh = roll_audio(wave, T, 5)
    for b in range(3):
        assert torch.equal(r[b], torch.roll(wave[b], int(sh[b]) * 8))

"""The frozen DAVS a generator trains with when none is given is chosen by the library (issue 25): a Python
caller gets what `avrep train-generator` without --davs gets ($AVREP_CHECKPOINT, else the shipped model)."""

from __future__ import annotations

import json

import pytest
import torch

from avrep.errors import AvrepError
from avrep.models.generator import get_generator_config
from avrep.models.pretrained import pretrained_dir
from avrep.train.gen_data import GenDataset, synthetic_clip_arrays
from avrep.train.gen_loop import GenTrainArgs, default_davs, train_generator


def _davs_config() -> dict:
    cfg = get_generator_config("tiny")  # speech.source "own": its own audio encoder, no DAVS
    cfg["speech"] = {"source": "davs"}
    return cfg


def test_default_davs_follows_the_environment_then_the_shipped_model(tmp_path, monkeypatch):
    monkeypatch.delenv("AVREP_CHECKPOINT", raising=False)
    assert default_davs("tiny") is None
    assert default_davs(_davs_config()) == str(pretrained_dir())
    monkeypatch.setenv("AVREP_CHECKPOINT", str(tmp_path))  # not a run: the environment is read, and checked
    with pytest.raises(AvrepError, match="not a trained avrep run"):
        default_davs(_davs_config())


def test_python_caller_without_davs_trains_on_the_default(tmp_path, monkeypatch):
    monkeypatch.delenv("AVREP_CHECKPOINT", raising=False)
    torch.set_num_threads(1)
    out = tmp_path / "gen"
    train_generator(
        GenTrainArgs(config=_davs_config(), out=str(out), epochs=1, batch_size=4, device="cpu", frames=8),
        train_ds=GenDataset(arrays=synthetic_clip_arrays("train", 4, seed=0), frames=8, train=True),
        progress=False,
    )
    saved = json.loads((out / "config.json").read_text())
    assert saved["train"]["davs"] == str(pretrained_dir())  # recorded, so a resumed run keeps it
    assert saved["davs"] is not None and (out / "davs.safetensors").exists()

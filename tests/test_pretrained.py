"""The shipped pretrained model: it is in the package, loads, is what commands use without --checkpoint (and
they say so), and its weights are the ones its model card names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mediautil import DATA, needs_data

from avrep.errors import AvrepError
from avrep.models.pretrained import DEFAULT_NAME, card, pretrained_dir, resolve_checkpoint, weights_sha256

REPO = Path(__file__).resolve().parents[1]
ENV = {k: v for k, v in os.environ.items() if k != "AVREP_CHECKPOINT"}


def test_shipped_model_is_package_data_and_matches_its_card():
    d = pretrained_dir()
    assert d is not None and d.name == DEFAULT_NAME, "no shipped model in avrep/models/weights/"
    size = (d / "model.safetensors").stat().st_size
    assert size <= 25 * 2**20
    c = card()
    assert c["sha256"] == weights_sha256(d)
    doc = (REPO / "docs" / "model_card.md").read_text()
    assert c["sha256"] in doc, "docs/model_card.md must name the shipped weights' sha256"
    from avrep.models import load_run

    model, config, words = load_run(d)
    assert len(words) >= 51 and config["model"]["name"] == c["config"]


def test_default_checkpoint_resolution(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("AVREP_CHECKPOINT", raising=False)
    assert resolve_checkpoint(None) == pretrained_dir()
    assert "shipped pretrained model" in capsys.readouterr().err
    monkeypatch.setenv("AVREP_CHECKPOINT", str(tmp_path))
    with pytest.raises(AvrepError, match="not a trained avrep run"):
        resolve_checkpoint(None)
    assert resolve_checkpoint(pretrained_dir() / "model.safetensors", quiet=True) == pretrained_dir()


@needs_data
def test_sync_and_lipread_without_checkpoint_use_the_shipped_model():
    clip = DATA / "wild" / "lrs2_demo.mp4"
    for cmd in (["sync", str(clip), "--json"], ["lipread", str(clip), "-k", "3"]):
        r = subprocess.run(
            [sys.executable, "-m", "avrep", *cmd], capture_output=True, text=True, timeout=300, env=ENV, cwd=REPO
        )
        assert r.returncode == 0, r.stderr
        assert re.search(r"using the shipped pretrained model", r.stderr), r.stderr


@needs_data
def test_shipped_model_finds_sync_on_a_real_unseen_clip():
    """Another GRID speaker's MPEG-1 original (a person in no training corpus): in sync (+-1), and a +-5 frame
    shift of it found within +-1."""
    from avrep.apps.sync import frame_features, load_model
    from avrep.eval.sync_metrics import shifted_pair, sync_from_features
    from avrep.preprocess import process_file

    model, _, _ = load_model(None)
    pv = process_file(DATA / "grid" / "lbax4n.mpg")
    vf, af = frame_features(model, pv.mouth, pv.audio)
    assert abs(sync_from_features(vf, af, 15).offset_frames) <= 1
    found = []
    for o in (-5, 5):
        v, w = shifted_pair(pv.mouth, pv.audio, o, 15)
        vf, af = frame_features(model, v, w)
        found.append(sync_from_features(vf, af, 15).offset_frames)
    assert np.all(np.abs(np.array(found) - np.array([-5, 5])) <= 1), found


def test_no_shipped_model_and_no_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    import avrep.models.pretrained as pt

    monkeypatch.delenv("AVREP_CHECKPOINT", raising=False)
    monkeypatch.setattr(pt, "PRETRAINED_ROOT", tmp_path)
    with pytest.raises(AvrepError, match="--checkpoint"):
        pt.resolve_checkpoint(None)

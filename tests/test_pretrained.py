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


def test_default_checkpoint_resolution(tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.delenv("AVREP_CHECKPOINT", raising=False)
    with caplog.at_level("INFO", logger="avrep"):
        assert resolve_checkpoint(None) == pretrained_dir()
    assert "shipped pretrained model" in caplog.text
    assert capsys.readouterr() == ("", ""), "the library logs, it never prints"
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
    vf, af = frame_features(model, pv.mouth, pv.audio, landmarks=pv.landmarks)  # the sync head reads landmarks
    assert abs(sync_from_features(vf, af, 15).offset_frames) <= 1
    found = []
    for o in (-5, 5):
        v, w = shifted_pair(pv.mouth, pv.audio, o, 15)
        vf, af = frame_features(model, v, w, landmarks=pv.landmarks[15:-15])
        found.append(sync_from_features(vf, af, 15).offset_frames)
    assert np.all(np.abs(np.array(found) - np.array([-5, 5])) <= 1), found


def test_no_shipped_model_and_no_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    import avrep.models.pretrained as pt

    monkeypatch.delenv("AVREP_CHECKPOINT", raising=False)
    monkeypatch.setattr(pt, "PRETRAINED_ROOT", tmp_path)
    with pytest.raises(AvrepError, match="give a checkpoint") as e:
        pt.resolve_checkpoint(None)
    assert e.value.param == "checkpoint"


def test_no_shipped_generator_and_no_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    import avrep.models.pretrained as pt

    monkeypatch.setattr(pt, "PRETRAINED_ROOT", tmp_path)
    monkeypatch.delenv("AVREP_GENERATOR", raising=False)
    with pytest.raises(AvrepError, match="no generator: give a checkpoint"):
        pt.resolve_generator(None)


def test_shipped_generator_loads_with_its_parent_davs():
    """The generator ships inside the DAVS run (`generator/`) and reads its frozen speech encoder from there."""
    from avrep.models.loading import load_generator
    from avrep.models.pretrained import DEFAULT_GENERATOR, resolve_generator

    g = resolve_generator(None, quiet=True)
    assert g == pretrained_dir(DEFAULT_GENERATOR) / "generator" and not (g / "davs.safetensors").exists()
    assert (g / "model.safetensors").stat().st_size <= 10 * 2**20
    G, davs, cfg = load_generator(g)
    c = card(DEFAULT_GENERATOR)
    assert (
        c["generator"]["sha256"] == weights_sha256(g)
        and c["generator"]["sha256"] in (REPO / "docs" / "model_card.md").read_text()
    )
    import torch

    from avrep.models import load_run

    ref_model, _, _ = load_run(pretrained_dir(DEFAULT_GENERATOR))
    a, b = ref_model.state_dict(), davs.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@needs_data
def test_generate_without_checkpoint_moves_the_mouth_of_a_real_photo(tmp_path):
    """`avrep generate` with no --checkpoint uses the shipped generator: every frame has a face, and the mouth
    region changes with the speech far more than the eyes do."""
    from avrep.io.encode import write_wav
    from avrep.io.media import read_video
    from avrep.synth.speech import list_voices, synthesize

    wav = tmp_path / "s.wav"
    write_wav(wav, synthesize("place blue at f two now, bin green by a one soon", list_voices()[0]).audio)
    out = tmp_path / "o.mp4"
    r = subprocess.run(
        [sys.executable, "-m", "avrep", "generate", "--face", str(DATA / "faces" / "face1.jpg")]
        + ["--audio", str(wav), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    assert "shipped generator" in r.stderr
    frames = read_video(out).frames.astype(np.float32)
    from avrep.apps.generate import face_transform, read_photo

    photo = read_photo(DATA / "faces" / "face1.jpg")
    _, lm = face_transform(photo)
    mouth, eyes = lm[48:68], lm[36:48]

    def spread(pts):  # per-pixel std over time inside the landmarks' box, averaged
        (x0, y0), (x1, y1) = pts.min(0).astype(int), pts.max(0).astype(int)
        return float(frames[:, y0 : y1 + 1, x0 : x1 + 1].std(0).mean())

    assert spread(mouth) > 3 * max(spread(eyes), 0.5), (spread(mouth), spread(eyes))
    assert len(frames) > 50

"""DAVS model factory, shapes, parameter counts and the inference API."""

from __future__ import annotations

import json

import pytest
import torch

from avrep.errors import AvrepError
from avrep.models import create_model, get_config, list_models
from avrep.models.encoders import count_parameters

torch.set_num_threads(1)


def test_list_models_has_presets():
    assert {"tiny", "small", "base"} <= set(list_models())


@pytest.mark.parametrize("name,lo,hi", [("tiny", 2e4, 3e5), ("small", 3e5, 5e6), ("base", 2e7, 1.2e8)])
def test_create_model_parameter_counts(name, lo, hi):
    m = create_model(name, num_words=50, num_speakers=10)
    n = count_parameters(m)
    assert lo < n < hi, f"{name}: {n} parameters"
    # the word classifier is shared by both modalities and sized by the vocabulary
    assert m.word_head.weight.shape == (50, m.config["embed_dim"])


def test_base_forward_shapes_short_clip():
    m = create_model("base", num_words=5, num_speakers=3).eval()
    with torch.no_grad():
        e = m.embed_video(torch.randint(0, 256, (1, 5, 88, 88), dtype=torch.uint8))
        a = m.frame_features_audio(torch.randn(1, 5 * 640) * 0.1)
    assert e.shape == (1, 512) and a.shape == (1, 5, 512)


def test_api_shapes_norms_and_input_normalisation():
    torch.manual_seed(0)
    m = create_model("tiny", num_words=7, num_speakers=3).eval()
    d = m.config["embed_dim"]
    mouth96 = torch.randint(0, 256, (2, 29, 96, 96), dtype=torch.uint8)
    mouth88 = mouth96[..., 4:92, 4:92]
    wave = torch.randn(2, 29 * 640) * 0.1
    face = torch.randint(0, 256, (2, 3, 128, 128), dtype=torch.uint8)
    with torch.no_grad():
        ev = m.embed_video(mouth88)
        ea = m.embed_audio(wave)
        fv, fa = m.frame_features_video(mouth88), m.frame_features_audio(wave)
        ei = m.embed_identity(face)
        logits = m.classify(mouth=mouth88, audio=wave)
        # uint8 and float 0..255 inputs agree; 96x96 ROIs are centre-cropped inside the model
        assert torch.allclose(ev, m.embed_video(mouth88.float()), atol=1e-5)
        assert torch.allclose(ev, m.embed_video(mouth96), atol=1e-5)
        assert torch.allclose(ev, m.embed_video(mouth88.float() / 255.0), atol=1e-4)  # FeatureDataset's 0..1
        # audio gain is normalised away (per-utterance mean/variance normalisation of log-mel)
        assert torch.allclose(ea, m.embed_audio(wave * 3.0), atol=1e-3)
    assert ev.shape == ea.shape == (2, d)
    assert fv.shape == fa.shape == (2, 29, d)
    assert ei.shape == (2, m.config["identity"]["dim"])
    assert logits.shape == (2, 7)
    for x in (ev, ea, ei, fv, fa):
        assert x.dtype == torch.float32
        assert torch.allclose(x.norm(dim=-1), torch.ones(x.shape[:-1]), atol=1e-4)


def test_config_from_json_path_and_overrides(tmp_path):
    cfg = get_config("tiny", embed_dim=24, video={"frontend_channels": 4})
    assert (
        cfg["video"]["frontend_channels"] == 4 and cfg["video"]["channels"] == get_config("tiny")["video"]["channels"]
    )
    p = tmp_path / "mine.json"
    p.write_text(json.dumps(cfg))
    m = create_model(str(p), num_words=3, num_speakers=2)
    assert m.config["embed_dim"] == 24


def test_bad_configs_raise_avrep_error(tmp_path):
    with pytest.raises(AvrepError, match="unknown model config"):
        create_model("huge")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(AvrepError, match="bad.json"):
        create_model(str(bad))


def test_bad_input_shapes():
    m = create_model("tiny", num_words=3, num_speakers=2).eval()
    with pytest.raises(ValueError):
        m.embed_video(torch.zeros(29, 88, 88))
    with pytest.raises(ValueError):
        m.embed_audio(torch.zeros(29 * 640))


def test_attention_pooling_centre_prior_and_any_length():
    """`pool: attn` starts as a centred Gaussian over time and works for clips of any length; configs
    without `pool` (runs trained before it existed) keep mean+max pooling and their state-dict keys."""
    torch.manual_seed(0)
    m = create_model("tiny").eval()
    assert m.video_proj.pool == "attn"
    w = torch.softmax(m.video_proj.pos, 0)
    assert int(w.argmax()) == 14 and w[14] > 5 * w[0]  # centre frame dominates the edge at init
    with torch.no_grad():
        for T in (9, 29, 50):
            e = m.embed_video(torch.randint(0, 255, (2, T, 96, 96), dtype=torch.uint8))
            assert e.shape == (2, 32) and torch.allclose(e.norm(dim=-1), torch.ones(2), atol=1e-5)
    old = create_model("tiny", pool="meanmax")
    assert "video_proj.pos" not in old.state_dict() and "video_proj.pos" in m.state_dict()
    with pytest.raises(ValueError):
        create_model("tiny", pool="median")


def test_specaugment_trains_only_and_repeats_with_seed():
    """SpecAugment masks bands and spans of the log-mel in training mode only, the same way for the same seed."""
    from avrep.models.encoders import AudioWordEncoder

    cfg = {
        "n_mels": 40,
        "channels": [16, 16],
        "specaug": {"freq": 8, "time": 10, "n": 2},
        "temporal": {"kind": "tcn", "hidden": 16, "layers": 1, "kernel": 3, "dropout": 0.0},
    }
    enc = AudioWordEncoder(cfg)
    wave = torch.randn(4, 29 * 640)
    enc.eval()
    clean = enc.features(wave)
    assert not (clean == 0).all(-1).any()  # no masked time frame at eval
    enc.train()
    torch.manual_seed(1)
    a = enc.features(wave)
    torch.manual_seed(1)
    b = enc.features(wave)
    assert torch.equal(a, b)
    masked = (a == 0) & (clean != 0)
    assert 0.02 < masked.float().mean() < 0.5
    assert (a == 0).all(1).any() or (a == 0).all(2).any()  # whole bands or whole spans

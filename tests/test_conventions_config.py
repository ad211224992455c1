"""One place for each fact: the conventions module, the one audio front-end, the typed config registry."""

from __future__ import annotations

import importlib

import pytest
import torch

from avrep import conventions as C
from avrep.errors import AvrepError, ConfigError

torch.set_num_threads(1)


def test_conventions_are_consistent():
    assert (C.FPS, C.SAMPLE_RATE, C.SAMPLES_PER_FRAME, C.FEATS_PER_FRAME) == (25, 16000, 640, 4)
    assert C.SAMPLES_PER_FRAME * C.FPS == C.SAMPLE_RATE
    assert C.FEATS_PER_FRAME * C.AUDIO_HOP == C.SAMPLES_PER_FRAME
    assert C.CLIP_SAMPLES == C.CLIP_FRAMES * C.SAMPLES_PER_FRAME == 18560
    assert C.FRAME_MS == 40.0 and (C.MOUTH_SIZE, C.MOUTH_CROP, C.FACE_SIZE, C.N_LANDMARKS) == (96, 88, 128, 68)
    assert "audio leads video" in C.SYNC_SIGN


@pytest.mark.parametrize(
    "module,name,fact",
    [
        ("avrep.io.media", "FPS", "FPS"),
        ("avrep.io.media", "SAMPLE_RATE", "SAMPLE_RATE"),
        ("avrep.io.media", "SAMPLES_PER_FRAME", "SAMPLES_PER_FRAME"),
        ("avrep.synth.corpus", "FPS", "FPS"),
        ("avrep.synth.corpus", "SAMPLE_RATE", "SAMPLE_RATE"),
        ("avrep.synth.corpus", "N_FRAMES", "CLIP_FRAMES"),
        ("avrep.synth.corpus", "CLIP_SAMPLES", "CLIP_SAMPLES"),
        ("avrep.features", "SAMPLE_RATE", "SAMPLE_RATE"),
        ("avrep.features", "HOP", "AUDIO_HOP"),
        ("avrep.features", "WIN", "AUDIO_WIN"),
        ("avrep.features", "FRAMES_PER_VIDEO_FRAME", "FEATS_PER_FRAME"),
        ("avrep.models.encoders", "SAMPLES_PER_FRAME", "SAMPLES_PER_FRAME"),
        ("avrep.models.encoders", "FEATS_PER_FRAME", "FEATS_PER_FRAME"),
        ("avrep.models.generator", "FACE_SIZE", "FACE_SIZE"),
        ("avrep.data.dataset", "CROP", "MOUTH_CROP"),
        ("avrep.data.dataset", "SPF", "SAMPLES_PER_FRAME"),
        ("avrep.data.align", "MOUTH_SIZE", "MOUTH_SIZE"),
        ("avrep.data.align", "FACE_SIZE", "FACE_SIZE"),
        ("avrep.data.align", "MOUTH", "MOUTH_LANDMARKS"),
        ("avrep.data.recipes.grid", "WINDOW", "CLIP_FRAMES"),
        ("avrep.data.recipes.lrw", "WINDOW", "CLIP_FRAMES"),
        ("avrep.apps.lipread", "WINDOW", "CLIP_FRAMES"),
        ("avrep.apps.lipread", "SPF", "SAMPLES_PER_FRAME"),
        ("avrep.apps.agreement", "WINDOW", "CLIP_FRAMES"),
        ("avrep.apps.agreement", "SPF", "SAMPLES_PER_FRAME"),
        ("avrep.apps.speakers", "SPF", "SAMPLES_PER_FRAME"),
        ("avrep.apps.sync", "SPF", "SAMPLES_PER_FRAME"),
        ("avrep.apps.generate", "WINDOW", "CLIP_FRAMES"),
        ("avrep.apps.generate", "SPF", "SAMPLES_PER_FRAME"),
        ("avrep.eval.sync_metrics", "FRAME_MS", "FRAME_MS"),
    ],
)
def test_every_module_uses_the_conventions(module, name, fact):
    assert getattr(importlib.import_module(module), name) == getattr(C, fact)


def test_function_defaults_follow_the_conventions():
    import inspect

    from avrep.io.encode import write_mp4, write_wav
    from avrep.synth.speech import synthesize
    from avrep.synth.visemes import articulation_track

    assert inspect.signature(write_mp4).parameters["fps"].default == C.FPS
    assert inspect.signature(write_mp4).parameters["sample_rate"].default == C.SAMPLE_RATE
    assert inspect.signature(write_wav).parameters["sample_rate"].default == C.SAMPLE_RATE
    assert inspect.signature(synthesize).parameters["sample_rate"].default == C.SAMPLE_RATE
    assert inspect.signature(articulation_track).parameters["fps"].default == C.FPS
    from avrep.loader import center_crop

    assert inspect.signature(center_crop).parameters["size"].default == C.MOUTH_CROP


# ---- one audio front-end -------------------------------------------------------------------------------
def test_encoder_frontend_is_features_logmel():
    from avrep.features import LogMel, log_mel
    from avrep.models.encoders import LogMelFrontend

    torch.manual_seed(0)
    wave = torch.randn(2, 29 * C.SAMPLES_PER_FRAME) * 0.1
    fe = LogMelFrontend(40)
    assert isinstance(fe.shared, LogMel)
    assert torch.equal(fe(wave), LogMel(n_mels=40)(wave))
    mel = fe.shared.mel  # the module is a thin shell over the functional core
    assert torch.equal(log_mel(wave, mel.mel_scale.fb, mel.spectrogram.window), fe(wave))
    assert fe(wave).shape == (2, 29 * C.FEATS_PER_FRAME, 40)


def test_encoder_frontend_failure_is_an_error_not_a_fallback(monkeypatch):
    import avrep.features
    from avrep.models.encoders import LogMelFrontend

    def broken(*a, **k):
        raise ImportError("no torchaudio")

    monkeypatch.setattr(avrep.features, "LogMel", broken)
    with pytest.raises(AvrepError, match="LogMel"):
        LogMelFrontend(40)


# ---- the typed config registry -------------------------------------------------------------------------
def test_registry_holds_both_kinds():
    from avrep.models import list_models
    from avrep.models.config import _MODEL_CONFIGS, list_configs, load_config
    from avrep.models.generator import list_generators

    assert list_models() == list_configs("davs") and {"tiny", "small", "base"} <= set(list_models())
    assert list_generators() == list_configs("generator") == ["base", "small", "tiny"]
    assert {"tiny", "gen_tiny"} <= set(_MODEL_CONFIGS)
    a = load_config("tiny")
    a["video"]["channels"].append(1)  # callers get copies, the registry stays as shipped
    assert load_config("tiny")["video"]["channels"] == _MODEL_CONFIGS["tiny"]["video"]["channels"]


@pytest.mark.parametrize(
    "over,key",
    [
        ({"video": {"frontend_chanels": 4}}, "video.frontend_chanels"),
        ({"poool": "attn"}, "poool"),
        ({"audio": {"specaug": {"frq": 3}}}, "audio.specaug.frq"),
        ({"loss": {"synch": 1.0}}, "loss.synch"),
    ],
)
def test_unknown_model_config_key_names_it(over, key):
    from avrep.models import create_model

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as e:
        create_model("tiny", **over)
    assert isinstance(e.value, AvrepError) and "tiny" in str(e.value)


@pytest.mark.parametrize(
    "over,key",
    [
        ({"pool": "median"}, "pool"),
        ({"embed_dim": "32"}, "embed_dim"),
        ({"embed_dim": 0}, "embed_dim"),
        ({"video": {"temporal": {"kind": "lstm"}}}, "video.temporal.kind"),
        ({"video": {"blocks": [1]}}, "video.blocks"),
        ({"identity": {"norm": "xx"}}, "identity.norm"),
    ],
)
def test_bad_model_config_value_names_it(over, key):
    from avrep.models import create_model

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        create_model("tiny", **over)


def test_generator_config_errors_name_the_key():
    from avrep.models.generator import create_generator

    with pytest.raises(ConfigError, match="mouth_head.gird"):
        create_generator("tiny", mouth_head={"gird": 3})
    with pytest.raises(ConfigError, match="size"):
        create_generator("tiny", size=-1)
    with pytest.raises(AvrepError, match="unknown generator config"):
        create_generator("huge")


def test_encoder_config_errors_are_avrep_errors():
    from avrep.models.encoders import AudioWordEncoder, make_temporal

    with pytest.raises(ConfigError, match="kind"):
        make_temporal({"kind": "lstm", "hidden": 8}, 4)
    with pytest.raises(ConfigError, match="channel"):
        AudioWordEncoder({"channels": [8], "temporal": {"hidden": 8}, "chanels": [3]})


def test_saved_run_without_newer_keys_keeps_old_behaviour():
    """A run's config.json from before `pool` / `specaug` existed: mean+max pooling, no SpecAugment."""
    from avrep.models import create_model, get_config
    from avrep.models.config import davs_config

    old = get_config("tiny", num_words=5, num_speakers=2)
    for k in ("pool", "frames", "adversary_hidden", "loss"):
        old.pop(k)
    cfg = davs_config(old)
    assert (cfg.pool, cfg.frames, cfg.audio.specaug) == ("meanmax", C.CLIP_FRAMES, None)
    m = create_model(old)
    assert m.video_proj.pool == "meanmax" and not m.audio.specaug and m.config == old
    assert davs_config(get_config("tiny")).pool == "attn"  # the preset, not the missing-key default


def test_typed_defaults_feed_the_losses():
    from avrep.models.config import DAVSLossConfig, GeneratorLossConfig
    from avrep.train.gen_losses import DEFAULT_LOSS as GEN_LOSS
    from avrep.train.gen_losses import loss_weights
    from avrep.train.losses import DEFAULT_LOSS

    assert DEFAULT_LOSS == DAVSLossConfig().to_dict() and GEN_LOSS == GeneratorLossConfig().to_dict()
    from avrep.models.generator import get_generator_config

    w = loss_weights(get_generator_config("small"))
    assert w["mouth_box_l1"] == 8.0 and w["clip_cos"] == GeneratorLossConfig().clip_cos
    with pytest.raises(ConfigError, match="loss.l2"):
        loss_weights(get_generator_config("small", loss={"l2": 1.0}))

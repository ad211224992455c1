"""`avrep.load(checkpoint, kind, device) -> (model, transform)`: argument -> environment -> shipped registry;
one loader under the Embedder, sync and the generator apps; embeddings unchanged by it (issue 25)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mediautil import DATA, needs_data

import avrep
from avrep.errors import AvrepError
from avrep.loader import ClipTransform, open_model
from avrep.models.loading import load_run
from avrep.models.pretrained import DEFAULT_DAVS, SHIPPED, pretrained_dir, shipped_generator_dir

# The Embedder's embeddings of GRID lbax4n.mpg with the shipped model, computed before the loader existed
# (commit b3e8ef5, Embedder.from_checkpoint -> resolve_checkpoint + load_run): first four values of each.
BEFORE = {
    ("video", "word"): [-0.03286007419228554, 0.034190136939287186, -0.023116614669561386, 0.0633939653635025],
    ("audio", "word"): [0.03378588706254959, -0.0677371695637703, -0.1736508011817932, -0.04890264943242073],
    ("video", "sync"): [-0.014695472083985806, 0.015290293842554092, -0.010338064283132553, 0.028350641950964928],
    ("audio", "sync"): [0.015109507367014885, -0.03029298223555088, -0.0776589959859848, -0.021869929507374763],
}


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("AVREP_CHECKPOINT", raising=False)
    monkeypatch.delenv("AVREP_GENERATOR", raising=False)
    return monkeypatch


def test_load_with_no_argument_is_the_default_shipped_model(clean_env):
    model, transform = avrep.load()
    ref, _, _ = load_run(pretrained_dir(DEFAULT_DAVS))
    assert isinstance(transform, ClipTransform) and transform.needs_landmarks == model.needs_landmarks
    assert not model.training and _same_weights(model, ref)
    assert DEFAULT_DAVS in SHIPPED


def test_load_a_run_dir_a_file_in_it_or_a_shipped_name(clean_env):
    d = pretrained_dir()
    for ck in (d, str(d / "model.safetensors"), DEFAULT_DAVS):
        m = open_model(ck)
        assert m.run_dir == d and m.words and m.config["model"]
    assert _same_weights(avrep.load(str(d))[0], load_run(d)[0])


def test_environment_is_read_when_no_argument(clean_env, tmp_path):
    run = tmp_path / "myrun"
    run.mkdir()
    for f in ("config.json", "model.safetensors", "vocab.json"):
        (run / f).symlink_to(pretrained_dir() / f)
    clean_env.setenv("AVREP_CHECKPOINT", str(run))
    assert open_model().run_dir == run
    assert open_model(pretrained_dir()).run_dir == pretrained_dir()  # the argument wins over the environment
    clean_env.setenv("AVREP_GENERATOR", str(shipped_generator_dir()))
    m = open_model(kind="generator")
    assert m.run_dir == shipped_generator_dir() and m.davs is not None and not m.model.training


def test_bad_path_or_kind_is_one_line_naming_it(clean_env, tmp_path):
    bad = tmp_path / "nowhere"
    with pytest.raises(AvrepError, match=str(bad)) as e:
        avrep.load(bad)
    assert e.value.param == "checkpoint" and "\n" not in str(e.value)
    clean_env.setenv("AVREP_CHECKPOINT", str(bad))
    with pytest.raises(AvrepError, match=str(bad)):
        avrep.load()
    with pytest.raises(AvrepError, match="kind 'lips'"):
        avrep.load(kind="lips")


def test_cli_maps_library_arguments_to_flags():
    from avrep.cli import error_line

    assert error_line(AvrepError("x: not a run", param="checkpoint")) == "avrep: error: x: not a run (--checkpoint)"
    assert error_line(AvrepError("too long", param="max_duration")).endswith("(--max-duration)")
    assert error_line(AvrepError("plain")) == "avrep: error: plain"
    # a batch's recorded reason re-raised as text keeps no param: the library argument it names is mapped
    assert error_line(AvrepError("a.mp4: resolution 9x9 exceeds max_pixels 10")).endswith(
        "max_pixels 10 (--max-pixels)"
    )
    assert error_line(AvrepError("no_face here: nothing")) == "avrep: error: no_face here: nothing"


def test_transform_refuses_arrays_without_landmarks_for_a_geometry_model():
    mouth = np.zeros((29, 96, 96), np.uint8)
    assert ClipTransform(False).mouth(mouth)[0].shape == (29, 88, 88)
    with pytest.raises(AvrepError, match="landmarks"):
        ClipTransform(True).mouth(mouth)


@needs_data
def test_embeddings_unchanged_through_the_loader(clean_env):
    """Bit-identical to the low-level path (load_run + process_file + centre crop + the model), and equal to
    the numbers the Embedder gave before the loader existed."""
    torch.set_num_threads(1)
    from avrep.embed import Embedder
    from avrep.preprocess import PreprocessConfig, process_file

    clip = DATA / "grid" / "lbax4n.mpg"
    e = Embedder.from_checkpoint(None, device="cpu")
    model, transform = avrep.load()
    pv = process_file(clip, PreprocessConfig(require_audio=False))
    mouth, lm = transform.mouth(clip)
    assert np.array_equal(mouth, pv.mouth[:, 4:92, 4:92]) and np.array_equal(lm, pv.landmarks)
    with torch.inference_mode():
        m = torch.from_numpy(np.ascontiguousarray(mouth))[None]
        low_v = model.embed_video(m, torch.from_numpy(lm.astype(np.float32))[None])[0].numpy()
    v = e.embed_video(str(clip))
    assert np.array_equal(v, low_v)
    for (modality, kind), before in BEFORE.items():
        got = e.embed_video(str(clip), kind=kind) if modality == "video" else e.embed_audio(str(clip), kind=kind)
        np.testing.assert_allclose(got[:4], before, rtol=0, atol=1e-6)


@needs_data
def test_cli_error_names_the_flag():
    from avrep.testing.robustness import run_cli

    r = run_cli(["sync", str(DATA / "grid" / "lbax4n.mpg"), "--max-offset", "-1", "--device", "cpu"])
    assert r.code == 1 and r.error_lines == ["avrep: error: max_offset -1: must be >= 0 (--max-offset)"]

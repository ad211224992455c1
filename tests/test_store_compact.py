"""Compact feature store: codec round trip (landmark codec exact on non-finite input too), same items as the memmap store, converter, streaming (local + HTTP)."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from avrep.data.dataset import FeatureDataset
from avrep.data.store import FeatureStore, convert_store
from avrep.preprocess import PreprocessConfig, preprocess

CFG = PreprocessConfig(landmarks="true", shard_size=8)


@pytest.fixture(scope="module")
def stores(tiny_corpus, tmp_path_factory):
    from avrep.data.recipes.synth import prepare_synth

    d = tmp_path_factory.mktemp("compact")
    m = d / "manifest.parquet"
    prepare_synth(tiny_corpus).write(m)
    preprocess(m, d / "memmap", config=CFG, progress=False, store_format="memmap", limit=24)
    preprocess(m, d / "compact", config=CFG, progress=False, limit=24)  # compact is the default
    return d


def test_round_trip_within_codec_error(stores):
    old, new = FeatureStore(stores / "memmap"), FeatureStore(stores / "compact")
    assert (old.format, new.format) == ("memmap", "avrep-wds/1")
    assert list(old.clips["clip_id"]) == list(new.clips["clip_id"])
    for i in range(0, len(old), 5):
        a, b = old.clip(i), new.clip(i)
        np.testing.assert_array_equal(a["face_mask"], b["face_mask"])  # lossless
        assert np.abs(a["landmarks"] - b["landmarks"]).max() <= 1 / 32 + 1e-4  # kept to 1/16 px
        assert np.abs(a["audio"] - b["audio"]).max() <= 1 / 32767 + 1e-7  # 16-bit FLAC
        for k, mae in (("mouth", 2.5), ("face", 4.0)):  # H.264 crf 18/22: stated mean abs error bounds
            assert a[k].shape == b[k].shape and b[k].dtype == np.uint8
            assert np.abs(a[k].astype(float) - b[k]).mean() < mae, k
    old_bytes = sum(f.stat().st_size for f in (stores / "memmap").rglob("*.npy"))
    new_bytes = sum(f.stat().st_size for f in (stores / "compact").glob("*.tar"))
    assert new_bytes * 10 < old_bytes


def test_landmark_codec_bounds():
    from avrep.data import codecs

    rng = np.random.default_rng(0)
    lm = (rng.random((40, 68, 2)) * 1900).astype(np.float32)
    assert np.abs(codecs.decode_landmarks(codecs.encode_landmarks(lm)) - lm).max() <= 1 / 32 + 1e-4
    lm[3, 5, 0] = np.nan  # kept exactly, NaN included
    np.testing.assert_array_equal(codecs.decode_landmarks(codecs.encode_landmarks(lm)), lm)


def test_items_keep_the_contract_and_legacy_reads(stores):
    a = FeatureDataset(stores / "memmap", "train", train=False)
    b = FeatureDataset(stores / "compact", "train", train=False)
    assert len(a) == len(b)
    x, y = a[3], b[3]
    assert x.keys() == y.keys()
    for k in x:
        if hasattr(x[k], "shape"):
            assert (x[k].shape, x[k].dtype) == (y[k].shape, y[k].dtype), k
        else:
            assert x[k] == y[k], k
    assert (x["mouth"] - y["mouth"]).abs().mean() < 0.01
    # training draws (window, crop, flip, face frame) are the same on both formats
    ta, tb = FeatureDataset(stores / "memmap", "train", seed=3), FeatureDataset(stores / "compact", "train", seed=3)
    assert (ta[1]["mouth"] - tb[1]["mouth"]).abs().mean() < 0.01


def assert_same_store(a: Path, b: Path) -> None:
    """The same store: identical tar shards (byte for byte) and index tables."""
    tars = sorted(p.name for p in a.glob("*.tar"))
    assert tars and tars == sorted(p.name for p in b.glob("*.tar"))
    for t in tars:
        assert (a / t).read_bytes() == (b / t).read_bytes(), t
    sa, sb = FeatureStore(a), FeatureStore(b)
    cols = ["clip_id", "shard", "sample", "offset", "n_frames"]
    assert sa.clips[cols].equals(sb.clips[cols])
    assert sa.samples[["key", "shard", "n_frames"]].equals(sb.samples[["key", "shard", "n_frames"]])
    assert sa.samples.equals(sb.samples)


def test_converter_matches_a_fresh_compact_store(stores, tmp_path):
    from avrep.errors import AvrepError

    res = convert_store(stores / "memmap", tmp_path / "conv", progress=False)
    assert res["n_clips"] == len(FeatureStore(stores / "compact"))
    assert_same_store(tmp_path / "conv", stores / "compact")
    with pytest.raises(AvrepError, match="already a compact store"):
        convert_store(stores / "compact", tmp_path / "again", progress=False)
    with pytest.raises(AvrepError, match="compact store has no memmap shards"):
        FeatureStore(stores / "compact").shard(0)


def test_killed_run_resumes_to_the_same_store(stores, tmp_path):
    import shutil

    m = stores / "manifest.parquet"
    shutil.copytree(stores / "compact", tmp_path / "c")
    # a kill: one shard's tar missing (its parts may be there), a temp tar left, the index not written
    (tmp_path / "c" / "shard_00001.tar").unlink()
    (tmp_path / "c" / "clips.parquet").unlink()
    (tmp_path / "c" / ".shard_00001.tar.tmp-999").write_bytes(b"half")
    res = preprocess(m, tmp_path / "c", config=CFG, progress=False, limit=24)
    assert (res.n_shards, res.n_shards_skipped) == (3, 2)
    assert not list((tmp_path / "c").glob(".shard_*"))
    assert_same_store(tmp_path / "c", stores / "compact")


def _serve(root: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_streaming_local_http_and_resume(stores):
    pytest.importorskip("aiohttp")  # fsspec's HTTP filesystem
    from avrep.data.streaming import StreamingFeatureDataset

    ref = FeatureDataset(stores / "compact", "train", train=False)
    local = list(StreamingFeatureDataset(str(stores / "compact"), "train", train=False))
    assert sorted(x["clip_id"] for x in local) == sorted(ref.clips["clip_id"])
    by_id = {x["clip_id"]: x for x in local}
    for i in (0, 7):
        a, b = ref[i], by_id[ref.clips["clip_id"].iat[i]]
        assert a["word_id"] == b["word_id"] and (a["mouth"] == b["mouth"]).all() and (a["audio"] == b["audio"]).all()

    srv = _serve(stores)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/compact"
        ds = StreamingFeatureDataset(url, "train", train=True, shuffle_buffer=8, seed=1)
        full = [x["clip_id"] for x in ds]
        assert sorted(full) == sorted(ref.clips["clip_id"]) and full != sorted(full)  # shuffled
        again = StreamingFeatureDataset(url, "train", train=True, shuffle_buffer=8, seed=1)
        it = iter(again)
        head = [next(it)["clip_id"] for _ in range(5)]
        state = again.state_dict()
        resumed = StreamingFeatureDataset(url, "train", train=True, shuffle_buffer=8, seed=1)
        resumed.load_state_dict(state)
        assert head + [x["clip_id"] for x in resumed] == full  # exact resume from the position
    finally:
        srv.shutdown()

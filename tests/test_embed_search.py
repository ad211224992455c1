"""Embeddings of a trained model -> FAISS index -> search, for both embedding kinds (word, sync)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_sync import synth_run  # noqa: F401  (session fixture: tiny DAVS trained for real)

from avrep.cli import cli
from avrep.errors import AvrepError


def _r1(q: np.ndarray, g: np.ndarray) -> float:
    return float(np.mean((q @ g.T).argmax(1) == np.arange(len(q))))


@pytest.fixture(scope="module")
def embs(synth_run, tmp_path_factory):  # noqa: F811
    from avrep.embed_job import embed_store, load_embeddings

    out = tmp_path_factory.mktemp("emb")
    res = {}
    for kind in ("word", "sync"):
        for mod in ("audio", "video"):
            d = out / f"{kind}_{mod}"
            embed_store(
                synth_run["store"], synth_run["run"], mod, d, split="train", device="cpu", progress=False, kind=kind
            )
            res[kind, mod] = (d, *load_embeddings(d))
    return res


def test_sync_embedding_finds_the_clip_in_sync(embs):
    """Among clips of the same word the sync kind ranks the matching video first far more often."""
    (_, wa, _), (_, wv, _) = embs["word", "audio"], embs["word", "video"]
    (_, sa, _), (_, sv, _) = embs["sync", "audio"], embs["sync", "video"]
    assert sa.shape[1] > wa.shape[1] and np.allclose(np.linalg.norm(sa, axis=1), 1, atol=1e-4)
    n = len(sa)
    r_word, r_sync = _r1(wa, wv), _r1(sa, sv)
    print("R@1 word", r_word, "sync", r_sync, "n", n)
    assert n >= 40 and r_sync > 8 / n  # far above chance (1/n)
    assert r_sync >= r_word + 0.1, (r_word, r_sync)


def test_cli_sync_index_audio_file_query_finds_own_video(embs, synth_run, tmp_path):  # noqa: F811
    d_video = embs["sync", "video"][0]
    r = CliRunner().invoke(cli, ["index", "build", str(d_video), "--out", str(tmp_path / "ix")])
    assert r.exit_code == 0, r.output
    assert "(exact)" in r.output  # a small collection is searched exactly
    man = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert man["kind"] == "sync" and man["dim"] == embs["sync", "video"][1].shape[1]
    meta = embs["sync", "video"][2]
    hits = 0
    for _, row in meta.iloc[::6].iterrows():  # 10 queries, one per word
        r = CliRunner().invoke(cli, ["search", str(tmp_path / "ix"), "--audio", str(row["path"]), "-k", "5", "--json"])
        assert r.exit_code == 0, r.output
        top = json.loads(r.output)["results"][0]
        assert len(top) == 5 and all(h["word"] for h in top)
        hits += row["clip_id"] in [h["clip_id"] for h in top]
    # the audio of a raw file (decoded + resampled here) finds that file's video among 60 clips in its top 5
    # (chance: 5/60 per query) for most queries, even with this tiny model
    print("top-5 hits", hits)
    assert hits >= 5, hits


def test_kinds_do_not_mix(embs, synth_run, tmp_path):  # noqa: F811
    from avrep.embed_job import embed_store
    from avrep.index import add_to_index, build_index

    build_index(embs["sync", "video"][0], tmp_path / "ix")
    with pytest.raises(AvrepError, match="kind"):
        add_to_index(embs["word", "video"][0], tmp_path / "ix")
    with pytest.raises(AvrepError, match="identity"):
        embed_store(synth_run["store"], synth_run["run"], "identity", tmp_path / "e", kind="sync", progress=False)
    with pytest.raises(AvrepError, match="exists|different kind"):  # resuming into a folder of another kind
        embed_store(
            synth_run["store"],
            synth_run["run"],
            "video",
            embs["word", "video"][0],
            split="train",
            kind="sync",
            progress=False,
        )


def test_cli_search_rerank_by_temporal_matching(embs, synth_run, tmp_path):  # noqa: F811
    """`avrep search --audio F --rerank N` (and `--video F` on an audio index): the top N pooled candidates
    re-ordered by frame-by-frame matching (match scores, best first); it finds the file's own clip far above
    chance and about as often as pooled vectors do on this tiny model; misuse is a one-line error."""
    import shutil

    d_video = embs["sync", "video"][0]
    ix = tmp_path / "ix"
    assert CliRunner().invoke(cli, ["index", "build", str(d_video), "--out", str(ix)]).exit_code == 0
    meta = embs["sync", "video"][2]
    hits = {None: 0, "20": 0}
    for _, row in meta.iloc[::6].iterrows():  # 10 queries, one per word
        for rr in hits:
            extra = [] if rr is None else ["--rerank", rr]
            args = ["search", str(ix), "--audio", str(row["path"]), "-k", "3", "--json", *extra]
            r = CliRunner().invoke(cli, args)
            assert r.exit_code == 0, r.output
            out = json.loads(r.output)
            top = out["results"][0]
            assert len(top) == 3 and out["rerank"] == (None if rr is None else 20)
            if rr is not None:
                s = [h["score"] for h in top]
                assert s == sorted(s, reverse=True) and all(-1 <= v <= 1 for v in s)
            hits[rr] += row["clip_id"] == top[0]["clip_id"]
    print("top-1 hits pooled / re-ranked", hits)
    # far above chance (1 in 60 a query) on this tiny model; the gain over pooled vectors is measured on real
    # held-out people in benchmarks/rerank.py
    assert hits["20"] >= 3 and hits["20"] >= hits[None] - 1, hits

    def err(r) -> str:  # the CLI entry point prints an AvrepError as one line; CliRunner hands it back raised
        assert r.exit_code != 0 and isinstance(r.exception, AvrepError), r.output
        assert "\n" not in str(r.exception)
        return str(r.exception)

    assert "--rerank" in err(CliRunner().invoke(cli, ["search", str(ix), "--vector", "x.npy", "--rerank", "5"]))
    aix = tmp_path / "aix"
    assert CliRunner().invoke(cli, ["index", "build", str(embs["sync", "audio"][0]), "--out", str(aix)]).exit_code == 0
    r = CliRunner().invoke(cli, ["search", str(aix), "--audio", str(meta["path"][0]), "--rerank", "5", "-k", "3"])
    assert "index of videos" in err(r)
    # the other way round: a video file finds its own sound track among the audio clips
    vhits = {None: 0, "20": 0}
    for _, row in meta.iloc[::6].iterrows():
        for rr in vhits:
            extra = [] if rr is None else ["--rerank", rr]
            r = CliRunner().invoke(cli, ["search", str(aix), "--video", str(row["path"]), "-k", "3", "--json", *extra])
            assert r.exit_code == 0, r.output
            vhits[rr] += row["clip_id"] == json.loads(r.output)["results"][0][0]["clip_id"]
    print("video -> audio top-1 hits pooled / re-ranked", vhits)
    # the Python API takes a video as a store holds it (mouth crops + landmarks) and gives what the file gives
    from avrep.data.store import FeatureStore
    from avrep.index import Index, search_matched

    row = meta.iloc[0]
    c = FeatureStore(synth_run["store"]).clip(str(row["clip_id"]), keys=("mouth", "landmarks"))
    api = search_matched(Index.open(aix), video=(c["mouth"], c["landmarks"]), k=3, candidates=20, device="cpu")
    r = CliRunner().invoke(
        cli, ["search", str(aix), "--video", str(row["path"]), "-k", "3", "--json", "--rerank", "20"]
    )
    cli_top = [h["clip_id"] for h in json.loads(r.output)["results"][0]]
    assert list(api.to_frame()["clip_id"]) == cli_top
    assert vhits["20"] >= 3 and vhits["20"] >= vhits[None] - 1, vhits
    moved = tmp_path / "emb_moved"
    shutil.copytree(d_video, moved)
    man = json.loads((moved / "manifest.json").read_text())
    (moved / "manifest.json").write_text(json.dumps({**man, "store": str(tmp_path / "gone")}))
    assert CliRunner().invoke(cli, ["index", "build", str(moved), "--out", str(tmp_path / "ix2")]).exit_code == 0
    r = CliRunner().invoke(
        cli, ["search", str(tmp_path / "ix2"), "--audio", str(meta["path"][0]), "--rerank", "5", "-k", "3"]
    )
    assert "not available here" in err(r) and str(tmp_path / "gone") in err(r)

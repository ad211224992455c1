"""Concurrency: two `avrep index build`s to one path (one wins, the other errors, the index is whole),
and one `avrep.Index` answering searches from many threads exactly as it answers them serially."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avrep.testing.robustness import CLI, REPO, SUB_ENV, run_cli


def test_two_concurrent_builds_one_wins(rb_emb, rb_index, tmp_path):
    out = tmp_path / "idx"
    argv = CLI + ["index", "build", str(rb_emb["video"]), "--out", str(out), "--device", "cpu"]
    procs = [
        subprocess.Popen(argv, env=SUB_ENV, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    res = [(p.wait(300), p.stderr.read()) for p in procs]
    codes = sorted(r[0] for r in res)
    assert codes == [0, 1], res
    loser = next(err for rc, err in res if rc == 1)
    line = [ln for ln in loser.splitlines() if ln.startswith("avrep: error:")]
    assert len(line) == 1 and ("another build is writing" in line[0] or "already exists" in line[0]), loser
    assert (out / "index.faiss").read_bytes() == (rb_index["video"] / "index.faiss").read_bytes()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_build_while_locked_errors_at_once(rb_emb, tmp_path):
    """Deterministic version of the race: a build that finds the lock held fails, writing nothing."""
    from avrep.index.store import build_lock

    out = tmp_path / "idx"
    with build_lock(out):
        r = run_cli(["index", "build", str(rb_emb["video"]), "--out", str(out), "--device", "cpu"])
    assert r.code == 1 and len(r.error_lines) == 1 and "another build is writing" in r.error_lines[0]
    assert not out.exists()
    assert run_cli(["index", "build", str(rb_emb["video"]), "--out", str(out), "--device", "cpu"]).code == 0


def _emb_folder(d: Path, n: int = 4000, dim: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((40, dim))
    x = centers[rng.integers(0, 40, n)] + 0.5 * rng.standard_normal((n, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    d.mkdir(parents=True)
    np.save(d / "emb_00000.npy", x)
    pd.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(n)],
            "split": rng.choice(["train", "val", "test"], n),
            "speaker": rng.choice([f"s{i}" for i in range(50)], n),
        }
    ).to_parquet(d / "meta_00000.parquet")
    (d / "manifest.json").write_text(json.dumps({"modality": "video", "dim": dim, "metric": "ip", "normalized": True}))
    return d


@pytest.mark.parametrize("index_type", ["HNSW32", "IVF", "Flat"])
def test_index_concurrent_thread_searches(tmp_path, index_type):
    from avrep.index import Index, build_index

    emb = _emb_folder(tmp_path / "emb")
    build_index(emb, tmp_path / "idx", index_type=index_type, device="cpu")
    ix = Index.open(tmp_path / "idx")
    rng = np.random.default_rng(1)
    qs = rng.standard_normal((64, 32)).astype(np.float32)
    wheres = [None, {"split": "test"}, ["speaker=s3"], {"speaker": ["s1", "s2", "s7"]}, ["split=val", "speaker=s4"]]
    jobs = [(i, w) for i in range(len(qs)) for w in range(len(wheres))]
    serial = {j: ix.search(qs[j[0] : j[0] + 1], 10, where=wheres[j[1]]) for j in jobs}
    order = [jobs[i] for i in rng.permutation(len(jobs))] * 4

    def one(j):
        r = ix.search(qs[j[0] : j[0] + 1], 10, where=wheres[j[1]])
        return j, r

    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(one, order))
    assert len(results) == len(order)
    for j, r in results:
        s = serial[j]
        assert np.array_equal(r.ids, s.ids), (index_type, j)
        assert np.allclose(r.scores, s.scores, atol=1e-6)
        w = wheres[j[1]]
        if w:  # filters were applied inside every threaded search
            got = r.to_frame()
            from avrep.index.search import parse_where

            for col, vals in parse_where(w).items():
                assert got[col].astype(str).isin([str(v) for v in vals]).all()
    # a batch from threads equals the batch serially
    with ThreadPoolExecutor(4) as ex:
        batches = list(ex.map(lambda _: ix.search(qs, 5).ids, range(8)))
    assert all(np.array_equal(b, ix.search(qs, 5).ids) for b in batches)

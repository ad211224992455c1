"""Audio->video retrieval through the CLI, the way a user runs it -> benchmarks/results/retrieval.json.

For each (label, run, store) and each embedding kind (word, sync): `avrep embed --kind K` the test split
(video and audio), `avrep index build` over the video embeddings, `avrep search --batch` with every audio
embedding as a query and -k N (N = the whole test split, so every rank is known), then R@1/5/10 and the
median rank of each query's own clip.

    python benchmarks/retrieval.py --case synthetic:out/demo2/run:out/demo2/store \
                                   --case grid_s1:/work/bench_grid2/run_small:/work/stores/grid_s1
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import ROOT, goals, now, read_result, versions, write_result


def avrep(*args: str) -> str:
    """Run one `avrep` CLI command (same interpreter), fail loudly, return stdout."""
    cmd = [sys.executable, "-m", "avrep.cli", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed ({p.returncode}): {p.stderr.strip()[-1500:]}")
    return p.stdout


def one_case(label: str, run: Path, store: Path, split: str, work: Path, kind: str) -> dict:
    w = work / label / kind
    shutil.rmtree(w, ignore_errors=True)
    w.mkdir(parents=True)
    t0 = time.perf_counter()
    for mod in ("video", "audio"):
        avrep(
            "embed",
            str(store),
            "-c",
            str(run),
            "--modality",
            mod,
            "--kind",
            kind,
            "--split",
            split,
            "-o",
            str(w / f"emb_{mod}"),
        )
    t_embed = time.perf_counter() - t0
    print(avrep("index", "build", str(w / "emb_video"), "--out", str(w / "index")).strip().splitlines()[-1])
    from avrep.embed_job import load_embeddings

    qa, qmeta = load_embeddings(w / "emb_audio")
    qids = qmeta["clip_id"].astype(str).tolist()
    np.save(w / "queries.npy", qa)
    n_index = json.loads((w / "emb_video" / "manifest.json").read_text())["n"]
    t1 = time.perf_counter()
    res = json.loads(
        avrep("search", str(w / "index"), "--batch", str(w / "queries.npy"), "-k", str(n_index), "--json")
    )["results"]
    t_search = time.perf_counter() - t1
    ranks = []
    for qid, hits in zip(qids, res):
        ids = [h["clip_id"] for h in hits]
        ranks.append(ids.index(qid) + 1 if qid in ids else n_index + 1)
    r = np.array(ranks)
    man = json.loads((w / "index" / "manifest.json").read_text())
    return {
        "run": str(run),
        "store": str(store),
        "split": split,
        "kind": kind,
        "dim": man.get("dim"),
        "N": n_index,
        "queries": len(qids),
        "a2v_R@1": float(np.mean(r <= 1)),
        "a2v_R@5": float(np.mean(r <= 5)),
        "a2v_R@10": float(np.mean(r <= 10)),
        "a2v_median_rank": float(np.median(r)),
        "chance_R@1": 1.0 / n_index,
        "index_factory": man.get("factory"),
        "embed_seconds": round(t_embed, 1),
        "search_seconds": round(t_search, 1),
        "model_config": json.loads((run / "config.json").read_text())["model"].get("name"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", action="append", required=True, help="LABEL:RUN_DIR:STORE_DIR")
    ap.add_argument("--split", default="test")
    ap.add_argument("--work", default="/tmp/avrep_bench_retrieval")
    args = ap.parse_args()
    out: dict = {
        "versions": versions("torch", "faiss-cpu"),
        "how": "avrep embed -> avrep index build -> avrep search --batch (audio queries, video index, -k N)",
        "cases": {},
    }
    g = goals("lipread")
    out[f"goal_a2v_R@1_at_1:{int(g['a2v_gallery'])}"] = g["a2v_R@1"]
    # keep cases measured by earlier runs (same layout only)
    old = read_result("retrieval").get("cases", {})
    out["cases"] = {k: v for k, v in old.items() if isinstance(v, dict) and "word" in v}
    for spec in args.case:
        label, run, store = spec.split(":")
        out["cases"][label] = {}
        for kind in ("word", "sync"):
            r = one_case(label, Path(run).resolve(), Path(store).resolve(), args.split, Path(args.work), kind)
            r["date"] = now()
            out["cases"][label][kind] = r
            print(
                label, kind, {k: r[k] for k in ("N", "a2v_R@1", "a2v_R@5", "a2v_R@10", "a2v_median_rank")}, flush=True
            )
    print(write_result("retrieval", out))


if __name__ == "__main__":
    main()

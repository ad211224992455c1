"""A->V search re-ranked by temporal matching (`avrep search --audio F --rerank N`) on people the model never
saw -> benchmarks/results/rerank.json.

Held out: the lrc_ar `test` identities (5 news anchors, never trained on by the shipped model; the identity-
disjoint split of benchmarks/pretrained.py's store). The shipped model embeds every test clip's video (sync
kind), `avrep.index.build_index` indexes them (exact at this size), and every clip's audio (from the store:
what the CLI decodes from the file) is a query: pooled search (one vector a clip) beside re-ranking of the
top N candidates by frame-by-frame matching, for several N, in one run. R@1/R@5 of each query's own clip;
per-query time as a ratio to the pooled search (CPU; absolute times only from a GPU run).

    python benchmarks/rerank.py [--store /work/stores/lrc_ar] [--candidates 10,50,100]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import log, stamp, write_result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default="/work/stores/lrc_ar")
    ap.add_argument("--split", default="test")
    ap.add_argument("--candidates", default="10,50,100")
    ap.add_argument("--checkpoint", default=None, help="default: the shipped model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--result", default="rerank")
    args = ap.parse_args()
    import torch

    from avrep.data.store import FeatureStore
    from avrep.embed_job import embed_store
    from avrep.index import Index, build_index, search_matched
    from avrep.index.search import index_embedder
    from avrep.models.pretrained import resolve_checkpoint, weights_sha256

    torch.set_num_threads(args.threads)
    run = resolve_checkpoint(args.checkpoint)
    work = Path(tempfile.mkdtemp(prefix="avrep_rerank_"))
    try:
        embed_store(args.store, run, "video", work / "emb", split=args.split, device="cpu", progress=False, kind="sync")
        build_index(work / "emb", work / "ix")
        ix = Index.open(work / "ix")
        emb = index_embedder(ix.manifest, "cpu")
        fs = FeatureStore(args.store)
        clips = fs.clips[fs.clips["split"] == args.split]
        n = len(clips)
        log("queries", n, "clips of", clips["speaker"].nunique(), "held-out identities")
        cands = [int(c) for c in args.candidates.split(",")]
        ranks: dict[str, list[int]] = {"pooled": [], **{f"rerank_{c}": [] for c in cands}}
        secs: dict[str, float] = {k: 0.0 for k in ranks}
        cache: dict[str, dict] = {f"rerank_{c}": {} for c in cands}
        for i, row in clips.iterrows():
            audio = fs.clip(int(fs.clips.index.get_loc(i)), keys=("audio",))["audio"]
            cid = str(row["clip_id"])
            t = time.perf_counter()
            q = emb.embed_audio(audio, kind="sync")[None]
            _, ids = ix.search_arrays(q, n)
            secs["pooled"] += time.perf_counter() - t
            ranks["pooled"].append(int(np.flatnonzero(ix.metadata["clip_id"].astype(str).to_numpy()[ids[0]] == cid)[0]))
            for c in cands:
                key = f"rerank_{c}"
                t = time.perf_counter()
                res = search_matched(ix, audio=audio, k=c, candidates=c, embedder=emb, cache=cache[key])
                secs[key] += time.perf_counter() - t
                found = ix.metadata["clip_id"].astype(str).to_numpy()[res.ids[0][res.ids[0] >= 0]]
                hit = np.flatnonzero(found == cid)
                ranks[key].append(int(hit[0]) if len(hit) else n)  # outside the candidates: not found
        rows = {}
        for key, r in ranks.items():
            r = np.array(r)
            rows[key] = {
                "R@1": float((r < 1).mean()),
                "R@5": float((r < 5).mean()),
                "R@10": float((r < 10).mean()),
                "time_per_query_vs_pooled": round(secs[key] / secs["pooled"], 1),
            }
            if key == "pooled":
                rows[key].update({f"R@{c}": float((r < c).mean()) for c in cands})
            log(key, rows[key])
        write_result(
            args.result,
            {
                **stamp("torch", "faiss-cpu"),
                "checkpoint": str(run),
                "weights_sha256": weights_sha256(run),
                "held_out": f"lrc_ar {args.split} identities: "
                + ", ".join(sorted(clips["speaker"].astype(str).unique())),
                "N": n,
                "protocol": "audio of each held-out clip as the query, its own video the one right answer; "
                "re-ranked = the top N pooled candidates ordered by temporal matching (offsets +-1); "
                "cached candidate features (a clip's features are computed once per N): first-query cost is higher",
                "rows": rows,
            },
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""A<->V search re-ranked by temporal matching (`avrep search --audio/--video F --rerank N`) on people the model never
saw -> benchmarks/results/rerank.json.

Held out: the lrc_ar `test` identities (5 news anchors, never trained on by the shipped model; the identity-
disjoint split of benchmarks/pretrained.py's store). The shipped model embeds every test clip's video (sync
kind), `avrep.index.build_index` indexes them (exact at this size), and every clip's audio (from the store:
what the CLI decodes from the file) is a query (and, the other way round, every clip's video against an index
of the audio clips): pooled search (one vector a clip) beside re-ranking of the top N candidates by
frame-by-frame matching, for several N, in one run. R@1/R@5 of each query's own clip;
per-query time as a ratio to the pooled search (CPU; absolute times only from a GPU run).

    python benchmarks/rerank.py [--store /work/stores/lrc_ar] [--candidates 10,50,100] [--directions a2v,v2a]
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
    ap.add_argument("--directions", default="a2v,v2a")
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
    fs = FeatureStore(args.store)
    clips = fs.clips[fs.clips["split"] == args.split]
    n = len(clips)
    log("queries", n, "clips of", clips["speaker"].nunique(), "held-out identities")
    cands = [int(c) for c in args.candidates.split(",")]
    work = Path(tempfile.mkdtemp(prefix="avrep_rerank_"))
    out: dict[str, dict] = {}
    try:
        for direction in args.directions.split(","):
            gallery = "video" if direction == "a2v" else "audio"
            embed_store(args.store, run, gallery, work / direction, split=args.split, device="cpu", progress=False,
                        kind="sync")  # fmt: skip
            build_index(work / direction, work / f"ix_{direction}")
            ix = Index.open(work / f"ix_{direction}")
            emb = index_embedder(ix.manifest, "cpu")
            ids_of = ix.metadata["clip_id"].astype(str).to_numpy()
            ranks: dict[str, list[int]] = {"pooled": [], **{f"rerank_{c}": [] for c in cands}}
            secs: dict[str, float] = {k: 0.0 for k in ranks}
            cache: dict[str, dict] = {f"rerank_{c}": {} for c in cands}
            for i, row in clips.iterrows():
                c = fs.clip(int(fs.clips.index.get_loc(i)), keys=("audio", "mouth", "landmarks"))
                query = {"audio": c["audio"]} if direction == "a2v" else {"video": (c["mouth"], c["landmarks"])}
                cid = str(row["clip_id"])
                t = time.perf_counter()
                if direction == "a2v":
                    q = emb.embed_audio(c["audio"], kind="sync")[None]
                else:
                    q = emb.embed_video(c["mouth"], kind="sync", landmarks=c["landmarks"])[None]
                _, ids = ix.search_arrays(q, n)
                secs["pooled"] += time.perf_counter() - t
                ranks["pooled"].append(int(np.flatnonzero(ids_of[ids[0]] == cid)[0]))
                for k in cands:
                    key = f"rerank_{k}"
                    t = time.perf_counter()
                    res = search_matched(ix, **query, k=k, candidates=k, embedder=emb, cache=cache[key])
                    secs[key] += time.perf_counter() - t
                    hit = np.flatnonzero(ids_of[res.ids[0][res.ids[0] >= 0]] == cid)
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
                    rows[key].update({f"R@{k}": float((r < k).mean()) for k in cands})
                log(direction, key, rows[key])
            out[direction] = rows
        write_result(
            args.result,
            {
                **stamp("torch", "faiss-cpu"),
                "checkpoint": str(run),
                "weights_sha256": weights_sha256(run),
                "held_out": f"lrc_ar {args.split} identities: "
                + ", ".join(sorted(clips["speaker"].astype(str).unique())),
                "N": n,
                "protocol": "a2v: the audio of each held-out clip as the query, its own video the one right answer "
                "(v2a: the video, mouth crops + landmarks from the store, against the audio clips); re-ranked = the "
                "top N pooled candidates ordered by temporal matching (offsets +-1); candidate features cached "
                "across queries (computed once per clip and N)",
                "rows": out.get("a2v"),
                "v2a": out.get("v2a"),
            },
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

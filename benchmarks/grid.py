"""Real recordings: train + evaluate DAVS on GRID speaker s1 word clips (../shared/data/grid_s1).

  python benchmarks/grid.py [--store DIR] [--config small] [--epochs 10] [--time-budget-min 40]

Prepares + preprocesses grid_s1 (word clips cut at the alignments, split by sentence) unless --store
points at an existing store, trains on CPU (or GPU if present), evaluates visual / audio / fused
word top-1 and A->V R@1 on held-out sentences, then reads the s1 model on the other GRID speakers
in ../shared/data/grid (swwp2s has an alignment; the words of the others come from their file names
but not their timings, so only swwp2s is scored word by word). The held-out sentences are also
transcoded to MPEG-1 program streams (GRID's own distribution format) and evaluated again: both figures
are reported, and they must agree (the MPEG-1 timeline issue). Writes benchmarks/results/grid.json.
Held out: 10% of s1's sentences (seeded split by sentence); the other GRID speakers never trained on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import DATA, ROOT, goals, lipread_summary, versions, write_result


def evaluate_mpeg1(df, run: Path, work: Path) -> dict:
    """The held-out sentences as MPEG-1 + MP2 44.1 kHz program streams (like GRID's originals), same eval."""
    from avrep.data.recipes import write_manifest
    from avrep.data.recipes.grid import VOCAB
    from avrep.eval import evaluate_run
    from avrep.io.encode import transcode
    from avrep.preprocess import preprocess

    test = df[df["split"] == "test"].copy()
    mpg_dir = work / "mpg"
    mpg_dir.mkdir(parents=True, exist_ok=True)
    t = time.time()
    for rel in sorted(set(test["path"])):
        dst = mpg_dir / (Path(rel).stem + ".mpg")
        if not dst.exists():
            transcode(
                DATA / "grid_s1" / rel, dst, vcodec="mpeg1video", acodec="mp2", container="mpeg", sample_rate=44100
            )
    test["path"] = [Path(r).stem + ".mpg" for r in test["path"]]
    write_manifest(test, work / "manifest_mpg.parquet", mpg_dir, recipe="grid", vocab=list(VOCAB))
    store = work / "store_mpg"
    preprocess(work / "manifest_mpg.parquet", store, workers=2, progress=False)
    ev = evaluate_run(run, str(store), "test", work / "eval_test_mpg.json", workers=1, probes=False, progress=False)
    return {
        **lipread_summary(ev),
        "a2v_sync_R@1": (ev["retrieval"].get("a2v_sync") or {}).get("R@1"),
        "seconds": round(time.time() - t, 1),
        "note": "same sentences, transcoded mp4 -> MPEG-1 video + MP2 audio in an MPEG program stream",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=None)
    ap.add_argument("--work", default=str(ROOT / "out" / "bench_grid"))
    ap.add_argument("--config", default="small")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--result", default="grid", help="results/<name>.json (default grid)")
    ap.add_argument(
        "--run", default=None, help="evaluate this trained run instead of training one (e.g. the shipped model)"
    )
    args = ap.parse_args()
    if not (DATA / "grid_s1").is_dir():
        sys.exit(f"{DATA / 'grid_s1'} is absent")

    from avrep.data.recipes import write_manifest
    from avrep.data.recipes.grid import VOCAB, prepare_grid
    from avrep.eval import evaluate_run
    from avrep.preprocess import preprocess
    from avrep.train.loop import TrainArgs, train

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {
        "versions": versions("torch", "dlib-bin", "av"),
        "config": args.config,
        "epochs": None if args.run else args.epochs,
    }
    t0 = time.time()
    store = Path(args.store) if args.store else work / "store"
    df = prepare_grid(DATA / "grid_s1").manifest
    if not args.store:
        write_manifest(df, work / "manifest.parquet", DATA / "grid_s1", recipe="grid", vocab=list(VOCAB))
        res = preprocess(work / "manifest.parquet", store, workers=args.workers)
        out["preprocess"] = {"clips": res.n_ok if hasattr(res, "n_ok") else None, "seconds": round(time.time() - t0, 1)}
    run = Path(args.run) if args.run else work / f"run_{Path(args.config).stem}"
    t1 = time.time()
    last = (
        None
        if args.run
        else train(
            TrainArgs(
                config=args.config,
                data=str(store),
                out=str(run),
                epochs=args.epochs,
                batch_size=args.batch_size,
                workers=1,
                threads=args.threads,
            ),
            resume=(run / "state.json").exists(),
            progress=False,
        )
    )
    out["train"] = {"seconds": round(time.time() - t1, 1), "last_epoch": last} if last else {"run": str(run)}
    ev = evaluate_run(run, str(store), "test", work / "eval_test.json", workers=1, probes=False, progress=False)
    out["test_s1_heldout_sentences"] = {
        **lipread_summary(ev),
        "a2v_N": ev["retrieval"]["a2v"].get("N"),
        "a2v_sync_R@1": (ev["retrieval"].get("a2v_sync") or {}).get("R@1"),
        "goals": goals("grid"),
        "anchor": "LipNet 95.2% word acc (sentence-level, LM)",
    }
    out["test_s1_heldout_sentences_mpeg1"] = evaluate_mpeg1(df, run, work)
    out["test_s1_heldout_sentences_mpeg1"]["video_top1_minus_mp4"] = round(
        out["test_s1_heldout_sentences_mpeg1"]["video_top1"] - out["test_s1_heldout_sentences"]["video_top1"], 4
    )
    # other speakers: swwp2s has a word alignment in ../shared/data/grid (read as in benchmarks/unseen.py)
    if (DATA / "grid" / "swwp2s.align").exists():
        from unseen import grid_unseen_speaker

        from avrep.models import load_run

        model, _, words = load_run(run, "cpu")
        out["unseen_speaker_swwp2s"] = {
            **grid_unseen_speaker(model, words),
            "note": "one sentence of another GRID speaker (unseen person): expect a drop",
        }
    out["total_s"] = round(time.time() - t0, 1)
    p = write_result(args.result, out)
    print(p.read_text())


if __name__ == "__main__":
    main()

"""Lip-reading benchmark on the synthetic default -> benchmarks/results/lipread.json.

synth (preset, default `small`: 50 words x 100 clips, 80 identities, 28 voices) -> prepare ->
preprocess (renderer's own landmarks) -> train DAVS (`--config`, default `small`) -> eval on the test
split, whose identities AND voices are never seen in training: video / audio / fused top-1 and top-5
next to the vocabulary's homophene ceiling, A->V R@1/5/10 at 1:N (N = test size), disentanglement
probes. Train time is measured on its own, for the issue's "0.8 x ceiling within 15 min on 2 cores".

    python benchmarks/lipread.py [--preset small] [--clips-per-word 100] [--config small] [--epochs 14]

Every stage resumes: an existing corpus/store/run in --work is reused (a finished run is evaluated).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import ROOT, goals, log, versions, write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--clips-per-word", type=int, default=None, help="default: the preset's")
    ap.add_argument("--config", default="small")
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default=str(ROOT / "out" / "bench_lipread"))
    ap.add_argument("--name", default=None, help="result file name (default lipread, or lipread_<preset>)")
    args = ap.parse_args()

    from avrep.data.recipes import write_manifest
    from avrep.data.recipes.synth import prepare_synth
    from avrep.eval import evaluate_run
    from avrep.preprocess import PreprocessConfig, preprocess
    from avrep.synth.corpus import SynthConfig, generate
    from avrep.synth.visemes import visual_ceiling
    from avrep.train.loop import TrainArgs, train

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    corpus, store, run = work / "corpus", work / "store", work / f"run_{args.config}"
    times: dict[str, float] = {}
    t = time.perf_counter()
    cfg = SynthConfig(preset=args.preset, seed=0, clips_per_word=args.clips_per_word)
    generate(cfg, corpus, workers=args.workers, progress=False)  # resumes by itself
    times["synth_s_this_call"] = round(time.perf_counter() - t, 1)  # ~0 when the corpus was already there
    log("synth", times["synth_s_this_call"], "s")
    t = time.perf_counter()
    if not (store / "clips.parquet").exists():
        df, vocab = prepare_synth(corpus)
        write_manifest(df, work / "manifest.parquet", corpus, recipe="synth", vocab=vocab)
        preprocess(
            work / "manifest.parquet",
            store,
            workers=args.workers,
            config=PreprocessConfig(landmarks="true"),
            progress=False,
        )
    times["preprocess_s"] = round(time.perf_counter() - t, 1)
    log("preprocess", times["preprocess_s"], "s")
    t = time.perf_counter()
    train(
        TrainArgs(
            config=args.config,
            data=str(store),
            out=str(run),
            epochs=args.epochs,
            batch_size=args.batch_size,
            workers=1,
            threads=args.workers,
        ),
        resume=(run / "state.json").exists(),
        progress=False,
    )
    times["train_wall_s_this_call"] = round(time.perf_counter() - t, 1)  # ~0 when resuming a finished run
    hist = [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines() if ln.strip()]
    train_s = sum(h.get("time_s", 0.0) for h in hist)
    log("train", round(train_s, 1), "s over", len(hist), "epochs")
    t = time.perf_counter()
    ev = evaluate_run(run, str(store), "test", run / "eval_test.json", workers=1, probes=True, progress=False)
    times["eval_s"] = round(time.perf_counter() - t, 1)
    words = json.loads((run / "vocab.json").read_text())
    words = words["words"] if isinstance(words, dict) else words
    ceiling = float(visual_ceiling(words))
    lr, rt = ev["lipread"], ev["retrieval"]["a2v"]
    rs = ev["retrieval"].get("a2v_sync") or {}
    v = lr["video"]["top1"]
    g = goals("lipread")
    res = {
        "versions": versions("torch", "torchaudio"),
        "preset": args.preset,
        "clips_per_word": cfg.resolved().clips_per_word,
        "config": args.config,
        "epochs": len(hist),
        "split_note": "test identities and voices never seen in training",
        "times": {**times, "train_s_sum_of_epochs": round(train_s, 1)},
        "test": {
            "n": lr["n"],
            "video_top1": v,
            "video_top5": lr["video"].get("top5"),
            "audio_top1": lr["audio"]["top1"],
            "audio_top5": lr["audio"].get("top5"),
            "fused_top1": lr["fused"]["top1"],
            "homophene_ceiling": ceiling,
            "video_over_ceiling": v / ceiling if ceiling else None,
            "a2v": {k: rt.get(k) for k in ("N", "R@1", "R@5", "R@10", "median_rank")},
            "a2v_sync": {k: rs.get(k) for k in ("N", "R@1", "R@5", "R@10", "median_rank")},
            "probes": ev.get("probes"),
        },
        "curve": [
            {k: h.get(k) for k in ("epoch", "time_s", "val_video_acc", "val_audio_acc", "val_a2v_R@1")} for h in hist
        ],
        "goal_figures": g,
        "goals": {
            f"video_{g['video_top1_over_ceiling']:g}x_ceiling": v >= g["video_top1_over_ceiling"] * ceiling,
            f"audio_top1_{g['audio_top1']:g}": lr["audio"]["top1"] >= g["audio_top1"],
            "fused_ge_video": lr["fused"]["top1"] >= v,
            f"a2v_R@1_{g['a2v_R@1']:g}_sync_embedding": (rs.get("R@1") or 0) >= g["a2v_R@1"],
            f"cpu_{g['cpu_video_top1_over_ceiling']:g}x_ceiling_within_{g['cpu_train_s'] / 60:g}min": bool(
                v >= g["cpu_video_top1_over_ceiling"] * ceiling and train_s <= g["cpu_train_s"]
            ),
        },
    }
    name = args.name or ("lipread" if args.preset == "small" else f"lipread_{args.preset}")
    print(write_result(name, res))
    log(json.dumps(res["test"], default=str)[:800])


if __name__ == "__main__":
    main()

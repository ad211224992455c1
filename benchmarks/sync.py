"""Sync benchmark -> benchmarks/results/sync.json.

1. Synthetic: held-out (test-split: unseen identities and voices) synthetic clips, 4 clips of one
   identity joined into a 116-frame sequence, shifted by every offset in -15..+15 frames (video frames
   [15, T-15) with audio leading by the offset: real content on both sides, no padding to spot); share
   found exactly and within +-1 frame. Model: `tiny` trained on the tiny synthetic preset (or --synth-run).
2. GRID s1: the same on held-out s1 sentences (test split of the store, split by sentence; the whole
   75-frame sentence through the app's preprocessing). Model: a grid_s1 run from /work/runs if one
   exists, else a `tiny` trained here on a subset of the store's train split (or --grid-run).
3. Real files: every clip in ../shared/data/grid and ../shared/data/wild through `sync_file` (decode,
   dlib, crops, features): the offset found for the original (expect 0 +- 1) and for shifted copies
   written as mp4 (audio leading by -10, -5, +5, +10 frames).

Run: .venv/bin/python benchmarks/sync.py [--work /tmp/avrep_bench_sync] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import DATA, goals, log, read_result, versions, write_result

OFFSETS = list(range(-15, 16))


def synth_store(work: Path, clips_per_word: int) -> Path:
    """Tiny synthetic preset -> manifest -> store (true landmarks: the synthetic renderer's own points)."""
    from avrep.data.recipes import write_manifest
    from avrep.data.recipes.synth import prepare_synth
    from avrep.preprocess import PreprocessConfig, preprocess
    from avrep.synth.corpus import SynthConfig, generate

    corpus, store = work / "synth_corpus", work / "synth_store"
    if (store / "clips.parquet").exists():
        return store
    generate(SynthConfig(preset="tiny", seed=0, clips_per_word=clips_per_word), corpus, workers=2, progress=False)
    df, vocab = prepare_synth(corpus)
    write_manifest(df, work / "synth_manifest.parquet", corpus, recipe="synth", vocab=vocab)
    preprocess(
        work / "synth_manifest.parquet", store, workers=2, config=PreprocessConfig(landmarks="true"), progress=False
    )
    return store


def train_run(store: Path, out: Path, epochs: int, max_clips: int | None = None, seed: int = 0) -> Path:
    from torch.utils.data import Subset

    from avrep.data.dataset import FeatureDataset
    from avrep.train.loop import TrainArgs, train

    if (out / "model.safetensors").exists() and (out / "state.json").exists():
        st = json.loads((out / "state.json").read_text())
        if st.get("epoch") == epochs:
            return out
        return out if st.get("epoch", 0) >= epochs else _train_resume(store, out, epochs, max_clips, seed)
    ds = FeatureDataset(store, "train", frames=29, train=True, mouth_uint8=True)
    if max_clips and len(ds) > max_clips:
        idx = np.sort(np.random.default_rng(seed).choice(len(ds), max_clips, replace=False))
        ds = Subset(ds, idx.tolist())
    train(
        TrainArgs(
            config="tiny",
            data=str(store),
            out=str(out),
            epochs=epochs,
            batch_size=16,
            lr=5e-3,
            device="auto",
            workers=0,
            threads=2,
            seed=seed,
            val_split="",
        ),
        train_ds=ds,
        progress=False,
    )
    return out


def _train_resume(store: Path, out: Path, epochs: int, max_clips: int | None, seed: int) -> Path:
    from avrep.train.loop import TrainArgs, train

    train(
        TrainArgs(config="tiny", data=str(store), out=str(out), epochs=epochs, threads=2), resume=True, progress=False
    )
    return out


def synth_sequences(store: Path, per_seq: int = 4) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Test-split clips of one identity joined in groups of `per_seq` (mouth [T,96,96], audio [T*640])."""
    from avrep.data.store import FeatureStore

    fs = FeatureStore(store)
    c = fs.clips.reset_index(drop=True)
    t = c[c["split"] == "test"]
    seqs = []
    for spk, g in t.groupby("speaker"):
        rows = g.index.tolist()
        for i in range(0, len(rows) - per_seq + 1, per_seq):
            parts = [fs.clip(int(r), keys=("mouth", "audio")) for r in rows[i : i + per_seq]]
            seqs.append(
                (
                    np.concatenate([np.asarray(p["mouth"]) for p in parts]),
                    np.concatenate([np.asarray(p["audio"]) for p in parts]),
                    str(spk),
                )
            )
    return seqs


def grid_test_sentences(store: Path, work: Path, limit: int | None) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Whole held-out s1 sentences through process_file (the app's path), cached as npz."""
    import pandas as pd

    from avrep.preprocess import process_file

    c = pd.read_parquet(store / "clips.parquet")
    paths = sorted(c.loc[c["split"] == "test", "path"].unique())[:limit]
    cache = work / "grid_test"
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for p in paths:
        f = cache / (Path(p).stem + ".npz")
        if not f.exists():
            try:
                pv = process_file(p)
            except Exception as e:  # record and go on
                log("skip", p, e)
                continue
            np.savez(f, mouth=pv.mouth, audio=pv.audio)
        z = np.load(f)
        out.append((z["mouth"], z["audio"], Path(p).stem))
    return out


def offsets_on_arrays(model, seqs, offsets: list[int], margin: int = 15) -> dict:
    from avrep.apps.sync import sync_arrays
    from avrep.eval.sync_metrics import offset_accuracy, shifted_pair

    found, true, confs = [], [], []
    per_offset: dict[int, list[int]] = {o: [] for o in offsets}
    t0 = time.perf_counter()
    for m, a, _ in seqs:
        for o in offsets:
            v, aa = shifted_pair(m, a, o, margin)
            r = sync_arrays(model, v, aa, 15)
            found.append(r.offset_frames)
            true.append(o)
            confs.append(r.confidence)
            per_offset[o].append(r.offset_frames)
    res = offset_accuracy(np.array(found), np.array(true))
    res["n_sequences"] = len(seqs)
    res["frames_per_trial"] = int(len(seqs[0][0]) - 2 * margin) if seqs else 0
    res["median_confidence"] = float(np.median(confs)) if confs else None
    res["exact_by_offset"] = {str(o): float(np.mean(np.array(v) == o)) for o, v in per_offset.items() if v}
    res["chance_exact"] = 1.0 / 31
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def real_files(model, run: Path, work: Path, shifts=(-10, -5, 5, 10), margin: int = 10) -> dict:
    """Originals and shifted mp4 copies of the shared real clips through the full `sync_file` path."""
    from avrep.apps.sync import sync_file
    from avrep.io import media
    from avrep.io.encode import write_mp4

    out = {}
    files = sorted((DATA / "grid").glob("*.mpg")) + sorted((DATA / "wild").glob("*.mp4"))
    for p in files:
        key = f"{p.parent.name}/{p.name}"
        try:
            r0 = sync_file(p, run, model=model)
        except Exception as e:
            out[key] = {"error": str(e)}
            log(key, "error", e)
            continue
        rec = {
            "original": {
                "offset": r0["offset_frames"],
                "confidence": round(r0["confidence"], 4),
                "n_frames": r0["n_frames"],
            },
            "shifted": {},
        }
        try:
            video, wav = media.read_av(p)
        except Exception as e:
            rec["shift_error"] = str(e)
            out[key] = rec
            continue
        T = len(video.frames)
        if T - 2 * margin >= 20:
            for s in shifts:
                q = work / "shifted" / f"{p.stem}_{s:+d}.mp4"
                if not q.exists():
                    v = video.frames[margin : T - margin]
                    a0 = (margin + s) * 640
                    write_mp4(q, v, wav[a0 : a0 + len(v) * 640])
                try:
                    r = sync_file(q, run, model=model)
                    rec["shifted"][str(s)] = {"offset": r["offset_frames"], "confidence": round(r["confidence"], 4)}
                except Exception as e:
                    rec["shifted"][str(s)] = {"error": str(e)}
        out[key] = rec
        log(key, rec["original"], {k: v.get("offset") for k, v in rec["shifted"].items()})
    ok = [v for v in out.values() if "original" in v]
    summ = {
        "n_files": len(out),
        "n_ok": len(ok),
        "original_within_1": float(np.mean([abs(v["original"]["offset"]) <= 1 for v in ok])) if ok else None,
    }
    sh = [(int(k), x["offset"]) for v in ok for k, x in v["shifted"].items() if "offset" in x]
    if sh:
        summ["shifted_exact"] = float(np.mean([a == b for a, b in sh]))
        summ["shifted_within_1"] = float(np.mean([abs(a - b) <= 1 for a, b in sh]))
        summ["n_shifted"] = len(sh)
    return {"summary": summ, "files": out}


def find_grid_run() -> Path | None:
    runs = Path("/work/runs")
    for r in sorted(runs.glob("*")) if runs.is_dir() else []:
        cfg = r / "config.json"
        if (
            (r / "model.safetensors").exists()
            and cfg.exists()
            and "grid" in json.loads(cfg.read_text())["train"].get("data", "")
        ):
            return r
    return None


def main() -> None:
    import torch

    from avrep.models import load_run

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/avrep_bench_sync")
    ap.add_argument("--synth-run", default=None)
    ap.add_argument("--synth-store", default=None)
    ap.add_argument("--synth-epochs", type=int, default=40)
    ap.add_argument("--synth-max-seqs", type=int, default=24, help="held-out sequences (spread over identities)")
    ap.add_argument("--grid-store", default="/work/stores/grid_s1")
    ap.add_argument("--grid-run", default=None)
    ap.add_argument("--grid-epochs", type=int, default=6)
    ap.add_argument("--grid-train-clips", type=int, default=1500)
    ap.add_argument("--grid-test-limit", type=int, default=None)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: synth,grid,real")
    args = ap.parse_args()
    torch.set_num_threads(2)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    res: dict = {
        "versions": versions("torch"),
        "sign_convention": "positive = audio leads video",
        "goal_synthetic_exact": goals("sync")["synthetic_exact"],
        "anchor_real": "SyncNet-family detectors: 91-94.5% on LRS2/HDTF",
    }
    t0 = time.perf_counter()
    if "synth" not in skip:
        store = Path(args.synth_store) if args.synth_store else synth_store(work, 20)
        run = Path(args.synth_run) if args.synth_run else train_run(store, work / "synth_run", args.synth_epochs)
        model, cfg, _ = load_run(run)
        seqs = synth_sequences(store)
        if len(seqs) > args.synth_max_seqs:  # evenly spaced: every identity keeps its share
            seqs = [seqs[i] for i in np.linspace(0, len(seqs) - 1, args.synth_max_seqs).round().astype(int)]
        log("synthetic:", len(seqs), "held-out sequences")
        r = offsets_on_arrays(model, seqs, OFFSETS)
        r.update(
            run=str(run),
            store=str(store),
            model_config=cfg["model"].get("name"),
            train_epochs=json.loads((run / "state.json").read_text())["epoch"],
        )
        res["synthetic"] = r
        log("synthetic", {k: r[k] for k in ("n", "exact", "within_1", "mae_frames")})
    grid_run = None
    if "grid" not in skip or "real" not in skip:
        grid_run = Path(args.grid_run) if args.grid_run else find_grid_run()
        if grid_run is None:
            grid_run = train_run(Path(args.grid_store), work / "grid_run", args.grid_epochs, args.grid_train_clips)
        gmodel, gcfg, _ = load_run(grid_run)
    if "grid" not in skip:
        sents = grid_test_sentences(Path(args.grid_store), work, args.grid_test_limit)
        log("grid s1:", len(sents), "held-out sentences")
        r = offsets_on_arrays(gmodel, sents, OFFSETS)
        r.update(
            run=str(grid_run),
            model_config=gcfg["model"].get("name"),
            train_epochs=json.loads((grid_run / "state.json").read_text())["epoch"],
            train_clips=args.grid_train_clips if not args.grid_run else None,
        )
        res["grid_s1"] = r
        log("grid", {k: r[k] for k in ("n", "exact", "within_1", "mae_frames")})
    if "real" not in skip and DATA.is_dir():
        res["real_files"] = real_files(gmodel, grid_run, work)
        res["real_files"]["model"] = str(grid_run)
        log("real", res["real_files"]["summary"])
    res["skipped_parts"] = sorted(skip)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    # parts skipped this time keep their earlier figures (with the date they were measured)
    prev = read_result("sync")
    kept = {k: prev[k] for k in ("synthetic", "grid_s1", "real_files") if k in prev and k not in res}
    if kept:
        res["kept_from_earlier_run"] = {"date": prev.get("date"), "parts": sorted(kept)}
        res.update(kept)
    print(write_result("sync", res))


if __name__ == "__main__":
    main()

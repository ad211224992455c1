"""Train and compare identity-invariant DAVS variants on people they never saw (issue 23).

  python benchmarks/unseen_train.py ablation [--work /work/bench/v2] [--epochs 3] [--epoch-size 640]
  python benchmarks/unseen_train.py main --variant both [--epochs 30] [--epoch-size 960] [--init RUN]
  python benchmarks/unseen_train.py curve RUN [--result NAME]     # unseen accuracy per snapshot vs CPU-hours

Every run: the `small` DAVS config plus the variant's inputs, started from the shipped davs_small_v1 weights
(matching tensors; the new lip-geometry branch starts at zero, so every variant starts where v1 is), trained on
`grid_s1@0.4+lrc_ar@0.55+lrs2@0.05` train splits with the audio rolled by up to +-6 frames, strong appearance and
voice augmentation (avrep.data.augment), seed 0, CPU. Runs are resumable: rerunning the same command continues
from the last finished epoch (a session that ends mid-run loses at most one epoch).

Variants (the ablation table): `pixels` (mouth pixels only, as v1), `geometry` (+ the lip-geometry stream),
`clip_norm` (pixels minus the clip's mean mouth), `both`.

Held out (never trained on): lrc_ar `val` identities (2 anchors: model selection) and `test` identities (5
anchors: the figures), GRID speakers other than s1, all wild clips. Sync is measured on shifted copies (+-7
frames, each copy's features from the copy alone, as `avrep sync` sees such a file).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import log, now, stamp, write_json, write_result
from pretrained import PART_WEIGHTS, build_stores

VARIANTS: dict[str, dict] = {
    "pixels": {},
    "geometry": {"video": {"geometry": 64}},
    "clip_norm": {"video": {"clip_norm": True}},
    "both": {"video": {"geometry": 64, "clip_norm": True}},
}


def variant_config(name: str) -> dict:
    from avrep.models.factory import get_config
    from avrep.models.pretrained import resolve_checkpoint
    from avrep.security import load_json_object

    # the shipped model's own config (same trunk sizes, so its weights copy over), plus the variant's inputs
    base = load_json_object(Path(resolve_checkpoint(None, quiet=True)) / "config.json")
    base = base.get("model", base)
    cfg = get_config(base, **VARIANTS[name])
    cfg["name"] = f"small_{name}"
    return cfg


def train_variant(
    name: str, work: Path, stores: dict[str, Path], epochs: int, epoch_size: int, lr: float, init
) -> Path:
    from avrep.models.pretrained import resolve_checkpoint
    from avrep.train.loop import TrainArgs, train

    spec = "+".join(f"{stores[n]}@{w}" for n, w in PART_WEIGHTS.items())
    run = work / f"run_{name}"
    t = time.time()
    last = train(
        TrainArgs(
            config=variant_config(name),
            data=spec,
            out=str(run),
            epochs=epochs,
            batch_size=32,
            lr=lr,
            warmup_epochs=0.3,
            seed=0,
            workers=1,
            threads=2,
            init=str(init or resolve_checkpoint(None, quiet=True)),
            epoch_size=epoch_size,
            loss={"sync_shift_max": 6},
            augment="strong",
            snapshots=True,
            val_max_clips=300,
        ),
        resume=(run / "state.json").exists(),
        progress=False,
    )
    log(name, "trained", round(time.time() - t), "s", json.dumps(last)[:300])
    return run


def heldout_clips(stores: dict[str, Path], split: str, max_clips: int | None = None, seed: int = 0) -> list[dict]:
    from unseen import store_clips

    return store_clips(stores["lrc_ar"], split, n=max_clips, seed=seed)


def quick_unseen(model, val: list[dict], test: list[dict]) -> dict:
    """Shifted-copy sync (+-7, step 1) on val and test anchors, and A->V R@1 on the test anchors."""
    from unseen import retrieval, sync_shifted

    return {
        "val_sync": sync_shifted(model, val, 7),
        "test_sync": sync_shifted(model, test, 7),
        "test_retrieval": retrieval(model, test),
    }


def concat_clips(clips: list[dict], k: int, seed: int = 0) -> list[dict]:
    """Longer clips of one person: k of their clips back to back (jump cuts, but every frame in sync)."""
    rng = np.random.default_rng(seed)
    by: dict[str, list[dict]] = {}
    for c in clips:
        by.setdefault(c["speaker"], []).append(c)
    out = []
    for spk, cs in sorted(by.items()):
        order = rng.permutation(len(cs))
        for i in range(0, len(order) - k + 1, k):
            part = [cs[j] for j in order[i : i + k]]
            out.append(
                {
                    "clip_id": "+".join(c["clip_id"] for c in part),
                    "speaker": spk,
                    "mouth": np.concatenate([c["mouth"] for c in part]),
                    "audio": np.concatenate([c["audio"][: len(c["mouth"]) * 640] for c in part]),
                    "landmarks": np.concatenate([c["landmarks"] for c in part]),
                }
            )
    return out


def calibration_rows(model, clips: list[dict], max_shift: int, step: int, seed: int = 0) -> list[tuple]:
    """(confidence, min_dist, n_frames, right within +-1) for shifted copies of `clips`, plus copies whose
    audio is another person's (no offset is right there: what a dubbed or voice-over clip looks like)."""
    from unseen import shifted_copies

    from avrep.apps.agreement import stream_features
    from avrep.eval.sync_metrics import shifted_pair, sync_from_features

    rng = np.random.default_rng(seed)
    rows = []
    m = max_shift
    for c, vf, results in shifted_copies(model, clips, m, step):
        T = len(c["mouth"])
        rows += [(r.confidence, r.min_dist, len(vf), abs(r.offset_frames - o) <= 1) for o, r in results]
        other = [d for d in clips if d["speaker"] != c["speaker"] and len(d["mouth"]) >= T]
        if other:  # a voice from elsewhere: any offset claimed is wrong
            d = other[int(rng.integers(len(other)))]
            _, a = shifted_pair(d["mouth"][:T], d["audio"][: T * 640], 0, m)
            r = sync_from_features(vf, stream_features(model, a, False), m)
            rows.append((r.confidence, r.min_dist, len(vf), False))
    return rows


def calibrate(run: Path, stores: dict[str, Path], test_clips: int | None = None) -> dict:
    """Fit the sync calibration on the lrc_ar *val* anchors (never trained on, not the test anchors):
    single clips (~1.2 s, +-7) and 2 and 4 clips back to back (~2.4 / 4.8 s, +-15 step 3); save it beside
    the run's weights; report how well it is calibrated on the *test* anchors (reliability by bin)."""
    from avrep.eval.sync_metrics import SyncCalibration, fit_calibration

    model = load_snapshot(run, None)

    def rows_of(split: str, n: int | None = None) -> list[tuple]:
        cl = heldout_clips(stores, split, n)
        rows = calibration_rows(model, cl, 7, 1)
        for k in (2, 4):
            rows += calibration_rows(model, concat_clips(cl, k), 15, 3)
        return rows

    fit_rows = rows_of("val")
    cal = fit_calibration(fit_rows, "lrc_ar val identities (shifted copies of 1, 2, 4 clips; mismatched voices)")
    write_json(run / SyncCalibration.FILE, cal.to_dict())
    test_rows = rows_of("test", test_clips)
    p = np.array([cal.p_correct(c, d, n) for c, d, n, _ in test_rows])
    y = np.array([r[3] for r in test_rows], float)
    bins = []
    for lo, hi in ((0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01)):
        k = (p >= lo) & (p < hi)
        if k.any():
            bins.append(
                {"p": [lo, min(hi, 1.0)], "n": int(k.sum()), "mean_p": float(p[k].mean()), "right": float(y[k].mean())}
            )
    rel = p >= cal.threshold
    return {
        "calibration": cal.to_dict(),
        "fit_rows": len(fit_rows),
        "test_rows": len(test_rows),
        "test_brier": float(np.mean((p - y) ** 2)),
        "test_base_rate": float(y.mean()),
        "test_reliability": bins,
        "test_reliable_share": float(rel.mean()),
        "test_right_when_reliable": float(y[rel].mean()) if rel.any() else None,
        "test_right_when_not": float(y[~rel].mean()) if (~rel).any() else None,
    }


def install(run: Path, name: str) -> Path:
    """Copy a run (weights, config, vocabulary, sync calibration) into the package as shipped model `name`,
    with a card naming its data, init chain and sha256."""
    import shutil

    from avrep.models.pretrained import PRETRAINED_ROOT, weights_sha256

    dst = PRETRAINED_ROOT / name
    dst.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "model.safetensors", "vocab.json", "sync_calibration.json"):
        if (run / f).exists():
            shutil.copyfile(run / f, dst / f)
    cfg = json.loads((run / "config.json").read_text())["train"]
    recs = records(run)
    card = {
        "name": name,
        "date": now(),
        "config": cfg["config"].get("name") if isinstance(cfg["config"], dict) else cfg["config"],
        "data": cfg["data"],
        "augment": cfg.get("augment"),
        "loss": cfg.get("loss"),
        "init": cfg.get("init"),
        "epochs": len(recs),
        "steps": recs[-1]["step"] if recs else 0,
        "cpu_hours_this_run": round(sum(r.get("cpu_s", 0.0) for r in recs) / 3600, 3),
        "seed": cfg.get("seed"),
        "held_out": "lrc_ar val + test identities (identity-disjoint split 0.7/0.1/0.2 seed 0), GRID speakers "
        "other than s1, all wild clips; GRID s1 test sentences (s1 itself is trained on)",
        "sha256": weights_sha256(dst),
        "size_bytes": (dst / "model.safetensors").stat().st_size,
    }
    write_json(dst / "card.json", card)
    return dst


def records(run: Path) -> list[dict]:
    """The run's log.jsonl records (one per epoch / checkpoint)."""
    return [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]


def write_calibration(run: Path, stores: dict[str, Path], test_clips: int | None, result: str | None) -> None:
    """`calibrate` the run and write its result JSON (sync_calibration_<run> by default)."""
    out = {**stamp("torch", "scikit-learn"), "run": str(run), **calibrate(run, stores, test_clips)}
    log("calibration", json.dumps(out)[:1500])
    write_result(result or f"sync_calibration_{run.name}", out)


def load_snapshot(run: Path, snap: Path | None):
    import torch

    from avrep.models import load_run
    from avrep.security import load_safetensors

    model, _, _ = load_run(run, "cpu")
    if snap is not None:
        model.load_state_dict(load_safetensors(snap, "cpu"), strict=False)
    model.eval()
    torch.set_grad_enabled(False)
    return model


def curve(run: Path, stores: dict[str, Path], val_clips: int, test_clips: int, every: int = 1) -> dict:
    """Unseen accuracy after every `every`-th epoch (and the last) against the CPU-hours spent to get there."""
    recs = records(run)
    keep = {int(r["epoch"]) for r in recs if int(r["epoch"]) % every == 0} | {int(recs[-1]["epoch"])}
    val = heldout_clips(stores, "val", val_clips)
    test = heldout_clips(stores, "test", test_clips)
    rows, cpu = [], 0.0
    for r in recs:
        cpu += float(r["cpu_s"])  # the loop records it every epoch
        snap = run / "snapshots" / f"epoch_{int(r['epoch']):04d}.safetensors"
        if int(r["epoch"]) not in keep or not snap.exists():
            continue
        q = quick_unseen(load_snapshot(run, snap), val, test)
        rows.append({"epoch": r["epoch"], "cpu_hours": round(cpu / 3600, 3), "wall_s": r.get("time_s"), **q})
        log(run.name, "epoch", r["epoch"], "cpu_h", rows[-1]["cpu_hours"], q["val_sync"], q["test_sync"])
    return {"run": str(run), "val_clips": len(val), "test_clips": len(test), "points": rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("ablation", "ablation-eval", "main", "curve", "v1", "calibrate", "install"))
    ap.add_argument("--name", default="davs_small_v2", help="install: the shipped model's name")
    ap.add_argument("run", nargs="?", default=None)
    ap.add_argument("--stores", default="/work/stores")
    ap.add_argument("--work", default="/work/bench/v2")
    ap.add_argument("--variant", default="both", choices=sorted(VARIANTS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--epoch-size", type=int, default=640)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--init", default=None)
    ap.add_argument("--val-clips", type=int, default=120)
    ap.add_argument("--test-clips", type=int, default=150)
    ap.add_argument("--result", default=None)
    ap.add_argument("--every", type=int, default=1, help="curve: evaluate every N-th epoch (and the last)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    stores = build_stores(Path(args.stores), 2)
    work = Path(args.work)
    if args.what == "ablation":
        for name in args.variants.split(","):
            train_variant(name, work, stores, args.epochs, args.epoch_size, args.lr, args.init)
        return
    if args.what == "main":
        train_variant(args.variant, work, stores, args.epochs, args.epoch_size, args.lr, args.init)
        return
    if args.what == "ablation-eval":  # every variant's last weights and v1 on the same held-out clips
        from avrep.models import load_run
        from avrep.models.pretrained import resolve_checkpoint

        val = heldout_clips(stores, "val", args.val_clips)
        test = heldout_clips(stores, "test", args.test_clips)
        torch.set_grad_enabled(False)
        rows = {}
        v1, _, _ = load_run(resolve_checkpoint(None, quiet=True), "cpu")
        rows["davs_small_v1 (no new training)"] = quick_unseen(v1.eval(), val, test)
        for name in args.variants.split(","):
            run = work / f"run_{name}"
            recs = records(run)
            rows[name] = {
                **quick_unseen(load_snapshot(run, None), val, test),
                "cpu_hours": round(sum(r.get("cpu_s", 0.0) for r in recs) / 3600, 3),
                "steps": recs[-1]["step"],
                "val_video_acc_grid_lrs2": recs[-1].get("val_video_acc"),
            }
            log(name, rows[name]["test_sync"], rows[name]["test_retrieval"])
        out = {
            **stamp("torch"),
            "held_out": "lrc_ar val identities (2) and test identities (5), never trained on",
            "setup": "each variant: small DAVS from davs_small_v1 weights, same mixture, strong augmentation, "
            f"audio roll 6, {args.epochs} epochs x {args.epoch_size} clips, seed 0, CPU",
            "val_clips": len(val),
            "test_clips": len(test),
            "rows": rows,
        }
        write_result(args.result or "unseen_ablation", out)
        return
    if args.what == "v1":  # the shipped model on the same held-out clips: the row everything is compared to
        from avrep.models import load_run
        from avrep.models.pretrained import resolve_checkpoint

        model, _, _ = load_run(resolve_checkpoint(None, quiet=True), "cpu")
        model.eval()
        torch.set_grad_enabled(False)
        val = heldout_clips(stores, "val", args.val_clips)
        test = heldout_clips(stores, "test", args.test_clips)
        out = {**stamp("torch"), "model": "davs_small_v1", **quick_unseen(model, val, test)}
        print(json.dumps(out)[:2000])
        write_result(args.result or "unseen_v1_quick", out)
        return
    run = Path(args.run)
    if args.what == "install":
        log("installed", install(run, args.name))
        return
    if args.what == "calibrate":
        write_calibration(run, stores, args.test_clips, args.result)
        return
    out = {
        **stamp("torch"),
        "held_out": "lrc_ar val identities (model selection) and test identities (figures), identity-disjoint "
        "split 0.7/0.1/0.2 of identities.csv, seed 0",
        **curve(run, stores, args.val_clips, args.test_clips, args.every),
    }
    write_result(args.result or f"unseen_curve_{run.name}", out)


if __name__ == "__main__":
    main()

"""Reproduce the shipped pretrained model from ../shared/data (fixed seed, CPU; bigger on a GPU).

  python benchmarks/pretrained.py [--stores /work/stores] [--epochs 12] [--init RUN] [--install]

1. Stores (built once, reused): lrc_ar (news anchors; identity-disjoint split 0.7/0.1/0.2 of
   identities.csv, seed 0: the `test` identities are never trained on), GRID s1 (word clips, split by
   sentence, seed 0) and lrs2 (word clips + utterances, split by clip).
2. Train `small` on the mixture `grid_s1@W+lrc_ar@W+lrs2@W` with seed 0: every clip trains the sync and
   audio-video contrast terms, word classification only where words are known (GRID, lrs2). GRID goes
   first, so the union vocabulary keeps GRID's word ids. `--init RUN` starts from a trained run's
   weights (e.g. the GRID s1 model of benchmarks/grid.py), as the shipped model did.
3. `--install` copies the run into avrep/models/weights/davs_small_v1 (config, weights, vocab, card).
Then `benchmarks/unseen.py` measures it on people it never saw; docs/model_card.md reports both.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from _common import DATA, log, now, write_json

PART_WEIGHTS = {"grid_s1": 0.4, "lrc_ar": 0.55, "lrs2": 0.05}


def build_stores(stores: Path, workers: int) -> dict[str, Path]:
    """The three feature stores (skipped when already built)."""
    from avrep.data.recipes.folder import prepare_folder
    from avrep.data.recipes.grid import prepare_grid
    from avrep.data.recipes.lrs2 import prepare_lrs2
    from avrep.preprocess import preprocess

    recipes = {
        "grid_s1": lambda: prepare_grid(DATA / "grid_s1", seed=0),
        "lrc_ar": lambda: prepare_folder(
            DATA / "lrc_ar", speakers=DATA / "lrc_ar" / "identities.csv", ratios=(0.7, 0.1, 0.2), seed=0
        ),
        "lrs2": lambda: prepare_lrs2(DATA / "lrs2", level="both", seed=0),
    }
    out = {}
    stores.mkdir(parents=True, exist_ok=True)
    for name, make in recipes.items():
        store = stores / name
        out[name] = store
        if (store / "clips.parquet").exists():
            log(name, "store exists:", store)
            continue
        t = time.time()
        manifest = stores / f"{name}_manifest.parquet"
        make().write(manifest)
        res = preprocess(manifest, store, workers=workers, progress=False)
        log(name, f"{res.n_ok} clips ({res.n_failed} failed) in {time.time() - t:.0f} s")
    return out


def install(run: Path, card: dict) -> Path:
    """Copy a run into the package as the shipped model, with its card (sha256 of the weights)."""
    from avrep.models.pretrained import DEFAULT_NAME, PRETRAINED_ROOT, weights_sha256

    dst = PRETRAINED_ROOT / DEFAULT_NAME
    dst.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "model.safetensors", "vocab.json"):
        shutil.copyfile(run / f, dst / f)
    card = {**card, "sha256": weights_sha256(dst), "size_bytes": (dst / "model.safetensors").stat().st_size}
    write_json(dst / "card.json", card)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stores", default="/work/stores")
    ap.add_argument("--work", default="/work/bench/pretrained")
    ap.add_argument("--config", default="small")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--epoch-size", type=int, default=None, help="clips per epoch [default: all parts' sizes]")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--init", default=None, help="run dir whose weights start the training")
    ap.add_argument(
        "--sync-shift-max",
        type=int,
        default=0,
        help="roll the audio up to this many frames in training (breaks the window-position shortcut)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--stores-only", action="store_true")
    ap.add_argument("--install", action="store_true")
    args = ap.parse_args()

    from avrep.train.loop import TrainArgs, train

    stores = build_stores(Path(args.stores), args.workers)
    if args.stores_only:
        return
    spec = "+".join(f"{stores[n]}@{w}" for n, w in PART_WEIGHTS.items())
    run = Path(args.work) / f"run_{args.config}"
    t = time.time()
    extra = {"lr": args.lr} if args.lr else {}
    if args.sync_shift_max:
        extra["loss"] = {"sync_shift_max": args.sync_shift_max}
    last = train(
        TrainArgs(
            config=args.config,
            data=spec,
            out=str(run),
            epochs=args.epochs,
            batch_size=32,
            seed=0,
            workers=1,
            threads=args.threads,
            init=args.init,
            epoch_size=args.epoch_size,
            **extra,
        ),
        resume=(run / "state.json").exists(),
        progress=False,
    )
    log("trained", round(time.time() - t), "s", last)
    card = {
        "name": "davs_small_v1",
        "config": args.config,
        "date": now(),
        "seed": 0,
        "epochs": args.epochs,
        "init": args.init,
        "data": spec,
        "loss": extra.get("loss", {}),
        "weights": PART_WEIGHTS,
        "train_seconds": round(time.time() - t),
        "last_epoch": last,
        "held_out": "lrc_ar test identities (identity-disjoint split 0.7/0.1/0.2 seed 0), GRID speakers other "
        "than s1, all wild clips; GRID s1 test sentences (s1 itself is trained on)",
    }
    write_json(run / "card.json", card)
    if args.install:
        log("installed", install(run, card))


if __name__ == "__main__":
    main()

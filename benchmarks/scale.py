"""Scale benchmark: compact vs memmap store (bytes per clip by array, codec table), preprocess clips/s,
loader clips/s from both stores in one run, Ray vs local on 1 and 2 workers, and a projection for LRW,
LRS3 and VoxCeleb2 from the measured per-clip costs.

    .venv/bin/python benchmarks/scale.py [--scratch DIR] [--grid-sentences 12] [--grid-mouth-crfs 18,20]
    .venv/bin/python benchmarks/scale.py --train-grid   # then: training clips/s on GRID s1 + the dlib projection

Measured here: everything except the `projection*` blocks, which multiply the measured per-clip or
per-frame costs (labelled so). Corpus: the synthetic `tiny` preset (80 clips, true landmarks, so no dlib: the encode cost
is not hidden behind landmark detection); the codec table also on the first GRID s1 sentences of
/work/stores/grid_s1 (read only). Nothing is held out: no model is evaluated here.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
from _common import DATA, lipread_summary, stamp, write_result

SOURCES = {"LRW": (500_000, 29), "LRS3": (150_000, 100), "VoxCeleb2": (1_000_000, 200)}  # clips, frames/clip


def codec_table(n_sent: int) -> list[dict]:
    import pandas as pd

    from avrep.data import codecs as C

    d = Path("/work/stores/grid_s1/shard_00000")
    if not d.exists():
        return []
    m, f = np.load(d / "mouth.npy", mmap_mode="r"), np.load(d / "face.npy", mmap_mode="r")
    c = pd.read_parquet(d / "clips.parquet")
    g = c.groupby("path").agg(lo=("offset", "min"), hi=("offset", "max"), n=("n_frames", "max"))
    segs = [(int(r.lo), int(r.hi + r.n)) for r in g.itertuples()][:n_sent]
    frames = sum(h - lo for lo, h in segs)
    rows = []
    for name, arr in (("mouth", m), ("face", f)):
        for codec, kw in (
            ("h264", {"crf": 18}),
            ("h264", {"crf": 20}),
            ("h264", {"crf": 23}),
            ("ffv1", {}),
            ("jpeg", {"quality": 90}),
            ("webp", {"quality": 90}),
            ("png", {}),
        ):
            nb, err, te, td = 0, [], 0.0, 0.0
            for lo, hi in segs:
                x = np.asarray(arr[lo:hi])
                t = time.perf_counter()
                b = C.encode_video(x, codec, preset=C.DEFAULT_PRESET, **kw)
                te += time.perf_counter() - t
                t = time.perf_counter()
                y = C.decode_video(b, codec, x.shape[1:])
                td += time.perf_counter() - t
                nb += len(b)
                err.append(float(np.abs(y.astype(float) - x).mean()))
            rows.append(
                dict(
                    array=name,
                    codec=codec,
                    **kw,
                    bytes_per_frame=nb / frames,
                    raw_bytes_per_frame=int(x[0].size),
                    mean_abs_error=float(np.mean(err)),
                    encode_ms_per_frame=1e3 * te / frames,
                    decode_ms_per_frame=1e3 * td / frames,
                )
            )
    return rows


def store_bytes(store: Path, clips: int) -> dict:
    from avrep.data.store import FeatureStore

    fs = FeatureStore(store)
    if fs.compact:
        per = {
            k: float(fs.samples[f"{k}_size"].sum()) / clips
            for k in ("mouth", "face", "audio", "landmarks", "face_mask")
        }
        total = sum(p.stat().st_size for p in store.glob("*.tar"))
    else:
        per = {k: sum(p.stat().st_size for p in store.glob(f"shard_*/{k}.npy")) / clips for k in fs.shard(0)}
        total = sum(p.stat().st_size for p in store.glob("shard_*/*.npy"))
    return {"per_clip_by_array": per, "data_bytes_per_clip": total / clips, "data_bytes": total}


def loader_rate(store: Path, n_batches: int = 8) -> float:
    from avrep.data.dataset import make_loader

    dl = make_loader(store, "train", batch_size=8, workers=1, seed=0)
    it = iter(dl)
    next(it)  # worker start-up out of the timing
    t, n = time.perf_counter(), 0
    for _ in range(n_batches):
        try:
            n += len(next(it)["clip_id"])
        except StopIteration:
            break
    return n / (time.perf_counter() - t)


def train_rates(
    stores: dict[str, Path], work: Path, reps: int = 2, epochs: int = 3, epoch_size: int | None = None
) -> dict:
    """clips/s of `avrep train` (config small, CPU, 1 loader worker) per epoch, the stores interleaved;
    `epoch_size` draws that many clips per epoch (`STORE@1` mixture) from a big store."""
    import json

    from avrep.train.loop import TrainArgs, train

    out: dict[str, list[float]] = {k: [] for k in stores}
    for _ in range(reps):
        for k, store in stores.items():
            run = work / f"run_{k}"
            shutil.rmtree(run, ignore_errors=True)
            args = TrainArgs(
                config="small",
                data=f"{store}@1" if epoch_size else str(store),
                epoch_size=epoch_size,
                out=str(run),
                epochs=epochs,
                batch_size=16,
                workers=1,
                device="cpu",
                val_max_clips=16,
            )
            train(args, progress=False)
            logs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
            out[k] += [float(r["clips_per_s"]) for r in logs[1:] if "clips_per_s" in r]  # epoch 1: warm-up
            shutil.rmtree(run, ignore_errors=True)
    return {k: {"per_epoch": v, "median": float(np.median(v)) if v else None} for k, v in out.items()}


def projection_with_dlib(res: dict, encode_s_per_frame: float, grid_frames: int) -> dict:
    """PROJECTED wall time on N machines like this one (2 cores): dlib landmarks + crops at the measured
    frames/s of benchmarks/results/preprocess.json (GRID, 2 workers, memmap) plus the measured compact
    encode seconds per frame (converting GRID s1 here, 1 process)."""
    from _common import read_result

    dlib_fps = read_result("preprocess")["passes"]["fast"]["frames_per_s"]
    bpf = res["grid_s1"]["compact_mouth_crf18"]["bytes"] / grid_frames
    s_per_frame = 1.0 / dlib_fps + encode_s_per_frame / 2  # the encode runs in both workers
    out = {
        "note": "PROJECTED from measured per-frame costs, not measured: dlib pass "
        f"{dlib_fps} frames/s (preprocess.json, 2 workers), compact encode {1e3 * encode_s_per_frame:.2f} ms/frame "
        f"(1 process, GRID s1 conversion here), GRID s1 compact bytes/frame {bpf:.0f}; linear in frames and machines",
        "s_per_frame_one_machine": s_per_frame,
        "bytes_per_frame": bpf,
    }
    for name, (clips, frames) in SOURCES.items():
        f = clips * frames
        out[name] = {
            "clips": clips,
            "frames_per_clip": frames,
            "disk_GB": f * bpf / 1e9,
            "hours_on_N_machines": {str(n): f * s_per_frame / n / 3600 for n in (1, 8, 64)},
        }
    return out


def grid_comparison(work: Path, mouth_crfs: list[int]) -> dict | None:
    """GRID s1: convert the memmap store (/work/stores/grid_s1, read only) at each mouth crf and evaluate the
    shipped model on its test split from every store: bytes vs the source videos and lip reading old vs new."""
    from avrep.data import codecs
    from avrep.data.store import convert_store
    from avrep.eval import evaluate_run
    from avrep.models.pretrained import resolve_checkpoint

    old = Path("/work/stores/grid_s1")
    src = DATA / "grid_s1" / "video"
    if not old.exists() or not src.exists():
        return None
    ck = resolve_checkpoint(None, quiet=True)
    src_bytes = sum(p.stat().st_size for p in src.glob("*"))

    def lipread(store: Path) -> dict:
        return lipread_summary(
            evaluate_run(ck, str(store), "test", None, device="cpu", workers=1, probes=False, progress=False)
        )

    out = {
        "source_video_bytes": src_bytes,
        "memmap": {"bytes": sum(p.stat().st_size for p in old.glob("shard_*/*.npy")), "lipread": lipread(old)},
        "note": "the shipped davs_small_v1 (trained with GRID s1's train split read from the memmap store) "
        "evaluated on the held-out test sentences read from each store; no retraining on a compact store",
    }
    out["memmap"]["over_source"] = out["memmap"]["bytes"] / src_bytes
    default = codecs.DEFAULT_CRF["mouth"]
    for crf in mouth_crfs:
        new = work / f"grid_s1_compact_crf{crf}"
        codecs.DEFAULT_CRF["mouth"] = crf
        try:
            t = time.perf_counter()
            convert_store(old, new, progress=False, overwrite=True)
            secs = time.perf_counter() - t
        finally:
            codecs.DEFAULT_CRF["mouth"] = default
        b = sum(p.stat().st_size for p in new.glob("*.tar"))
        lr = lipread(new)
        out[f"compact_mouth_crf{crf}"] = {
            "bytes": b,
            "over_source": b / src_bytes,
            "convert_seconds": secs,
            "lipread": lr,
            "video_top1_points_vs_memmap": 100 * (lr["video_top1"] - out["memmap"]["lipread"]["video_top1"]),
        }
        shutil.rmtree(new, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scratch", default="/tmp/avrep_scale")
    ap.add_argument("--grid-sentences", type=int, default=12)
    ap.add_argument("--no-grid", action="store_true", help="skip the GRID s1 conversion + evaluation")
    ap.add_argument("--grid-mouth-crfs", default="18,20", help="mouth crfs to convert GRID s1 at (default first)")
    ap.add_argument(
        "--train-grid",
        action="store_true",
        help="only measure training clips/s on GRID s1 (memmap vs compact) and merge it into scale.json",
    )
    a = ap.parse_args()
    if a.train_grid:
        from _common import read_result

        from avrep.data.store import convert_store

        S = Path(a.scratch)
        new = S / "grid_s1_compact_train"
        t = time.perf_counter()
        convert_store("/work/stores/grid_s1", new, progress=False, overwrite=True)
        conv_s = time.perf_counter() - t
        from avrep.data.store import FeatureStore

        frames = int(FeatureStore(new).samples["n_frames"].sum())
        res = read_result("scale")
        res["projection_with_dlib"] = projection_with_dlib(res, conv_s / frames, frames)
        res["train_clips_per_s_small_cpu_grid_s1"] = {
            "note": "192 clips per epoch drawn from GRID s1's train split, batch 16, epochs 2-3 of 3, 2 reps, "
            "stores interleaved",
            **train_rates({"memmap": Path("/work/stores/grid_s1"), "compact": new}, S, epoch_size=192),
        }
        shutil.rmtree(new, ignore_errors=True)
        print(write_result("scale", res))
        return
    from avrep.data.recipes.synth import prepare_synth
    from avrep.preprocess import PreprocessConfig, preprocess
    from avrep.synth.corpus import SynthConfig, generate

    S = Path(a.scratch)
    S.mkdir(parents=True, exist_ok=True)
    corpus = S / "tiny"
    if not (corpus / "manifest.parquet").exists():
        generate(SynthConfig(preset="tiny", seed=0, clips_per_word=8), corpus, workers=1, progress=False)
    m = S / "manifest.parquet"
    prepare_synth(corpus).write(m)
    src_bytes = sum(p.stat().st_size for p in (corpus / "clips").rglob("*.mp4"))
    cfg = PreprocessConfig(landmarks="true", shard_size=8)
    runs = {}
    for fmt in ("memmap", "compact"):
        shutil.rmtree(S / fmt, ignore_errors=True)
        r = preprocess(m, S / fmt, config=cfg, progress=False, store_format=fmt)
        runs[fmt] = {"clips_per_s": r.n_ok / r.seconds, "n_clips": r.n_ok, "seconds": r.seconds}
        runs[fmt].update(store_bytes(S / fmt, r.n_ok))
    n = runs["compact"]["n_clips"]
    rates = {fmt: [] for fmt in ("memmap", "compact")}
    for _ in range(2):  # interleaved, best of 2
        for fmt in rates:
            rates[fmt].append(loader_rate(S / fmt))
    train = train_rates({k: S / k for k in ("memmap", "compact")}, S)
    backends = {}
    for w in (1, 2):
        shutil.rmtree(S / "b", ignore_errors=True)
        t = time.perf_counter()
        preprocess(m, S / "b", config=cfg, progress=False, workers=w)
        backends[f"local_{w}"] = n / (time.perf_counter() - t)
    try:
        import ray

        for w in (1, 2):
            ray.init(num_cpus=w, include_dashboard=False, log_to_driver=False)
            shutil.rmtree(S / "b", ignore_errors=True)
            t = time.perf_counter()
            preprocess(m, S / "b", config=cfg, progress=False, backend="ray")
            backends[f"ray_{w}"] = n / (time.perf_counter() - t)
            ray.shutdown()
    except ImportError:
        backends["ray"] = "not installed"
    per_clip_s = runs["compact"]["seconds"] / n  # this machine, 1 worker, true landmarks (no dlib)
    bpf = runs["compact"]["data_bytes_per_clip"] / 29
    proj = {}
    for name, (clips, frames) in SOURCES.items():
        proj[name] = {
            "clips": clips,
            "frames_per_clip": frames,
            "disk_GB": clips * frames * bpf / 1e9,
            "hours_on_N_machines_of_2_cores": {
                str(N): clips * per_clip_s * frames / 29 / (2 * N) / 3600 for N in (1, 8, 64)
            },
        }
    res = {
        **stamp("torch", "av", "ray"),
        "corpus": "synthetic tiny preset, 80 clips of 29 frames, true landmarks",
        "source_bytes_per_clip": src_bytes / n,
        "stores": runs,
        "store_over_source": {k: v["data_bytes_per_clip"] / (src_bytes / n) for k, v in runs.items()},
        "loader_clips_per_s_best_of_2": {k: max(v) for k, v in rates.items()},
        "train_clips_per_s_small_cpu": train,
        "preprocess_clips_per_s_by_backend": backends,
        "codec_table_grid_s1": codec_table(a.grid_sentences),
        "grid_s1": None if a.no_grid else grid_comparison(S, [int(c) for c in a.grid_mouth_crfs.split(",")]),
        "projection": {
            "note": "PROJECTED, not measured: measured compact-store bytes/frame and preprocess seconds/clip "
            "(1 worker, true landmarks, no dlib: real corpora add dlib's ~10x) scaled linearly by frames",
            **proj,
        },
        "grid_s1_source_bytes": sum(p.stat().st_size for p in (DATA / "grid_s1" / "video").glob("*"))
        if (DATA / "grid_s1" / "video").exists()
        else None,
    }
    print(write_result("scale", res))


if __name__ == "__main__":
    main()

"""Benchmark preprocessing on real GRID s1 sentences -> benchmarks/results/preprocess.json.

Measures clips/s (word clips and source videos) with K workers, the time split decode / landmarks /
crop / audio / write (summed over workers), and the decode-only rate with the same number of
processes, so "throughput >= 0.5x decode-only" can be checked. Usage:
    python benchmarks/preprocess.py [--sentences 48] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _decode(path: str) -> int:
    from avrep.io import media

    v, _ = media.read_av(path)
    return len(v.frames)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=48)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "preprocess.json"))
    a = ap.parse_args()
    if not (DATA / "grid_s1").is_dir():
        sys.exit(f"{DATA / 'grid_s1'}: shared data absent")
    import av
    import cv2
    import decord
    import dlib
    import numpy as np

    from avrep import __version__
    from avrep.data.recipes import write_manifest
    from avrep.data.recipes.grid import prepare_grid
    from avrep.preprocess import PreprocessConfig, preprocess

    df = prepare_grid(DATA / "grid_s1")
    keep = sorted(set(df["sentence"]))[: a.sentences]
    df = df[df["sentence"].isin(keep)]
    paths = sorted(str(DATA / "grid_s1" / p) for p in set(df["path"]))
    with tempfile.TemporaryDirectory() as tmp:
        m = write_manifest(df, Path(tmp) / "m.parquet", DATA / "grid_s1", recipe="grid")
        t = time.perf_counter()
        with ProcessPoolExecutor(a.workers, mp_context=get_context("spawn")) as ex:
            list(ex.map(_decode, paths[:2]))  # warm up the workers (imports)
            t = time.perf_counter()
            frames = sum(ex.map(_decode, paths))
        dec_s = time.perf_counter() - t
        cfg = PreprocessConfig(shard_size=max(1, len(paths) // (2 * a.workers)))
        res = preprocess(m, Path(tmp) / "store", workers=a.workers, config=cfg, progress=False)
    tm = res.timings
    tot = sum(tm.values())
    out = {
        "what": f"avrep preprocess on {len(paths)} real GRID s1 sentences ({len(df)} word clips), "
                f"{a.workers} workers",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor(),
                    "load_avg_1m": os.getloadavg()[0]},
        "versions": {"avrep": __version__, "python": platform.python_version(), "numpy": np.__version__,
                     "dlib": dlib.__version__, "decord": decord.__version__, "av": av.__version__,
                     "opencv": cv2.__version__},
        "wall_s": round(res.seconds, 2),
        "word_clips_per_s": round(len(df) / res.seconds, 2),
        "videos_per_s": round(len(paths) / res.seconds, 2),
        "frames_per_s": round(res.n_frames / res.seconds, 1),
        "decode_only_videos_per_s": round(len(paths) / dec_s, 2),
        "throughput_vs_decode_only": round((len(paths) / res.seconds) / (len(paths) / dec_s), 3),
        "time_split_s": {k: round(v, 2) for k, v in tm.items()},
        "time_split_frac": {k: round(v / tot, 3) for k, v in tm.items()},
        "n_failed": res.n_failed,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

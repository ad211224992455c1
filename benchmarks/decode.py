"""Video decoding: avrep's timestamp decoder (PyAV) vs decord, on the shared real files, side by side.

  python benchmarks/decode.py [--repeats 3] [--per-set 40]

For every file: does decord's frame-index read (what avrep used before) show the same pictures as the
timestamp read (mean abs pixel difference per frame, and the frame shift that explains it), and how
fast is each (frames/s, interleaved runs so both see the same machine load). Writes
benchmarks/results/decode.json. Speeds are ratios from one run; absolute numbers are this CPU's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import DATA, log, stamp, write_result


def decord_read(path: Path) -> np.ndarray:
    """What avrep's decoder did before: probe (PyAV), then decord frame indices mapped to 25 fps by index."""
    import decord

    from avrep.io import media

    media.probe(path)
    vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    fps = float(vr.get_avg_fps())
    n = len(vr)
    if abs(fps - 25) < 1e-3:
        idx = np.arange(n)
    else:
        n_out = max(1, int(round(n * 25 / fps)))
        idx = np.minimum(np.floor((np.arange(n_out) + 0.5) * fps / 25).astype(int), n - 1)
    return vr.get_batch(idx.tolist()).asnumpy()


def shift_of(a: np.ndarray, b: np.ndarray, max_shift: int = 15) -> int:
    """The frame shift s for which b[i] best matches a[i + s] (0 = same timeline)."""
    best, best_s = np.inf, 0
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    for s in range(-max_shift, max_shift + 1):
        i0, i1 = max(0, -s), min(len(fb), len(fa) - s)
        if i1 - i0 < 5:
            continue
        d = float(np.abs(fb[i0:i1] - fa[i0 + s : i1 + s]).mean())
        if d < best:
            best, best_s = d, s
    return best_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--per-set", type=int, default=40, help="files per data set (grid_s1, lrc_ar)")
    args = ap.parse_args()
    from avrep.errors import MissingExtraError, require

    try:  # decord is not an avrep dependency: only this comparison uses it
        require("decord", "compare", "benchmarks/decode.py (avrep's decoder against decord)")
    except MissingExtraError as e:
        raise SystemExit(str(e)) from None

    from avrep.io import media

    sets = {
        "grid_mpg (MPEG-1 PS, 25 fps)": sorted((DATA / "grid").glob("*.mpg")),
        "grid_s1_mp4 (H.264, 25 fps)": sorted((DATA / "grid_s1" / "video").glob("*.mp4"))[: args.per_set],
        "lrc_ar (H.264, 25/30 fps)": sorted((DATA / "lrc_ar" / "video").glob("*.mp4"))[: args.per_set],
        "wild (H.264, 25/30 fps, VFR)": [
            p
            for p in sorted((DATA / "wild").glob("*.mp4"))
            if max(media.probe(p).width, media.probe(p).height) <= media.DECODE_MAX_SIDE
        ],
    }
    out: dict = {**stamp("av", "decord", "numpy"), "sets": {}}
    for name, files in sets.items():
        if not files:
            continue
        agree = []
        for p in files:
            ts = media.read_video(p).frames
            dc = decord_read(p)
            n = min(len(ts), len(dc))
            agree.append(
                {
                    "file": p.name,
                    "frames_timestamp": len(ts),
                    "frames_decord": len(dc),
                    "shift_frames": shift_of(ts, dc),
                    "mean_abs_diff": round(float(np.abs(ts[:n].astype(np.int16) - dc[:n]).mean()), 2),
                }
            )
        times = {"pyav_timestamps": [], "decord_index": []}
        n_frames = sum(a["frames_timestamp"] for a in agree)
        for _ in range(args.repeats):  # interleaved: both see the same load
            t = time.perf_counter()
            for p in files:
                media.read_video(p)
            times["pyav_timestamps"].append(time.perf_counter() - t)
            t = time.perf_counter()
            for p in files:
                decord_read(p)
            times["decord_index"].append(time.perf_counter() - t)
        best = {k: min(v) for k, v in times.items()}
        shifted = [a for a in agree if a["shift_frames"] != 0]
        out["sets"][name] = {
            "files": len(files),
            "frames": n_frames,
            "frames_per_s": {k: round(n_frames / v, 1) for k, v in best.items()},
            "pyav_time_over_decord": round(best["pyav_timestamps"] / best["decord_index"], 2),
            "decord_off_timeline": len(shifted),
            "decord_shifts": sorted({a["shift_frames"] for a in shifted}),
            "per_file": agree if len(files) <= 12 else shifted,
        }
        log(name, out["sets"][name]["frames_per_s"], "decord off timeline:", len(shifted), "of", len(files))
    out["note"] = (
        "avrep decodes with PyAV by presentation timestamp everywhere. decord reads frames by index: "
        "right on constant-rate mp4 at 25 fps, off by a GOP on MPEG-1 program streams, and off on "
        "resampled/VFR sources. shift_frames = s where decord's frame i shows the true frame i + s."
    )
    p = write_result("decode", out)
    print(p.read_text())


if __name__ == "__main__":
    main()

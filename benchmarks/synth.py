"""Benchmark `avrep synth`: clips/s, dlib detection rate on decoded renders, homophene ceilings.

Usage: python benchmarks/synth.py [--workers 2] [--small-clips 400]
The full `tiny` preset is timed end to end; `small` is timed on its first N clips (the same
per-clip work) and extrapolated to 5,000 clips, which the JSON states.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import goals, versions, write_result


def detection_rate(corpus: Path, n_clips: int = 40, frames_per_clip: int = 5, seed: int = 0) -> dict:
    """dlib HOG (upsample 1) on decoded mp4 frames; 68-point error vs the true landmarks."""
    import av
    import dlib
    import pandas as pd

    from avrep.data.landmarks import model_path

    det = dlib.get_frontal_face_detector()
    pred = dlib.shape_predictor(model_path("shape_predictor_68_face_landmarks.dat"))
    df = pd.read_parquet(corpus / "manifest.parquet")
    rng = np.random.default_rng(seed)
    rows = df.iloc[rng.choice(len(df), size=min(n_clips, len(df)), replace=False)]
    found = tried = 0
    errs, mouth_errs = [], []
    for r in rows.itertuples():
        with av.open(str(corpus / r.path)) as c:  # PyAV, all frames in presentation order
            vr = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        truth = np.load(corpus / r.landmarks_path)
        for fi in rng.choice(len(vr), size=frames_per_clip, replace=False):
            img = vr[int(fi)]
            dets = det(img, 1)
            tried += 1
            if not dets:
                continue
            found += 1
            box = max(dets, key=lambda d: d.area())
            sh = pred(img, box)
            pts = np.array([(p.x, p.y) for p in sh.parts()], np.float32)
            t = truth[int(fi)]
            iod = np.linalg.norm(t[36:42].mean(0) - t[42:48].mean(0))
            e = np.linalg.norm(pts - t, axis=1) / iod
            errs.append(e.mean())
            mouth_errs.append(e[48:].mean())
    return {
        "frames_tried": tried,
        "detection_rate": found / max(tried, 1),
        "nme_iod_mean": float(np.mean(errs)) if errs else None,
        "nme_iod_mouth": float(np.mean(mouth_errs)) if mouth_errs else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--small-clips", type=int, default=400)
    args = ap.parse_args()

    from avrep.synth.corpus import PRESETS, SynthConfig, generate, load_vocabulary
    from avrep.synth.visemes import homophene_groups, visual_ceiling

    out: dict = {"versions": versions("torch", "av", "dlib-bin", "espeakng-loader"), "workers": args.workers}
    goal = goals("synth")
    vocab = load_vocabulary()
    out["homophenes"] = {}
    for name, p in PRESETS.items():
        words = vocab[: p.n_words]
        groups = [g for g in homophene_groups(words) if len(g) > 1]
        out["homophenes"][name] = {
            "words": len(words),
            "groups_with_2plus": len(groups),
            "visual_ceiling": visual_ceiling(words),
        }
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        res = generate(SynthConfig(preset="tiny", seed=0), Path(tmp) / "tiny", workers=args.workers, progress=False)
        wall = time.time() - t0
        out["tiny"] = {
            "clips": res["n_clips"],
            "failures": len(res["failures"]),
            "wall_s": round(wall, 2),
            "clips_per_s": round(res["n_clips"] / wall, 2),
            "goal_s": goal["tiny_s"],
        }
        out["dlib_on_rendered_mp4"] = detection_rate(Path(tmp) / "tiny")
        # small: its first N clips in plan order (all words' first clips are spread over the list by
        # taking every k-th clip through --shard), extrapolated to the whole preset
        n_small = PRESETS["small"].n_words * PRESETS["small"].clips_per_word
        k = max(1, n_small // args.small_clips)
        t0 = time.time()
        res = generate(
            SynthConfig(preset="small", seed=0, shard=(0, k)), Path(tmp) / "small", workers=args.workers, progress=False
        )
        wall = time.time() - t0
        rate = res["n_clips"] / wall
        out["small"] = {
            "clips_timed": res["n_clips"],
            "failures": len(res["failures"]),
            "wall_s": round(wall, 2),
            "clips_per_s": round(rate, 2),
            "projected_full_s": round(n_small / rate, 1),
            "goal_s": goal["small_s"],
            "note": f"timed on shard 0/{k} of the preset, projected to {n_small} clips",
        }
    path = write_result("synth", out)
    print(path.read_text())


if __name__ == "__main__":
    main()

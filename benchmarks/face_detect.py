"""Benchmark the procedural face renderer against real dlib: detection rate, 68-point error, speed.

Renders `--identities` identities x mouth states x random small poses, runs dlib's HOG frontal
detector (upsample 1) and the 68-point shape predictor, and compares with the true landmarks
(mean point error / inter-ocular distance).  Writes JSON to benchmarks/results/face_detect.json.

    .venv/bin/python benchmarks/face_detect.py --identities 200
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time

import numpy as np
from _common import RESULTS, versions, write_result

from avrep.synth.face import FaceRenderer, Identity, render_sequence

STATES = {  # [jaw, spread, round, teeth, tongue]
    "closed": [0, 0, 0, 0, 0],
    "open": [0.9, 0.2, 0, 0.8, 0.3],
    "half_teeth": [0.4, 0.6, 0, 1, 0],
    "rounded": [0.3, 0, 1, 0, 0],
    "spread_tongue": [0.5, 1, 0, 0.6, 1],
}
GROUPS = {"jaw": (0, 17), "brows": (17, 27), "nose": (27, 36), "eyes": (36, 48), "mouth": (48, 68)}


def predictor_path() -> str:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise SystemExit("face_recognition_models is not installed")
    return os.path.join(os.path.dirname(spec.origin), "models", "shape_predictor_68_face_landmarks.dat")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identities", type=int, default=200)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "face_detect.json"))
    args = ap.parse_args()
    import dlib

    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(predictor_path())
    rng = np.random.default_rng(args.seed)
    hits: dict[str, list[int]] = {k: [] for k in STATES}
    errs: dict[str, list[np.ndarray]] = {k: [] for k in STATES}
    misses = []
    for s in range(args.identities):
        r = FaceRenderer(Identity.sample(s), args.size)
        for name, a in STATES.items():
            pose = (rng.uniform(-4, 4), rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03), rng.uniform(0.97, 1.03))
            blink = 0.0
            img, lm = r.render(np.array(a, float), pose, blink)
            d = det(img, 1)
            hits[name].append(int(len(d) > 0))
            if not len(d):
                misses.append(
                    {
                        "identity": s,
                        "state": name,
                        "hair": r.id.hair_style,
                        "beard": r.id.beard,
                        "glasses": r.id.glasses,
                    }
                )
                continue
            box = max(d, key=lambda b: b.area())
            sh = sp(img, box)
            p = np.array([[sh.part(i).x, sh.part(i).y] for i in range(68)], float)
            iod = np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0))
            errs[name].append(np.linalg.norm(p - lm, axis=1) / iod)
    # speed: full 29-frame clips through render_sequence (renderer built once per identity)
    track = np.clip(np.abs(np.sin(np.linspace(0, 6, 29)))[:, None] * np.array([0.8, 0.4, 0.3, 0.7, 0.3]), 0, 1)
    t_init, t_frame = [], []
    for s in range(10):
        t0 = time.perf_counter()
        r = FaceRenderer(Identity.sample(10_000 + s), args.size)
        t1 = time.perf_counter()
        render_sequence(r, track, s)
        t_init.append(t1 - t0)
        t_frame.append((time.perf_counter() - t1) / len(track))
    all_err = np.concatenate([np.stack(v) for v in errs.values() if v])
    res = {
        "versions": versions("dlib-bin", "face-recognition-models", "opencv-python-headless"),
        "identities": args.identities,
        "size": args.size,
        "states": list(STATES),
        "detection_rate": float(np.mean([h for v in hits.values() for h in v])),
        "detection_rate_by_state": {k: float(np.mean(v)) for k, v in hits.items()},
        "nme_iod_mean": float(all_err.mean()),
        "nme_iod_by_group": {g: float(all_err[:, a:b].mean()) for g, (a, b) in GROUPS.items()},
        "nme_iod_mouth_by_state": {k: float(np.stack(v)[:, 48:].mean()) for k, v in errs.items() if v},
        "init_ms": float(np.mean(t_init) * 1000),
        "ms_per_frame": float(np.mean(t_frame) * 1000),
        "misses": misses[:50],
    }
    write_result(args.out, res)
    print({k: v for k, v in res.items() if k != "misses"})
    print(f"misses: {len(misses)}")


if __name__ == "__main__":
    main()

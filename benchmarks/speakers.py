"""Who is speaking: `avrep.speakers` on composites of real people the shipped model never trained on.

  python benchmarks/speakers.py [--run RUN_DIR] [--quick] [--seed 0] [--result speakers]
  python benchmarks/speakers.py --calibrate     # refit the score's logistic (lrc_ar `val` identities)

Held out (never trained on): the 5 lrc_ar `test` identities (anchor02/12/18/19/21, the split
benchmarks/unseen.py evaluates), the GRID speakers other than s1 (../shared/data/grid/*.mpg) and the wild
clips (../shared/data/wild). The score's calibration uses neither: `--calibrate` fits it on the 2 lrc_ar
`val` identities (not trained on, not benchmarked) with matched, other-speaker and silent audio.

Composites (faces side by side, each face its own real clips, concatenated per identity for length):
  * one_of_2 / one_of_3: 2 or 3 faces, the audio of one of them throughout;
  * alternating: 2 faces; A speaks (~3.6 s), then B, then nobody (silence);
  * GRID: pairs of the other speakers (3 s, 360x288 each), the audio of one;
  * wild: pairs of wild clips resized to 256x256, the audio of one.
Each composite is written as an mp4 and read back by `avrep.speakers` end to end (decode, detection,
tracks, landmarks, features, scores). Measured: frame accuracy of "who is speaking" (the speaking track
with the highest score, or nobody) against the truth, and AP of the per-track per-frame scores (speaking
vs not; mAP = AP here, one class, as on AVA-ActiveSpeaker).
Also measured, not in the accuracy: a voice from off screen (2 faces, the audio of a third held-out
anchor): frames where someone is wrongly said to speak.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from _common import DATA, goals, log, stamp, write_result

LRC = DATA / "lrc_ar"
# decision rules measured side by side on the same runs: the default (each face by its own agreement) and
# contrast 1 (a face also against the best other face on screen; `SpeakersConfig.contrast`)
RULES = {"default": 0.0, "contrast_1": 1.0}
HELD_OUT_SPLIT = "test"
SPF = 640


def ap_score(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision of scores s for binary labels y: scikit-learn's `average_precision_score`, equal
    scores one threshold (`avrep.eval.detection`). Results before this change ranked tied scores in input
    order, one item at a time."""
    from avrep.eval.detection import average_precision

    return average_precision(y, s)


def split_identities(store: str) -> dict[str, list[str]]:
    c = pd.read_parquet(Path(store) / "clips.parquet", columns=["speaker", "split"]).drop_duplicates()
    return {s: sorted(c.loc[c.split == s, "speaker"]) for s in ("train", "val", "test")}


class Streams:
    """Per identity: its lrc_ar clips decoded (frames 256x256, audio), concatenated on demand."""

    def __init__(self, per_identity: int, seed: int = 0):
        from avrep.io.media import read_av

        ids = pd.read_csv(LRC / "identities.csv")
        self.read_av = read_av
        self.ids = ids
        self.per = per_identity
        self.rng = np.random.default_rng(seed)
        self.cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def stream(self, identity: str) -> tuple[np.ndarray, np.ndarray]:
        if identity not in self.cache:
            clips = sorted(self.ids.loc[self.ids.identity == identity, "clip"].tolist())
            pick = self.rng.choice(clips, min(self.per, len(clips)), replace=False)
            fr, au = [], []
            for c in pick:
                v, a = self.read_av(LRC / "video" / f"{int(c):05d}.mp4")
                if v.frames.shape[1:3] != (256, 256):
                    continue
                fr.append(v.frames)
                au.append(a)
            self.cache[identity] = (np.concatenate(fr), np.concatenate(au))
        return self.cache[identity]


def resize(frames: np.ndarray, side: int) -> np.ndarray:
    import cv2

    return np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA) for f in frames])


def run_one(path: Path, frames, audio, labels: np.ndarray, panel_w: int, model, cfg) -> dict:
    """Write the composite, run avrep.speakers, score it under each decision rule (`RULES`).
    labels: int [T] the panel speaking, -1 nobody."""
    from avrep.apps.speakers import decide, speakers
    from avrep.io.encode import write_mp4

    write_mp4(path, frames, audio)
    t0 = time.perf_counter()
    r = speakers(path, model=model, config=cfg, progress=False)
    sec = time.perf_counter() - t0
    T = min(len(labels), r.n_frames)
    n_panels = frames.shape[2] // panel_w
    # track -> panel by the centre of its median box (source px = composite px: no downscale here)
    panel = {}
    for t in r.tracks:
        cx = float(np.median((t.boxes[:, 0] + t.boxes[:, 2]) / 2))
        panel[t.id] = int(np.clip(cx // panel_w, 0, n_panels - 1))
    out = {"frames": T, "tracks": len(r.tracks), "faces": n_panels, "seconds": sec, "video_s": r.n_frames / 25}
    for rule, contrast in RULES.items():
        decide(r, replace(cfg, contrast=contrast))
        who = r.speaker_per_frame()[:T]
        pred = np.array([panel[w] if w >= 0 else -1 for w in who])
        ys, ss = [], []
        for t in r.tracks:
            sl = np.arange(t.first, min(t.last + 1, T))
            ys.append(labels[sl] == panel[t.id])
            ss.append(t.scores[: len(sl)])
        out[rule] = {
            "correct": int((pred == labels[:T]).sum()),
            "y": np.concatenate(ys) if ys else np.zeros(0, bool),
            "s": np.concatenate(ss) if ss else np.zeros(0, np.float32),
            "said_speaking_frames": int((pred >= 0).sum()),
        }
    return out


def summarise(items: list[dict]) -> dict:
    fr = sum(i["frames"] for i in items)
    out = {
        "composites": len(items),
        "frames": fr,
        "tracks_found_vs_faces": f"{sum(i['tracks'] for i in items)}/{sum(i['faces'] for i in items)}",
        "seconds_per_video_second": round(sum(i["seconds"] for i in items) / sum(i["video_s"] for i in items), 3),
    }
    for rule in RULES:
        y = np.concatenate([i[rule]["y"] for i in items])
        s = np.concatenate([i[rule]["s"] for i in items])
        out[rule] = {
            "frame_accuracy": round(sum(i[rule]["correct"] for i in items) / max(fr, 1), 4),
            "mAP": round(ap_score(y, s), 4),
        }
    return out


def lrc_composites(st: Streams, held: list[str], work: Path, model, cfg, quick: bool) -> dict:
    out: dict[str, list[dict]] = {"one_of_2": [], "one_of_3": [], "alternating": [], "offscreen_voice": []}
    pairs = [(a, b) for a in held for b in held if a != b]
    if quick:
        pairs = pairs[:4]
    n = 0
    for a, b in pairs:  # one_of_2: each ordered pair, the audio of the first
        fa, aa = st.stream(a)
        fb, _ = st.stream(b)
        T = min(len(fa), len(fb), 200)
        left = n % 2 == 0  # the speaker on the left half the time
        fr = np.concatenate([fa[:T], fb[:T]] if left else [fb[:T], fa[:T]], axis=2)
        lab = np.full(T, 0 if left else 1)
        out["one_of_2"].append(run_one(work / f"two_{n}.mp4", fr, aa[: T * SPF], lab, 256, model, cfg))
        n += 1
    trios = [(held[i], held[(i + 1) % len(held)], held[(i + 2) % len(held)]) for i in range(len(held))]
    for k, tri in enumerate(trios[: 2 if quick else None]):
        ss = [st.stream(x) for x in tri]
        T = min(min(len(f) for f, _ in ss), 200)
        sp = k % 3
        fr = np.concatenate([f[:T] for f, _ in ss], axis=2)
        out["one_of_3"].append(
            run_one(work / f"three_{k}.mp4", fr, ss[sp][1][: T * SPF], np.full(T, sp), 256, model, cfg)
        )
    for k, (a, b) in enumerate(pairs[::2][: 2 if quick else None]):  # A, then B, then nobody
        (fa, aa), (fb, ab) = st.stream(a), st.stream(b)
        T = min(len(fa), len(fb), 3 * 90)
        seg = T // 3
        fr = np.concatenate([fa[:T], fb[:T]], axis=2)
        au = np.zeros(T * SPF, np.float32)
        au[: seg * SPF] = aa[: seg * SPF]
        au[seg * SPF : 2 * seg * SPF] = ab[seg * SPF : 2 * seg * SPF]
        lab = np.r_[np.zeros(seg, int), np.ones(seg, int), np.full(T - 2 * seg, -1)]
        out["alternating"].append(run_one(work / f"alt_{k}.mp4", fr, au, lab, 256, model, cfg))
    for k in range(2 if quick else len(held)):  # a voice from off screen: nobody on screen speaks
        a, b, c = held[k], held[(k + 1) % len(held)], held[(k + 2) % len(held)]
        (fa, _), (fb, _), (_, ac) = st.stream(a), st.stream(b), st.stream(c)
        T = min(len(fa), len(fb), len(ac) // SPF, 200)
        fr = np.concatenate([fa[:T], fb[:T]], axis=2)
        out["offscreen_voice"].append(
            run_one(work / f"off_{k}.mp4", fr, ac[: T * SPF], np.full(T, -1), 256, model, cfg)
        )
    return out


def raw_pairs(files: list[Path], side: int | None, work: Path, tag: str, model, cfg, n_max: int) -> list[dict]:
    from avrep.io.media import read_av

    clips = []
    for p in files:
        v, a = read_av(p)
        f = v.frames if side is None else resize(v.frames, side)
        clips.append((p.name, f[:150], a[: 150 * SPF]))
    out = []
    pairs = [(i, (i + d) % len(clips)) for d in (1, 2) for i in range(len(clips))][:n_max]
    for k, (i, j) in enumerate(pairs):
        (_, fa, aa), (_, fb, _) = clips[i], clips[j]
        if fa.shape[1:] != fb.shape[1:]:
            continue
        T = min(len(fa), len(fb))
        left = k % 2 == 0
        fr = np.concatenate([fa[:T], fb[:T]] if left else [fb[:T], fa[:T]], axis=2)
        out.append(
            run_one(
                work / f"{tag}_{k}.mp4", fr, aa[: T * SPF], np.full(T, 0 if left else 1), fr.shape[2] // 2, model, cfg
            )
        )
    return out


def calibrate(store: str, model) -> dict:
    """Fit the logistic of (cos0, conf0) on the val identities: matched vs other-speaker and silent audio."""
    from sklearn.linear_model import LogisticRegression

    from avrep.apps.agreement import agreement, frame_features
    from avrep.apps.speakers import SpeakersConfig
    from avrep.data.store import FeatureStore

    cfg = SpeakersConfig()
    fs = FeatureStore(store)
    c = fs.clips
    sp = split_identities(store)
    rng = np.random.default_rng(0)

    def seq(spk: str, n: int = 8):
        idx = rng.choice(c.index[c.speaker == spk].to_numpy(), n, replace=False)
        cl = [fs.clip(int(i), keys=("mouth", "audio")) for i in idx]
        return np.concatenate([x["mouth"] for x in cl]), np.concatenate([x["audio"] for x in cl])

    feats: dict[str, list] = {"match": [], "other": [], "silence": []}
    others = sp["train"][:3]
    for rep in range(6):
        for i, s in enumerate(sp["val"]):
            m, a = seq(s)
            _, a2 = seq(sp["val"][1 - i] if rep % 2 else others[rep % 3])
            T = min(len(m), len(a2) // SPF)
            for k, aud in (
                ("match", a[: T * SPF]),
                ("other", a2[: T * SPF]),
                ("silence", np.zeros(T * SPF, np.float32)),
            ):
                vf, af = frame_features(model, m[:T], aud)
                kw = dict(half_window=cfg.half_window, max_offset=cfg.max_offset, tolerance=cfg.tolerance)
                feats[k].append(np.stack(agreement(vf, af, 0, **kw), 1))
    X = {k: np.concatenate(v) for k, v in feats.items()}
    Xa = np.concatenate([X["match"], X["other"], X["silence"]])
    y = np.r_[np.ones(len(X["match"])), np.zeros(len(X["other"]) + len(X["silence"]))]
    lr = LogisticRegression().fit(np.nan_to_num(Xa), y)
    p = lr.predict_proba(np.nan_to_num(Xa))[:, 1]
    return {
        "identities": sp["val"],
        "other_speakers": sp["val"] + others,
        "frames": {k: len(v) for k, v in X.items()},
        "half_window": cfg.half_window,
        "max_offset": cfg.max_offset,
        "tolerance": cfg.tolerance,
        "weights": [round(float(w), 3) for w in lr.coef_[0]],
        "bias": round(float(lr.intercept_[0]), 3),
        "frame_accuracy_at_0.5": round(float(((p > 0.5) == y).mean()), 4),
        "ap": round(ap_score(y, p), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default=None, help="trained run dir [default: the shipped pretrained model]")
    ap.add_argument("--lrc-store", default="/work/stores/lrc_ar", help="for the identity split (and --calibrate)")
    ap.add_argument("--quick", action="store_true", help="a few composites only")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--seed", type=int, default=0, help="which clips of each identity are drawn")
    ap.add_argument("--result", default="speakers")
    args = ap.parse_args()
    import torch

    from avrep.apps.speakers import SpeakersConfig
    from avrep.models import load_run
    from avrep.models.pretrained import resolve_checkpoint

    torch.set_num_threads(2)
    run = resolve_checkpoint(args.run)
    model, _, _ = load_run(run, "cpu")
    if args.calibrate:
        cal = calibrate(args.lrc_store, model)
        write_result("speakers_calibration", {**stamp("torch"), "run": str(run), **cal})
        print(cal)
        return
    cfg = SpeakersConfig()
    sp = split_identities(args.lrc_store)
    held = sp[HELD_OUT_SPLIT]
    t0 = time.time()
    res: dict = {
        **stamp("torch", "av", "dlib-bin"),
        "run": str(run),
        "seed": args.seed,
        "held_out": {
            "lrc_ar_identities": held,
            "grid": "speakers other than s1 (../shared/data/grid/*.mpg)",
            "wild": "../shared/data/wild/*.mp4",
            "calibration": f"lrc_ar val identities {sp['val']} (not trained on, not benchmarked)",
        },
        "config": {
            k: getattr(cfg, k)
            for k in ("detect_every", "half_window", "max_offset", "tolerance", "on", "off", "weights", "bias")
        },
    }
    with tempfile.TemporaryDirectory(prefix="avrep_speakers_") as tmp:
        work = Path(tmp)
        st = Streams(per_identity=8 if args.quick else 10, seed=args.seed)
        lrc = lrc_composites(st, held, work, model, cfg, args.quick)
        log("lrc_ar composites done", {k: len(v) for k, v in lrc.items()})
        grid = raw_pairs(sorted((DATA / "grid").glob("*.mpg")), None, work, "grid", model, cfg, 4 if args.quick else 10)
        log("grid done")
        wild = [p for p in sorted((DATA / "wild").glob("*.mp4")) if "lrs2_demo" not in p.name]
        wild_res = raw_pairs(wild, 256, work, "wild", model, cfg, 4 if args.quick else 10)
        log("wild done")
    groups = {"lrc_ar_" + k: v for k, v in lrc.items() if k != "offscreen_voice"}
    groups.update(grid_other_speakers=grid, wild=wild_res)
    res["by_set"] = {k: summarise(v) for k, v in groups.items() if v}
    allv = [i for v in groups.values() for i in v]
    res["overall"] = summarise(allv)
    off = lrc["offscreen_voice"]
    res["offscreen_voice"] = {
        "composites": len(off),
        "frames": sum(i["frames"] for i in off),
        "frames_said_speaking": {rule: sum(i[rule]["said_speaking_frames"] for i in off) for rule in RULES},
        "note": "2 held-out anchors on screen, the voice of a third: every frame should be nobody",
    }
    res["goal"] = goals("speakers")
    res["anchors"] = "TalkNet 92.3% / Light-ASD 94.1% mAP on AVA-ActiveSpeaker (another data set; scale only)"
    res["seconds"] = round(time.time() - t0, 1)
    p = write_result(args.result, res)
    print(p.read_text()[:4000])


if __name__ == "__main__":
    main()

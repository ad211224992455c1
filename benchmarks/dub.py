"""`avrep dub` on people the shipped generator never saw -> benchmarks/results/dub.json (+ docs/dub_strip.png,
docs/dub_example.mp4).

Held out (never trained on by the shipped DAVS model or generator): the lrc_ar `test` identities of the
identity-disjoint split 0.7/0.1/0.2 seed 0 of identities.csv (the split benchmarks/pretrained.py trains on),
and the GRID speakers other than s1 (../shared/data/grid, MPEG-1 originals). Clips are read from the raw files
through the app's own face track (`avrep.apps.dub.track_face`: landmarks -> aligned 128x128 face crops).

Each clip is dubbed
  (a) to its own audio: there is ground truth, so SSIM / PSNR / LMD against the real crops (frame 0 left out,
      as benchmarks/generate.py does: it is the reference the generator is given), plus sync;
  (b) to another clip's audio (a clip of another person in the same set): the output is as long as that audio
      (the video cut or ping-ponged, the app's rule); sync only.
Compared side by side on the same crops, each dub next to a baseline composed the same way (a mouth that does
not move: the reference crop's, frame 0's, lower face), under the app's feathered lower-face mask (`paste_mask`):
  dub                  the app's composition: the frame plus the generator's change to it (`paste_back` with
                       ref_seen = the frame as the generator sees it), i.e. the generator's coarse mouth plus the
                       frame's own fine detail. On (a) that detail is the true mouth's, so its image metrics get
                       some of the answer for free: compare it with the next line only;
  paste_reference_mouth_as_dub_composes  the same composition with the reference's lower face (as the generator
                       sees it) in place of the generator's output: the same free detail, a still mouth;
  dub_paste_outright   the generator's crop pasted outright under the mask (nothing of the true frame there);
  paste_reference_mouth  the reference crop's lower face pasted outright under the mask: its baseline;
  original             the video as it is (on (b): the old mouth against the new audio; no image metrics on (a),
                       where it is the ground truth).
Sync: avrep-sync distance (1 - cosine of avrep's DAVS per-frame lip and audio features, at the best offset
within +-7 frames, and at offset 0) and avrep-sync confidence (median minus minimum over offsets). These are
SyncNet's definitions computed with avrep's own model, not SyncNet's LSE-D / LSE-C. Caveat: the shipped
generator was trained with a lip-sync loss on the same DAVS features, so this judge favours it.

    python benchmarks/dub.py --per-identity 8 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _common import DATA, RESULTS, ROOT, log, stamp, write_result

SYNC_MAX_OFFSET = 7
VARIANTS = (
    "dub",
    "paste_reference_mouth_as_dub_composes",
    "dub_paste_outright",
    "paste_reference_mouth",
    "original",
)


def lrc_test_clips(per_identity: int, seed: int = 0) -> tuple[list[Path], list[str]]:
    """`per_identity` clips of each lrc_ar test identity (the split benchmarks/pretrained.py trains with)."""
    from avrep.data.recipes.folder import prepare_folder

    root = DATA / "lrc_ar"
    m = prepare_folder(root, speakers=root / "identities.csv", ratios=(0.7, 0.1, 0.2), seed=0).manifest
    te = m[m["split"] == "test"]
    rng = np.random.default_rng(seed)
    paths, who = [], []
    for spk, g in sorted(te.groupby("speaker")):
        for p in sorted(rng.choice(sorted(g["path"]), min(per_identity, len(g)), replace=False)):
            paths.append(root / p)
            who.append(str(spk))
    return paths, who


def grid_other_clips() -> tuple[list[Path], list[str]]:
    paths = sorted((DATA / "grid").glob("*.mpg"))
    return paths, [p.stem for p in paths]


def load_clip(path: Path) -> dict | None:
    """Real aligned crops, mouth centres and audio of a clip through the app's face track (None: no face on
    some frame, recorded by the caller)."""
    from avrep.apps.dub import MAX_SIDE, face_crops, track_face
    from avrep.io import media

    tr = track_face(path)
    if not tr.face.all():
        return None
    frames = media.read_video(path, max_side=MAX_SIDE).frames[: tr.n_frames]
    crops = face_crops(frames, tr.transforms[: len(frames)])
    wav = media.fit_audio(media.read_audio(path), len(crops))
    return {"crops": crops, "centres": tr.mouth_centres[: len(crops)], "audio": wav}


def variants(G, davs, crops: np.ndarray, audio: np.ndarray) -> dict[str, np.ndarray]:
    """The four sets of crops of one dubbing (see the module doc); `crops` already follow the length rule."""
    from avrep.apps.generate import conditioning, generate_frames, paste_mask, seen_by

    cond = conditioning(G, davs, len(crops), audio=audio)
    ref = crops[0]
    gen = generate_frames(G, ref, cond, progress=False, pose=crops).astype(np.float32)
    m = paste_mask(crops.shape[1])[None, ..., None]
    real = crops.astype(np.float32)
    seen = np.stack([seen_by(G, c) for c in crops])
    q = lambda x: np.clip(x + 0.5, 0, 255).astype(np.uint8)  # noqa: E731  (as paste_back rounds)
    return {
        "dub": q(real + m * (gen - seen)),
        "dub_paste_outright": q(real + m * (gen - real)),
        "paste_reference_mouth_as_dub_composes": q(real + m * (seen_by(G, ref)[None] - seen)),
        "paste_reference_mouth": q(real + m * (ref[None].astype(np.float32) - real)),
        "original": crops,
    }


@torch.no_grad()
def sync_scores(davs, crops: np.ndarray, centres: np.ndarray, audio: np.ndarray) -> dict:
    """avrep-sync distance / confidence / offset of the crops' lips against `audio`."""
    from avrep.apps.agreement import stream_features
    from avrep.eval.sync_metrics import sync_from_features
    from avrep.models.generator import face_to_mouth_roi

    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255
    roi = face_to_mouth_roi(x, torch.from_numpy(centres)).round().clamp(0, 255).byte().numpy()
    vf = stream_features(davs, roi, True)
    af = stream_features(davs, audio[: len(crops) * 640], False)
    r = sync_from_features(vf, af, SYNC_MAX_OFFSET)
    return {
        "dist": r.min_dist,
        "dist_at_0": r.dists[r.max_offset],
        "conf": r.confidence,
        "offset": r.offset_frames,
    }


def image_scores(x: np.ndarray, real: np.ndarray) -> dict:
    from avrep.eval.genmetrics import lmd, psnr, ssim

    x, real = x[1:], real[1:]  # frame 0 is the reference every variant is given
    lower = slice(64, 128)
    return {
        "ssim": ssim(x, real),
        "psnr": psnr(x, real),
        "ssim_lower_face": ssim(x[:, lower], real[:, lower]),
        "lmd_px": lmd(x, real),
    }


def mean_of(rows: list[dict]) -> dict:
    keys = rows[0].keys()
    return {k: float(np.mean([r[k] for r in rows])) for k in keys if k != "offset"} | {
        "share_offset_0": float(np.mean([r["offset"] == 0 for r in rows])),
        "mean_abs_offset": float(np.mean([abs(r["offset"]) for r in rows])),
    }


def run_group(G, davs, paths: list[Path], who: list[str]) -> tuple[dict, dict]:
    """Both dubbing settings over one held-out set -> (summary, strip material)."""
    from avrep.apps.dub import source_frames

    clips, skipped = [], []
    for p, w in zip(paths, who):
        try:
            c = load_clip(p)
        except Exception as e:  # recorded, the rest goes on
            skipped.append({"clip": p.name, "reason": str(e)})
            continue
        if c is None:
            skipped.append({"clip": p.name, "reason": "face missing on some frames"})
            continue
        clips.append({**c, "name": p.name, "who": w})
    n = len(clips)
    own_img = {v: [] for v in VARIANTS}
    own_sync = {v: [] for v in VARIANTS}
    new_sync = {v: [] for v in VARIANTS}
    pairs, strip = [], None
    t0 = time.time()
    for i, c in enumerate(clips):
        # (a) own audio
        vs = variants(G, davs, c["crops"], c["audio"])
        for v in VARIANTS:
            if v != "original":
                own_img[v].append(image_scores(vs[v], c["crops"]))
            own_sync[v].append(sync_scores(davs, vs[v], c["centres"], c["audio"]))
        # (b) another person's clip: the farthest in the list (sorted by identity), so not the same person
        j = next(k for k in [(i + n // 2 + d) % n for d in range(n)] if clips[k]["who"] != c["who"])
        o = clips[j]
        T = len(o["audio"]) // 640
        src = source_frames(T, len(c["crops"]))
        crops, centres = c["crops"][src], c["centres"][src]
        vs = variants(G, davs, crops, o["audio"])
        for v in VARIANTS:
            new_sync[v].append(sync_scores(davs, vs[v], centres, o["audio"]))
        pairs.append([c["name"], o["name"]])
        if strip is None:
            strip = {"real": crops, "dub": vs["dub"], "pair": [c["name"], o["name"]]}
        log(f"{i + 1}/{n} {c['name']} <- {o['name']}: dub sync {new_sync['dub'][-1]['dist']:.3f}")
    res = {
        "clips": n,
        "skipped": skipped,
        "frames_per_clip_mean": float(np.mean([len(c["crops"]) for c in clips])),
        "own_audio": {
            v: {**(mean_of_img(own_img[v]) if own_img[v] else {}), "sync": mean_of(own_sync[v])} for v in VARIANTS
        },
        "other_audio": {v: {"sync": mean_of(new_sync[v])} for v in VARIANTS},
        "other_audio_pairs": pairs,
        "per_clip_share_dub_better_than_its_paste_baseline": {
            "own_audio_lmd": wins(own_img, "lmd_px"),
            "other_audio_sync_dist": wins(new_sync, "dist"),
        },
        "eval_s": round(time.time() - t0, 1),
    }
    return res, strip


def mean_of_img(rows: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


PAIRS = {
    "composed_as_the_app": ("dub", "paste_reference_mouth_as_dub_composes"),
    "pasted_outright": ("dub_paste_outright", "paste_reference_mouth"),
}


def wins(scores: dict[str, list[dict]], key: str) -> dict[str, float]:
    """Share of clips where the dub is lower than its baseline on `key`, per pair."""
    return {
        name: float(np.mean([a[key] < b[key] for a, b in zip(scores[d], scores[p])])) for name, (d, p) in PAIRS.items()
    }


def verdict(g: dict) -> dict:
    """Does dub beat pasting the reference mouth: LMD with its own audio and avrep-sync distance with another
    clip's audio (lower = better), in both compositions? Read from the numbers above, nothing set by hand."""
    own, other = g["own_audio"], g["other_audio"]
    out = {}
    for name, (d, p) in PAIRS.items():
        lmd = [own[d]["lmd_px"], own[p]["lmd_px"]]
        sd = [other[d]["sync"]["dist"], other[p]["sync"]["dist"]]
        out[name] = {
            "lmd_px_dub_vs_paste": lmd,
            "other_audio_sync_dist_dub_vs_paste": sd,
            "beats_paste_on_lmd": lmd[0] < lmd[1],
            "beats_paste_on_sync_distance": sd[0] < sd[1],
        }
    return out


def write_strip(strips: list[dict], png: Path, n_cols: int = 6) -> None:
    """Per dubbed clip: the real frames (ping-ponged to the audio's length) over the dubbed frames."""
    import cv2

    rows = []
    for s in strips:
        cols = np.linspace(0, len(s["real"]) - 1, n_cols).round().astype(int)
        rows.append(np.concatenate(list(s["real"][cols]), 1))
        rows.append(np.concatenate(list(s["dub"][cols]), 1))
    png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(png), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def long_inputs(seconds: list[int], work: Path) -> dict:
    """`avrep dub` (the CLI, one fresh process each) on videos of `seconds` length made of GRID s1 sentences
    (the 3-s clips concatenated, 360x288) dubbed with as long a sound track of other s1 sentences: peak
    memory (ru_maxrss of the process) and speed, to show memory does not grow with the length."""
    import subprocess
    import sys

    from avrep.io import media
    from avrep.io.encode import Mp4Writer, write_wav

    clips = sorted((DATA / "grid_s1" / "video").glob("*.mp4"))
    if len(clips) < 2 * max(seconds) // 3 + 2:
        return {"skipped": "../shared/data/grid_s1 absent"}
    work.mkdir(parents=True, exist_ok=True)
    out = {}
    for sec in seconds:
        n = -(-sec // 3)
        video, audio = work / f"video_{sec}s.mp4", work / f"audio_{sec}s.wav"
        sound = np.concatenate([media.fit_audio(media.read_audio(c), 75) for c in clips[:n]])
        with Mp4Writer(video, 360, 288, sound) as w:
            for c in clips[:n]:  # one clip in memory at a time
                f = media.read_video(c).frames[:75]
                w.write(np.concatenate([f, np.repeat(f[-1:], 75 - len(f), 0)]))  # a few s1 clips have 74
        write_wav(audio, np.concatenate([media.read_audio(c) for c in clips[n : 2 * n]]))
        code = (
            "import resource, sys, time; from avrep.cli import main; t = time.time()\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.time() - t, file=sys.stderr)"
        )
        args = ["dub", str(video), str(audio), "-o", str(work / f"dub_{sec}s.mp4"), "-q", "--device", "cpu"]
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
        rss_kb, wall = r.stderr.strip().splitlines()[-1].split()
        frames = len(media.read_video(work / f"dub_{sec}s.mp4", max_duration=3600).frames)
        out[f"{sec}s"] = {
            "video_s": 3 * n,
            "frames": frames,
            "peak_rss_mb": round(int(rss_kb) / 1024, 1),
            "wall_s": round(float(wall), 1),
            "x_real_time": round(float(wall) / (frames / 25), 2),
        }
        log("long input", sec, "s:", out[f"{sec}s"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-identity", type=int, default=8, help="lrc_ar clips per held-out identity")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint", default=None, help="generator run (default: the shipped generator)")
    ap.add_argument("--out", default=str(RESULTS / "dub.json"))
    ap.add_argument("--docs", default=str(ROOT / "docs"), help="where dub_strip.png and dub_example.mp4 go")
    ap.add_argument(
        "--long", type=int, nargs="*", default=[12, 60], help="seconds of the long-input runs (multiples of 3)"
    )
    ap.add_argument("--work", default="/tmp/avrep_dub_bench", help="scratch folder for the long inputs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from avrep.apps.dub import dub_video
    from avrep.models.loading import load_generator
    from avrep.models.pretrained import resolve_generator

    gdir = resolve_generator(args.checkpoint, quiet=True)
    G, davs, cfg = load_generator(gdir)
    res: dict = {
        "what": __doc__.split("\n\n    python")[0],
        "generator_run": str(gdir.relative_to(ROOT)) if gdir.is_relative_to(ROOT) else str(gdir),
        "generator_size": G.size,
        "sync_max_offset": SYNC_MAX_OFFSET,
    }
    groups = {}
    if (DATA / "lrc_ar").is_dir():
        paths, who = lrc_test_clips(args.per_identity)
        groups["lrc_ar_heldout_identities"] = (f"held out: lrc_ar test identities {sorted(set(who))}", paths, who)
    if (DATA / "grid").is_dir():
        paths, who = grid_other_clips()
        groups["grid_other_speakers"] = ("held out: GRID speakers other than s1 (MPEG-1, 3 s)", paths, who)
    strips = []
    for name, (desc, paths, who) in groups.items():
        log(name, len(paths), "clips")
        g, strip = run_group(G, davs, paths, who)
        res[name] = {"who": desc, **g, "verdict": verdict(g)}
        if strip is not None:
            strips.append(strip)
    docs = Path(args.docs)
    if strips:
        write_strip(strips, docs / "dub_strip.png")
        res["strip_png"] = "docs/dub_strip.png (per clip: real frames over dubbed frames, another clip's audio)"
    if (DATA / "grid").is_dir():  # the example video: a held-out GRID speaker with another speaker's sentence
        t = time.time()
        ex = dub_video(
            DATA / "grid" / "bbaf2n.mpg",
            DATA / "grid" / "lbax4n.mpg",
            docs / "dub_example.mp4",
            progress=False,
            model=(G, davs),
            device="cpu",
        )
        ex["out"] = "docs/dub_example.mp4"
        ex["video"], ex["audio"], ex["wall_s"] = "grid/bbaf2n.mpg", "grid/lbax4n.mpg", round(time.time() - t, 1)
        res["example"] = ex
    if args.long:
        res["long_inputs"] = long_inputs(args.long, Path(args.work))
    res.update(stamp("torch"))
    res["cpu_threads"] = args.threads
    write_result(args.out, res)
    print(json.dumps({k: v.get("verdict") for k, v in res.items() if isinstance(v, dict) and "verdict" in v}, indent=1))


if __name__ == "__main__":
    main()

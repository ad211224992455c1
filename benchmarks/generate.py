"""Talking-face generation benchmark on held-out synthetic identities -> benchmarks/results/generate.json.

1. Render synthetic clips in memory (train split + the test split's unseen identities and voices).
2. A frozen DAVS model: `--davs RUN` or a quick tiny DAVS trained here on the training clips.
3. Train the generator (DAVS speech features, L1 + adversarial + lip-sync losses).
4. On test clips, generate every frame from the clip's first frame + its audio, and compare with the true
   rendered (aligned) frames: PSNR, SSIM, LMD; lip-reading accuracy of the DAVS video encoder on
   generated vs real mouths; sync offset/confidence of generated clips; generation frames/s.
Also writes benchmarks/results/generate_strip.png (real row over generated row) to look at.

    python benchmarks/generate.py --train-clips 160 --test-clips 30 --epochs 8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _common import DATA, RESULTS, read_result, stamp, write_result


class DavsArrays(torch.utils.data.Dataset):
    """In-memory clips in FeatureDataset's item format (for a quick DAVS run)."""

    def __init__(self, a: dict, words: list[str]) -> None:
        self.a, self.words = a, words
        ids = sorted(set(int(x) for x in a["speaker_id"]))
        self.spk = {s: i for i, s in enumerate(ids)}
        self.num_speakers = len(ids)

    def __len__(self) -> int:
        return len(self.a["face"])

    def __getitem__(self, i: int) -> dict:
        a = self.a
        return {
            "mouth": torch.from_numpy(a["mouth"][i][:, 4:92, 4:92].copy()),
            "audio": torch.from_numpy(a["audio"][i]),
            "face": torch.from_numpy(a["face"][i][14].transpose(2, 0, 1).copy()),
            "word_id": int(a["word_id"][i]),
            "speaker_id": self.spk[int(a["speaker_id"][i])],
            "clip_id": a["clip_id"][i],
        }


@torch.no_grad()
def mouth_rois(faces: np.ndarray, centres: np.ndarray) -> torch.Tensor:
    """The lip reader's input [1, T, 96, 96] from face crops uint8 [T, 128, 128, 3] and mouth centres [T, 2]."""
    from avrep.models.generator import face_to_mouth_roi

    x = torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float() / 255
    return face_to_mouth_roi(x, torch.from_numpy(centres))[None]


SYNC_MAX_OFFSET = 7  # +-7 frames: what benchmarks/unseen.py scans on ~1.2 s clips


def clip_scores(davs, faces: np.ndarray, te: dict, i: int) -> dict:
    """What the frozen DAVS model reads from one clip's face crops [T, 128, 128, 3] with the clip's own audio:
    word correct (None without a word label), the offset and confidence of `sync_offset` (+-5), and SyncNet's
    avrep-sync distance / confidence (SyncNet's LSE-D / LSE-C formulas on avrep's features, `sync_from_features`,
    +-SYNC_MAX_OFFSET: not comparable with SyncNet's published scale)."""
    from avrep.eval.genmetrics import sync_offset
    from avrep.eval.sync_metrics import sync_from_features

    roi = mouth_rois(faces, te["centre"][i])
    with torch.no_grad():
        af = davs.frame_features_audio(torch.from_numpy(te["audio"][i])[None])[0].numpy()
        vf = davs.frame_features_video(roi)[0].numpy()
        wid = int(te["word_id"][i])
        ok = None if wid < 0 else int(davs.classify(mouth=roi).argmax(-1)) == wid
    r = sync_from_features(vf, af, SYNC_MAX_OFFSET)
    return {"word_ok": ok, **sync_offset(vf, af), "sync_dist": r.min_dist, "sync_conf": r.confidence}


def score_set(davs, frames: np.ndarray, te: dict, reals: np.ndarray) -> dict:
    """Image metrics against the true frames plus what the DAVS model reads, for one set of clips."""
    from avrep.eval.genmetrics import lmd, psnr, ssim

    lower = slice(64, 128)  # the lower face: the region the generator synthesises
    cs = [clip_scores(davs, frames[i], te, i) for i in range(len(frames))]  # sync and lip reading: whole clips
    words = [c["word_ok"] for c in cs if c["word_ok"] is not None]
    S = reals.shape[-2]
    # image metrics leave out frame 0: it is the reference both modes are given, and copying it scores an
    # exact frame (PSNR capped at 100 dB) that would lift the copy baseline's mean by ~2.6 dB on 29 frames
    frames, reals = frames[:, 1:], reals[:, 1:]
    return {
        "psnr": psnr(frames, reals),
        "ssim": ssim(frames, reals),
        "psnr_lower_face": psnr(frames[:, :, lower], reals[:, :, lower]),
        "ssim_lower_face": ssim(frames[:, :, lower], reals[:, :, lower]),
        "lmd_px": lmd(frames.reshape(-1, S, S, 3), reals.reshape(-1, S, S, 3)),
        "lipread_acc": float(np.mean(words)) if words else None,
        "sync": summary(cs),
    }


def as_the_app_pastes(G, ref: np.ndarray, gen: np.ndarray) -> np.ndarray:
    """One-shot frames as `avrep generate` composes them, in crop space: the full-resolution reference plus the
    generator's change (its output minus the reference as it sees it) under the feathered lower-face mask."""
    from avrep.apps.generate import paste_mask, seen_by

    m = paste_mask(ref.shape[0])[None, ..., None]
    out = ref[None].astype(np.float32) + m * (gen.astype(np.float32) - seen_by(G, ref)[None])
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def evaluate(G, davs, te: dict) -> tuple[dict, float, list, np.ndarray]:
    """One-shot (composed as the app pastes it, see `as_the_app_pastes`; the generator's own output is reported
    too) and dubbing generation of every test clip vs its true frames, each next to its baseline
    (one-shot: copy the reference frame; dubbing: the true frames with the reference's lower half pasted in,
    i.e. a mouth that does not move): (metrics per mode, lip-reading accuracy of the real clips (None without
    words), the real clips' sync summary, one-shot frames)."""
    from avrep.apps.generate import conditioning, generate_frames

    reals = np.stack([te["face"][i] for i in range(len(te["face"]))])
    real = score_set(davs, reals, te, reals)
    acc_real = real["lipread_acc"]
    modes = {}
    gens_one_shot = None
    for mode in ("one_shot", "dubbing"):
        gens, n_frames, gen_time = [], 0, 0.0
        for i in range(len(reals)):
            t = time.perf_counter()
            cond = conditioning(G, davs, len(reals[i]), audio=te["audio"][i])
            gen = generate_frames(G, reals[i][0], cond, progress=False, pose=reals[i] if mode == "dubbing" else None)
            gen_time += time.perf_counter() - t
            n_frames += len(gen)
            gens.append(gen)
        gens = np.stack(gens)
        if mode == "one_shot":  # what `avrep generate` shows: the reference + the generated change, feathered
            raw = score_set(davs, gens, te, reals)
            gens = np.stack([as_the_app_pastes(G, reals[i][0], g) for i, g in enumerate(gens)])
        m = score_set(davs, gens, te, reals)
        if mode == "one_shot":
            m["generator_output_alone"] = {k: raw[k] for k in ("psnr", "ssim", "lmd_px")}
        m["lipread_acc_generated"] = m.pop("lipread_acc")
        m["sync_generated"] = m.pop("sync")
        if acc_real:
            m["lipread_ratio_generated_vs_real"] = (m["lipread_acc_generated"] or 0.0) / acc_real
        m["sync_conf_ratio_generated_vs_real"] = m["sync_generated"]["avrep_sync_conf"] / max(
            real["sync"]["avrep_sync_conf"], 1e-9
        )
        m["generate_fps_cpu"] = n_frames / gen_time
        modes[mode] = m
        if mode == "one_shot":
            gens_one_shot = gens
    copy = np.repeat(reals[:, :1], reals.shape[1], 1)
    paste = reals.copy()
    paste[:, :, 64:] = copy[:, :, 64:]
    modes["one_shot"]["baseline_copy_reference"] = score_set(davs, copy, te, reals)
    modes["dubbing"]["baseline_paste_reference_mouth"] = score_set(davs, paste, te, reals)
    return modes, acc_real, real["sync"], gens_one_shot


def summary(syncs: list[dict]) -> dict:
    return {
        "mean_abs_offset_frames": float(np.mean([abs(s["offset_frames"]) for s in syncs])),
        "share_offset_0": float(np.mean([s["offset_frames"] == 0 for s in syncs])),
        "mean_confidence": float(np.mean([s["confidence"] for s in syncs])),
        "avrep_sync_dist": float(np.mean([s["sync_dist"] for s in syncs])) if "sync_dist" in syncs[0] else None,
        "avrep_sync_conf": float(np.mean([s["sync_conf"] for s in syncs])) if "sync_conf" in syncs[0] else None,
    }


def store_arrays(store: str, split: str, n: int, seed: int = 0, frames: int | None = None) -> dict:
    """Evaluation arrays (face, audio, centre, word_id) for n clips of a feature store's split, at most one
    clip per sentence where the store has sentences (so no two test clips overlap in time); `frames`: the
    first frames of each clip (clips of different lengths), else whole clips."""
    from avrep.train.gen_data import GenDataset

    ds = GenDataset(store, split, None, train=False, seed=seed)
    clips = ds.clips
    rng = np.random.default_rng(seed)
    idx = list(range(len(clips)))
    if "sentence" in clips:  # one random word clip per sentence
        idx = [int(rng.choice(g.index)) for _, g in clips.groupby("sentence", sort=True)]
    idx = sorted(rng.choice(idx, min(n, len(idx)), replace=False).tolist())
    raws = [{**ds._raw(i), "clip_id": ds.clip_ids[i]} for i in idx]
    if frames:  # clips shorter than `frames` are left out, the rest cut to their first `frames`
        cut = {"face": frames, "centre": frames, "audio": frames * 640}
        raws = [{k: (v[: cut[k]] if k in cut else v) for k, v in r.items()} for r in raws if len(r["face"]) >= frames]
    return {
        "face": np.stack([r["face"] for r in raws]),
        "audio": np.stack([r["audio"] for r in raws]),
        "centre": np.stack([r["centre"] for r in raws]),
        "word_id": np.array([r["word_id"] for r in raws]),
        "clip_id": [r["clip_id"] for r in raws],
    }


def real_photos(gen_dir: Path, work: Path, png: Path) -> dict:
    """`avrep generate` on every photo in ../shared/data/faces with espeak speech: faces dlib finds in every
    output frame, and a strip PNG (every 6th frame, one row per photo) for a person to look at."""
    import cv2

    from avrep.apps.generate import generate_video
    from avrep.data.landmarks import detect_faces
    from avrep.io.encode import write_wav
    from avrep.io.media import read_video
    from avrep.synth.speech import list_voices, synthesize

    photos = sorted((DATA / "faces").glob("*.jpg"))
    if not photos:
        return {"skipped": "../shared/data/faces absent"}
    work.mkdir(parents=True, exist_ok=True)
    wav = work / "speech.wav"
    write_wav(wav, synthesize("place blue at f two now, bin green by a one soon", list_voices()[0]).audio)
    out, rows = {}, []
    for ph in photos:
        mp4 = work / f"{ph.stem}.mp4"
        try:
            r = generate_video(ph, mp4, gen_dir, audio=wav, progress=False)
        except Exception as e:  # record and go on
            out[ph.name] = {"error": str(e)}
            continue
        frames = read_video(mp4).frames
        found = sum(len(detect_faces(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY))) >= 1 for f in frames)
        out[ph.name] = {"frames": len(frames), "frames_with_face": int(found), "generate_fps_cpu": r["generate_fps"]}
        h = 160
        pick = [cv2.resize(f, (int(f.shape[1] * h / f.shape[0]), h)) for f in frames[::6][:8]]
        rows.append(np.concatenate(pick, 1))
    if rows:
        w = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 0), (0, w - r.shape[1]), (0, 0))) for r in rows]
        cv2.imwrite(str(png), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
        out["strip_png"] = png.name
    return out


def grid_other_arrays() -> dict:
    """GRID speakers other than s1 (the MPEG-1 originals in ../shared/data/grid, 3 s each), as GenDataset
    arrays: aligned face crops, audio, mouth centres (no word labels per clip)."""
    from avrep.preprocess import process_file
    from avrep.train.gen_data import mouth_centres

    out: dict[str, list] = {"face": [], "audio": [], "centre": [], "word_id": [], "clip_id": []}
    for p in sorted((DATA / "grid").glob("*.mpg")):
        pv = process_file(p)
        T = min(len(pv.face), 75)
        out["face"].append(pv.face[:T])
        out["audio"].append(pv.audio[: T * 640])
        out["centre"].append(mouth_centres(pv.landmarks[:T]))
        out["word_id"].append(-1)
        out["clip_id"].append(p.name)
    T = min(len(f) for f in out["face"])  # one length, so the clips stack
    return {
        "face": np.stack([f[:T] for f in out["face"]]),
        "audio": np.stack([a[: T * 640] for a in out["audio"]]),
        "centre": np.stack([c[:T] for c in out["centre"]]),
        "word_id": np.array(out["word_id"]),
        "clip_id": out["clip_id"],
    }


def unseen_people(gen_dir: Path, args) -> dict:
    """A trained generator on people it never saw: held-out lrc_ar anchors, GRID speakers other than s1; and
    GRID s1's held-out sentences (a trained-on speaker, for scale); plus the shared photos."""
    import pandas as pd

    from avrep.models.loading import load_generator
    from avrep.security import load_json_object

    G, davs, cfg = load_generator(gen_dir)
    tr = cfg.get("train", {})
    res: dict = {
        "what": "one-shot (the clip's first frame + its audio) and dubbing (true frames, lower half masked, + "
        "audio) generation vs the true 128x128 aligned face crops, each next to its do-nothing baseline "
        "(copy the reference frame / paste the reference's lower half). PSNR/SSIM/LMD over frames 1.. (frame 0 is "
        "the reference both modes are given). One-shot frames are composed as `avrep generate` pastes them (the "
        "reference + the generated change under the feathered lower-face mask). lipread = the frozen DAVS word head on the "
        "generated mouth (clips with word labels); sync = offset of the generated mouth against the audio "
        f"(+-5 frames), avrep-sync distance / confidence (SyncNet's LSE-D / LSE-C formulas on avrep's features, not SyncNet's scale) over +-{SYNC_MAX_OFFSET} frames",
        "generator_run": str(gen_dir),
        "generator_config": cfg["generator"].get("name"),
        "generator_size": G.size,
        "trained_on": tr.get("data"),
        "train_epochs": tr.get("epochs"),
        "train_frames": tr.get("frames"),
        "davs_run": tr.get("davs"),
        "anchors_ssim_lrw": {"PC-AVS": 0.861, "Wav2Lip": 0.874},
    }
    log = gen_dir / "log.jsonl"
    if log.exists():
        recs = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        res["train_epochs_done"] = max((r.get("epoch", 0) for r in recs), default=0)
        res["train_seconds"] = round(sum(r.get("time_s", 0) for r in recs), 1)
    groups = {}
    lrc = Path(args.lrc_store)
    if (lrc / "clips.parquet").exists():
        te = store_arrays(str(lrc), "test", args.test_clips, frames=29)
        c = pd.read_parquet(lrc / "clips.parquet")
        held = sorted(c[c["split"] == "test"]["speaker"].astype(str).unique())
        groups["lrc_ar_heldout_identities"] = ("held out: lrc_ar test identities " + ", ".join(held), te)
    if (DATA / "grid").is_dir():
        groups["grid_other_speakers"] = (
            "held out: GRID speakers other than s1 (MPEG-1 originals, 3 s)",
            grid_other_arrays(),
        )
    grid = Path(args.grid_store)
    if (grid / "clips.parquet").exists():
        te = store_arrays(str(grid), "test", args.test_clips)
        groups["grid_s1_heldout_sentences"] = ("GRID s1 test sentences: s1 itself is trained on", te)
    for name, (who, te) in groups.items():
        t = time.time()
        modes, acc_real, real_sync, gens = evaluate(G, davs, te)
        res[name] = {
            "who": who,
            "clips": len(te["face"]),
            "frames_per_clip": int(te["face"].shape[1]),
            **modes["one_shot"],
            "dubbing": modes["dubbing"],
            "lipread_acc_real": acc_real,
            "sync_real": real_sync,
            "eval_s": round(time.time() - t, 1),
        }
        write_strip(te["face"], gens, RESULTS / f"generate_unseen_{name}_strip.png")
        res[name]["strip_png"] = f"generate_unseen_{name}_strip.png"
    res["real_photos"] = real_photos(gen_dir, Path(args.work) / "photos", RESULTS / "generate_unseen_photos_strip.png")
    card = gen_dir / "card.json"
    if card.exists():
        res["card"] = load_json_object(card)
    res.update(stamp("torch"))
    res["cpu_threads"] = args.threads
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-clips", type=int, default=160)
    ap.add_argument("--test-clips", type=int, default=30)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--davs", default=None, help="existing DAVS run (else a tiny one is trained here)")
    ap.add_argument("--davs-epochs", type=int, default=15)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/avrep_gen_bench")
    ap.add_argument("--out", default=str(RESULTS / "generate.json"))
    ap.add_argument(
        "--photos-only",
        default=None,
        metavar="GEN_RUN",
        help="only the real-photo part, with an existing generator run; merged into --out",
    )
    ap.add_argument(
        "--store",
        default=None,
        metavar="STORE",
        help="real recordings instead: train on this feature store's train split, evaluate on its test "
        "split (needs --davs trained on the same data); merged into --out under --label",
    )
    ap.add_argument("--label", default="grid_s1")
    ap.add_argument(
        "--unseen",
        default=None,
        metavar="GEN_RUN",
        help="evaluate an existing generator run (e.g. `avrep train-generator` on a real-data mixture) on people "
        "it never saw -> benchmarks/results/generate_unseen.json",
    )
    ap.add_argument("--lrc-store", default="/work/stores/lrc_ar")
    ap.add_argument("--grid-store", default="/work/stores/grid_s1")
    args = ap.parse_args()
    if args.unseen:
        torch.set_num_threads(args.threads)
        res = unseen_people(Path(args.unseen), args)
        write_result(RESULTS / "generate_unseen.json", res)
        print(json.dumps(res, indent=1))
        return
    if args.photos_only:
        res = read_result(args.out)
        res["real_photos"] = real_photos(
            Path(args.photos_only), Path(args.work) / "photos", Path(args.out).with_name("generate_photos_strip.png")
        )
        res["real_photos"]["generator_run"] = str(args.photos_only)
        write_result(args.out, res)
        print(json.dumps(res["real_photos"], indent=1))
        return
    torch.set_num_threads(args.threads)
    from avrep.models.loading import load_generator
    from avrep.train.gen_data import GenDataset, synthetic_clip_arrays
    from avrep.train.gen_loop import GenTrainArgs, train_generator

    work = Path(args.work)
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    previous = read_result(args.out)
    if args.store:
        if not args.davs:
            ap.error("--store needs --davs (a DAVS run trained on the same recordings)")
        gen_dir = work / "gen"
        t = time.time()
        train_generator(
            GenTrainArgs(
                config=args.config,
                out=str(gen_dir),
                davs=args.davs,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=2e-3,
                device="cpu",
                frames=args.frames,
                threads=args.threads,
            ),
            train_ds=GenDataset(args.store, "train", args.frames, train=True),
            val_ds=None,
            progress=True,
        )
        train_s = time.time() - t
        te = store_arrays(args.store, "test", args.test_clips)
        G, davs, _ = load_generator(gen_dir)
        modes, acc_real, real_syncs, gens = evaluate(G, davs, te)
        n_train = len(GenDataset(args.store, "train", args.frames))
        previous[args.label] = {
            "what": f"{args.store}: one word clip (29 frames) per held-out test sentence; one_shot = the clip's first "
            "frame + its audio, dubbing = true frames with the lower half masked + audio; vs the true "
            "128x128 aligned face crops",
            "generator_config": args.config,
            "generator_size": G.size,
            "train_clips": n_train,
            "test_clips": len(te["face"]),
            "epochs": args.epochs,
            "train_frames": args.frames,
            "davs_run": args.davs,
            **modes["one_shot"],
            "dubbing": modes["dubbing"],
            "lipread_acc_real": acc_real,
            "sync_real": summary(real_syncs),
            "gen_train_s": round(train_s, 1),
            "cpu_threads": args.threads,
            "anchors_ssim_lrw": {"PC-AVS": 0.861, "Wav2Lip": 0.874},
            **stamp("torch"),
        }
        write_result(args.out, previous)
        write_strip(te["face"], gens, Path(args.out).with_name(f"generate_{args.label}_strip.png"))
        print(json.dumps(previous[args.label], indent=1))
        return
    t0 = time.time()
    tr = synthetic_clip_arrays("train", args.train_clips, seed=0, progress=True)
    te = synthetic_clip_arrays("test", args.test_clips, seed=0, progress=True)
    words = tr["words"]
    render_s = time.time() - t0
    timings = {"render_s": round(render_s, 1)}
    davs_run = args.davs
    if davs_run is None:
        from avrep.train.loop import TrainArgs, train

        davs_run = str(work / "davs")
        t = time.time()
        train(
            TrainArgs(
                config="tiny",
                out=davs_run,
                epochs=args.davs_epochs,
                batch_size=16,
                lr=3e-3,
                device="cpu",
                val_split="",
                threads=args.threads,
            ),
            train_ds=DavsArrays(tr, words),
            progress=False,
        )
        timings["davs_train_s"] = round(time.time() - t, 1)
    t = time.time()
    gen_dir = work / "gen"
    train_generator(
        GenTrainArgs(
            config=args.config,
            out=str(gen_dir),
            davs=davs_run,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=2e-3,
            device="cpu",
            frames=args.frames,
            threads=args.threads,
        ),
        train_ds=GenDataset(arrays=tr, frames=args.frames, train=True),
        val_ds=GenDataset(arrays=te, train=False),
        progress=True,
    )
    timings["gen_train_s"] = round(time.time() - t, 1)
    G, davs, cfg = load_generator(gen_dir)
    modes, acc_real, real_syncs, gens = evaluate(G, davs, te)
    reals = te["face"]
    res = {k: v for k, v in previous.items() if isinstance(v, dict) and "what" in v or k == "real_photos"}
    res.update(
        {
            "what": "talking-face generation on held-out synthetic identities/voices (test split) -> all 29 frames, "
            "128x128 aligned face crops vs the true rendered frames. one_shot: the clip's first frame + its "
            "audio (head pose stays the reference's); dubbing: the true frames with their lower half "
            "masked set the pose and the audio drives the mouth (Wav2Lip's setting)",
            "generator_config": args.config,
            "generator_size": G.size,
            "train_clips": int(len(tr["face"])),
            "test_clips": int(len(te["face"])),
            "epochs": args.epochs,
            "train_frames": args.frames,
            "davs_run": args.davs or "tiny DAVS trained by this benchmark on the same training clips",
            **modes["one_shot"],
            "dubbing": modes["dubbing"],
            "lipread_acc_real": acc_real,
            "chance": 1.0 / len(words),
            "sync_real": summary(real_syncs),
            "cpu_threads": args.threads,
            "timings": timings,
            **stamp("torch"),
        }
    )
    write_result(args.out, res)
    write_strip(reals, gens, Path(args.out).with_name("generate_strip.png"))
    print(json.dumps(res, indent=1))


def write_strip(reals: np.ndarray, gens: np.ndarray, png: Path) -> None:
    """For 3 test clips, real frames over one-shot generated frames (8 frames evenly spaced: a small PNG)."""
    import cv2

    rows = []
    cols = np.linspace(0, reals.shape[1] - 1, min(8, reals.shape[1])).round().astype(int)  # 29 frames: every 4th
    for i in range(min(3, len(gens))):
        rows.append(np.concatenate(list(reals[i, cols]), 1))
        rows.append(np.concatenate(list(gens[i, cols]), 1))
    cv2.imwrite(str(png), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()

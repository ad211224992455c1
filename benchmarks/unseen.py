"""People the model never saw: sync, avrep-sync distance/confidence, audio->video retrieval and lip reading on held-out identities.

  python benchmarks/unseen.py [--run RUN_DIR (default: the shipped pretrained model)]
                              [--lrc-store DIR] [--grid-store DIR] [--result unseen]

Held out (never trained on, by construction of the stores `benchmarks/pretrained.py` builds):
  * lrc_ar: the `test` split of an identity-disjoint split of the news anchors (identities.csv);
  * GRID: the other speakers in ../shared/data/grid (MPEG-1 originals); GRID s1 held-out *sentences* (same
    speaker as in training: reported as such, not as an unseen person);
  * wild: every clip in ../shared/data/wild (VoxCeleb2, HDTF, LRS2 demo, ...).
Measures
  * sync on shifted copies: exact-offset accuracy and within +-1 (+-7 frames for ~1.2 s clips, +-15 for longer
    ones; video frames [m, T-m) against the audio moved by the offset); originals found in sync (+-1); the
    same +-7 protocol on 2 and 4 of an anchor's clips back to back (~2.4 / 4.8 s: what longer files get);
  * avrep-sync distance / confidence: SyncNet's LSE-D / LSE-C formulas on avrep's own features (so another
    scale than SyncNet's, never to be compared with published LSE figures) (min over +-15 offsets of the mean distance; confidence =
    median - min), with avrep's per-frame features (distance = 1 - cosine);
  * audio->video retrieval R@1/R@5 at 1:N over all held-out lrc_ar clips (sync and word embeddings; and by
    temporal matching of `avrep sync`'s per-frame features over each whole clip, offsets +-1);
  * lip reading on GRID s1 held-out sentences and the unseen GRID speaker swwp2s (word-aligned).
Writes benchmarks/results/<result>.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import DATA, goals, log, stamp, write_result


def store_clips(store: Path, split: str, n: int | None = None, seed: int | None = None) -> list[dict]:
    """The split's clips (mouth, audio, landmarks), decoded; `n`: only the first n, or with `seed` a seeded
    sample of n (in store order). Only the clips kept are decoded."""
    from avrep.data.store import FeatureStore

    fs = FeatureStore(store)
    index = fs.clips.index[fs.clips["split"] == split]
    if n and len(index) > n:
        if seed is None:
            index = index[:n]
        else:
            index = index[sorted(np.random.default_rng(seed).choice(len(index), n, replace=False).tolist())]
    out = []
    for i in index:
        c = fs.clip(int(i), keys=("mouth", "audio", "landmarks"))
        out.append(
            {
                "clip_id": str(fs.clips.at[i, "clip_id"]),
                "speaker": str(fs.clips.at[i, "speaker"]),
                "mouth": c["mouth"],
                "audio": c["audio"],
                "landmarks": c["landmarks"],
            }
        )
    return out


def shifted_copies(model, clips: list[dict], max_shift: int, step: int = 1):
    """Per clip long enough for +-max_shift: (clip, features of the cut video [m, T-m), [(offset, SyncResult)]
    for the audio moved by each offset), every copy's features computed from the copy alone. The cut video is
    the same for every offset, so its features are computed once."""
    from avrep.apps.agreement import stream_features
    from avrep.eval.sync_metrics import shifted_pair, sync_from_features

    m = max_shift
    for c in clips:
        T = len(c["mouth"])
        if T < 2 * m + 10:
            continue
        lm = c.get("landmarks")
        vf = stream_features(model, c["mouth"][m : T - m], True, landmarks=None if lm is None else lm[m : T - m])
        results = []
        for o in range(-m, m + 1, step):
            _, a = shifted_pair(c["mouth"], c["audio"], o, m)
            results.append((o, sync_from_features(vf, stream_features(model, a, False), m)))
        yield c, vf, results


def sync_shifted(model, clips: list[dict], max_shift: int, step: int = 1, in_context: bool = False) -> dict:
    """Offsets found on desynchronised copies: video frames [m, T-m) against audio frames [m+o, T-m+o) (real
    content on both sides, no padding to spot). By default each copy is a clip of its own: its features are
    computed from the cut video and cut audio alone (what `avrep sync` sees on such a file). `in_context`:
    each stream's features are computed once on the whole clip and sliced (the same window inside a longer
    file, with real context at its edges)."""
    from avrep.apps.sync import frame_features
    from avrep.eval.sync_metrics import offset_accuracy, sync_from_features

    found, true, n = [], [], 0
    m = max_shift
    if in_context:
        for c in clips:
            T = len(c["mouth"])
            if T < 2 * m + 10:
                continue
            n += 1
            vf_all, af_all = frame_features(model, c["mouth"], c["audio"], landmarks=c.get("landmarks"))
            for o in range(-m, m + 1, step):
                found.append(sync_from_features(vf_all[m : T - m], af_all[m + o : T - m + o], m).offset_frames)
                true.append(o)
    else:
        for _, _, results in shifted_copies(model, clips, m, step):
            n += 1
            for o, r in results:
                found.append(r.offset_frames)
                true.append(o)
    return {
        **offset_accuracy(np.array(found), np.array(true)),
        "max_shift": max_shift,
        "clips": n,
        "features": "from the whole clip, sliced" if in_context else "from each shifted copy alone",
    }


def sync_scores(model, clips: list[dict], max_offset: int = 15) -> dict:
    """avrep-sync distance (SyncNet's LSE-D formula on avrep features: mean over clips of the min over offsets
    of the mean distance) and confidence (LSE-C's formula: mean of median - min), plus originals found in sync (+-1) with their offsets."""
    from avrep.apps.sync import frame_features
    from avrep.eval.sync_metrics import sync_from_features

    d, c_, offs = [], [], []
    for c in clips:
        vf, af = frame_features(model, c["mouth"], c["audio"], landmarks=c.get("landmarks"))
        r = sync_from_features(vf, af, max_offset)
        d.append(r.min_dist)
        c_.append(r.confidence)
        offs.append(r.offset_frames)
    offs = np.array(offs)
    return {
        "n": len(clips),
        "avrep_sync_dist": float(np.mean(d)),
        "avrep_sync_conf": float(np.mean(c_)),
        "originals_in_sync_within_1": float((np.abs(offs) <= 1).mean()) if len(offs) else None,
        "original_offsets": offs.tolist() if len(offs) <= 40 else None,
    }


def retrieval(model, clips: list[dict], frames: int = 29) -> dict:
    """A->V R@1/R@5 at 1:N over the clips (centre 29-frame windows), sync and word embeddings."""
    import torch

    from avrep.embed import center_crop
    from avrep.eval.retrieval import retrieval_metrics

    va, vv, wa, wv = [], [], [], []
    with torch.no_grad():
        for c in clips:
            T = len(c["mouth"])
            s = max(0, (T - frames) // 2)
            m = c["mouth"][s : s + frames]
            a = c["audio"][s * 640 : (s + len(m)) * 640]
            lm = c["landmarks"][s : s + frames] if c.get("landmarks") is not None else None
            if len(m) < frames:  # pad short clips like the dataset does (last frame, silence)
                if lm is not None:
                    lm = np.concatenate([lm, np.repeat(lm[-1:], frames - len(m), 0)])
                m = np.concatenate([m, np.repeat(m[-1:], frames - len(m), 0)])
                a = np.concatenate([a, np.zeros(frames * 640 - len(a), np.float32)])
            mt = torch.from_numpy(center_crop(m))[None]
            lt = torch.from_numpy(np.asarray(lm, np.float32))[None] if lm is not None else None
            at = torch.from_numpy(np.ascontiguousarray(a, np.float32))[None]
            va.append(model.embed_audio_sync(at)[0].numpy())
            vv.append(model.embed_video_sync(mt, lt)[0].numpy())
            wa.append(model.embed_audio(at)[0].numpy())
            wv.append(model.embed_video(mt, lt)[0].numpy())
    out = {"N": len(clips)}
    for kind, (a, v) in {"sync": (va, vv), "word": (wa, wv)}.items():
        r = retrieval_metrics(np.stack(a), np.stack(v))
        out[kind] = {k: r[k] for k in ("R@1", "R@5") if k in r}
    return out


def clip_frames(model, clips: list[dict], features: str = "sync") -> list[tuple]:
    """Each clip's per-frame (video, audio) features over the whole clip ("sync" or "word")."""
    from avrep.apps.agreement import stream_features

    out = []
    for c in clips:
        T = len(c["mouth"])
        v = stream_features(model, c["mouth"], True, landmarks=c["landmarks"], features=features)
        out.append((v, stream_features(model, c["audio"][: T * 640], False, features=features)))
    return out


def match_retrieval(model, clips: list[dict], word: list[tuple] | None = None) -> dict:
    """A->V R@1/R@5 at 1:N over `clips` by temporal matching (`avrep.eval.retrieval.match_scores`, offsets
    +-1) of per-frame features: the model's sync features as configured ("sync"), and, when `word` holds
    the word encoders' (video, audio) frame features of the same clips, the two mixed as blend 1.0 does
    ("sync+word": the two cosines averaged)."""
    import numpy as np

    from avrep.eval.retrieval import match_scores, metrics_from_scores

    v, a = (list(x) for x in zip(*clip_frames(model, clips)))
    out = {"N": len(clips), "sync": metrics_from_scores(match_scores(a, v))}
    if word is not None:
        vb = [np.concatenate([x, w[0]], 1) / np.sqrt(2) for x, w in zip(v, word)]
        ab = [np.concatenate([x, w[1]], 1) / np.sqrt(2) for x, w in zip(a, word)]
        out["sync+word"] = metrics_from_scores(match_scores(ab, vb))
    return {k: (v_ if k == "N" else {m: v_[m] for m in ("R@1", "R@5")}) for k, v_ in out.items()}


def raw_clips(files: list[Path]) -> list[dict]:
    from avrep.preprocess import process_file

    out = []
    for p in files:
        try:
            pv = process_file(p)
        except Exception as e:  # a file without a face is reported, not fatal
            log("skip", p.name, e)
            continue
        out.append(
            {"clip_id": p.name, "speaker": p.stem, "mouth": pv.mouth, "audio": pv.audio, "landmarks": pv.landmarks}
        )
    return out


def grid_unseen_speaker(model, words: list[str]) -> dict:
    """swwp2s (another GRID speaker, MPEG-1 original) read word by word at its alignment."""
    import torch

    from avrep.embed import center_crop
    from avrep.preprocess import process_file

    other = DATA / "grid"
    pv = process_file(other / "swwp2s.mpg")
    rows = [ln.split() for ln in (other / "swwp2s.align").read_text().splitlines() if ln.strip()]
    cv = ca = n = 0
    for s, e, w in rows:
        if w in ("sil", "sp") or w not in words:
            continue
        c = (int(s) // 1000 + int(e) // 1000) // 2
        a = max(0, min(len(pv.mouth) - 29, c - 14))
        with torch.no_grad():
            lm = torch.from_numpy(np.asarray(pv.landmarks[a : a + 29], np.float32))[None]
            lv = model.classify(mouth=torch.from_numpy(center_crop(pv.mouth[a : a + 29]))[None], landmarks=lm)
            la = model.classify(audio=torch.from_numpy(pv.audio[a * 640 : (a + 29) * 640])[None])
        n += 1
        cv += words[int(lv.argmax())] == w
        ca += words[int(la.argmax())] == w
    return {"n_words": n, "video_top1": cv / max(n, 1), "audio_top1": ca / max(n, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default=None, help="trained run dir [default: the shipped pretrained model]")
    ap.add_argument("--lrc-store", default="/work/stores/lrc_ar")
    ap.add_argument("--grid-store", default="/work/stores/grid_s1")
    ap.add_argument("--max-clips", type=int, default=None, help="cap on held-out lrc_ar clips (quick runs)")
    ap.add_argument("--result", default="unseen")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 when another job shares 2 cores)")
    args = ap.parse_args()
    import torch
    from unseen_train import concat_clips

    from avrep.models import load_run
    from avrep.models.pretrained import resolve_checkpoint, weights_sha256

    torch.set_num_threads(args.threads)
    run = resolve_checkpoint(args.run)
    model, config, words = load_run(run, "cpu")
    out: dict = {**stamp("torch", "av", "dlib-bin"), "run": str(run), "weights_sha256": weights_sha256(run)}
    t0 = time.time()
    lrc = Path(args.lrc_store)
    if (lrc / "clips.parquet").exists():
        clips = store_clips(lrc, "test", n=args.max_clips)
        ids = sorted({c["speaker"] for c in clips})
        log("lrc_ar held-out:", len(clips), "clips of", len(ids), "identities")
        out["lrc_ar_heldout_identities"] = {
            "held_out": ids,
            "clips": len(clips),
            "sync_shifted": sync_shifted(model, clips, 7),
            "sync_shifted_in_context": sync_shifted(model, clips, 7, in_context=True),
            # what longer files of these people get: 2 / 4 of an anchor's clips back to back (~2.4 / 4.8 s)
            "sync_shifted_joined": {str(n): sync_shifted(model, concat_clips(clips, n), 7) for n in (2, 4)},
            "sync_scores": sync_scores(model, clips),
            "retrieval_a2v": retrieval(model, clips),
            "retrieval_a2v_match": match_retrieval(model, clips),
        }
        log(
            "lrc_ar",
            out["lrc_ar_heldout_identities"]["sync_shifted"],
            out["lrc_ar_heldout_identities"]["retrieval_a2v"],
            out["lrc_ar_heldout_identities"]["retrieval_a2v_match"],
        )
    grid_files = sorted((DATA / "grid").glob("*.mpg"))
    wild_files = sorted((DATA / "wild").glob("*.mp4"))
    for name, files in (("grid_other_speakers_mpg", grid_files), ("wild", wild_files)):
        cl = raw_clips(files)
        out[name] = {
            "files": [c["clip_id"] for c in cl],
            "sync_scores": sync_scores(model, cl),
            "sync_shifted": sync_shifted(model, cl, 15, step=3),
            "sync_shifted_in_context": sync_shifted(model, cl, 15, step=3, in_context=True),
        }
        log(name, out[name]["sync_scores"]["originals_in_sync_within_1"], out[name]["sync_shifted"])
    if (DATA / "grid" / "swwp2s.align").exists():
        out["grid_unseen_speaker_swwp2s"] = grid_unseen_speaker(model, words)
    gs = Path(args.grid_store)
    if (gs / "clips.parquet").exists():
        from avrep.eval import evaluate_run

        ev = evaluate_run(run, str(gs), "test", None, workers=0, probes=False, progress=False)
        lr = ev["lipread"]
        out["grid_s1_heldout_sentences"] = {
            "note": "speaker s1 is in the training data; these sentences are not",
            "n": lr["n"],
            "video_top1": lr["video"]["top1"],
            "audio_top1": lr["audio"]["top1"],
            "fused_top1": lr["fused"]["top1"],
        }
    out["seconds"] = round(time.time() - t0, 1)
    out["goals"] = goals("unseen")
    out["anchors"] = "SyncNet ~91% / ModEFormer 94.5% exact offset on LRS2 (another data set)"
    p = write_result(args.result, out)
    print(p.read_text()[:3000])


if __name__ == "__main__":
    main()

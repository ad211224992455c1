#!/usr/bin/env python3
"""Train and evaluate DAVS on a GPU with a synthetic corpus rendered in memory on that machine.

The lent GPU machine has no decord/PyAV/dlib, and data cannot be carried there in bulk, so this
script renders the synthetic corpus (espeak-ng speech + procedural faces, exactly as `avrep synth`,
minus the mp4 round trip), crops mouth ROIs / faces from the TRUE landmarks (as
`avrep preprocess --landmarks true`), trains a config with AMP and evaluates on the unseen test
identities/voices. Prints one JSON object (also written to --out-json).

  python benchmarks/gpu_synth_train.py --preset small --config base --epochs 8 --workers 16
"""

from __future__ import annotations

import argparse
import json
import os
import time
from multiprocessing import get_context

import numpy as np
from _common import stamp, write_result

_CFG = None
_VOICES = None


def _init(cfg, voices):
    global _CFG, _VOICES
    import cv2

    cv2.setNumThreads(1)
    _CFG, _VOICES = cfg, voices


def _one(spec):
    from avrep.data.align import crop_clip
    from avrep.synth.corpus import render_arrays

    try:
        r = render_arrays(spec, _CFG, _VOICES)
    except Exception as e:  # recorded, not fatal
        return spec["index"], None, f"{type(e).__name__}: {e}"
    c = crop_clip(r["frames"], r["landmarks"])
    return spec["index"], (c.mouth, c.face[len(c.face) // 2], r["audio"]), None


class MemDataset:
    """FeatureDataset-shaped items from in-memory arrays (random 88 crop + flip in training)."""

    def __init__(self, mouth, face, audio, word, spk, words, train, seed=0):
        import torch

        self.torch = torch
        self.mouth, self.face, self.audio, self.word, self.spk = mouth, face, audio, word, spk
        self.words, self.num_speakers, self.train, self.seed, self.epoch = words, int(spk.max()) + 1, train, seed, 0

    def __len__(self):
        return len(self.word)

    def set_epoch(self, e):
        self.epoch = e

    def __getitem__(self, i):
        torch = self.torch
        if self.train:
            r = np.random.default_rng([self.seed, self.epoch, i])
            y, x = r.integers(0, 9, 2)
            m = self.mouth[i, :, y : y + 88, x : x + 88]
            if r.random() < 0.5:
                m = m[:, :, ::-1]
        else:
            m = self.mouth[i, :, 4:92, 4:92]
        return {
            "mouth": torch.from_numpy(np.ascontiguousarray(m)),
            "audio": torch.from_numpy(self.audio[i]),
            "face": torch.from_numpy(np.ascontiguousarray(self.face[i].transpose(2, 0, 1))),
            "word_id": int(self.word[i]),
            "speaker_id": int(self.spk[i]),
            "clip_id": str(i),
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small")
    ap.add_argument("--clips-per-word", type=int, default=None)
    ap.add_argument("--config", default="base")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)))
    ap.add_argument("--loader-workers", type=int, default=6)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default="/tmp/gpu_run")
    ap.add_argument("--out-json", default=None)
    ap.add_argument("--time-budget-s", type=float, default=1e9, help="stop rendering after this long")
    a = ap.parse_args()

    import torch

    from avrep.synth.corpus import SynthConfig, plan
    from avrep.synth.visemes import visual_ceiling

    res = {"what": "DAVS trained on an in-memory synthetic corpus rendered on this machine", "args": vars(a)}
    cfg = SynthConfig(preset=a.preset, seed=0, clips_per_word=a.clips_per_word)
    specs, info = plan(cfg)
    t0 = time.time()
    arrays = {}
    fails = {}
    with get_context("fork").Pool(a.workers, initializer=_init, initargs=(cfg, info["voices"])) as pool:
        for idx, arr, err in pool.imap_unordered(_one, specs, chunksize=8):
            if err:
                fails[idx] = err
            else:
                arrays[idx] = arr
            if time.time() - t0 > a.time_budget_s:
                pool.terminate()
                break
    render_s = time.time() - t0
    keep = [s for s in specs if s["index"] in arrays]
    res["render"] = {
        "clips": len(keep),
        "failures": len(fails),
        "seconds": round(render_s, 1),
        "clips_per_s": round(len(keep) / render_s, 1),
        "cpu_workers": a.workers,
    }
    print(json.dumps(res["render"]), flush=True)

    def build(split, train):
        ss = [s for s in keep if s["split"] == split]
        mouth = np.stack([arrays[s["index"]][0] for s in ss])
        face = np.stack([arrays[s["index"]][1] for s in ss])
        audio = np.stack([arrays[s["index"]][2] for s in ss]).astype(np.float32)
        word = np.array([s["word_id"] for s in ss])
        ids = sorted({s["identity_id"] for s in ss})
        spk = np.array([ids.index(s["identity_id"]) for s in ss])
        return MemDataset(mouth, face, audio, word, spk, info["words"], train)

    tr, va, te = build("train", True), build("val", False), build("test", False)
    res["split_sizes"] = {"train": len(tr), "val": len(va), "test": len(te)}
    from avrep.models import load_run
    from avrep.train.loop import TrainArgs, train

    t1 = time.time()
    last = train(
        TrainArgs(
            config=a.config,
            data=f"memory:{a.preset}",
            out=a.out,
            epochs=a.epochs,
            batch_size=a.batch_size,
            lr=a.lr,
            workers=a.loader_workers,
            device=a.device,
        ),
        train_ds=tr,
        val_ds=va,
        progress=False,
    )
    train_s = time.time() - t1
    res["train"] = {
        "seconds": round(train_s, 1),
        "clips_per_s_incl_val": round(len(tr) * a.epochs / train_s, 1),
        "last_epoch": last,
    }
    from avrep.eval.extract import extract
    from avrep.eval.lipread import topk_accuracy
    from avrep.eval.retrieval import av_retrieval

    dev = "cuda" if torch.cuda.is_available() and a.device != "cpu" else "cpu"
    model, _, _ = load_run(a.out, dev)
    ex = extract(model, te, batch_size=256, device=dev)
    y = ex["word_id"]
    fused = torch.log_softmax(torch.from_numpy(ex["logits_video"]), -1) + torch.log_softmax(
        torch.from_numpy(ex["logits_audio"]), -1
    )
    ceiling = visual_ceiling(info["words"])
    res["test"] = {
        "clips": len(te),
        "video_top1": topk_accuracy(ex["logits_video"], y, 1),
        "audio_top1": topk_accuracy(ex["logits_audio"], y, 1),
        "fused_top1": topk_accuracy(fused.numpy(), y, 1),
        "video_top5": topk_accuracy(ex["logits_video"], y, 5),
        "homophene_ceiling": ceiling,
        "retrieval": av_retrieval(ex["emb_audio"], ex["emb_video"]),
    }
    res["test"]["video_vs_ceiling"] = res["test"]["video_top1"] / ceiling
    res["device"] = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
    res.update(stamp("torch"))
    print(json.dumps(res, default=float), flush=True)
    if a.out_json:
        write_result(a.out_json, res)


if __name__ == "__main__":
    main()

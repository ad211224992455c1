"""Generator ablation: what makes the mouth move -> benchmarks/results/generate_ablation.json.

Same data, DAVS model, steps and seed for every variant (the `tiny` generator, 64 px): train for a fixed
number of epochs, then generate each held-out synthetic clip from its first frame + audio and measure
the L1 error inside a soft box around the true mouth (vs copying the reference frame) and whether the
frozen DAVS video encoder reads the right word from the generated mouths.

    python benchmarks/generate_ablation.py --davs out/bench_lipread/run_small
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, stamp, write_result

NO_WORD = {"adv": 0.01, "sync": 0.1, "clip_cos": 0.1, "word": 0.0}
VARIANTS = {
    "unet_only (no mouth head), L1 + mouth box + adv + lip-sync cosine": ({"mouth_head": None}, NO_WORD),
    "mouth head, L1 + mouth box only": ({}, {"adv": 0.0, "sync": 0.0, "clip_cos": 0.0, "word": 0.0}),
    "mouth head, + adv + lip-sync cosine + word CE 0.05": ({}, {**NO_WORD, "word": 0.05}),
    "mouth head, + adv + lip-sync cosine (shipped tiny config)": ({}, NO_WORD),
}


def mouth_box_l1(fake: np.ndarray, real: np.ndarray, centres: np.ndarray) -> float:
    """The training loss's mouth-box L1 (gen_losses.recon_losses) for uint8 clips [T, 128, 128, 3]."""
    from avrep.train.gen_losses import recon_losses

    f, r = (torch.from_numpy(x).permute(0, 3, 1, 2)[None].float() / 255 for x in (fake, real))
    return float(recon_losses(f, r, torch.from_numpy(centres)[None])[2])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--davs", required=True, help="frozen DAVS run (speech features + lip reader)")
    ap.add_argument("--train-clips", type=int, default=140)
    ap.add_argument("--test-clips", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/avrep_gen_ablation")
    ap.add_argument("--out", default=str(RESULTS / "generate_ablation.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from generate import mouth_rois  # benchmarks/generate.py

    from avrep.apps.generate import conditioning, generate_frames
    from avrep.models.generator import get_generator_config
    from avrep.models.loading import load_generator
    from avrep.train.gen_data import GenDataset, synthetic_clip_arrays
    from avrep.train.gen_loop import GenTrainArgs, train_generator

    tr = synthetic_clip_arrays("train", args.train_clips, seed=0, progress=True)
    te = synthetic_clip_arrays("test", args.test_clips, seed=0, progress=True)
    res: dict = {
        "what": __doc__.split("\n\n")[1].replace("\n", " "),
        "davs_run": args.davs,
        "train_clips": len(tr["face"]),
        "test_clips": len(te["face"]),
        "epochs": args.epochs,
        "train_frames": args.frames,
        "cpu_threads": args.threads,
        **stamp("torch"),
        "variants": {},
    }
    for name, (arch, loss) in VARIANTS.items():
        cfg = get_generator_config("tiny")
        cfg.update(arch)
        cfg["loss"] = {**cfg["loss"], **loss}
        out = Path(args.work) / f"v{len(res['variants'])}"
        shutil.rmtree(out, ignore_errors=True)
        t = time.time()
        train_generator(
            GenTrainArgs(
                config=cfg,
                out=str(out),
                davs=args.davs,
                epochs=args.epochs,
                batch_size=8,
                lr=2e-3,
                device="cpu",
                frames=args.frames,
                threads=args.threads,
            ),
            train_ds=GenDataset(arrays=tr, frames=args.frames, train=True),
            val_ds=None,
            progress=False,
        )
        train_s = time.time() - t
        G, davs, _ = load_generator(out)
        box_gen, box_copy, reads = [], [], []
        for i in range(len(te["face"])):
            real = te["face"][i]
            gen = generate_frames(G, real[0], conditioning(G, davs, len(real), audio=te["audio"][i]), progress=False)
            box_gen.append(mouth_box_l1(gen, real, te["centre"][i]))
            box_copy.append(mouth_box_l1(np.repeat(real[:1], len(real), 0), real, te["centre"][i]))
            with torch.no_grad():
                reads.append(
                    int(davs.classify(mouth=mouth_rois(gen, te["centre"][i])).argmax(-1)) == int(te["word_id"][i])
                )
        res["variants"][name] = {
            "mouth_box_l1": float(np.mean(box_gen)),
            "mouth_box_l1_copy_reference": float(np.mean(box_copy)),
            "lipread_acc_generated": float(np.mean(reads)),
            "train_s": round(train_s, 1),
        }
        print(name, json.dumps(res["variants"][name]), flush=True)
        write_result(args.out, res)


if __name__ == "__main__":
    main()

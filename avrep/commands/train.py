"""`avrep train` and `avrep eval`: thin click wrappers over avrep.train.loop and avrep.eval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from avrep.commands._options import (
    DEVICE,
    QUIET,
    data_option,
    echo_run_record,
    file_option,
    training_options,
    workers_option,
)
from avrep.conventions import CLIP_FRAMES
from avrep.eval import evaluate_run


@click.command()
@click.option(
    "--config",
    "config",
    default="small",
    show_default=True,
    help="model config: tiny, small, base, or a path to a .json config",
)
@data_option(
    "feature store dir (avrep preprocess), 'toy[:key=val,...]', or several corpora with mixing "
    "weights: 'storeA@0.5+storeB@0.3+storeC@0.2' (word terms only where words are known)"
)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="run directory")
@training_options(epochs=20, batch_size=32, lr=2e-3)
@click.option(
    "--init",
    default=None,
    type=click.Path(file_okay=False),
    help="start from a trained run's weights (tensors of another shape keep their fresh init)",
)
@click.option("--epoch-size", default=None, type=int, help="clips drawn per epoch from a --data mixture")
@click.option(
    "--augment",
    default="basic",
    show_default=True,
    type=click.Choice(["basic", "strong"]),
    help="training augmentation: basic (crop, flip, time mask) or strong (+ appearance, landmark jitter, voice)",
)
@click.option(
    "--sync-shift-max",
    default=None,
    type=int,
    help="roll each clip's audio by up to N frames in training (breaks the window-position shortcut)",
)
@click.option("--snapshots", is_flag=True, help="keep every epoch's weights in RUN/snapshots/ (training-cost curves)")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the encoders")
@click.option("--frames", default=CLIP_FRAMES, show_default=True, type=int, help="frames per clip")
@click.option("--assoc", default=None, type=click.Choice(["infonce", "margin"]), help="association loss")
@QUIET
def train(
    resume: bool, quiet: bool, compile_: bool, assoc: str | None, sync_shift_max: int | None, **opts: Any
) -> None:
    """Train the DAVS encoders (single process, or under torchrun for DDP)."""
    from avrep.train.loop import TrainArgs
    from avrep.train.loop import train as run_train

    loss = {
        **({"assoc_kind": assoc} if assoc else {}),
        **({"sync_shift_max": sync_shift_max} if sync_shift_max is not None else {}),
    }
    args = TrainArgs(**opts, compile=compile_, loss=loss)
    echo_run_record(opts["out"], run_train(args, resume=resume, progress=not quiet))


@click.command("eval")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--data", required=True, help="feature store dir, or 'toy[:...]'")
@click.option("--split", default="test", show_default=True, help="the split of --data to evaluate")
@file_option(
    "--out",
    "-o",
    "out_json",
    help="results JSON (default RUN/eval_<split>.json); confusion PNG goes beside it",
)
@DEVICE
@click.option("--batch-size", default=32, show_default=True, type=int, help="clips per forward pass")
@workers_option()
@click.option("--no-probes", is_flag=True, help="skip the disentanglement probes")
def eval_cmd(run, data, split, out_json, device, batch_size, workers, no_probes) -> None:
    """Evaluate a run: lip reading (video/audio/fused), retrieval, disentanglement probes."""

    out_json = out_json or str(Path(run) / f"eval_{split}.json")
    res = evaluate_run(run, data, split, out_json, device, batch_size, workers, probes=not no_probes)
    lr_, rt = res["lipread"], res["retrieval"]
    summary = {
        "video_top1": lr_["video"]["top1"],
        "audio_top1": lr_["audio"]["top1"],
        "fused_top1": lr_["fused"]["top1"],
        "a2v_R@1": rt["a2v"]["R@1"],
        "v2a_R@1": rt["v2a"]["R@1"],
        **({"a2v_sync_R@1": rt["a2v_sync"]["R@1"]} if "a2v_sync" in rt else {}),
        "n": lr_["n"],
        "out": out_json,
    }
    if "homophene_ceiling" in lr_:
        summary["homophene_ceiling"] = lr_["homophene_ceiling"]
    click.echo(json.dumps(summary))

"""`avrep train-generator` and `avrep generate`: thin click wrappers over avrep.train.gen_loop / avrep.apps.generate."""

from __future__ import annotations

import json
from typing import Any

import click

from avrep.commands._options import DEVICE, QUIET, checkpoint_option, echo_run_record, file_option, training_options


@click.command("train-generator")
@click.option(
    "--config", default="small", show_default=True, help="generator config: tiny, small, base, or a .json path"
)
@click.option(
    "--data",
    required=True,
    help="feature store dir (avrep preprocess), or a mixture storeA@0.5+storeB@0.3 (weighted draws per epoch)",
)
@click.option(
    "--davs",
    default=None,
    type=click.Path(file_okay=False),
    help="trained DAVS run (frozen speech encoder + lip reader); default: $AVREP_CHECKPOINT, else the shipped "
    "pretrained model (configs with their own audio encoder use none)",
)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="generator run directory")
@training_options(epochs=20, batch_size=8, lr=1e-3)
@click.option("--frames", default=None, type=int, help="training window in frames (default: the config's)")
@click.option("--epoch-size", default=None, type=int, help="clips drawn per epoch from a --data mixture")
@QUIET
def train_generator(resume: bool, quiet: bool, **opts: Any) -> None:
    """Train the talking-face generator (single process, or under torchrun for DDP)."""
    from avrep.train.gen_loop import GenTrainArgs
    from avrep.train.gen_loop import train_generator as run

    echo_run_record(opts["out"], run(GenTrainArgs(**opts), resume=resume, progress=not quiet))


@click.command()
@click.option("--face", required=True, type=click.Path(dir_okay=False), help="photo with one frontal face")
@file_option("--audio", help="speech audio (any format PyAV reads)")
@file_option("--video", help="driving talking-face video (instead of --audio)")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="output .mp4")
@checkpoint_option(generator=True)
@DEVICE
@QUIET
def generate(face, audio, video, out, checkpoint, device, quiet) -> None:
    """Make a talking-face video of FACE speaking AUDIO (or mouthing VIDEO)."""
    from avrep.apps.generate import generate_video

    res = generate_video(face, out, checkpoint, audio=audio, video=video, device=device, progress=not quiet)
    click.echo(
        json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in res.items() if k != "face_landmarks"})
    )

"""`avrep train-generator` and `avrep generate`: thin click wrappers over avrep.train.gen_loop / avrep.apps.generate."""

from __future__ import annotations

import json

import click

from avrep.commands._options import DEVICE, QUIET, checkpoint_option, training_options


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
def train_generator(
    config,
    data,
    davs,
    out,
    epochs,
    batch_size,
    lr,
    frames,
    epoch_size,
    seed,
    resume,
    workers,
    device,
    amp,
    threads,
    quiet,
) -> None:
    """Train the talking-face generator (single process, or under torchrun for DDP)."""
    from avrep.models.config import generator_config
    from avrep.models.generator import get_generator_config
    from avrep.models.pretrained import resolve_checkpoint
    from avrep.train.gen_loop import GenTrainArgs
    from avrep.train.gen_loop import train_generator as run

    if davs is None and generator_config(get_generator_config(config)).speech.source != "own":
        davs = str(resolve_checkpoint(None, quiet=quiet))
    args = GenTrainArgs(
        config=config,
        data=data,
        out=out,
        davs=davs,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        frames=frames,
        epoch_size=epoch_size,
        seed=seed,
        workers=workers,
        device=device,
        amp=amp,
        threads=threads,
    )
    rec = run(args, resume=resume, progress=not quiet)
    import os

    if rec and os.environ.get("RANK", "0") == "0":
        click.echo(json.dumps({"run": out, **{k: v for k, v in rec.items() if k.startswith(("val_", "epoch"))}}))


@click.command()
@click.option("--face", required=True, type=click.Path(dir_okay=False), help="photo with one frontal face")
@click.option("--audio", default=None, type=click.Path(dir_okay=False), help="speech audio (any format PyAV reads)")
@click.option(
    "--video", default=None, type=click.Path(dir_okay=False), help="driving talking-face video (instead of --audio)"
)
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

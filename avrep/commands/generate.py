"""`avrep train-generator` and `avrep generate`: thin click wrappers over avrep.train.gen_loop / avrep.apps.generate."""

from __future__ import annotations

import json

import click

from avrep.commands._options import DEVICE, QUIET, checkpoint_option, training_options


@click.command("train-generator")
@click.option(
    "--config", default="small", show_default=True, help="generator config: tiny, small, base, or a .json path"
)
@click.option("--data", required=True, help="feature store dir (avrep preprocess)")
@click.option(
    "--davs",
    default=None,
    type=click.Path(file_okay=False),
    help="trained DAVS run (frozen speech encoder + lip reader); required unless the config has its own audio encoder",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="generator run directory")
@training_options(epochs=20, batch_size=8, lr=1e-3)
@click.option("--frames", default=None, type=int, help="training window in frames (default: the config's)")
@QUIET
def train_generator(
    config, data, davs, out, epochs, batch_size, lr, frames, seed, resume, workers, device, amp, threads, quiet
) -> None:
    """Train the talking-face generator (single process, or under torchrun for DDP)."""
    from avrep.train.gen_loop import GenTrainArgs
    from avrep.train.gen_loop import train_generator as run

    args = GenTrainArgs(
        config=config,
        data=data,
        out=out,
        davs=davs,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        frames=frames,
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
@checkpoint_option(required=True, generator=True)
@DEVICE
@QUIET
def generate(face, audio, video, out, checkpoint, device, quiet) -> None:
    """Make a talking-face video of FACE speaking AUDIO (or mouthing VIDEO)."""
    from avrep.apps.generate import generate_video

    res = generate_video(face, out, checkpoint, audio=audio, video=video, device=device, progress=not quiet)
    click.echo(
        json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in res.items() if k != "face_landmarks"})
    )

"""`avrep train-sync`: a thin click wrapper over avrep.train.sync_loop."""

from __future__ import annotations

import json

import click

from avrep.commands._options import QUIET, SEED, data_option


@click.command("train-sync")
@data_option(
    "feature store(s) with landmarks and audio, with sampling weights: 'storeA@0.5+storeB@0.3' "
    "(their train splits are used)"
)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="run directory (rerun to resume)")
@click.option(
    "--init",
    default=None,
    type=click.Path(file_okay=False),
    help="the DAVS run the head is added to (kept frozen); default: the shipped model",
)
@click.option("--steps", default=4000, show_default=True, type=int, help="optimizer steps in all")
@click.option("--stop-at", default=None, type=int, help="end this call at that step (continue later by rerunning)")
@click.option("--batch-size", default=64, show_default=True, type=int, help="windows per step")
@click.option("--window", default=17, show_default=True, type=int, help="frames per training window")
@click.option("--max-offset", default=7, show_default=True, type=int, help="largest audio shift trained, frames")
@click.option("--lr", default=2e-3, show_default=True, type=float, help="peak learning rate (AdamW, cosine)")
@click.option("--hidden", default=128, show_default=True, type=int, help="width of the head's conv stacks")
@click.option("--pixels", default=0, show_default=True, type=int, help="channels of a mouth-pixel branch (0: off)")
@click.option("--checkpoint-every", default=250, show_default=True, type=int, help="steps between checkpoints")
@click.option("--no-augment", is_flag=True, help="train without mirror, landmark jitter and voice augmentation")
@click.option(
    "--articulation",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="probability of giving a window another speaker's mouth shape and motion amplitude",
)
@click.option(
    "--synthetic",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="sampling weight of synthetic sentences (new faces and voices, landmarks + audio) beside the stores",
)
@click.option(
    "--synthetic-clips",
    default=600,
    show_default=True,
    type=click.IntRange(1),
    help="how many synthetic sentences to make (once; kept in the run directory)",
)
@click.option(
    "--clip-loss",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="weight of the window-level offset loss (the offset decided as avrep sync does)",
)
@click.option(
    "--match-loss",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="weight of the retrieval loss (which window's audio among the batch's, scored by temporal matching)",
)
@click.option("--from-head", is_flag=True, help="start from the --init run's own sync head (fine-tune it)")
@SEED
@click.option("--threads", default=None, type=int, help="torch CPU threads")
@QUIET
def train_sync(data, out, init, steps, stop_at, batch_size, window, max_offset, lr, hidden, pixels,
               checkpoint_every, no_augment, articulation, synthetic, synthetic_clips, clip_loss, match_loss, from_head,
               seed, threads, quiet) -> None:  # fmt: skip
    """Add a dedicated sync head to a DAVS run and train it (the rest stays frozen): `avrep sync` and
    `avrep speakers` then read it."""
    from avrep.data.mixture import parse_mixture
    from avrep.models.pretrained import resolve_checkpoint
    from avrep.train.sync_loop import SyncTrainArgs
    from avrep.train.sync_loop import train_sync as run

    args = SyncTrainArgs(
        init=str(resolve_checkpoint(init)),
        out=out,
        stores=dict(parse_mixture(data)),
        steps=steps,
        stop_at=stop_at,
        batch=batch_size,
        window=window,
        max_offset=max_offset,
        lr=lr,
        head={"hidden": hidden, "pixels": pixels},
        augment=not no_augment,
        articulation=articulation,
        synthetic=synthetic,
        synthetic_clips=synthetic_clips,
        clip_loss=clip_loss,
        match_loss=match_loss,
        head_from_init=from_head,
        seed=seed,
        checkpoint_every=checkpoint_every,
        threads=threads,
    )
    run_dir = run(args, progress=not quiet)
    last = (run_dir / "log.jsonl").read_text().splitlines()[-1]
    click.echo(json.dumps({"run": str(run_dir), **json.loads(last)}))

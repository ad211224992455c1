"""`avrep lipread` and `avrep sync`: thin click wrappers over avrep.apps.lipread / avrep.apps.sync."""

from __future__ import annotations

import json

import click

from avrep.commands._options import CHECKPOINT, DEVICE, JSON_FLAG


@click.command()
@click.argument("clip", type=click.Path(dir_okay=False))
@CHECKPOINT
@click.option("-k", "k", default=5, show_default=True, type=int, help="how many words to list")
@click.option("--with-audio", is_flag=True, help="fuse the audio encoder (default: lips only)")
@click.option("--stride", default=5, show_default=True, type=int, help="frames between windows on long clips")
@JSON_FLAG
@DEVICE
def lipread(clip, checkpoint, k, with_audio, stride, as_json, device) -> None:
    """Read the word(s) spoken in CLIP (any common video container) from the lips.

    Prints the top-k words with probabilities for a 29-frame (1.16 s) word window; a longer clip is
    read with sliding windows and also gives a timeline of the likely word at each time.
    """
    from avrep.apps.lipread import lipread_file

    res = lipread_file(clip, checkpoint, k=k, with_audio=with_audio, stride=stride, device=device)
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    top = ", ".join(f"{t['word']} {t['prob']:.2f}" for t in res["topk"])
    click.echo(f"{clip}: {res['modality']}, {res['n_frames']} frames: {top}")
    for sg in res.get("segments", []):
        click.echo(f"  {sg['start_s']:6.2f}-{sg['end_s']:6.2f} s  {sg['word']:<14} p={sg['max_prob']:.2f}")
    if "note" in res:
        click.echo(f"  note: {res['note']}")


@click.command()
@click.argument("clip", type=click.Path(dir_okay=False))
@CHECKPOINT
@click.option("--max-offset", default=15, show_default=True, type=int, help="search -N..+N frames (40 ms each)")
@click.option(
    "--fix",
    "fix",
    default=None,
    type=click.Path(dir_okay=False),
    help="write OUT.mp4: a copy with the audio shifted into sync",
)
@JSON_FLAG
@DEVICE
def sync(clip, checkpoint, max_offset, fix, as_json, device) -> None:
    """Audio-video offset of CLIP, SyncNet-style, from the DAVS shared space.

    Sign convention: a POSITIVE offset means the AUDIO LEADS the video (it is early); --fix delays the
    audio by that many frames. Also printed: the confidence (median minus minimum distance over
    offsets; higher = more certain, near 0 = no usable evidence) and the distance (1 - cosine) at the
    best offset, as SyncNet reports them.
    """
    from avrep.apps.sync import fix_file, sync_file

    res = sync_file(clip, checkpoint, max_offset=max_offset, device=device)
    if fix:
        res["fixed"] = str(fix_file(clip, fix, res["offset_frames"]))
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    o = res["offset_frames"]
    lead = "in sync" if o == 0 else ("audio leads video" if o > 0 else "audio lags video")
    click.echo(
        f"{clip}: offset {o:+d} frames ({res['offset_ms']:+.0f} ms, {lead}), "
        f"confidence {res['confidence']:.3f}, distance {res['min_dist']:.3f}"
    )
    if res["windows"]:
        w = " ".join(f"{x['offset_frames']:+d}" for x in res["windows"])
        click.echo(f"  per-window offsets (2 s windows): {w}")
    if "note" in res:
        click.echo(f"  note: {res['note']}")
    if fix:
        click.echo(f"  wrote {res['fixed']} (audio delayed by {o:+d} frames)")

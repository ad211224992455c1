"""`avrep lipread`, `avrep sync`, `avrep speakers`: thin click wrappers over avrep.apps.lipread / sync / speakers."""

from __future__ import annotations

import json

import click

from avrep.commands._options import CHECKPOINT, DEVICE, JSON_FLAG, QUIET


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
    if "speaker_track" in res:
        click.echo(f"  measured on face track {res['speaker_track']} of {res['n_tracks']} (the one speaking)")
    if "note" in res:
        click.echo(f"  note: {res['note']}")
    if fix:
        click.echo(f"  wrote {res['fixed']} (audio delayed by {o:+d} frames)")


@click.command()
@click.argument("clip", type=click.Path(dir_okay=False))
@CHECKPOINT
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(dir_okay=False),
    help="write OUT.mp4: faces boxed, green while speaking",
)
@click.option(
    "--contrast",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, None),
    help="also weigh each face against the best other face on screen (1: clearer who among the faces, "
    "but a voice from off screen is more often given to someone)",
)
@click.option(
    "--format",
    "fmt",
    default=None,
    type=click.Choice(["json", "ava", "ava-decisions", "rttm"]),
    help="print the result in this format instead of the summary: json (as --json), ava (AVA-ActiveSpeaker "
    "CSV as its evaluator takes predictions: a row per face and frame, label SPEAKING_AUDIBLE, the score), "
    "ava-decisions (the same columns, label = avrep's decision SPEAKING_AUDIBLE/NOT_SPEAKING) or rttm (a "
    "SPEAKER line per speaking segment)",
)
@click.option(
    "--plot",
    "plot",
    default=None,
    type=click.Path(dir_okay=False),
    help="write PLOT.png: each face track's speaking score over time, speaking segments shaded",
)
@JSON_FLAG
@QUIET
@DEVICE
def speakers(clip, checkpoint, out, contrast, fmt, plot, as_json, quiet, device) -> None:
    """Who is speaking in CLIP: every face tracked, scored per frame by how well its lips agree with the
    audio (0-1), and the speaking segments. Nobody speaking (silence, a voice from off screen) gives no
    segments. --json prints tracks (boxes, per-frame scores) and segments; --format ava|rttm prints
    AVA-ActiveSpeaker CSV or RTTM (avrep.apps.speaker_formats).
    """
    from avrep.apps import speaker_formats
    from avrep.apps.speakers import SpeakersConfig, check_annotated_path, write_annotated
    from avrep.apps.speakers import speakers as run

    if out:
        check_annotated_path(clip, out)  # before the work, not after
    if plot:
        speaker_formats.check_plot_path(clip, plot)
    cfg = SpeakersConfig(contrast=contrast)
    res = run(clip, checkpoint, config=cfg, device=device, progress=not quiet)
    d = res.to_dict()
    if out:
        d["annotated"] = str(write_annotated(clip, res, out, progress=not quiet))
    if plot:
        d["plot"] = str(speaker_formats.write_plot(res, plot, cfg))
    if fmt and fmt != "json":
        click.echo(speaker_formats.render(res, fmt), nl=False)
        return
    if as_json or fmt == "json":
        click.echo(json.dumps(d))
        return
    click.echo(
        f"{clip}: {len(res.tracks)} face track(s), {len(res.segments)} speaking segment(s), {d['duration_s']:.2f} s"
    )
    for t in res.tracks:
        click.echo(
            f"  track {t.id}: frames {t.first}-{t.last}, speaking {int(t.speaking.sum())} frames, "
            f"mean score {float(t.scores.mean()):.2f}"
        )
    for sg in res.segments:
        click.echo(f"  {sg['start_s']:7.2f}-{sg['end_s']:7.2f} s  track {sg['track']}  score {sg['mean_score']:.2f}")
    if not res.segments:
        click.echo("  nobody on screen is speaking")
    if out:
        click.echo(f"  wrote {d['annotated']}")
    if plot:
        click.echo(f"  wrote {d['plot']}")

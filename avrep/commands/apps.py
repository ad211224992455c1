"""`avrep lipread`, `avrep sync`, `avrep speakers`: thin click wrappers over avrep.apps.lipread / sync / speakers."""

from __future__ import annotations

import json

import click

from avrep.apps.batch import expand_inputs, run_batch
from avrep.commands._options import CHECKPOINT, DEVICE, JSON_FLAG, MAX_DURATION, QUIET, file_option
from avrep.device import resolve_device
from avrep.errors import AvrepError

INPUTS = click.argument("inputs", nargs=-1, required=True, type=click.Path(), metavar="CLIP...")
BATCH_OUT = file_option(
    "--out",
    "-o",
    "out",
    help="results file: .jsonl (one JSON record a file, appended as each finishes) or .parquet for a batch "
    "(rerunning skips files already in it); any other name: one CLIP's result as JSON",
)


def _batch(cmd: str, inputs, out, quiet: bool, checkpoint, device: str, fn) -> None:
    """Several files / a folder / a manifest: one model load, `fn(path, model, words, run)` per file, a
    record per file in OUT (or JSON lines on stdout), failures listed on stderr; exit 1 only if none worked."""
    from avrep.loader import open_model

    paths = expand_inputs(inputs)
    dev = str(resolve_device(device))
    m = open_model(checkpoint, "davs", dev)  # once for every file
    model, words, run = m.model, m.words, m.run_dir
    r = run_batch(paths, lambda p: fn(p, model, words, run, dev), out, progress=not quiet, desc=cmd, echo=click.echo)
    for p, why in r["failed"]:
        click.echo(f"avrep {cmd}: skipped: {why}" if p in why else f"avrep {cmd}: skipped: {p}: {why}", err=True)
    where = f" -> {out}" if out else ""
    skipped = f", {r['skipped']} already in {out}" if r["skipped"] else ""
    click.echo(f"avrep {cmd}: {r['done']} done, {len(r['failed'])} failed{skipped} of {r['n']} files{where}", err=True)
    if r["failed"] and not r["done"] and not r["skipped"]:
        raise AvrepError(f"{cmd}: no file gave a result ({len(r['failed'])} failed)")


@click.command()
@INPUTS
@CHECKPOINT
@click.option("-k", "k", default=5, show_default=True, type=int, help="how many words to list")
@click.option("--with-audio", is_flag=True, help="fuse the audio encoder (default: lips only)")
@click.option("--stride", default=5, show_default=True, type=int, help="frames between windows on long clips")
@BATCH_OUT
@MAX_DURATION
@JSON_FLAG
@QUIET
@DEVICE
def lipread(inputs, checkpoint, k, with_audio, stride, out, max_duration, as_json, quiet, device) -> None:
    """Read the word(s) spoken in CLIP (any common video container, any length) from the lips.

    Prints the top-k words with probabilities for a 29-frame (1.16 s) word window; a longer clip is
    read with sliding windows and also gives a timeline of the likely word at each time (streamed in 10 s
    chunks: memory does not grow with the length).

    Batch: several CLIPs, a folder or a manifest (.csv/.parquet with a `path` column) are read with one
    model load; each file's result (or its error) is a record in --out (.jsonl/.parquet; without --out,
    JSON lines on stdout). Failed files are skipped and listed; rerunning skips files already in --out.
    """
    from avrep.apps.batch import is_batch
    from avrep.apps.lipread import lipread_file

    kw = dict(k=k, with_audio=with_audio, stride=stride, max_duration=max_duration)
    if is_batch(inputs, out):

        def one(p, model, words, run, dev):
            return lipread_file(p, run, model=model, words=words, device=dev, **kw)

        return _batch("lipread", inputs, out, quiet, checkpoint, device, one)
    clip = inputs[0]
    res = lipread_file(clip, checkpoint, device=device, progress=not quiet, **kw)
    if out:
        from avrep.utils import atomic_write_json

        atomic_write_json(out, res)
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
@INPUTS
@CHECKPOINT
@click.option("--max-offset", default=15, show_default=True, type=int, help="search -N..+N frames (40 ms each)")
@file_option("--fix", help="write OUT.mp4: a copy with the audio shifted into sync (one CLIP only)")
@BATCH_OUT
@MAX_DURATION
@JSON_FLAG
@QUIET
@DEVICE
def sync(inputs, checkpoint, max_offset, fix, out, max_duration, as_json, quiet, device) -> None:
    """Audio-video offset of CLIP, SyncNet-style, from the DAVS shared space.

    Sign convention: a POSITIVE offset means the AUDIO LEADS the video (it is early); --fix delays the
    audio by that many frames. Also printed: the avrep-sync confidence (median minus minimum distance
    over offsets, SyncNet's formula on avrep's features: not SyncNet's LSE-C scale), the distance (1 - cosine)
    at the best offset, and, when the model ships a calibration, the probability that the offset is right
    within one frame (fitted on people the model never saw). A clip without a usable face or speech gets no
    offset. Any length: the video is streamed in 10 s chunks (memory does not grow with the length).

    Batch: several CLIPs, a folder or a manifest (.csv/.parquet with a `path` column) are measured with one
    model load; each file's result (or its error) is a record in --out (.jsonl/.parquet; without --out,
    JSON lines on stdout). Failed files are skipped and listed; rerunning skips files already in --out.
    """
    from avrep.apps.batch import is_batch
    from avrep.apps.sync import fix_file, sync_file

    if is_batch(inputs, out):
        if fix:
            raise click.UsageError("--fix writes one file: give one CLIP")

        def one(p, model, words, run, dev):
            return sync_file(p, run, model=model, max_offset=max_offset, device=dev, max_duration=max_duration)

        return _batch("sync", inputs, out, quiet, checkpoint, device, one)
    clip = inputs[0]
    res = sync_file(
        clip, checkpoint, max_offset=max_offset, device=device, max_duration=max_duration, progress=not quiet
    )
    if out:
        from avrep.utils import atomic_write_json

        atomic_write_json(out, res)
    if fix and res["offset_frames"] is not None:
        res["fixed"] = str(fix_file(clip, fix, res["offset_frames"]))
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    o = res["offset_frames"]
    if o is None:  # no usable face or speech: say so rather than guess
        click.echo(f"{clip}: no offset ({res['reason']})")
        return
    lead = "in sync" if o == 0 else ("audio leads video" if o > 0 else "audio lags video")
    p = f", P(right within 1 frame) {res['p_correct']:.2f}" if res.get("p_correct") is not None else ""
    click.echo(
        f"{clip}: offset {o:+d} frames ({res['offset_ms']:+.0f} ms, {lead}), "
        f"avrep-sync confidence {res['confidence']:.3f}, distance {res['min_dist']:.3f}{p}"
    )
    if res.get("reliable") is False:
        click.echo("  low confidence: the offset may be wrong (little clear speech or mouth motion)")
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
@INPUTS
@CHECKPOINT
@file_option(
    "--out",
    "-o",
    "out",
    help="write OUT.mp4: faces boxed, green while speaking; a .jsonl/.parquet name: batch results (one record "
    "a file, as --json gives it; rerunning skips files already in it)",
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
@file_option("--plot", help="write PLOT.png: each face track's speaking score over time, speaking segments shaded")
@MAX_DURATION
@JSON_FLAG
@QUIET
@DEVICE
def speakers(inputs, checkpoint, out, contrast, fmt, plot, max_duration, as_json, quiet, device) -> None:
    """Who is speaking in CLIP: every face tracked, scored per frame by how well its lips agree with the
    audio (0-1), and the speaking segments. Nobody speaking (silence, a voice from off screen) gives no
    segments. --json prints tracks (boxes, per-frame scores) and segments; --format ava|rttm prints
    AVA-ActiveSpeaker CSV or RTTM (avrep.apps.speaker_formats). Any length: the video is read in 10 s chunks.

    Batch: several CLIPs, a folder or a manifest with -o results.jsonl|.parquet (or JSON lines on stdout):
    one model load, a record per file (the --json result, or the file's error); failed files are listed.
    """
    from avrep.apps import speaker_formats
    from avrep.apps.batch import is_batch
    from avrep.apps.speakers import SpeakersConfig, check_annotated_path, write_annotated
    from avrep.apps.speakers import speakers as run

    if is_batch(inputs, out):
        if plot or (fmt and fmt != "json"):
            raise click.UsageError("--plot and --format ava|rttm write one file's result: give one CLIP")
        bcfg = SpeakersConfig(contrast=contrast)
        if max_duration is not None:
            bcfg.max_duration = max_duration

        def one(p, model, words, run_dir, dev):
            return run(p, model=model, config=bcfg, device=dev, progress=False).to_dict()

        return _batch("speakers", inputs, out, quiet, checkpoint, device, one)
    clip = inputs[0]
    if out:
        check_annotated_path(clip, out)  # before the work, not after
    if plot:
        speaker_formats.check_plot_path(clip, plot)
    cfg = SpeakersConfig(contrast=contrast)
    if max_duration is not None:
        cfg.max_duration = max_duration
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

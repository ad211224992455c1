"""`avrep dub`: thin click wrapper over avrep.apps.dub."""

from __future__ import annotations

import json
import sys

import click

from avrep.commands._options import DEVICE, JSON_FLAG, checkpoint_option
from avrep.errors import AvrepError

# -q/--quiet with its short name (the shared QUIET in _options has the long one only)
QUIET_Q = click.option("-q", "--quiet", is_flag=True, help="no progress bar")


@click.command()
@click.argument("video", type=click.Path(dir_okay=False))
@click.argument("audio", type=click.Path(dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="output .mp4")
@checkpoint_option(generator=True)
@click.option(
    "--chunk",
    default=None,
    type=click.IntRange(1),
    help="frames decoded, generated and encoded at a time (default 64; the output does not depend on it)",
)
@DEVICE
@QUIET_Q
@JSON_FLAG
def dub(video, audio, out, checkpoint, chunk, device, quiet, as_json) -> None:
    """Dub VIDEO with the speech in AUDIO: the face's own frames keep head pose, eyes and background; only the
    mouth region is regenerated (the shipped generator unless --checkpoint).

    The output is as long as AUDIO: a longer VIDEO is cut, a shorter one plays forward then backward until the
    audio ends. AUDIO may be any file with a sound track (wav, mp3, another video). Exit code 1 when an input
    cannot be used (unreadable, no face, no speech)."""
    from avrep.apps.dub import dub_video

    try:
        kw = {} if chunk is None else {"chunk": chunk}
        res = dub_video(video, audio, out, checkpoint, device=device, progress=not quiet, **kw)
    except AvrepError as e:
        click.echo(f"avrep: error: {e}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(res))
        return
    click.echo(
        f"wrote {res['out']}: {res['frames']} frames ({res['seconds']:.2f} s), face on {res['face_frames']} of "
        f"{res['video_frames']} video frames, video {'cut' if res['length_rule'] == 'cut' else 'ping-ponged'} to "
        f"the audio, {res['dub_fps']:.1f} frames/s"
    )

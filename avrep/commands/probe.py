"""`avrep probe`: thin click wrapper over avrep.io.timeline.describe."""

from __future__ import annotations

import json

import click

from avrep.commands._options import MAX_DURATION


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print JSON (one object per file)")
@MAX_DURATION
def probe(files, as_json, max_duration) -> None:
    """Show how avrep reads FILES: stream start times, frame rate and count, and the A/V offset it applies."""
    from avrep.io.media import MAX_STREAM_DURATION
    from avrep.io.timeline import describe, format_description

    for f in files:
        d = describe(f, max_duration=max_duration or MAX_STREAM_DURATION)  # timestamps only: any length
        click.echo(json.dumps(d) if as_json else format_description(d))

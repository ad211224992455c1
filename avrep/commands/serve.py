"""`avrep serve`: a thin wrapper over avrep.serve (the JSON API and the search page)."""

from __future__ import annotations

import logging

import click

from avrep.commands._options import QUERY_DEVICE


@click.command()
@click.argument("index_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (others: a warning).")
@click.option("--port", type=int, default=8000, show_default=True, help="TCP port to listen on")
@click.option(
    "--checkpoint",
    "-c",
    default=None,
    type=click.Path(),
    help="Trained run to embed queries with (default: the one each index names; its hash must match).",
)
@click.option("--max-upload-mb", type=float, default=20.0, show_default=True, help="Largest upload accepted.")
@click.option("--max-upload-seconds", type=float, default=20.0, show_default=True, help="Longest upload accepted.")
@QUERY_DEVICE
def serve(index_dirs, host, port, checkpoint, max_upload_mb, max_upload_seconds, device) -> None:
    """Serve INDEX_DIR... over HTTP: a search page at / and a JSON API (/search, /media, /indexes; docs at /docs)."""
    from avrep.serve import serve as run

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run(
        list(index_dirs),
        host=host,
        port=port,
        checkpoint=checkpoint,
        device=device,
        max_upload_bytes=int(max_upload_mb * (1 << 20)),
        max_upload_seconds=max_upload_seconds,
    )

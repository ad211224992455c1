"""`avrep store convert OLD NEW`: a memmap feature store -> the compact (tar shard) format."""

from __future__ import annotations

import click


@click.group()
def store() -> None:
    """Feature store tools."""


@store.command()
@click.argument("old", type=click.Path(file_okay=False))
@click.argument("new", type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="replace NEW if it is not empty")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
def convert(old: str, new: str, overwrite: bool, quiet: bool) -> None:
    """Convert the memmap store OLD into a compact store NEW (OLD is only read)."""
    from avrep.data.store import convert_store

    res = convert_store(old, new, progress=not quiet, overwrite=overwrite)
    click.echo(f"{res['out']}: {res['n_clips']} clips, {res['n_failed']} failures, {res['n_shards']} shards")

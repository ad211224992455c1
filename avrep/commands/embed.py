"""`avrep embed`: embeddings of a feature store as .npy shards + parquet metadata."""

from __future__ import annotations

from typing import Any

import click

from avrep.commands._options import DEVICE, backend_options, checkpoint_option, shard_option, workers_option


@click.command()
@click.argument("store", type=click.Path())
@checkpoint_option(file_okay=True)
@click.option(
    "--modality",
    type=click.Choice(["audio", "video", "identity"]),
    required=True,
    help="which encoder: the lips (video), the voice (audio) or the face (identity)",
)
@click.option(
    "--kind",
    type=click.Choice(["word", "sync"]),
    default="word",
    show_default=True,
    help="word: clips saying the same word are neighbours; sync: the clip whose lips move with the "
    "audio is the nearest (audio<->video clip retrieval)",
)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="output folder of embedding shards")
@click.option("--split", default=None, help="only this split (default: all clips)")
@click.option("--batch-size", default=64, show_default=True, help="clips per forward pass")
@click.option("--chunk-size", default=8192, show_default=True, help="rows per output shard file")
@shard_option("i/N: this machine's share (under torchrun: RANK/WORLD_SIZE)")
@DEVICE
@workers_option(help="DataLoader worker processes reading the store")
@backend_options()
def embed(store: str, checkpoint: str | None, modality: str, out: str, shard: str | None, **opts: Any) -> None:
    """Embed the clips of a preprocessed STORE with a trained model (resumable, shardable)."""
    from avrep.embed_job import embed_store
    from avrep.utils import parse_shard

    r = embed_store(store, checkpoint, modality, out, shard=parse_shard(shard), **opts)
    click.echo(
        f"embed: {r['n']} clips x {r['dim']} ({modality}, {opts['kind']}) -> {r['out']}  "
        f"[chunks {r['chunks_done']}/{r['chunks_total']} done, shard {r['shard'][0]}/{r['shard'][1]}]"
    )

"""`avrep index build|train-quantizer|merge` and `avrep search`: thin wrappers over avrep.index."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from avrep.commands._options import INDEX_DEVICE, JSON_FLAG, QUERY_DEVICE, SEED, shard_option
from avrep.errors import AvrepError


def _load_npy(path: str, what: str):
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise AvrepError(f"{path}: cannot read {what} ({e})") from None


@click.group()
def index() -> None:
    """Build and manage FAISS indexes over embeddings."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")


@index.command("build")
@click.argument("emb_dir", type=click.Path(file_okay=False))
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False),
    default=None,
    help="Index folder (default: indexes/<EMB_DIR name>).",
)
@click.option("--max-memory", default="4GB", show_default=True, help="Memory budget for the index.")
@click.option("--latency-ms", type=float, default=10.0, show_default=True, help="p99 single-query latency target.")
@click.option("--metric", type=click.Choice(["ip", "l2"]), default=None, help="Default: the embedding manifest's.")
@click.option("--recall-target", type=float, default=0.95, show_default=True, help="recall@10 to tune for.")
@click.option("--index-type", default="auto", show_default=True, help="auto, Flat, HNSW32, IVF or a factory string.")
@click.option("--add", "add", is_flag=True, help="Append EMB_DIR to the existing index at --out.")
@click.option("--overwrite", is_flag=True, help="Replace an existing index folder (atomically).")
@click.option(
    "--queries",
    type=click.Path(dir_okay=False),
    default=None,
    help="Query vectors (.npy) to tune on (default: members perturbed off the collection).",
)
@click.option(
    "--tune-queries",
    type=click.Path(file_okay=False),
    default=None,
    help="Embedding folder of the queries users will send (e.g. the audio embeddings for a video index) to tune on.",
)
@click.option(
    "--trained",
    type=click.Path(file_okay=False),
    default=None,
    help="Shared trained quantizer folder (sharded builds).",
)
@shard_option("i/N: build shard i of N from EMB_DIR's files i::N.")
@INDEX_DEVICE
@SEED
def build(
    emb_dir,
    out,
    max_memory,
    latency_ms,
    metric,
    recall_target,
    index_type,
    add,
    overwrite,
    queries,
    tune_queries,
    trained,
    shard,
    device,
    seed,
) -> None:
    """Choose, train, tune and write an index folder for EMB_DIR."""
    from avrep.index import add_to_index, build_index
    from avrep.utils import parse_shard

    out = out or str(Path("indexes") / Path(emb_dir).resolve().name)
    if add:
        m = add_to_index(emb_dir, out, device=device, seed=seed)
        a = m["adds"][-1]
        click.echo(f"added {a['added']} vectors ({a['skipped_existing']} already indexed) -> {out}: n={m['n']}")
        return
    q = _load_npy(queries, "query vectors") if queries else None
    m = build_index(
        emb_dir,
        out,
        max_memory=max_memory,
        latency_ms_target=latency_ms,
        metric=metric,
        recall_target=recall_target,
        index_type=index_type,
        overwrite=overwrite,
        device=device,
        queries=q,
        tune_queries=tune_queries,
        seed=seed,
        trained=trained,
        shard=parse_shard(shard),
    )
    tuned = f"{m['search_param']}={m['search_value']} " if m["search_param"] else "(exact) "
    click.echo(
        f"{out}: {m['factory']} n={m['n']} {tuned}"
        f"recall@{m['k']}={m['recall_at_k']:.3f} p50={m['latency_p50_ms']:.2f}ms "
        f"p99={m['latency_p99_ms']:.2f}ms build={m['build_seconds']['total']:.1f}s "
        f"size={m['index_bytes'] / 2**20:.1f}MiB (tuned on {m['tuning_query_kind']} queries)"
    )


@index.command("train-quantizer")
@click.argument("emb_dir", type=click.Path(file_okay=False))
@click.option("--out", "-o", type=click.Path(file_okay=False), required=True, help="Folder for the trained quantizer.")
@click.option("--n-total", type=int, default=None, help="Size of the whole collection (default: EMB_DIR's).")
@click.option("--max-memory", default="4GB", show_default=True, help="Memory budget for the index.")
@click.option("--index-type", default="auto", show_default=True, help="auto, Flat, HNSW32, IVF or a factory string.")
@click.option("--metric", type=click.Choice(["ip", "l2"]), default=None, help="Default: the embedding manifest's.")
@click.option("--overwrite", is_flag=True, help="Replace an existing quantizer folder (atomically).")
@INDEX_DEVICE
@SEED
def train_quantizer_cmd(emb_dir, out, n_total, max_memory, index_type, metric, overwrite, device, seed) -> None:
    """Train one IVF quantizer (on a sample of EMB_DIR) for a sharded build."""
    from avrep.index import train_quantizer

    m = train_quantizer(
        emb_dir,
        out,
        n_total=n_total,
        max_memory=max_memory,
        index_type=index_type,
        metric=metric,
        overwrite=overwrite,
        seed=seed,
        device=device,
    )
    click.echo(f"{out}: trained {m['factory']} on {m['train_vectors']} vectors")


@index.command("merge")
@click.argument("shards", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "-o", type=click.Path(file_okay=False), required=True, help="Folder of the merged index.")
@click.option("--ondisk", is_flag=True, help="Merge into an on-disk inverted file (faiss.contrib.ondisk).")
@click.option("--overwrite", is_flag=True, help="Replace an existing index folder (atomically).")
def merge(shards, out, ondisk, overwrite) -> None:
    """Merge shard index folders built with one --trained quantizer."""
    from avrep.index import merge_shards

    m = merge_shards(list(shards), out, ondisk=ondisk, overwrite=overwrite)
    click.echo(f"{out}: merged {len(shards)} shards, n={m['n']}, nprobe={m['search_value']}")


@click.command()
@click.argument("index_dir", type=click.Path(file_okay=False))
@click.option("--audio", type=click.Path(dir_okay=False), default=None, help="Audio (or video with audio) query file.")
@click.option("--video", type=click.Path(dir_okay=False), default=None, help="Video query file.")
@click.option(
    "--vector", type=click.Path(dir_okay=False), default=None, help="One query embedding (.npy, [d] or [1, d])."
)
@click.option("--batch", type=click.Path(dir_okay=False), default=None, help="Query embeddings (.npy, [n, d]).")
@click.option("-k", "k", type=int, default=10, show_default=True, help="How many neighbours to return.")
@click.option("--where", multiple=True, help="Metadata filter key=value (repeatable; same key = OR).")
@click.option(
    "--rerank",
    type=click.IntRange(1),
    default=None,
    help="Re-rank this many candidates by temporal matching of per-frame features (--audio on a video index, "
    "--video on an audio index; reads them from the index's feature store; finds the clip far more often on "
    "new people).",
)
@JSON_FLAG
@QUERY_DEVICE
def search(index_dir, audio, video, vector, batch, k, where, rerank, as_json, device) -> None:
    """Search INDEX_DIR with an audio/video file or embedding vectors."""
    import numpy as np

    from avrep.index import Index

    given = [x for x in (audio, video, vector, batch) if x]
    if len(given) != 1:
        raise AvrepError("give exactly one of --audio, --video, --vector, --batch")
    if rerank is not None and not (audio or video):
        raise AvrepError("--rerank re-ranks an --audio or --video query (not embedding vectors)", param="rerank")
    ix = Index.open(index_dir)
    if rerank is not None:
        from avrep.index import search_matched

        res = search_matched(
            ix, audio=audio, video=video, k=k, candidates=rerank, where=list(where) or None, device=device
        )
    elif vector or batch:
        q = _load_npy(vector or batch, "query vectors")
        if not np.issubdtype(q.dtype, np.floating):
            raise AvrepError(f"{vector or batch}: query vectors must be float, got {q.dtype}")
        if vector and q.ndim == 2 and q.shape[0] != 1:
            raise AvrepError(f"{vector}: --vector takes one vector, got {q.shape[0]} (use --batch)")
    else:
        q = ix.embed_query(audio=audio, video=video, device=device)
    if rerank is None:
        res = ix.search(q, k, where=list(where) or None)
    if as_json:
        out = {"index": str(index_dir), "k": k, "where": list(where), "rerank": rerank, "results": res.records()}
        click.echo(json.dumps(out, indent=1))
        return
    cols = [c for c in ("rank", "score", "clip_id", "path", "word", "speaker", "split", "start_s", "end_s")]
    for qi in range(len(res)):
        df = res[qi]
        if len(res) > 1:
            click.echo(f"# query {qi}")
        if df.empty:
            click.echo("(no results)")
            continue
        show = df[[c for c in cols if c in df.columns]].copy()
        if "start_s" in show and "end_s" in show:
            show["span"] = [f"{a:.2f}-{b:.2f}s" for a, b in zip(show.pop("start_s"), show.pop("end_s"))]
        click.echo(show.to_string(index=False, float_format=lambda v: f"{v:.4f}"))

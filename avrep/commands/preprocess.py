"""`avrep preprocess MANIFEST|VIDEO --out DIR`: mouth ROIs, face crops, audio and landmarks -> feature store."""

from __future__ import annotations

from pathlib import Path

import click

from avrep.commands._options import backend_options, workers_option
from avrep.errors import AvrepError
from avrep.io.media import DECODE_MAX_SIDE, MAX_DURATION, MAX_PIXELS, probe


@click.command()
@click.argument("source", type=click.Path())
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="feature store folder")
@workers_option(help="parallel processes")
@click.option(
    "--landmarks",
    type=click.Choice(["dlib", "true"]),
    default="dlib",
    show_default=True,
    help="'true': use a synthetic clip's true landmarks (dlib's error is reported with 'dlib')",
)
@click.option(
    "--detect-every",
    type=int,
    default=25,
    show_default=True,
    help="face detection every N frames (boxes interpolated between)",
)
@click.option(
    "--landmark-every",
    type=int,
    default=2,
    show_default=True,
    help="68-point landmarks every K frames, interpolated between (1 = every frame, slowest)",
)
@click.option("--max-duration", type=float, default=MAX_DURATION, show_default=True, help="seconds; longer = refused")
@click.option("--max-pixels", type=int, default=MAX_PIXELS, show_default=True, help="per frame; larger = refused")
@click.option(
    "--max-side",
    type=int,
    default=DECODE_MAX_SIDE,
    show_default=True,
    help="frames are scaled down to this longest side while decoding",
)
@click.option("--shard-size", type=int, default=32, show_default=True, help="source videos per shard")
@click.option(
    "--store-format",
    type=click.Choice(["compact", "memmap"]),
    default="compact",
    show_default=True,
    help="compact: tar shards of H.264/FLAC samples (streamable); memmap: raw arrays (35-40x larger, measured)",
)
@backend_options()
@click.option("--limit", type=int, default=None, help="only the first N source videos")
@click.option("--overwrite", is_flag=True, help="replace a store built from another manifest/settings")
@click.option("--preview/--no-preview", default=True, show_default=True, help="write preview.png (mouth ROIs)")
@click.option(
    "--allow-outside-root",
    is_flag=True,
    help="read manifest paths outside the dataset root (only for manifests you trust)",
)
def preprocess(
    source: str,
    out: str,
    workers: int,
    landmarks: str,
    detect_every: int,
    landmark_every: int,
    max_duration: float,
    max_pixels: int,
    max_side: int,
    shard_size: int,
    limit: int | None,
    overwrite: bool,
    preview: bool,
    store_format: str = "compact",
    backend: str = "local",
    address: str | None = None,
    allow_outside_root: bool = False,
) -> None:
    """Preprocess a recipe manifest (.parquet) or a single video into a feature store.

    Bad clips of a manifest are skipped and listed in DIR/failures.parquet; a single video that
    cannot be processed is an error. Re-running the same command resumes.
    """
    from avrep import preprocess as pp

    cfg = pp.PreprocessConfig(
        landmarks=landmarks,
        detect_every=detect_every,
        landmark_every=landmark_every,
        max_duration=max_duration,
        max_pixels=max_pixels,
        max_side=max_side,
        shard_size=shard_size,
    )
    single = not source.endswith(".parquet")
    if single:
        from avrep.data.recipes import single_video_manifest

        p = Path(source)
        probe(p)  # missing / empty / non-media -> AvrepError now
        manifest = single_video_manifest(p)
    else:
        manifest = source
    res = pp.preprocess(
        manifest,
        out,
        workers=workers,
        config=cfg,
        overwrite=overwrite,
        limit=limit,
        progress=not single,
        allow_outside_root=allow_outside_root,
        store_format=store_format,
        backend=backend,
        address=address,
    )
    if single and res.n_failed:
        import pandas as pd

        reason = pd.read_parquet(Path(out) / "failures.parquet")["reason"].iloc[0]
        raise AvrepError(f"{source}: {reason}")
    t = res.timings
    tot = sum(t.values()) or 1.0
    split = ", ".join(f"{k} {100 * v / tot:.0f}%" for k, v in t.items())
    click.echo(
        f"{out}: {res.n_ok} clips ok, {res.n_failed} failed, {res.n_shards} shards "
        f"({res.n_shards_skipped} already done), {res.n_frames} frames in {res.seconds:.1f}s [{split}]"
    )
    if res.lm_error_px is not None:
        click.echo(
            f"dlib landmark error vs true: {res.lm_error_px:.2f} px ({100 * res.lm_error_iod:.1f}% of "
            "inter-ocular distance)"
        )
    if res.n_failed:
        click.echo(f"failures: {Path(out) / 'failures.parquet'}", err=True)
    if preview and res.n_ok:
        click.echo(f"preview: {pp.preview(out, Path(out) / 'preview.png')}")

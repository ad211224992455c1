"""`avrep prepare {synth,grid,lrw,folder} DIR --out MANIFEST.parquet`: corpus folder -> recipe manifest."""
from __future__ import annotations

import click


def _ratios(s: str) -> tuple[float, float, float]:
    from avrep.errors import AvrepError

    try:
        r = tuple(float(x) for x in s.split(","))
    except ValueError:
        raise AvrepError(f"--split {s!r}: expected three numbers like 0.8,0.1,0.1") from None
    if len(r) != 3:
        raise AvrepError(f"--split {s!r}: expected three numbers like 0.8,0.1,0.1")
    return r  # type: ignore[return-value]


def _done(df, out: str) -> None:
    counts = df["split"].value_counts().to_dict()
    click.echo(f"{out}: {len(df)} clips, {df['speaker'].nunique()} speaker(s), splits {counts}")


@click.group()
def prepare() -> None:
    """Turn a corpus folder into a recipe manifest (one parquet row per clip)."""


OUT = click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="manifest .parquet to write")


@prepare.command("synth")
@click.argument("corpus", type=click.Path(exists=True, file_okay=False))
@OUT
def synth_cmd(corpus: str, out: str) -> None:
    """Synthetic corpus made by `avrep synth` (keeps the true landmarks)."""
    from avrep.data.recipes import write_manifest
    from avrep.data.recipes.synth import prepare_synth

    df, vocab = prepare_synth(corpus)
    write_manifest(df, out, corpus, recipe="synth", vocab=vocab)
    _done(df, out)


@prepare.command("grid")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@OUT
@click.option("--level", type=click.Choice(["word", "sentence"]), default="word", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the by-sentence split")
@click.option("--split", "split", default="0.8,0.1,0.1", show_default=True, help="train,val,test ratios")
def grid_cmd(root: str, out: str, level: str, seed: int, split: str) -> None:
    """GRID corpus: 29-frame word clips from .align files (or whole sentences), split by sentence."""
    from avrep.data.recipes import write_manifest
    from avrep.data.recipes.grid import VOCAB, prepare_grid

    ratios = _ratios(split)
    df = prepare_grid(root, level=level, seed=seed, ratios=ratios)
    write_manifest(df, out, root, recipe="grid", vocab=VOCAB, level=level, seed=seed, ratios=ratios)
    _done(df, out)
    for key, what in (("mismatched", "alignment words differ from the file name"),
                      ("no_align", "no .align file")):
        if df.attrs.get(key) and (key == "mismatched" or level == "word"):
            click.echo(f"skipped {len(df.attrs[key])} video(s): {what}", err=True)


@prepare.command("lrw")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@OUT
def lrw_cmd(root: str, out: str) -> None:
    """LRW layout WORD/{train,val,test}/WORD_NNNNN.mp4 (+ .txt)."""
    from avrep.data.recipes import write_manifest
    from avrep.data.recipes.lrw import prepare_lrw

    df, vocab = prepare_lrw(root)
    write_manifest(df, out, root, recipe="lrw", vocab=vocab)
    _done(df, out)


@prepare.command("folder")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@OUT
@click.option("--split", "split", default="test", show_default=True,
              help="split name for every clip, or train,val,test ratios (seeded split by speaker)")
@click.option("--seed", type=int, default=0, show_default=True)
def folder_cmd(root: str, out: str, split: str, seed: int) -> None:
    """Any folder of videos (mp4, mpg, avi, mov, webm); sidecar .txt = transcript."""
    from avrep.data.recipes import write_manifest
    from avrep.data.recipes.folder import prepare_folder

    ratios = _ratios(split) if "," in split else None
    df = prepare_folder(root, split=split if ratios is None else "test", seed=seed, ratios=ratios)
    write_manifest(df, out, root, recipe="folder", split=split, seed=seed)
    _done(df, out)

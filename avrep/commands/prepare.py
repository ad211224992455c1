"""`avrep prepare {synth,grid,lrw,lrs2,folder} DIR --out MANIFEST.parquet`: corpus folder -> recipe manifest.

Every subcommand parses its options, calls the recipe `prepare_<name>(DIR, ...)` (avrep.data.recipes) and
writes the `RecipeManifest` it returns.
"""

from __future__ import annotations

import click

from avrep.commands._options import Decorator, compose, ratios, seed_option
from avrep.data.recipe_registry import RECIPES, get_recipe

CORPUS = click.argument("root", type=click.Path(exists=True, file_okay=False))
OUT = click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="manifest .parquet to write")


def recipe_command(name: str, *options) -> click.Command:
    """A `prepare NAME ROOT --out M.parquet [options]` subcommand (ROOT and --out first, then `options`) of a
    recipe in the registry (avrep.data.recipe_registry.RECIPES)."""
    if name not in RECIPES:
        raise KeyError(f"prepare {name}: not a registered recipe (avrep.data.recipe_registry.RECIPES)")
    return compose(prepare.command(name), CORPUS, OUT, *options)


def _write(res, out: str, extra: str = "") -> None:
    """Write the manifest and say what is in it (one line; `extra` is appended)."""
    res.write(out)
    df = res.manifest
    counts = df["split"].value_counts().to_dict()
    click.echo(f"{out}: {len(df)} clips, {df['speaker'].nunique()} speaker(s), splits {counts}{extra}")


def _split_args(split: str) -> dict:
    """--split NAME (every clip) or --split 0.8,0.1,0.1 (seeded split by speaker) -> recipe keywords."""
    return {"split": "test", "ratios": ratios(split)} if "," in split else {"split": split, "ratios": None}


def level_option(*levels: str, help: str) -> Decorator:
    """--level: what a clip is: a word (the default) or one of the recipe's longer `levels`."""
    return click.option("--level", type=click.Choice(["word", *levels]), default="word", show_default=True, help=help)


def split_option(default: str, help: str) -> Decorator:
    """--split: train,val,test ratios or one split name (see `_split_args`; grid takes ratios only)."""
    return click.option("--split", "split", default=default, show_default=True, help=help)


SPEAKERS = compose(
    click.option(
        "--speakers",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="CSV clip,identity (clip = file stem or relative path): speaker := identity, so a "
        "--split by ratios is speaker-disjoint",
    ),
    click.option("--drop-unlisted", is_flag=True, help="leave out videos missing from --speakers (else an error)"),
)


def speaker_split_options(split: str, split_help: str, seed_help: str | None = None) -> Decorator:
    """--split (default `split`), --seed, --speakers and --drop-unlisted: the options of a recipe whose ratio
    split is by speaker (a speaker table makes it speaker-disjoint)."""
    return compose(split_option(split, help=split_help), seed_option(seed_help), SPEAKERS)


@click.group()
def prepare() -> None:
    """Turn a corpus folder into a recipe manifest (one parquet row per clip)."""


def plain_recipe(name: str, doc: str) -> click.Command:
    """The subcommand of a recipe without options: `prepare NAME ROOT --out M.parquet` (`doc`: its help)."""

    def cmd(root: str, out: str) -> None:
        _write(get_recipe(name)(root), out)

    cmd.__doc__ = doc
    return recipe_command(name)(cmd)


synth_cmd = plain_recipe("synth", "Synthetic corpus made by `avrep synth` (keeps the true landmarks).")
lrw_cmd = plain_recipe("lrw", "LRW layout WORD/{train,val,test}/WORD_NNNNN.mp4 (+ .txt).")


@recipe_command(
    "grid",
    level_option("sentence", help="one clip per word (cut at the word timings) or per sentence"),
    seed_option("seed of the by-sentence split"),
    split_option("0.8,0.1,0.1", help="train,val,test ratios"),
)
def grid_cmd(root: str, out: str, level: str, seed: int, split: str) -> None:
    """GRID corpus: 29-frame word clips from .align files (or whole sentences), split by sentence."""
    prepare_grid = get_recipe("grid")
    res = prepare_grid(root, level=level, seed=seed, ratios=ratios(split))
    _write(res, out)
    df = res.manifest
    for key, what in (("mismatched", "alignment words differ from the file name"), ("no_align", "no .align file")):
        if df.attrs.get(key) and (key == "mismatched" or level == "word"):
            click.echo(f"skipped {len(df.attrs[key])} video(s): {what}", err=True)


@recipe_command(
    "lrs2",
    level_option("utterance", "both", help="29-frame word clips from the timing tables, whole utterances, or both"),
    speaker_split_options(
        "0.8,0.1,0.1",
        "train,val,test ratios (seeded split by speaker), or one split name for every clip",
        "seed of the by-speaker split",
    ),
    click.option(
        "--vocab",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="word list (word_id order); default: the corpus' words, sorted",
    ),
    click.option(
        "--min-count",
        type=int,
        default=1,
        show_default=True,
        help="words seen fewer times stay out of the built vocabulary (word_id -1)",
    ),
)
def lrs2_cmd(
    root: str,
    out: str,
    level: str,
    split: str,
    seed: int,
    speakers: str | None,
    drop_unlisted: bool,
    vocab: str | None,
    min_count: int,
) -> None:
    """LRS2/LRS3 layout: NNNNN.mp4 + NNNNN.txt (Text:, WORD START END ASDSCORE table), flat or nested."""
    prepare_lrs2 = get_recipe("lrs2")
    res = prepare_lrs2(
        root,
        level=level,
        seed=seed,
        speakers=speakers,
        drop_unlisted=drop_unlisted,
        vocab=vocab,
        min_count=min_count,
        **_split_args(split),
    )
    df = res.manifest
    n_words = int((df["level"] == "word").sum())
    vocab_n = f", vocabulary {len(res.vocab)}" if res.vocab is not None else ""
    _write(res, out, f", {n_words} word clip(s), {len(df) - n_words} utterance(s){vocab_n}")
    for key, what in (
        ("no_txt", "no .txt"),
        ("bad_txt", "no Text: line in the .txt"),
        ("no_timing", "no word timing table (no word clips)"),
        ("unlisted", "not in --speakers"),
    ):
        if df.attrs.get(key):
            click.echo(f"skipped {len(df.attrs[key])} video(s): {what}", err=True)


@recipe_command(
    "folder",
    speaker_split_options("test", "split name for every clip, or train,val,test ratios (seeded split by speaker)"),
    click.option(
        "--transcripts",
        type=click.Path(exists=True, file_okay=False),
        default=None,
        help="folder of <stem>.csv word lists or <stem>.txt (default: a words/ folder beside the videos' folder)",
    ),
)
def folder_cmd(
    root: str, out: str, split: str, seed: int, speakers: str | None, drop_unlisted: bool, transcripts: str | None
) -> None:
    """Any folder of videos (mp4, mpg, avi, mov, webm); sidecar .txt or words/<stem>.csv = transcript."""
    prepare_folder = get_recipe("folder")
    res = prepare_folder(
        root, seed=seed, speakers=speakers, drop_unlisted=drop_unlisted, transcripts=transcripts, **_split_args(split)
    )
    _write(res, out)
    if res.manifest.attrs.get("unlisted"):
        click.echo(f"skipped {len(res.manifest.attrs['unlisted'])} video(s): not in --speakers", err=True)

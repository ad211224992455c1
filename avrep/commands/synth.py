"""`avrep synth`: generate the synthetic audio-visual speech corpus, or print its statistics."""

from __future__ import annotations

import json

import click

from avrep.commands._options import SEED, backend_options, shard_option, workers_option
from avrep.errors import AvrepError


def format_stats(st: dict) -> str:
    lines = [
        f"clips {st['clips']}  words {st['words']}  identities {st['identities']}  voices {st['voices']}  failures {st['failures']}",
    ]
    for s, v in st["splits"].items():
        lines.append(f"  {s:5s}: {v['clips']} clips, {v['identities']} identities, {v['voices']} voices")
    groups = st["homophene_groups"]
    lines.append(f"homophene groups (same viseme sequence): {len(groups)}")
    for g in groups[:30]:
        lines.append("  " + " = ".join(g))
    if len(groups) > 30:
        lines.append(f"  ... {len(groups) - 30} more")
    lines.append(f"visual-only accuracy ceiling: {st['visual_ceiling']:.4f}")
    return "\n".join(lines)


@click.command()
@click.option("--preset", type=str, default="tiny", show_default=True, help="tiny | small | medium | lrw500")
@click.option("--out", "-o", type=click.Path(file_okay=False), help="output corpus directory")
@SEED
@workers_option(help="parallel processes")
@shard_option("i/N: generate only this machine's share")
@click.option("--snr", "snr_db", type=float, default=None, help="add background noise at this SNR (dB)")
@click.option("--size", type=int, default=160, show_default=True, help="frame size in pixels (>=160)")
@click.option("--clips-per-word", type=int, default=None, help="override the preset's clips per word")
@click.option("--words", "n_words", type=int, default=None, help="override the preset's vocabulary size")
@click.option("--overwrite", is_flag=True, help="delete a non-empty output directory first")
@click.option(
    "--stats", "stats_dir", type=click.Path(), default=None, help="print statistics of an existing corpus and exit"
)
@click.option("--json", "as_json", is_flag=True, help="print statistics as JSON")
@backend_options()
def synth(
    preset,
    out,
    seed,
    workers,
    shard,
    snr_db,
    size,
    clips_per_word,
    n_words,
    overwrite,
    stats_dir,
    as_json,
    backend="local",
    address=None,
) -> None:
    """Generate the synthetic LRW-style audio-visual speech corpus (deterministic, resumable)."""
    from avrep.synth.corpus import PRESETS, SynthConfig, corpus_stats, generate
    from avrep.utils import parse_shard

    if stats_dir:
        st = corpus_stats(stats_dir)
        click.echo(json.dumps(st, indent=2) if as_json else format_stats(st))
        return
    if preset not in PRESETS:
        raise AvrepError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    if not out:
        raise AvrepError("--out DIR is required")
    if size < 160:
        raise AvrepError(f"--size {size}: must be >= 160 so a 96x96 mouth crop is meaningful")
    if workers < 1:
        raise AvrepError(f"--workers {workers}: must be >= 1")
    for name, v in (("--clips-per-word", clips_per_word), ("--words", n_words)):
        if v is not None and v < 1:
            raise AvrepError(f"{name} {v}: must be >= 1")
    cfg = SynthConfig(
        preset=preset,
        seed=seed,
        size=size,
        snr_db=snr_db,
        shard=parse_shard(shard),
        clips_per_word=clips_per_word,
        n_words=n_words,
    )
    res = generate(cfg, out, workers=workers, overwrite=overwrite, backend=backend, address=address)
    rate = f", {res['clips_per_s']:.2f} clips/s" if res["clips_per_s"] else ""
    click.echo(
        f"synth: {res['n_clips']} clips in {res['out']} ({res['n_rendered']} rendered in {res['seconds']:.1f}s{rate}, "
        f"{len(res['failures'])} failed)"
    )
    for cid, why in list(res["failures"].items())[:10]:
        click.echo(f"  failed {cid}: {why}", err=True)
    click.echo(format_stats(corpus_stats(out)))
    if res["failures"]:
        raise SystemExit(1)

"""`avrep report`: thin click wrapper over avrep.report.build_report."""

from __future__ import annotations

from pathlib import Path

import click

from avrep.commands._options import DEVICE

# the goals table of a source checkout, the default of --goals (absent in an installed package)
CHECKOUT_GOALS = Path(__file__).resolve().parents[2] / "benchmarks" / "goals.json"


@click.command()
@click.argument("run", type=click.Path(file_okay=False, exists=True))
@click.option("--out", "-o", default=None, type=click.Path(dir_okay=False), help="HTML file [default: RUN/report.html]")
@click.option("--data", default=None, help="feature store for t-SNE/retrieval [default: the one the eval JSON names]")
@click.option("--split", default=None, help="split of --data [default: the eval JSON's, else test]")
@click.option("--images", multiple=True, type=click.Path(), help="extra PNG/JPEG files or folders (generated strips)")
@click.option("--max-points", default=800, show_default=True, type=int, help="clips in the t-SNE / retrieval pool")
@DEVICE
@click.option(
    "--goals",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="goals JSON (a table with a 'lipread' block, or that block) [default: benchmarks/goals.json "
    "of a source checkout, else none]",
)
def report(run, out, data, split, images, max_points, device, goals) -> None:
    """Write a self-contained HTML report (images embedded) for a training RUN."""
    from avrep.report import build_report

    if goals is None and CHECKOUT_GOALS.is_file():
        goals = CHECKOUT_GOALS
    p = build_report(
        run, out, data=data, split=split, images=list(images), max_points=max_points, device=device, goals=goals
    )
    click.echo(f"report: {p} ({p.stat().st_size / 1e6:.1f} MB, self-contained)")

"""Options shared by the `avrep` commands: one spelling, one type and one help text for each.

Commands only parse options and call the Python API; a value every command spells the same way
(`--device`, `--checkpoint`, `--seed`, `--workers`, `--quiet`, the training options...) is defined here once.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from typing import Any

import click

from avrep.device import DEVICES
from avrep.errors import AvrepError

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def compose(*decorators: Decorator) -> Decorator:
    """One decorator applying `decorators` as if stacked in this order (first = top of the stack)."""

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


class DeviceChoice(click.Choice):
    """auto | cpu | cuda, plus cuda:N (one GPU); `aliases` map extra spellings (index: gpu -> cuda)."""

    def __init__(self, aliases: dict[str, str] | None = None) -> None:
        self.aliases = dict(aliases or {})
        super().__init__([*DEVICES, *self.aliases], case_sensitive=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if isinstance(value, str) and re.fullmatch(r"cuda:\d+", value.strip().lower()):
            return value.strip().lower()
        v = super().convert(value, param, ctx)
        return self.aliases.get(v, v)


def device_option(
    help: str = "torch device: auto = CUDA when available, else cpu; cuda:N = one GPU",
    aliases: dict[str, str] | None = None,
) -> Decorator:
    """--device, default auto, for every command (the API resolves it with avrep.device.resolve_device)."""
    return click.option("--device", default="auto", show_default=True, type=DeviceChoice(aliases), help=help)


DEVICE = device_option()
# faiss runs on all GPUs it sees: cuda:N means a GPU too; `gpu` stays accepted (older scripts)
INDEX_DEVICE = device_option(
    "faiss device: auto = GPU when faiss sees one, else cpu (gpu = cuda)", aliases={"gpu": "cuda"}
)
QUERY_DEVICE = device_option("torch device for embedding audio/video queries (auto = CUDA when available)")


def checkpoint_option(*, required: bool = False, generator: bool = False, file_okay: bool = False) -> Decorator:
    """--checkpoint/-c: a trained DAVS run dir (apps also read $AVREP_CHECKPOINT), or a generator run;
    `file_okay`: a file inside the run dir (its model.safetensors) names the run too."""
    if generator:
        help = "generator run dir (or a DAVS run dir holding generator/); default: the shipped generator"
    elif required:
        help = "trained run directory (`avrep train --out`)"
    else:
        help = "trained run dir (`avrep train --out`); default: $AVREP_CHECKPOINT, else the shipped pretrained model"
    return click.option(
        "--checkpoint",
        "-c",
        required=required,
        default=None,
        help=help,
        type=click.Path() if file_okay else click.Path(file_okay=False),
    )


CHECKPOINT = checkpoint_option()


def seed_option(help: str | None = None) -> Decorator:
    return click.option("--seed", type=int, default=0, show_default=True, help=help or "random seed")


SEED = seed_option()


def _quiet(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """-q also silences the library's notes (the avrep logger's INFO lines, e.g. "using the shipped model")."""
    if value:
        logging.getLogger("avrep").setLevel(logging.WARNING)
    return value


QUIET = click.option("--quiet", "-q", is_flag=True, callback=_quiet, help="no progress bar, no notes")
JSON_FLAG = click.option("--json", "as_json", is_flag=True, help="print the full result as JSON")
MAX_DURATION = click.option(
    "--max-duration",
    type=float,
    default=None,
    help="seconds; longer files are refused (default: 7200, a guard against files declaring hours; memory "
    "does not grow with the length)",
)

# One default for every command's -j/--workers. What a worker is depends on the command (a process of a
# preprocess/synth/embed job, or a DataLoader worker of train/eval); 2 = the cores of the smallest machine
# the project is run on.
WORKERS_DEFAULT = 2


def workers_option(default: int = WORKERS_DEFAULT, help: str = "DataLoader worker processes", short: bool = True):
    """-j/--workers, default WORKERS_DEFAULT everywhere (`default` is kept for callers; it must equal it)."""
    if default != WORKERS_DEFAULT:
        raise ValueError(f"--workers defaults to {WORKERS_DEFAULT} in every command, not {default}")
    return click.option("--workers", "-j", type=int, default=WORKERS_DEFAULT, show_default=True, help=help)


def shard_option(help: str = "i/N: this machine's share of the work") -> Decorator:
    return click.option("--shard", default=None, help=help)


def backend_options() -> Decorator:
    """--backend local|ray and --address (the Ray cluster: 'auto' = the one `ray start` made here)."""
    return compose(
        click.option(
            "--backend",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help="local process pool, or one Ray task per shard (pip install -e '.[distributed]')",
        ),
        click.option("--address", default=None, help="Ray cluster address (e.g. auto); default: a new local one"),
    )


def training_options(*, epochs: int, batch_size: int, lr: float) -> Decorator:
    """The options `avrep train` and `avrep train-generator` share (defaults per command)."""
    return compose(
        click.option("--epochs", default=epochs, show_default=True, type=int, help="passes over the training set"),
        click.option("--batch-size", default=batch_size, show_default=True, type=int, help="clips per process"),
        click.option("--lr", default=lr, show_default=True, type=float, help="learning rate (AdamW)"),
        SEED,
        click.option("--resume", is_flag=True, help="continue the run in --out from its last checkpoint"),
        workers_option(),
        DEVICE,
        click.option("--amp/--no-amp", default=None, help="bf16 autocast (default: on for CUDA)"),
        click.option("--threads", default=None, type=int, help="torch CPU threads"),
    )


def data_option(help: str) -> Decorator:
    """--data (required): the corpus a training command reads; `help` says which forms it takes."""
    return click.option("--data", required=True, help=help)


def file_option(*decls: str, help: str) -> Decorator:
    """An optional file path (default None; a folder is refused)."""
    return click.option(*decls, default=None, type=click.Path(dir_okay=False), help=help)


def echo_run_record(out: str, rec: dict[str, Any]) -> None:
    """A training command's last line: the run dir and its last epoch's record (epoch, val_*) as JSON, printed
    once (by the main process under torchrun)."""
    if rec and os.environ.get("RANK", "0") == "0":
        click.echo(json.dumps({"run": out, **{k: v for k, v in rec.items() if k.startswith(("val_", "epoch"))}}))


def ratios(value: str) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' -> (0.8, 0.1, 0.1); AvrepError naming --split otherwise."""
    try:
        r = tuple(float(x) for x in value.split(","))
    except ValueError:
        raise AvrepError(f"--split {value!r}: expected three numbers like 0.8,0.1,0.1") from None
    if len(r) != 3:
        raise AvrepError(f"--split {value!r}: expected three numbers like 0.8,0.1,0.1")
    return r  # type: ignore[return-value]


__all__ = [
    "CHECKPOINT",
    "DEVICE",
    "INDEX_DEVICE",
    "JSON_FLAG",
    "MAX_DURATION",
    "QUERY_DEVICE",
    "QUIET",
    "data_option",
    "echo_run_record",
    "file_option",
    "SEED",
    "WORKERS_DEFAULT",
    "DeviceChoice",
    "checkpoint_option",
    "compose",
    "device_option",
    "ratios",
    "seed_option",
    "shard_option",
    "training_options",
    "workers_option",
]

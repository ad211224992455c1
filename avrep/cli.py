"""The `avrep` command line: a lazy click group over `avrep.commands.*` (thin wrappers over the API)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
import sys
from collections.abc import Iterator

import click

from avrep import __version__
from avrep.errors import AvrepError

# name -> "module:attribute"; modules import torch etc. only when their command runs.
COMMANDS: dict[str, str] = {
    "synth": "avrep.commands.synth:synth",
    "prepare": "avrep.commands.prepare:prepare",
    "preprocess": "avrep.commands.preprocess:preprocess",
    "store": "avrep.commands.store:store",
    "train": "avrep.commands.train:train",
    "eval": "avrep.commands.train:eval_cmd",
    "embed": "avrep.commands.embed:embed",
    "index": "avrep.commands.index:index",
    "search": "avrep.commands.index:search",
    "serve": "avrep.commands.serve:serve",
    "lipread": "avrep.commands.apps:lipread",
    "sync": "avrep.commands.apps:sync",
    "speakers": "avrep.commands.apps:speakers",
    "train-sync": "avrep.commands.train_sync:train_sync",
    "train-generator": "avrep.commands.generate:train_generator",
    "generate": "avrep.commands.generate:generate",
    "dub": "avrep.commands.dub:dub",
    "report": "avrep.commands.report:report",
    "probe": "avrep.commands.probe:probe",
}


def _available(name: str) -> bool:
    mod = COMMANDS[name].split(":")[0]
    return importlib.util.find_spec(mod) is not None


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if _available(n))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _available(name):
            return None
        mod, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(mod), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="avrep")
def cli() -> None:
    """avrep: audio-visual speech representations (DAVS) for lip reading, retrieval, sync and
    talking-face generation."""


# Exit codes, the same for every command: 0 ok; 1 failed input or no result (an AvrepError: unreadable file,
# no face, missing store...: one line "avrep: error: ..."); 2 usage (click: unknown option, bad value, missing
# argument); 130 interrupted.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# Library arguments named by AvrepError.param -> the flag that sets them, where it is not "--" + the name with
# dashes (the library speaks of arguments, the command line of flags).
FLAGS: dict[str, str] = {"checkpoint": "--checkpoint", "kind": "--kind", "fmt": "--format"}
# library arguments whose name in a message is mapped to their flag even when the error lost its `param`
LIBRARY_PARAMS = {
    "max_duration",
    "max_pixels",
    "max_side",
    "max_offset",
    "detect_every",
    "landmark_every",
    "shard_size",
    "store_format",
    "with_audio",
}


def flag_of(param: str) -> str:
    """The command-line flag of a library argument ("max_duration" -> "--max-duration")."""
    return FLAGS.get(param, "--" + param.replace("_", "-"))


# a library argument named in a message that reached the command as text (a batch's recorded failure reason):
# snake_case names only, which no prose uses
_NAMED_PARAM = re.compile(r"\b([a-z]+(?:_[a-z]+)+) (?=\S)")


def error_line(e: AvrepError) -> str:
    """The one line an AvrepError shows: its message, and the flag of the argument it is about (`e.param`, or
    a library argument the message names, e.g. "exceeds max_pixels 10000" -> "(--max-pixels)")."""
    msg = str(e)
    param = getattr(e, "param", None)
    if param:
        params = [param] if isinstance(param, str) else list(param)
    else:
        params = [m for m in _NAMED_PARAM.findall(msg) if m in LIBRARY_PARAMS]
    flags = [f for f in dict.fromkeys(flag_of(p) for p in params) if f not in msg]
    return f"avrep: error: {msg}" + (f" ({', '.join(flags)})" if flags else "")


@contextlib.contextmanager
def library_notes() -> Iterator[None]:
    """While a command runs, the library's notes (the "avrep" logger's INFO lines, e.g. "using the shipped
    model") show on stderr as "avrep: ..."; -q raises the level to WARNING (avrep.commands._options.QUIET).
    The logger is put back as it was afterwards (main() may run in-process, e.g. in tests)."""
    log = logging.getLogger("avrep")
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(logging.Formatter("avrep: %(message)s"))
    level, propagate = log.level, log.propagate
    log.addHandler(h)
    log.setLevel(logging.INFO)
    log.propagate = False  # not twice when a command configures the root logger too
    try:
        yield
    finally:
        log.removeHandler(h)
        log.setLevel(level)
        log.propagate = propagate


def main(argv: list[str] | None = None) -> None:
    """Entry point: a failed input becomes one line on stderr and exit code 1, a usage error exit code 2."""
    try:
        with library_notes():
            cli.main(args=argv, prog_name="avrep", standalone_mode=False)
    except AvrepError as e:
        click.echo(error_line(e), err=True)
        sys.exit(EXIT_FAILED)
    except click.exceptions.Abort:
        click.echo("avrep: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("avrep: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()

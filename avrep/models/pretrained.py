"""The shipped pretrained models (a small registry), and how a checkpoint argument resolves to a run dir.

The weights live in the package (`avrep/models/weights/<name>/`: config.json, model.safetensors,
vocab.json, card.json; a generator in `<name>/generator/`), as face-recognition-models ships dlib's, so
nothing is downloaded. Its model card is docs/model_card.md; `benchmarks/pretrained.py` reproduces it.

Resolution (`resolve_checkpoint` for DAVS runs, `resolve_generator` for generator runs), first that applies:
the argument (a run dir, a file in one, or a registry name such as "davs_small_v1"), the environment
($AVREP_CHECKPOINT for DAVS, $AVREP_GENERATOR for the generator: the default generator is not the default
DAVS model's, so one variable cannot name both), the default shipped model (`DEFAULT_DAVS`,
`DEFAULT_GENERATOR`). Using a shipped model is logged (logger "avrep.models.pretrained", INFO), which
the CLI shows on stderr; the library never prints.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from avrep.errors import AvrepError
from avrep.utils import sha256_file

log = logging.getLogger(__name__)

PRETRAINED_ROOT = Path(__file__).resolve().parent / "weights"  # package data (packages, so setuptools ships them)

# name -> folder under weights/ (a DAVS run; "generator/" inside it when it ships a generator)
SHIPPED: dict[str, str] = {
    "davs_small_v1": "davs_small_v1",
    "davs_small_v2": "davs_small_v2",  # v1's weights unchanged + a dedicated sync head (issue 23)
}
DEFAULT_DAVS = "davs_small_v2"  # what a DAVS caller gets with no checkpoint
DEFAULT_GENERATOR = "davs_small_v1"  # whose generator/ a generator caller gets (its frozen DAVS: that run's)
DEFAULT_NAME = DEFAULT_DAVS  # the older name of DEFAULT_DAVS
GENERATOR_SUBDIR = "generator"


def pretrained_dir(name: str | None = None) -> Path | None:
    """The shipped run dir of `name` (default: `DEFAULT_DAVS`), or None when this install has none."""
    d = PRETRAINED_ROOT / SHIPPED.get(name or DEFAULT_DAVS, name or DEFAULT_DAVS)
    return d if (d / "model.safetensors").exists() and (d / "config.json").exists() else None


def shipped_generator_dir(name: str | None = None) -> Path | None:
    """The shipped generator of `name` (default: `DEFAULT_GENERATOR`), or None when this install has none."""
    d = pretrained_dir(name or DEFAULT_GENERATOR)
    g = d / GENERATOR_SUBDIR if d is not None else None
    return g if g is not None and (g / "model.safetensors").exists() else None


def _shipped_name(checkpoint: str | os.PathLike) -> str | None:
    """`checkpoint` if it names a shipped model and is not a path that exists, else None."""
    s = os.fspath(checkpoint)
    return s if s in SHIPPED and not Path(s).exists() else None


def run_dir_of(path: str | os.PathLike) -> Path:
    """A run directory, or a file inside one (e.g. model.safetensors) -> the run directory."""
    p = Path(path)
    if p.is_file():
        p = p.parent
    if not (p / "model.safetensors").exists():
        raise AvrepError(f"{path}: not a trained avrep run (no model.safetensors)", param="checkpoint")
    return p


def weights_sha256(run_dir: str | os.PathLike) -> str:
    """sha256 of a run's model.safetensors (the hash the model card names and indexes record)."""
    return sha256_file(run_dir_of(run_dir) / "model.safetensors")


def card(name: str | None = None) -> dict:
    """The shipped model's card.json (data, figures on unseen people, sha256), {} if absent."""
    d = pretrained_dir(name)
    p = d / "card.json" if d else None
    return json.loads(p.read_text()) if p and p.exists() else {}


def _resolve(
    checkpoint: str | os.PathLike | None,
    quiet: bool,
    *,
    env: str,
    default: str,
    find: Callable[[str], Path | None],
    from_path: Callable[[str | os.PathLike], Path],
    missing: str,
    what: str,
) -> Path:
    """checkpoint (a path: `from_path`; a shipped name: `find`), else $`env`, else the shipped `default`
    (logged: INFO, DEBUG when `quiet`); `missing` / `what` are formatted with the shipped name."""
    ck = checkpoint or os.environ.get(env)
    name = _shipped_name(ck) if ck else default
    if ck and name is None:
        return from_path(ck)
    d = find(name)
    if d is None:
        raise AvrepError(missing.format(name=name), param="checkpoint")
    if not ck:
        level = logging.DEBUG if quiet else logging.INFO
        log.log(level, "no checkpoint given: using the shipped %s (docs/model_card.md)", what.format(name=name))
    return d


def resolve_checkpoint(checkpoint: str | os.PathLike | None, *, quiet: bool = False) -> Path:
    """A DAVS run (its dir, a file in it, or a shipped model's name), else $AVREP_CHECKPOINT, else the
    default shipped model (`DEFAULT_DAVS`, logged)."""
    return _resolve(
        checkpoint,
        quiet,
        env="AVREP_CHECKPOINT",
        default=DEFAULT_DAVS,
        find=pretrained_dir,
        from_path=run_dir_of,
        missing="no model: give a checkpoint (a run dir of `avrep train`) or set AVREP_CHECKPOINT "
        "(this install has no shipped pretrained model {name!r})",
        what="pretrained model {name}",
    )


def resolve_generator(checkpoint: str | os.PathLike | None, *, quiet: bool = False) -> Path:
    """A generator run (or a DAVS run holding generator/, or a shipped model's name), else $AVREP_GENERATOR,
    else the default shipped generator (`<DEFAULT_GENERATOR>/generator/`, logged)."""
    return _resolve(
        checkpoint,
        quiet,
        env="AVREP_GENERATOR",
        default=DEFAULT_GENERATOR,
        find=shipped_generator_dir,
        from_path=Path,
        missing="no generator: give a checkpoint (a generator run, from `avrep train-generator`) or set "
        "AVREP_GENERATOR; this install has no shipped generator {name!r}",
        what="generator {name}/" + GENERATOR_SUBDIR,
    )

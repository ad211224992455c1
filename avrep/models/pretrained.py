"""The shipped pretrained DAVS model, and how every command finds a model.

The weights live in the package (`avrep/models/weights/<name>/`: config.json, model.safetensors,
vocab.json, card.json), as face-recognition-models ships dlib's, so nothing is downloaded. A command
given no `--checkpoint` (and no $AVREP_CHECKPOINT) uses it and says so on stderr. Its model card is
docs/model_card.md; `benchmarks/pretrained.py` reproduces it from ../shared/data with a fixed seed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from avrep.errors import AvrepError
from avrep.utils import sha256_file

PRETRAINED_ROOT = Path(__file__).resolve().parent / "weights"  # package data (packages, so setuptools ships them)
DEFAULT_NAME = "davs_small_v1"


def pretrained_dir(name: str = DEFAULT_NAME) -> Path | None:
    """The shipped run dir of `name`, or None when this install has none."""
    d = PRETRAINED_ROOT / name
    return d if (d / "model.safetensors").exists() and (d / "config.json").exists() else None


def resolve_generator(checkpoint: str | os.PathLike | None, *, quiet: bool = False) -> Path:
    """--checkpoint (a generator run, or a DAVS run holding generator/), else the shipped model's generator
    (`<shipped run>/generator/`, noted on stderr)."""
    if checkpoint:
        return Path(checkpoint)
    d = pretrained_dir()
    g = d / "generator" if d is not None else None
    if g is None or not (g / "model.safetensors").exists():
        raise AvrepError(
            "no generator: pass --checkpoint GEN_RUN (an `avrep train-generator` run); "
            "this install has no shipped generator"
        )
    if not quiet:
        print(
            f"avrep: no --checkpoint given: using the shipped generator {d.name}/generator (docs/model_card.md)",
            file=sys.stderr,
        )
    return g


def run_dir_of(path: str | os.PathLike) -> Path:
    """A run directory, or a file inside one (e.g. model.safetensors) -> the run directory."""
    p = Path(path)
    if p.is_file():
        p = p.parent
    if not (p / "model.safetensors").exists():
        raise AvrepError(f"{path}: not a trained avrep run (no model.safetensors)")
    return p


def weights_sha256(run_dir: str | os.PathLike) -> str:
    """sha256 of a run's model.safetensors (the hash the model card names and indexes record)."""
    return sha256_file(run_dir_of(run_dir) / "model.safetensors")


def card(name: str = DEFAULT_NAME) -> dict:
    """The shipped model's card.json (data, figures on unseen people, sha256), {} if absent."""
    d = pretrained_dir(name)
    p = d / "card.json" if d else None
    return json.loads(p.read_text()) if p and p.exists() else {}


def resolve_checkpoint(checkpoint: str | os.PathLike | None, *, quiet: bool = False) -> Path:
    """--checkpoint, else $AVREP_CHECKPOINT, else the shipped pretrained model (noted on stderr)."""
    ck = checkpoint or os.environ.get("AVREP_CHECKPOINT")
    if ck:
        return run_dir_of(ck)
    d = pretrained_dir()
    if d is None:
        raise AvrepError(
            "no model: pass --checkpoint RUN_DIR (an `avrep train` run) or set AVREP_CHECKPOINT "
            "(this install has no shipped pretrained model)"
        )
    if not quiet:
        print(
            f"avrep: no --checkpoint given: using the shipped pretrained model {d.name} (docs/model_card.md)",
            file=sys.stderr,
        )
    return d

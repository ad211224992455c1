"""The corpus recipes by name, without importing them (pandas/pyarrow): `avrep prepare` builds its
subcommands from this table at start-up, so it stays light (`avrep prepare --help`: 0.44 s less than
importing avrep.data.recipes)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from avrep.errors import AvrepError

if TYPE_CHECKING:
    from avrep.data.recipes import RecipeManifest

# The recipes: name -> "module:function" (`prepare_<name>(corpus_dir, **options) -> RecipeManifest`), imported
# when used. `avrep prepare` has one subcommand per entry (its options are the function's keywords).
RECIPES: dict[str, str] = {
    "synth": "avrep.data.recipes.synth:prepare_synth",
    "grid": "avrep.data.recipes.grid:prepare_grid",
    "lrw": "avrep.data.recipes.lrw:prepare_lrw",
    "lrs2": "avrep.data.recipes.lrs2:prepare_lrs2",
    "folder": "avrep.data.recipes.folder:prepare_folder",
}


def get_recipe(name: str) -> Callable[..., RecipeManifest]:
    """The `prepare_<name>` function of a registered recipe."""
    if name not in RECIPES:
        raise AvrepError(f"recipe {name!r}: choose from {', '.join(RECIPES)}")
    mod, attr = RECIPES[name].split(":")
    return getattr(importlib.import_module(mod), attr)


__all__ = ["RECIPES", "get_recipe"]

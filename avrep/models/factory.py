"""`create_model(name_or_path, **overrides)` over the config registry (open_clip style).

The shipped configs, their loading and the typed defaults live in `avrep.models.config`; this module
builds models from them.
"""

from __future__ import annotations

from typing import Any

from avrep.models.config import CONFIG_DIR, config_label, davs_config, list_configs, load_config, merge_config


def list_models() -> list[str]:
    """Names of the shipped DAVS configs (tiny, small, base)."""
    return list_configs("davs")


def get_config(name_or_path: str | dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A DAVS config dict by shipped name, JSON path or dict; nested dict overrides are merged."""
    return load_config(name_or_path, "davs", **overrides)


def create_model(name_or_path: str | dict[str, Any], **overrides: Any):
    """Build a DAVS model from a config name (tiny/small/base), a JSON path or a config dict.

    `num_words` / `num_speakers` come from the data at training time; override them here. Unknown keys
    and bad values raise ConfigError (an AvrepError) naming the key.
    """
    from avrep.models.davs import DAVS

    cfg = get_config(name_or_path, **overrides)
    davs_config(cfg, config_label(cfg, name_or_path, "davs"))  # validate, naming the config
    return DAVS(cfg)


__all__ = ["CONFIG_DIR", "create_model", "get_config", "list_models", "merge_config"]

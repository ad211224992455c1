"""DAVS models: `create_model(name)` over configs/*.json; `load_run(run_dir)` and `load_generator(run_dir)`
for trained runs (avrep.models.loading, through the one safe safetensors loader). Configs: the registry
and the typed defaults (`DAVSConfig`, `GeneratorConfig`) are avrep.models.config.

Imports only torch (no decord/faiss/av), so GPU benchmarks can use it on a bare machine.
"""

from __future__ import annotations

from avrep.models.config import DAVSConfig, GeneratorConfig
from avrep.models.factory import create_model, get_config, list_models
from avrep.models.loading import load_generator, load_run

__all__ = ["DAVSConfig", "GeneratorConfig", "create_model", "get_config", "list_models", "load_generator", "load_run"]

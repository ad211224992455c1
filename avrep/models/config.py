"""Typed model configs and the one registry of shipped configs (open_clip style).

`_MODEL_CONFIGS` holds every JSON file of `avrep/models/configs` by its stem: the DAVS presets
(`tiny`, `small`, `base`) and the talking-face generators (`gen_tiny`, `gen_small`, `gen_base`).
`load_config(name_or_path, kind, **overrides)` resolves a shipped name or a JSON path and merges nested
overrides; the dataclasses below hold every default in one place, and their `from_dict` refuses unknown
keys and bad values with a `ConfigError` (an `AvrepError`) naming the key.

Configs stay plain dicts on disk and in `model.config` (a run's config.json is what it always was); the
models build a typed view with `from_dict` and read their settings from it.

Defaults for a missing key are the behaviour of runs saved before the key existed, which is not always
the shipped preset's value: `pool` (added with attention pooling) defaults to mean+max pooling, while
every shipped preset says `"pool": "attn"`; `specaug` defaults to off; a generator's `mouth_head`
defaults to none.
"""

from __future__ import annotations

import copy
import json
import math
import types
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints

from avrep.conventions import CLIP_FRAMES, MOUTH_CROP
from avrep.errors import AvrepError, ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
GENERATOR_PREFIX = "gen_"
KINDS = ("davs", "generator")


# ---- typed configs -------------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, label: str) -> Any:
    """`value` checked against the annotation `tp` (int, float, str, bool, list[int], dict, Optional, a
    config dataclass); ConfigError naming `key` otherwise."""
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:  # Optional[X] / X | None
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key, label)
    if isinstance(tp, type) and issubclass(tp, _Config):
        return tp.from_dict(value, label, key)
    bad = ConfigError(f"{label}: {key!r} must be {_type_name(tp)}, got {value!r}")
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise bad
        (item,) = get_args(tp)
        return [_coerce(v, item, f"{key}[{i}]", label) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise bad
        return dict(value)
    return value  # Any


@dataclass(frozen=True)
class _Config:
    """Base of the typed configs: `from_dict` (validating) and `to_dict`."""

    def check(self, label: str, prefix: str) -> None:
        """Value checks beyond types; raise ConfigError naming the key (prefix + field)."""

    @classmethod
    def from_dict(cls, d: Any, label: str = "config", prefix: str = "") -> Any:
        """Typed config from a dict: unknown keys, missing required keys and bad values raise ConfigError
        naming the key (dotted from the top, e.g. 'video.temporal.kind'); an instance passes through."""
        if isinstance(d, cls):
            return d
        if not isinstance(d, Mapping):
            raise ConfigError(f"{label}: {prefix or 'config'!r} must be an object, got {d!r}")
        hints = get_type_hints(cls)
        names = [f.name for f in fields(cls)]
        dot = f"{prefix}." if prefix else ""
        for k in d:
            if k not in names:
                raise ConfigError(f"{label}: unknown key {dot + str(k)!r} (known: {', '.join(names)})")
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                if f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
                    raise ConfigError(f"{label} lacks {dot + f.name!r}")
                continue
            kw[f.name] = _coerce(d[f.name], hints[f.name], dot + f.name, label)
        obj = cls(**kw)
        obj.check(label, dot)
        return obj

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive(label: str, key: str, *values: int | float) -> None:
    for v in values:
        if v <= 0:
            raise ConfigError(f"{label}: {key!r} must be > 0, got {v!r}")


def _choice(label: str, key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{label}: {key!r} must be one of {' | '.join(choices)}, got {value!r}")


def _stages(label: str, dot: str, channels: list[int], blocks: list[int] | None = None) -> None:
    if not channels:
        raise ConfigError(f"{label}: {dot + 'channels'!r} must not be empty")
    _positive(label, dot + "channels", *channels)
    if blocks is not None:
        if len(blocks) != len(channels):
            raise ConfigError(
                f"{label}: {dot + 'blocks'!r} needs one entry per channels entry ({len(channels)}), got {blocks!r}"
            )
        _positive(label, dot + "blocks", *blocks)


def _trunk(label: str, dot: str, cfg: VideoConfig | IdentityConfig) -> None:
    """The residual trunk's fields, shared by the video and identity encoders."""
    _positive(label, dot + "input_scale", cfg.input_scale)
    _stages(label, dot, cfg.channels, cfg.blocks)
    _choice(label, dot + "norm", cfg.norm, NORMS)


@dataclass(frozen=True)
class TemporalConfig(_Config):
    """The temporal model over per-frame features: dilated TCN or bidirectional GRU."""

    hidden: int
    kind: str = "tcn"  # tcn | bigru
    layers: int | None = None  # None: 3 for tcn, 2 for bigru
    kernel: int = 3  # tcn only
    dropout: float = 0.1

    KINDS: ClassVar[tuple[str, ...]] = ("tcn", "bigru")

    @property
    def n_layers(self) -> int:
        if self.layers is not None:
            return self.layers
        return 3 if self.kind == "tcn" else 2

    def check(self, label: str, dot: str) -> None:
        _choice(label, dot + "kind", self.kind, self.KINDS)
        _positive(label, dot + "hidden", self.hidden)
        _positive(label, dot + "kernel", self.kernel)
        if self.layers is not None:
            _positive(label, dot + "layers", self.layers)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{label}: {dot + 'dropout'!r} must be in [0, 1), got {self.dropout!r}")


NORMS = ("bn", "gn")  # BatchNorm | GroupNorm


@dataclass(frozen=True)
class VideoConfig(_Config):
    """Video word encoder: 3-D conv front-end + 2-D ResNet trunk + temporal model."""

    frontend_channels: int
    channels: list[int]
    blocks: list[int]
    temporal: TemporalConfig
    crop: int = MOUTH_CROP  # centre crop of larger ROIs
    input_scale: int = 1  # >1: average-pool the crop first (tiny configs)
    norm: str = "bn"
    # identity-invariant inputs (issue 23): a lip-geometry branch of this width over the mouth landmarks
    # (avrep.models.lips; 0 = off, the model then needs no landmarks), and the clip's mean mouth image
    # subtracted from every frame before the trunk (motion, not appearance)
    geometry: int = 0
    clip_norm: bool = False

    def check(self, label: str, dot: str) -> None:
        _positive(label, dot + "frontend_channels", self.frontend_channels)
        if self.geometry < 0:
            raise ConfigError(f"{label}: {dot + 'geometry'!r} must be >= 0, got {self.geometry!r}")
        _positive(label, dot + "crop", self.crop)
        _trunk(label, dot, self)


@dataclass(frozen=True)
class SpecAugConfig(_Config):
    """SpecAugment on the normalised log-mel (training only): n bands <= freq bins, n spans <= time frames."""

    freq: int = 0
    time: int = 0
    n: int = 2

    def check(self, label: str, dot: str) -> None:
        for k in ("freq", "time", "n"):
            if getattr(self, k) < 0:
                raise ConfigError(f"{label}: {dot + k!r} must be >= 0, got {getattr(self, k)!r}")


@dataclass(frozen=True)
class AudioConfig(_Config):
    """Audio word encoder: log-mel -> 1-D conv stack (two stride-2 stages) -> temporal model."""

    channels: list[int]
    temporal: TemporalConfig
    n_mels: int = 80
    specaug: SpecAugConfig | None = None  # None or {}: off (every shipped config)

    @classmethod
    def from_dict(cls, d: Any, label: str = "config", prefix: str = "") -> Any:
        if isinstance(d, Mapping) and "specaug" in d and not d["specaug"]:  # {} (or null) is off, as before
            d = {k: v for k, v in d.items() if k != "specaug"}
        return super().from_dict(d, label, prefix)

    def check(self, label: str, dot: str) -> None:
        _positive(label, dot + "n_mels", self.n_mels)
        _stages(label, dot, self.channels)


@dataclass(frozen=True)
class IdentityConfig(_Config):
    """Identity encoder over the aligned face crop."""

    channels: list[int]
    blocks: list[int]
    dim: int
    input_scale: int = 1
    norm: str = "bn"

    def check(self, label: str, dot: str) -> None:
        _positive(label, dot + "dim", self.dim)
        _trunk(label, dot, self)


@dataclass(frozen=True)
class DAVSLossConfig(_Config):
    """DAVS loss weights and settings (see avrep.train.losses); a config's "loss" overrides these."""

    cls: float = 1.0
    assoc: float = 1.0
    sync: float = 0.5
    id: float = 1.0
    mod: float = 0.1
    dis: float = 0.1
    assoc_kind: str = "infonce"  # infonce | margin
    temperature: float = 0.07
    sync_temperature: float = 0.1
    margin: float = 1.0
    adv_mode: str = "uniform"  # uniform | grl
    # roll each clip's audio by up to this many frames (targets moved with it) so the frame-level sync term
    # cannot be solved by where a frame sits in its window (zero padding tells both encoders); 0 = off
    sync_shift_max: int = 0

    def check(self, label: str, dot: str) -> None:
        _choice(label, dot + "assoc_kind", self.assoc_kind, ("infonce", "margin"))
        _choice(label, dot + "adv_mode", self.adv_mode, ("uniform", "grl"))
        _positive(label, dot + "temperature", self.temperature)
        _positive(label, dot + "sync_temperature", self.sync_temperature)


@dataclass(frozen=True)
class SyncHeadConfig(_Config):
    """The dedicated sync head (`avrep.models.sync_head`): lip geometry (+ a mouth-pixel branch of `pixels`
    channels when > 0) and log-mel through dilated residual conv stacks to unit per-frame features."""

    hidden: int = 128
    out: int = 64
    blocks: int = 2  # residual blocks, dilation 1, 2, 4, ...
    pixels: int = 0
    geometry: bool = True  # False (with pixels > 0): the pixel branch alone (an ablation)
    dropout: float = 0.0
    n_mels: int = 80
    # False: the geometry stream keeps only the mouth's openings and width and their velocities (10 numbers a
    # frame, nothing of the lips' shape): less of who is speaking to learn
    lip_points: bool = True
    # > 0: sync features = the head's ⊕ blend x the word encoders' frame features, so the cosine is
    # (cos_head + blend² cos_word) / (1 + blend²); chosen on held-out val people (benchmarks/unseen_sync.py)
    blend: float = 0.0

    def check(self, label: str, dot: str) -> None:
        _positive(label, dot + "hidden", self.hidden)
        if self.blend < 0:
            raise ConfigError(f"{label}: {dot}blend must be >= 0, got {self.blend!r}")
        _positive(label, dot + "out", self.out)
        _positive(label, dot + "n_mels", self.n_mels)
        if not self.geometry and self.pixels <= 0:
            raise ConfigError(f"{label}: {dot}geometry false needs pixels > 0 (the head would see nothing)")


@dataclass(frozen=True)
class DAVSConfig(_Config):
    """A DAVS model: video/audio word encoders, identity encoder, heads."""

    embed_dim: int
    video: VideoConfig
    audio: AudioConfig
    identity: IdentityConfig
    num_words: int
    num_speakers: int
    name: str | None = None
    frames: int = CLIP_FRAMES  # training clip length (attention prior, sync embedding length)
    # A config without "pool" is a run trained before attention pooling existed: it keeps mean+max
    # pooling (and its state-dict keys). The shipped presets all say "attn".
    pool: str = "meanmax"  # meanmax | attn
    adversary_hidden: int = 128
    classifier_scale: float = 16.0
    loss: DAVSLossConfig = field(default_factory=DAVSLossConfig)
    sync_head: SyncHeadConfig | None = None  # None: sync reads the word encoders' frame features (v1)

    POOLS: ClassVar[tuple[str, ...]] = ("meanmax", "attn")

    def check(self, label: str, dot: str) -> None:
        _positive(label, dot + "embed_dim", self.embed_dim)
        _positive(label, dot + "num_words", self.num_words)
        _positive(label, dot + "num_speakers", self.num_speakers)
        _positive(label, dot + "frames", self.frames)
        _positive(label, dot + "adversary_hidden", self.adversary_hidden)
        _choice(label, dot + "pool", self.pool, self.POOLS)


@dataclass(frozen=True)
class SpeechConfig(_Config):
    """Where a generator's speech features come from: a frozen DAVS run, or its own audio encoder."""

    source: str = "davs"  # davs | own
    audio: AudioConfig | None = None  # the own encoder (source "own" only)

    def check(self, label: str, dot: str) -> None:
        _choice(label, dot + "source", self.source, ("davs", "own"))
        if self.source == "own" and self.audio is None:
            raise ConfigError(f"{label}: {dot + 'audio'!r} is required when {dot + 'source'!r} is 'own'")


@dataclass(frozen=True)
class MouthHeadConfig(_Config):
    """Direct speech -> mouth residual path of the generator."""

    grid: int = 16
    hidden: int = 256

    def check(self, label: str, dot: str) -> None:
        _positive(label, dot + "grid", self.grid)
        _positive(label, dot + "hidden", self.hidden)


@dataclass(frozen=True)
class GeneratorLossConfig(_Config):
    """Generator loss weights (see avrep.train.gen_loop); a config's "loss" overrides these."""

    l1: float = 1.0
    mouth_l1: float = 2.0
    mouth_box_l1: float = 0.0
    adv: float = 0.01
    sync: float = 0.1
    clip_cos: float = 0.1
    word: float = 0.0
    adv_start_step: int = 0
    sync_start_step: int = 0


@dataclass(frozen=True)
class GeneratorConfig(_Config):
    """The talking-face generator (U-Net + FiLM speech conditioning)."""

    size: int
    channels: list[int]
    cond_dim: int
    speech_dim: int
    name: str | None = None
    identity_dim: int = 64
    temporal_kernel: int = 5
    temporal_layers: int = 2
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    disc_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    train_frames: int = CLIP_FRAMES
    loss: GeneratorLossConfig = field(default_factory=GeneratorLossConfig)
    mouth_head: MouthHeadConfig | None = None  # None (or null / {}): no mouth head

    @classmethod
    def from_dict(cls, d: Any, label: str = "config", prefix: str = "") -> Any:
        if isinstance(d, Mapping) and "mouth_head" in d and not d["mouth_head"]:
            d = {k: v for k, v in d.items() if k != "mouth_head"}
        return super().from_dict(d, label, prefix)

    def check(self, label: str, dot: str) -> None:
        _positive(label, dot + "size", self.size)
        _positive(label, dot + "cond_dim", self.cond_dim)
        _positive(label, dot + "speech_dim", self.speech_dim)
        _positive(label, dot + "identity_dim", self.identity_dim)
        _positive(label, dot + "temporal_kernel", self.temporal_kernel)
        _positive(label, dot + "temporal_layers", self.temporal_layers)
        _positive(label, dot + "train_frames", self.train_frames)
        _stages(label, dot, self.channels)
        _positive(label, dot + "disc_channels", *self.disc_channels)


# ---- the registry --------------------------------------------------------------------------------------
_MODEL_CONFIGS: dict[str, dict[str, Any]] = {}  # file stem -> JSON dict (DAVS presets and gen_* generators)


def _rescan_model_configs(config_dir: Path = CONFIG_DIR) -> None:
    """(Re)load every shipped JSON config into `_MODEL_CONFIGS`."""
    _MODEL_CONFIGS.clear()
    for p in sorted(config_dir.glob("*.json")):
        _MODEL_CONFIGS[p.stem] = _read_json_config(p, "shipped")


def _registry() -> dict[str, dict[str, Any]]:
    if not _MODEL_CONFIGS:
        _rescan_model_configs()
    return _MODEL_CONFIGS


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"config kind must be one of {KINDS}, got {kind!r}")


def list_configs(kind: str = "davs") -> list[str]:
    """Names of the shipped configs of one kind ("davs": tiny/small/base; "generator": tiny/small/base)."""
    _check_kind(kind)
    names = sorted(_registry())
    if kind == "generator":
        return [n[len(GENERATOR_PREFIX) :] for n in names if n.startswith(GENERATOR_PREFIX)]
    return [n for n in names if not n.startswith(GENERATOR_PREFIX)]


def merge_config(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with `over` merged in (nested dicts merge, other values replace)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge_config(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _read_json_config(p: Path, what: str) -> dict[str, Any]:
    if not p.exists():
        raise AvrepError(f"{p}: {what} config not found")
    try:
        cfg = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise AvrepError(f"{p}: invalid JSON ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise AvrepError(f"{p}: unreadable ({e})") from None
    if not isinstance(cfg, dict):
        raise AvrepError(f"{p}: expected a JSON object, got {type(cfg).__name__}")
    return cfg


def load_config(name_or_path: str | Path | dict[str, Any], kind: str = "davs", **overrides: Any) -> dict[str, Any]:
    """A config dict by shipped name, JSON path or dict (deep-copied), with nested overrides merged.

    A string ending in .json is a path; otherwise a shipped name of `kind` (generators without the `gen_`
    prefix). An existing file of another name is a DAVS config path too (and wins over a shipped name, as it
    always did). Unknown names raise AvrepError listing the choices.
    """
    _check_kind(kind)
    what = "model" if kind == "davs" else "generator"
    if isinstance(name_or_path, dict):
        cfg = copy.deepcopy(name_or_path)
    else:
        p = Path(name_or_path)
        key = (GENERATOR_PREFIX if kind == "generator" else "") + str(name_or_path)
        if p.suffix != ".json" and key in _registry() and (kind == "generator" or not p.exists()):
            cfg = copy.deepcopy(_registry()[key])
        elif p.suffix == ".json" or (kind == "davs" and p.exists()):
            cfg = _read_json_config(p, what)
        else:
            path_hint = "or give a path to a .json config" if kind == "davs" else "or give a .json path"
            raise AvrepError(
                f"unknown {what} config {str(name_or_path)!r}; choose one of "
                f"{', '.join(list_configs(kind))} {path_hint}"
            )
    return merge_config(cfg, overrides)


def config_label(cfg: dict[str, Any], name_or_path: Any, kind: str = "davs") -> str:
    """How errors name a config: "model config 'tiny'" / "generator config 'small'"."""
    what = "model" if kind == "davs" else "generator"
    name = cfg.get("name", name_or_path) if isinstance(cfg, dict) else name_or_path
    if isinstance(name, dict):
        name = "custom"
    return f"{what} config {str(name)!r}"


def davs_config(cfg: dict[str, Any] | DAVSConfig, label: str | None = None) -> DAVSConfig:
    """Typed DAVS config of a config dict (a run's config.json "model", a preset with overrides)."""
    return DAVSConfig.from_dict(cfg, label or config_label(cfg, "custom", "davs"))


def generator_config(cfg: dict[str, Any] | GeneratorConfig, label: str | None = None) -> GeneratorConfig:
    """Typed generator config of a config dict (a run's config.json "generator", a preset)."""
    return GeneratorConfig.from_dict(cfg, label or config_label(cfg, "custom", "generator"))


assert all(is_dataclass(c) for c in (DAVSConfig, GeneratorConfig))

__all__ = [
    "AudioConfig",
    "DAVSConfig",
    "DAVSLossConfig",
    "GeneratorConfig",
    "GeneratorLossConfig",
    "IdentityConfig",
    "MouthHeadConfig",
    "SpecAugConfig",
    "SpeechConfig",
    "SyncHeadConfig",
    "TemporalConfig",
    "VideoConfig",
    "CONFIG_DIR",
    "list_configs",
    "load_config",
    "merge_config",
    "config_label",
    "davs_config",
    "generator_config",
]

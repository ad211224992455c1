"""Talking-face generator (the DAVS decoder): one reference face + per-frame speech features -> face frames.

Shape of the model (Wav2Lip-like U-Net, DAVS-style conditioning):
  * an image encoder reads the reference face (identity, background) together with a "pose" image whose
    lower half is masked (the target frame in training, the reference itself at inference); its
    pooled bottleneck is the identity feature, its feature maps are the U-Net skips;
  * per-frame speech features [B, T, D] (the DAVS audio *or* video word encoder's frame features, or a
    jointly trained audio encoder) go through a temporal conv stack, so each frame sees a short window
    of speech (temporal coherence), and modulate every decoder level (FiLM) plus the bottleneck;
  * the decoder outputs RGB plus a blend mask alpha: out = alpha * rgb + (1 - alpha) * base, where base is
    the pose frame's upper half over the reference's lower half (`blend_base`; the reference itself when
    there is no pose frame), so static regions and head pose are copied and only the mouth/jaw must be
    synthesised.
All image tensors here are float in [0, 1]; `S` = config["size"] (64 tiny, 128 small, 256 base). Inputs of
another size are resized inside.

`create_generator(name_or_path, **overrides)` reads avrep/models/configs/gen_<name>.json.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from avrep.conventions import FACE_SIZE, MOUTH_SIZE  # aligned face crop / mouth ROI sides of the feature store
from avrep.data.align import FACE_BOX, MEAN_FACE, MOUTH
from avrep.errors import AvrepError
from avrep.models.config import (
    CONFIG_DIR,  # noqa: F401  (re-exported)
    GeneratorConfig,
    config_label,
    generator_config,
    list_configs,
    load_config,
)
from avrep.models.encoders import AudioWordEncoder

MASK_FROM = 0.5  # rows >= MASK_FROM * S are hidden in the pose input (mouth, jaw)


# ---- configs (the registry and the typed defaults: avrep.models.config) ----------------------------------
def list_generators() -> list[str]:
    """Names of the shipped generator configs (tiny, small, base)."""
    return list_configs("generator")


def get_generator_config(name_or_path: str | dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Generator config by name (tiny/small/base), JSON path or dict; nested overrides merge."""
    return load_config(name_or_path, "generator", **overrides)


def create_generator(name_or_path: str | dict[str, Any], **overrides: Any) -> TalkingFaceGenerator:
    """Build a generator; unknown keys and bad values raise ConfigError (an AvrepError) naming the key."""
    cfg = get_generator_config(name_or_path, **overrides)
    generator_config(cfg, config_label(cfg, name_or_path, "generator"))  # validate, naming the config
    return TalkingFaceGenerator(cfg)


# ---- building blocks -------------------------------------------------------------------------------------
def _gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)  # no BatchNorm: batch statistics would couple DDP ranks and frames


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.n1 = _gn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.n2 = _gn(cout)
        self.skip = nn.Conv2d(cin, cout, 1, stride) if (cin != cout or stride != 1) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.n1(self.conv1(x)), 0.2)
        y = self.n2(self.conv2(y))
        return F.leaky_relu(y + self.skip(x), 0.2)


class FiLM(nn.Module):
    """Per-channel scale and shift from a conditioning vector (initialised to identity)."""

    def __init__(self, cond: int, ch: int) -> None:
        super().__init__()
        self.lin = nn.Linear(cond, 2 * ch)
        nn.init.zeros_(self.lin.weight)
        nn.init.zeros_(self.lin.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        g, b = self.lin(c).chunk(2, -1)
        return x * (1 + g[..., None, None]) + b[..., None, None]


class SpeechContext(nn.Module):
    """Per-frame speech features [B, T, D] -> per-frame conditioning [B, T, C] seeing +-(k-1) frames."""

    def __init__(self, dim: int, cond: int, kernel: int = 5, layers: int = 2) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        c = dim
        for _ in range(layers):
            mods += [nn.Conv1d(c, cond, kernel, 1, kernel // 2), nn.GroupNorm(1, cond), nn.LeakyReLU(0.2)]
            c = cond
        self.net = nn.Sequential(*mods)
        self.out = nn.Linear(cond, cond)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        h = self.net(s.transpose(1, 2)).transpose(1, 2)
        return self.out(h)


def mask_lower(x: torch.Tensor, frac: float = MASK_FROM) -> torch.Tensor:
    """Hide the lower face (rows >= frac * H) with mid grey: the pose input never shows the mouth."""
    y = x.clone()
    y[..., int(round(frac * x.shape[-2])) :, :] = 0.5
    return y


def blend_base(ref: torch.Tensor, pose: torch.Tensor | None, frac: float = MASK_FROM) -> torch.Tensor:
    """What the decoder blends onto: the pose frame above the mask line, the reference below it.

    In training the pose frame is the target itself, so copying its visible half is free and the loss
    concentrates on the mouth; in dubbing the output keeps the driving frames' head pose and eyes."""
    if pose is None:
        return ref
    y = ref.clone()
    r = int(round(frac * ref.shape[-2]))
    y[..., :r, :] = pose[..., :r, :]
    return y


def mouth_box_mask(centres: torch.Tensor, size: int, half_w: float = 0.2, half_h: float = 0.14) -> torch.Tensor:
    """Soft box [N, 1, S, S] around each mouth centre (128-px face-crop coords), sides in units of S."""
    c = centres.reshape(-1, 2).float() * (size / FACE_SIZE)
    ax = torch.arange(size, dtype=torch.float32, device=centres.device) + 0.5
    wx = torch.sigmoid((half_w * size - (ax[None] - c[:, :1]).abs()) / 2)  # [N, S]
    wy = torch.sigmoid((half_h * size - (ax[None] - c[:, 1:]).abs()) / 2)
    return (wy[:, :, None] * wx[:, None, :])[:, None]


def to_unit(img: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 (or float 0..255) images -> float in [0, 1]; floats already <= 1 are kept."""
    if not img.is_floating_point():
        return img.float() / 255.0
    return img / 255.0 if float(img.detach().amax()) > 1.5 else img


# ---- generator -------------------------------------------------------------------------------------------
class TalkingFaceGenerator(nn.Module):
    """forward(ref [B,3,H,W], speech [B,T,D], pose [B,T,3,H,W] or None) -> frames [B,T,3,S,S] in [0,1];
    `forward(ref, cond=..., pose=...)` takes ready conditioning (how the apps call it: one path for both).

    Images may be uint8 or float; they are resized to S. `pose=None` uses the reference (inference).
    With config["speech"]["source"] == "own" the model carries its own audio encoder
    (`speech_features(wave)`), trained jointly; otherwise speech features come from a frozen DAVS model.
    `config`: a dict (kept as `self.config`, saved in run dirs) or a `GeneratorConfig`; defaults of missing
    keys come from `GeneratorConfig`.
    """

    def __init__(self, config: dict[str, Any] | GeneratorConfig) -> None:
        super().__init__()
        cfg = generator_config(config)
        self.config = copy.deepcopy(config) if isinstance(config, dict) else cfg.to_dict()
        self.size = cfg.size
        ch = list(cfg.channels)
        cond = cfg.cond_dim
        self.stem = nn.Conv2d(6, ch[0], 3, 1, 1)
        self.enc = nn.ModuleList()
        c = ch[0]
        for co in ch:
            self.enc.append(ConvBlock(c, co, 2))
            c = co
        self.id_proj = nn.Linear(c, cfg.identity_dim)
        self.speech = SpeechContext(cfg.speech_dim, cond, cfg.temporal_kernel, cfg.temporal_layers)
        self.cond_mix = nn.Linear(cond + self.id_proj.out_features, cond)
        self.bottleneck = ConvBlock(c + cond, c)
        self.dec = nn.ModuleList()
        self.films = nn.ModuleList()
        skips = [ch[0]] + ch[:-1]  # skip channels at resolutions S, S/2, ... (stem, enc[0..])
        for skip_c in reversed(skips):
            self.dec.append(ConvBlock(c + skip_c, skip_c))
            self.films.append(FiLM(cond, skip_c))
            c = skip_c
        self.head = nn.Conv2d(c, 4, 3, 1, 1)
        # Direct speech -> mouth path: a low-res RGB residual over a fixed box around the mean-face mouth
        # (aligned crops keep the mouth there). The U-Net alone learns to ignore speech and copy the
        # reference mouth for thousands of steps; this linear-ish path makes the mouth move early.
        mh = cfg.mouth_head
        self.mouth_head = None
        if mh is not None:
            g, hid = mh.grid, mh.hidden
            self.mouth_grid = g
            self.mouth_head = nn.Sequential(nn.Linear(cond, hid), nn.LeakyReLU(0.2), nn.Linear(hid, 3 * g * g))
            nn.init.zeros_(self.mouth_head[-1].weight)
            nn.init.zeros_(self.mouth_head[-1].bias)
            c0 = torch.from_numpy(default_mouth_centre())[None]
            self.register_buffer("mouth_mask", mouth_box_mask(c0, self.size, 0.24, 0.17), persistent=False)
            hw, hh = 0.28 * self.size, 0.2 * self.size
            cx, cy = float(c0[0, 0]) * self.size / FACE_SIZE, float(c0[0, 1]) * self.size / FACE_SIZE
            self.mouth_rect = (
                max(0, int(cy - hh)),
                min(self.size, int(cy + hh)),
                max(0, int(cx - hw)),
                min(self.size, int(cx + hw)),
            )
        self.own_audio = None
        if cfg.speech.source == "own":
            self.own_audio = AudioWordEncoder(cfg.speech.audio)
            self.own_proj = nn.Linear(self.own_audio.out_dim, cfg.speech_dim)

    # -- helpers --
    def resize(self, x: torch.Tensor) -> torch.Tensor:
        """Images [N, 3, H, W] in [0, 1] -> this generator's size (area down, bilinear up; same size: as is)."""
        if x.shape[-1] == self.size and x.shape[-2] == self.size:
            return x
        mode = "area" if x.shape[-1] > self.size else "bilinear"
        return F.interpolate(
            x, size=(self.size, self.size), mode=mode, **({} if mode == "area" else {"align_corners": False})
        )

    def speech_features(self, wave: torch.Tensor) -> torch.Tensor:
        """Own audio encoder: waveform [B, T*640] -> L2-normalised [B, T, speech_dim]."""
        if self.own_audio is None:
            raise AvrepError("this generator takes speech features from a DAVS model (no own audio encoder)")
        return F.normalize(self.own_proj(self.own_audio(wave)), dim=-1)

    def encode_reference(
        self, ref: torch.Tensor, pose: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """(skips, bottleneck map, identity feature) for images [N,3,H,W]; pose defaults to ref."""
        ref = self.resize(to_unit(ref))
        pose = ref if pose is None else self.resize(to_unit(pose))
        x = torch.cat([ref, mask_lower(pose)], 1) * 2 - 1
        h = F.leaky_relu(self.stem(x), 0.2)
        skips = [h]
        for blk in self.enc:
            h = blk(h)
            skips.append(h)
        ident = self.id_proj(h.mean((2, 3)))
        return skips[:-1], h, ident

    def condition(self, speech: torch.Tensor) -> torch.Tensor:
        """Per-frame conditioning [B, T, C] from speech features [B, T, D] (window-blendable)."""
        return self.speech(speech.float())

    def decode(
        self, skips: list[torch.Tensor], h: torch.Tensor, ident: torch.Tensor, cond: torch.Tensor, base: torch.Tensor
    ) -> torch.Tensor:
        """Decode N frames: encoder outputs for N images, cond [N, C], blend base [N,3,S,S] in [0,1]
        (`blend_base(ref, pose)`)."""
        c = self.cond_mix(torch.cat([cond, ident], -1))
        h = self.bottleneck(torch.cat([h, c[..., None, None].expand(-1, -1, *h.shape[-2:])], 1))
        for blk, film, skip in zip(self.dec, self.films, reversed(skips)):
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = film(blk(torch.cat([h, skip], 1)), c)
        out = self.head(h)
        rgb, alpha = torch.sigmoid(out[:, :3]), torch.sigmoid(out[:, 3:4])
        y = alpha * rgb + (1 - alpha) * base
        if self.mouth_head is not None:
            y0, y1, x0, x1 = self.mouth_rect
            g = self.mouth_grid
            r = self.mouth_head(c).view(-1, 3, g, g)
            r = F.interpolate(r, size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)
            r = F.pad(r, (x0, self.size - x1, y0, self.size - y1))
            y = (y + r * self.mouth_mask).clamp(0, 1)
        return y

    def forward(
        self,
        ref: torch.Tensor,
        speech: torch.Tensor | None = None,
        pose: torch.Tensor | None = None,
        wave: torch.Tensor | None = None,
        *,
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Frames [B, T, 3, S, S] in [0, 1]: the one generation path, for training and for the apps.

        Speech comes as features `speech` [B, T, D], a waveform `wave` [B, T*640] (own audio encoder), or as
        per-frame conditioning `cond` [B, T, C] already computed by `condition` (the apps blend it over
        sliding windows so speech of any length works, then decode a batch of frames at a time).
        `pose` [B, T, 3, H, W]: frames whose upper half sets head pose (training, dubbing); None: the reference."""
        if cond is None:
            if speech is None:  # own audio encoder inside forward, so DDP sees every trained parameter
                if wave is None:
                    raise ValueError("give speech features, a waveform or conditioning")
                speech = self.speech_features(wave)
            cond = self.condition(speech)
        B, T = cond.shape[:2]
        cond = cond.reshape(B * T, -1)
        ref_u = self.resize(to_unit(ref))
        if pose is None:  # one encoder pass per clip, shared by its frames
            skips, h, ident = self.encode_reference(ref_u)
            rep = lambda x: x.repeat_interleave(T, 0)  # noqa: E731
            skips, h, ident, base = [rep(s) for s in skips], rep(h), rep(ident), rep(ref_u)
        else:
            ref_rep = ref_u.repeat_interleave(T, 0)
            pose_u = self.resize(to_unit(pose.reshape(B * T, *pose.shape[2:])))
            skips, h, ident = self.encode_reference(ref_rep, pose_u)
            base = blend_base(ref_rep, pose_u)
        out = self.decode(skips, h, ident, cond, base)
        return out.view(B, T, 3, self.size, self.size)


class PatchDiscriminator(nn.Module):
    """Spectral-norm PatchGAN over the lower face (where the generator works) -> logits [N, 1, h, w]."""

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        sn = nn.utils.spectral_norm
        layers: list[nn.Module] = []
        c = 3
        for co in channels:
            layers += [sn(nn.Conv2d(c, co, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c = co
        layers.append(sn(nn.Conv2d(c, 1, 3, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lower = x[..., x.shape[-2] // 2 :, :]
        return self.net(lower * 2 - 1)


# ---- mouth ROI from generated faces (for the frozen lip reader) ------------------------------------------
def face_to_mouth_roi(faces: torch.Tensor, centres: torch.Tensor, out: int = MOUTH_SIZE) -> torch.Tensor:
    """Differentiable 96x96 grayscale mouth ROIs (0..255) from face crops [N,3,S,S] in [0,1].

    centres [N, 2]: mouth centre in 128x128 face-crop pixels. The ROI spans the same area as the store's
    mouth ROI (96 px of the 256-px reference frame = 96 * 128/184 face-crop px), so a lip reader trained
    on store ROIs reads it.
    """
    N, _, S, _ = faces.shape
    scale = FACE_SIZE / (FACE_BOX[2] - FACE_BOX[0])
    half = MOUTH_SIZE * scale / 2 / FACE_SIZE * 2  # half side in normalised [-1, 1] units
    c = centres.to(faces.dtype) / FACE_SIZE * 2 - 1  # pixel coords -> [-1, 1] (align_corners=False style)
    theta = torch.zeros(N, 2, 3, dtype=faces.dtype, device=faces.device)
    theta[:, 0, 0] = half
    theta[:, 1, 1] = half
    theta[:, 0, 2] = c[:, 0] + 1.0 / FACE_SIZE
    theta[:, 1, 2] = c[:, 1] + 1.0 / FACE_SIZE
    grid = F.affine_grid(theta, (N, 3, out, out), align_corners=False)
    rgb = F.grid_sample(faces, grid, mode="bilinear", padding_mode="border", align_corners=False)
    gray = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    return gray * 255.0


def default_mouth_centre() -> np.ndarray:
    """Mouth centre of the mean face in 128x128 face-crop pixels."""
    s = FACE_SIZE / (FACE_BOX[2] - FACE_BOX[0])
    c = MEAN_FACE[MOUTH].mean(0)
    return np.array([(c[0] - FACE_BOX[0]) * s, (c[1] - FACE_BOX[1]) * s], np.float32)


__all__ = [
    "TalkingFaceGenerator",
    "PatchDiscriminator",
    "create_generator",
    "get_generator_config",
    "list_generators",
    "face_to_mouth_roi",
    "default_mouth_centre",
    "mask_lower",
    "to_unit",
    "blend_base",
    "mouth_box_mask",
]

"""DAVS encoders: video word encoder (mouth ROIs), audio word encoder (waveform -> log-mel), identity encoder.

All encoders take raw model inputs (uint8 pixels / float waveform) and normalise inside, so callers
cannot get preprocessing wrong. Word encoders return per-frame features [B, T, H] (pre-projection);
the projection to the shared space lives in `avrep.models.heads`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from avrep.conventions import AUDIO_HOP, FEATS_PER_FRAME, SAMPLES_PER_FRAME  # noqa: F401  (re-exported)
from avrep.errors import AvrepError, ConfigError
from avrep.models.config import AudioConfig, IdentityConfig, TemporalConfig, VideoConfig
from avrep.models.lips import LipGeometry

# Mouth ROI pixel statistics (LRW-style grayscale), applied to 0..255 inputs.
MOUTH_MEAN, MOUTH_STD = 0.421 * 255.0, 0.165 * 255.0
FACE_MEAN = (0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0)
FACE_STD = (0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0)


def _norm2d(kind: str, ch: int) -> nn.Module:
    return nn.BatchNorm2d(ch) if kind == "bn" else nn.GroupNorm(min(8, ch), ch)


class BasicBlock(nn.Module):
    """ResNet basic block (2-D)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, norm: str = "bn") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = _norm2d(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = _norm2d(norm, cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm2d(norm, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)), inplace=True)


class ResNet2D(nn.Module):
    """A ResNet trunk: `channels[i]` with `blocks[i]` basic blocks; stage i>0 halves resolution."""

    def __init__(self, cin: int, channels: list[int], blocks: list[int], norm: str = "bn") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        for i, (ch, n) in enumerate(zip(channels, blocks)):
            for j in range(n):
                layers.append(BasicBlock(c, ch, 2 if (i > 0 and j == 0) else 1, norm))
                c = ch
        self.layers = nn.Sequential(*layers)
        self.out_dim = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.layers(x), 1).flatten(1)


class TemporalConvNet(nn.Module):
    """Non-causal dilated residual 1-D convs over time: local receptive field keeps frames sync-able."""

    def __init__(self, cin: int, hidden: int, layers: int = 3, kernel: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.inp = nn.Conv1d(cin, hidden, 1)
        self.blocks = nn.ModuleList()
        for i in range(layers):
            d = 2**i
            self.blocks.append(
                nn.Sequential(
                    nn.Conv1d(hidden, hidden, kernel, padding=d * (kernel - 1) // 2, dilation=d),
                    nn.BatchNorm1d(hidden),
                    nn.ReLU(inplace=True),
                    nn.Dropout(dropout),
                    nn.Conv1d(hidden, hidden, 1),
                    nn.BatchNorm1d(hidden),
                )
            )
        self.out_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C] -> [B, T, H]
        h = self.inp(x.transpose(1, 2))
        for blk in self.blocks:
            h = F.relu(h + blk(h))
        return h.transpose(1, 2)


class BiGRU(nn.Module):
    def __init__(self, cin: int, hidden: int, layers: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.gru = nn.GRU(
            cin, hidden // 2, layers, batch_first=True, bidirectional=True, dropout=dropout if layers > 1 else 0.0
        )
        self.out_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


def make_temporal(cfg: dict[str, Any] | TemporalConfig, cin: int) -> nn.Module:
    """The temporal model of a config ("tcn" | "bigru"); a bad config raises ConfigError naming the key."""
    t = TemporalConfig.from_dict(cfg, "temporal config")
    if t.kind == "tcn":
        return TemporalConvNet(cin, t.hidden, t.n_layers, t.kernel, t.dropout)
    if t.kind == "bigru":
        return BiGRU(cin, t.hidden, t.n_layers, t.dropout)
    raise ConfigError(f"temporal config: unknown kind {t.kind!r}")  # unreachable: from_dict checks the kind


class VideoWordEncoder(nn.Module):
    """Mouth ROIs [B, T, H, W] (0..255) -> per-frame features [B, T, hidden].

    3-D conv front-end (5x7x7, as in the LRW ResNet lip readers) + per-frame 2-D ResNet + temporal model.
    """

    def __init__(self, cfg: dict[str, Any] | VideoConfig) -> None:
        super().__init__()
        c = VideoConfig.from_dict(cfg, "video config")
        self.crop = c.crop
        self.scale = c.input_scale  # >1: average-pool the crop first (tiny configs)
        fc = c.frontend_channels
        self.frontend = nn.Sequential(
            nn.Conv3d(1, fc, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False),
            nn.BatchNorm3d(fc),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        )
        self.trunk = ResNet2D(fc, c.channels, c.blocks, c.norm)
        self.clip_norm = c.clip_norm
        # the geometry branch adds to the trunk's per-frame features (zero at start: see LipGeometry)
        self.geometry = LipGeometry(self.trunk.out_dim, c.geometry) if c.geometry else None
        self.temporal = make_temporal(c.temporal, self.trunk.out_dim)
        self.out_dim = self.temporal.out_dim

    @property
    def needs_landmarks(self) -> bool:
        return self.geometry is not None

    def normalise(self, mouth: torch.Tensor) -> torch.Tensor:
        """uint8 0..255 (or float: 0..255, or 0..1 as FeatureDataset gives) [B, T, H, W]
        -> centre-cropped, standardised float [B, 1, T, h, w]."""
        if mouth.dim() != 4:
            raise ValueError(f"mouth must be [B, T, H, W], got {tuple(mouth.shape)}")
        x = mouth.float()
        if mouth.is_floating_point():  # a clip whose pixels are all <= 1 is on the 0..1 scale
            unit = x.flatten(1).amax(1) <= 1.0
            x = x * torch.where(unit, 255.0, 1.0).to(x.dtype)[:, None, None, None]
        h, w = x.shape[-2:]
        if h > self.crop or w > self.crop:  # 96x96 store ROIs: take the centre crop
            t, l = (h - self.crop) // 2, (w - self.crop) // 2
            x = x[..., t : t + self.crop, l : l + self.crop]
        x = (x - MOUTH_MEAN) / MOUTH_STD
        if self.clip_norm:  # what changes over the clip, not what this mouth looks like
            x = x - x.mean(1, keepdim=True)
        if self.scale > 1:
            x = F.avg_pool2d(x, self.scale)
        return x.unsqueeze(1)

    def forward(self, mouth: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """mouth [B, T, H, W]; landmarks [B, T, 68, 2] (pixels of any frame), required when the config has
        a geometry branch and ignored otherwise."""
        x = self.frontend(self.normalise(mouth))  # [B, C, T, h, w]
        b, c, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(b * t, c, h, w)
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        f = self.trunk(x).view(b, t, -1)
        if self.geometry is not None:
            if landmarks is None:
                raise AvrepError("this model reads lip landmarks beside the mouth pixels: pass landmarks [B, T, 68, 2]")
            if landmarks.shape[:2] != (b, t):
                raise ValueError(f"landmarks {tuple(landmarks.shape)} do not match mouth {tuple(mouth.shape)}")
            f = f + self.geometry(landmarks.to(f.device)).to(f.dtype)
        return self.temporal(f)


def normalize_utterance(m: torch.Tensor) -> torch.Tensor:
    """log-mel [B, n, M] -> per-utterance mean/variance normalised over time (gain / channel invariance)."""
    return (m - m.mean(1, keepdim=True)) / (m.std(1, keepdim=True) + 1e-5)


class LogMelFrontend(nn.Module):
    """Waveform [B, N] (16 kHz) -> log-mel [B, 4T, n_mels] with exactly 4 frames per 640 samples.

    The one audio front-end: `avrep.features.LogMel` (slaney mel scale and norm, 0 Hz to Nyquist), computed
    in float32 even under autocast. If it cannot be built, AvrepError - never a different spectrogram
    (a silent change of input features would break every trained checkpoint).
    """

    def __init__(self, n_mels: int = 80) -> None:
        super().__init__()
        self.n_mels = n_mels
        try:
            from avrep.features import LogMel

            self.shared = LogMel(n_mels=n_mels)  # attribute name fixed: checkpoints hold its buffers
        except Exception as e:  # e.g. torchaudio missing or broken
            raise AvrepError(
                f"cannot build the audio front-end avrep.features.LogMel(n_mels={n_mels}): {type(e).__name__}: {e}"
            ) from e

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        n_out = wave.shape[-1] // AUDIO_HOP
        with torch.autocast(wave.device.type, enabled=False):  # log of a bf16 spectrum loses too much
            m = self.shared(wave.float())  # [B, 4T, n_mels]
        return m[:, :n_out]


def spec_augment(m: torch.Tensor, freq: int = 0, time: int = 0, n: int = 2) -> torch.Tensor:
    """SpecAugment on normalised log-mel [B, L, M]: n frequency bands (<= freq bins) and n time spans
    (<= time frames at 100 Hz) per clip set to 0 (the mean). Training only; torch RNG, so seeded runs
    repeat. Off in the shipped configs: on GRID s1 (train 0.997 vs val 0.98 audio) it did not lift held-out
    accuracy (benchmarks/results/grid_specaug.json)."""
    B, L, M = m.shape
    keep = torch.ones(B, L, M, device=m.device, dtype=m.dtype)
    ar_f = torch.arange(M, device=m.device)
    ar_t = torch.arange(L, device=m.device)
    for _ in range(n):
        if freq > 0:
            w = torch.randint(0, freq + 1, (B, 1), device=m.device)
            f0 = (torch.rand(B, 1, device=m.device) * (M - w + 1)).long()
            keep = keep * ~((ar_f[None] >= f0) & (ar_f[None] < f0 + w))[:, None, :]
        if time > 0:
            w = torch.randint(0, time + 1, (B, 1), device=m.device)
            t0 = (torch.rand(B, 1, device=m.device) * (L - w + 1)).long()
            keep = keep * ~((ar_t[None] >= t0) & (ar_t[None] < t0 + w))[:, :, None]
    return m * keep


class AudioWordEncoder(nn.Module):
    """Waveform [B, T*640] -> per-frame features [B, T, hidden] in step with the video frames.

    log-mel (100 Hz) -> per-utterance mean/variance normalisation (gain/channel invariance)
    -> 1-D conv stack with two stride-2 stages (100 Hz -> 25 Hz) -> temporal model.
    """

    def __init__(self, cfg: dict[str, Any] | AudioConfig) -> None:
        super().__init__()
        ac = AudioConfig.from_dict(cfg, "audio config")
        self.frontend = LogMelFrontend(ac.n_mels)
        ch = ac.channels
        layers: list[nn.Module] = []
        c = self.frontend.n_mels
        for i, co in enumerate(ch):
            stride = 2 if i < 2 else 1
            layers += [
                nn.Conv1d(c, co, 5 if i < 2 else 3, stride, 2 if i < 2 else 1, bias=False),
                nn.BatchNorm1d(co),
                nn.ReLU(inplace=True),
            ]
            c = co
        self.convs = nn.Sequential(*layers)
        self.temporal = make_temporal(ac.temporal, c)
        self.out_dim = self.temporal.out_dim
        self.specaug = {} if ac.specaug is None else ac.specaug.to_dict()  # {}: off

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() != 2:
            raise ValueError(f"audio must be [B, N] samples, got {tuple(wave.shape)}")
        m = self.frontend(wave.float())  # [B, 4T, M]
        m = normalize_utterance(m)
        if self.training and self.specaug:
            m = spec_augment(m, **self.specaug)
        return m

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        t = wave.shape[-1] // SAMPLES_PER_FRAME
        x = self.convs(self.features(wave).transpose(1, 2))  # [B, C, ~T]
        x = x[..., :t]
        if x.shape[-1] < t:
            x = F.pad(x, (0, t - x.shape[-1]), mode="replicate")
        return self.temporal(x.transpose(1, 2))


class IdentityEncoder(nn.Module):
    """Aligned face [B, 3, 128, 128] (0..255) -> identity feature [B, dim] (not normalised)."""

    def __init__(self, cfg: dict[str, Any] | IdentityConfig) -> None:
        super().__init__()
        c = IdentityConfig.from_dict(cfg, "identity config")
        c0 = c.channels[0]
        self.scale = c.input_scale
        self.stem = nn.Sequential(
            nn.Conv2d(3, c0, 7, 2, 3, bias=False), nn.BatchNorm2d(c0), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        self.trunk = ResNet2D(c0, c.channels, c.blocks, c.norm)
        self.proj = nn.Linear(self.trunk.out_dim, c.dim)
        self.register_buffer("mean", torch.tensor(FACE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(FACE_STD).view(1, 3, 1, 1), persistent=False)
        self.out_dim = c.dim

    def forward(self, face: torch.Tensor) -> torch.Tensor:
        if face.dim() != 4 or face.shape[1] != 3:
            raise ValueError(f"face must be [B, 3, H, W], got {tuple(face.shape)}")
        x = (face.float() - self.mean) / self.std
        if self.scale > 1:
            x = F.avg_pool2d(x, self.scale)
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.proj(self.trunk(self.stem(x)))


def count_parameters(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


__all__ = [
    "VideoWordEncoder",
    "AudioWordEncoder",
    "IdentityEncoder",
    "LogMelFrontend",
    "count_parameters",
    "SAMPLES_PER_FRAME",
    "FEATS_PER_FRAME",
]

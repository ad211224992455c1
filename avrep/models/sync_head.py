"""A dedicated audio-visual sync head: per-frame features whose only job is "which audio frame goes with
this video frame", read from identity-poor inputs.

Video: the lip-geometry stream (`avrep.models.lips`: pose/size/identity-normalised mouth landmarks and
their velocities) and, optionally, a small pixel branch on the mouth with the clip's mean mouth image
removed (so what it sees is motion, not who). Audio: the one log-mel front-end, per-utterance normalised.
Both go through dilated residual 1-D conv stacks to unit [B, T, out] features in step with the frames.

It is trained on its own (`avrep.train.sync_loop`) with the within-clip offset loss on real content on
both sides (`offset_infonce`): the audio window starts `k` frames away from the video window, so a model
that only knew "where in the window am I" (zero padding gives that away) would be wrong, and every
negative comes from the same person, so who is speaking is no help. A DAVS model that holds a sync head
uses it for `avrep sync` and `avrep speakers` (`DAVS.sync_frames_video/audio`); everything else is
unchanged.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from avrep.conventions import SAMPLES_PER_FRAME
from avrep.models.config import SyncHeadConfig
from avrep.models.encoders import LogMelFrontend, normalize_utterance
from avrep.models.lips import LIP_FEATURES, OPENING_FEATURES, lip_geometry

PIXEL_SIZE = 48  # the mouth is average-pooled from 96x96 to this before the pixel branch


class _Residual(nn.Module):
    """x + dropout(relu(bn(conv(x)))): a dilated temporal block that keeps length and width."""

    def __init__(self, c: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c, c, kernel, padding=dilation * (kernel // 2), dilation=dilation)
        self.bn = nn.BatchNorm1d(c)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(F.relu(self.bn(self.conv(x))))


def _temporal(c_in: int, cfg: SyncHeadConfig, stem: list[nn.Module] | None = None) -> nn.Sequential:
    h = cfg.hidden
    layers = list(stem or [nn.Conv1d(c_in, h, 3, padding=1), nn.BatchNorm1d(h), nn.ReLU(inplace=True)])
    layers += [_Residual(h, 5, 2**i, cfg.dropout) for i in range(cfg.blocks)]
    layers.append(nn.Conv1d(h, cfg.out, 1))
    return nn.Sequential(*layers)


def _mouth_motion(mouth: torch.Tensor) -> torch.Tensor:
    """uint8 mouths [B, T, H, W] -> [B*T, 2, 48, 48]: the frame minus the clip's mean mouth, and the frame
    difference (both scaled to roughly unit spread)."""
    B, T = mouth.shape[:2]
    x = mouth.float().flatten(0, 1)[:, None]
    x = F.adaptive_avg_pool2d(x, PIXEL_SIZE).view(B, T, PIXEL_SIZE, PIXEL_SIZE) / 255.0
    x = x - x.mean(1, keepdim=True)
    d = torch.diff(x, dim=1, prepend=x[:, :1])
    return torch.stack([x, d], 2).flatten(0, 1) * 5.0


class SyncHead(nn.Module):
    """landmarks [B, T, 68, 2] (+ mouth uint8 [B, T, 96, 96] when `pixels` > 0) and audio [B, T*640] ->
    unit per-frame features [B, T, out] for each side."""

    def __init__(self, cfg: SyncHeadConfig) -> None:
        super().__init__()
        self.cfg = cfg
        p = cfg.pixels
        if p:
            self.pixels = nn.Sequential(
                nn.Conv2d(2, 32, 3, 2, 1),
                nn.BatchNorm2d(32),
                nn.ReLU(inplace=True),
                nn.Conv2d(32, 64, 3, 2, 1),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.Conv2d(64, p, 3, 2, 1),
                nn.BatchNorm2d(p),
                nn.ReLU(inplace=True),
            )
        geo = (LIP_FEATURES if cfg.lip_points else 2 * OPENING_FEATURES) if cfg.geometry else 0
        self.video = _temporal(geo + p, cfg)
        self.mel = LogMelFrontend(cfg.n_mels)
        h = cfg.hidden
        # two stride-2 stages: 100 Hz log-mel -> 25 Hz, one step per video frame
        stem = [
            nn.Conv1d(cfg.n_mels, h, 5, 2, 2),
            nn.BatchNorm1d(h),
            nn.ReLU(inplace=True),
            nn.Conv1d(h, h, 5, 2, 2),
            nn.BatchNorm1d(h),
            nn.ReLU(inplace=True),
        ]
        self.audio = _temporal(cfg.n_mels, cfg, stem)

    @property
    def needs_mouth(self) -> bool:
        return self.cfg.pixels > 0

    def video_frames(self, landmarks: torch.Tensor, mouth: torch.Tensor | None = None) -> torch.Tensor:
        parts = []
        if self.cfg.geometry:
            g = torch.nan_to_num(lip_geometry(landmarks)).clamp(-20.0, 20.0)  # a bad detection must not blow up
            if not self.cfg.lip_points:  # openings + width (the last columns) and their velocities
                op = g[..., LIP_FEATURES - OPENING_FEATURES :]
                g = torch.cat([op, 2.0 * torch.diff(op, dim=1, prepend=op[:, :1])], -1)
            parts.append(g.transpose(1, 2))
        if self.cfg.pixels:
            if mouth is None:
                raise ValueError("this sync head reads the mouth pixels too: pass mouth [B, T, H, W]")
            B, T = mouth.shape[:2]
            p = self.pixels(_mouth_motion(mouth)).mean((2, 3)).view(B, T, -1)
            parts.append(p.transpose(1, 2))
        return F.normalize(self.video(torch.cat(parts, 1)).transpose(1, 2).float(), dim=-1)

    def audio_frames(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() != 2:
            raise ValueError(f"audio must be [B, N] samples, got {tuple(wave.shape)}")
        t = wave.shape[-1] // SAMPLES_PER_FRAME
        m = normalize_utterance(self.mel(wave.float()))
        x = self.audio(m.transpose(1, 2))[..., :t]
        if x.shape[-1] < t:  # a short tail: repeat the last step (never happens for whole frames)
            x = torch.cat([x, x[..., -1:].expand(-1, -1, t - x.shape[-1])], -1)
        return F.normalize(x.transpose(1, 2).float(), dim=-1)


__all__ = ["PIXEL_SIZE", "SyncHead"]

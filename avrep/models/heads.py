"""DAVS heads: projection to the shared word space, shared word classifier, adversaries.

Adversaries (modality discriminator, word-from-identity, identity-from-word) are small MLPs. They
train on detached features; the encoders are pushed against them through `forward_frozen`, which
evaluates the same head with detached parameters (the paper's alternating scheme folded into one
backward pass), or through gradient reversal (`grad_reverse`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from avrep.conventions import CLIP_FRAMES
from avrep.errors import ConfigError


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:  # type: ignore[override]
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        return -ctx.lam * g, None


def grad_reverse(x: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """Identity forward, gradient times -lam backward."""
    return _GradReverse.apply(x, lam)


class Projection(nn.Module):
    """Per-frame features [B, T, H] -> L2-normalised frame features [B, T, D] and clip embedding [B, D].

    pool="meanmax": mean + max over time (position-blind).
    pool="attn": softmax attention over time whose logits are content + a learned positional bias,
    initialised to a centred Gaussian: word clips are cut centred on the word (LRW, GRID, synthetic),
    and short words (a GRID letter is ~0.3 s of a 1.16 s window) drown in their neighbours under mean
    pooling. The bias is interpolated to other lengths, so any clip length still works.
    """

    def __init__(self, cin: int, dim: int, pool: str = "meanmax", frames: int = CLIP_FRAMES) -> None:
        super().__init__()
        if pool not in ("meanmax", "attn"):
            raise ConfigError(f"unknown pool {pool!r} (meanmax | attn)")
        self.pool = pool
        self.frame = nn.Linear(cin, dim)
        self.clip = nn.Sequential(nn.Linear(cin, cin), nn.ReLU(inplace=True), nn.Linear(cin, dim))
        if pool == "attn":
            self.attn = nn.Linear(cin, 1)
            nn.init.zeros_(self.attn.weight)
            nn.init.zeros_(self.attn.bias)
            t = torch.linspace(-1.0, 1.0, frames)
            self.pos = nn.Parameter(-(t**2) / (2 * 0.4**2))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frames = F.normalize(self.frame(h), dim=-1)
        if self.pool == "attn":
            pos = self.pos
            if h.shape[1] != pos.numel():
                pos = F.interpolate(pos[None, None], size=h.shape[1], mode="linear", align_corners=True)[0, 0]
            w = torch.softmax(self.attn(h).squeeze(-1).float() + pos.float(), dim=1).to(h.dtype)
            pooled = torch.einsum("bt,bth->bh", w, h)
        else:
            # mean + max pooling: the word sits mid-clip but its length varies
            pooled = h.mean(1) + h.amax(1)
        return frames, self.clip(pooled)


class CosineClassifier(nn.Module):
    """Shared word classifier on L2-normalised embeddings (same weights for audio and video)."""

    def __init__(self, dim: int, n_classes: int, scale: float = 16.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.01)
        self.bias = nn.Parameter(torch.zeros(n_classes))
        self.scale = scale

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.scale * F.linear(F.normalize(emb, dim=-1), F.normalize(self.weight, dim=-1)) + self.bias


class Adversary(nn.Module):
    """A 2-layer MLP classifier used adversarially."""

    def __init__(self, cin: int, n_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward_frozen(self, x: torch.Tensor) -> torch.Tensor:
        """Same output, but no gradient reaches this head's parameters (only the input's)."""
        params = {k: v.detach() for k, v in self.named_parameters()}
        return functional_call(self, params, (x,))

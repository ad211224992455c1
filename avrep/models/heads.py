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
    """Per-frame features [B, T, H] -> L2-normalised frame features [B, T, D] and clip embedding [B, D]."""

    def __init__(self, cin: int, dim: int) -> None:
        super().__init__()
        self.frame = nn.Linear(cin, dim)
        self.clip = nn.Sequential(nn.Linear(cin, cin), nn.ReLU(inplace=True), nn.Linear(cin, dim))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frames = F.normalize(self.frame(h), dim=-1)
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

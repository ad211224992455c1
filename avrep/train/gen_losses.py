"""Losses of the talking-face generator (weights in the generator config's "loss").

L1 on the whole face + extra L1 on the lower half (jaw) + L1 in a soft box around the mouth centre;
hinge adversarial loss from a spectral-norm PatchGAN on the lower face (after `adv_start_step`);
lip-sync consistency through a frozen DAVS model (after `sync_start_step`): its video word encoder reads
the generated mouth ROIs; cross-entropy on the word, 1 - cos to the audio clip embedding and per-frame
1 - cos to the audio frame features.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from avrep.conventions import MOUTH_SIZE
from avrep.models.config import GeneratorLossConfig, generator_config
from avrep.models.generator import face_to_mouth_roi, mouth_box_mask

DEFAULT_LOSS: dict[str, float] = GeneratorLossConfig().to_dict()  # the defaults live in avrep.models.config


def loss_weights(gcfg: dict[str, Any]) -> dict[str, float]:
    """The loss weights and start steps of a generator config, defaults filled in (unknown keys and bad
    values: ConfigError naming the key)."""
    return generator_config(gcfg).loss.to_dict()


def hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: real logits pushed above +1, fake logits below -1."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def recon_losses(
    fake: torch.Tensor, real: torch.Tensor, centre: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L1 over the face, L1 over the lower half, L1 in a box around the mouth) for [B,T,3,S,S] in [0, 1].

    The mouth is ~4% of the face: without its own term the copy-the-reference solution wins for
    thousands of steps. centre [B, T, 2] in 128-px face-crop coords (None: no mouth term)."""
    l1 = (fake - real).abs()
    box = l1.new_zeros(())
    if centre is not None:
        w = mouth_box_mask(centre, fake.shape[-1]).view(*fake.shape[:2], 1, *fake.shape[-2:])
        box = (l1 * w).sum() / (w.sum() * 3).clamp_min(1.0)
    return l1.mean(), l1[..., l1.shape[-2] // 2 :, :].mean(), box


def lipsync_losses(
    davs: nn.Module, fake: torch.Tensor, centre: torch.Tensor, audio: torch.Tensor, word: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The frozen DAVS video encoder reads the generated mouths: word CE, clip cosine, frame cosine."""
    B, T = fake.shape[:2]
    roi = face_to_mouth_roi(fake.reshape(B * T, *fake.shape[2:]).float(), centre.reshape(B * T, 2))
    roi = roi.view(B, T, MOUTH_SIZE, MOUTH_SIZE)
    vf, ve = davs.encode_video(roi)
    with torch.no_grad():
        af, ae = davs.encode_audio(audio)
    out = {
        "sync": (1 - F.cosine_similarity(vf.float(), af.float(), dim=-1)).mean(),
        "clip_cos": (1 - F.cosine_similarity(ve.float(), ae.float(), dim=-1)).mean(),
    }
    ok = (word >= 0) & (word < davs.word_head.weight.shape[0])
    if ok.any():
        logits = davs.word_head(ve[ok]).float()
        out["word"] = F.cross_entropy(logits, word[ok])
        out["word_acc"] = (logits.argmax(-1) == word[ok]).float().mean().detach()
    return out


__all__ = ["DEFAULT_LOSS", "hinge_d", "lipsync_losses", "loss_weights", "recon_losses"]

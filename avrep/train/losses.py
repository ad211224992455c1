"""DAVS training losses, computed inside one module so DDP sees a single forward.

Terms (weights in config["loss"]):
  cls     shared word classifier on video and audio clip embeddings (lip reading / speech recognition)
  assoc   audio-video association: InfoNCE over the (global) batch, or the paper's contrastive margin loss
  sync    frame-level InfoNCE inside each clip: video frame t must match audio frame t, not t +- k
  id      speaker classification from the identity feature
  mod     modality discriminator (audio vs video embedding), encoders trained to fool it
  dis     dis-ID (speaker from word embeddings) and dis-word (word from identity feature) adversaries
Adversaries learn on detached features; encoders are pushed against frozen copies of them, towards
a uniform prediction ("uniform", the paper's scheme) or by gradient reversal ("grl").
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from avrep.models.config import DAVSLossConfig
from avrep.models.heads import grad_reverse
from avrep.train.ddp import gather_with_grad

DEFAULT_LOSS: dict[str, Any] = DAVSLossConfig().to_dict()  # the defaults live in avrep.models.config


def infonce(a: torch.Tensor, b_all: torch.Tensor, tau: float, offset: int = 0) -> torch.Tensor:
    """InfoNCE: local row i of `a` matches row offset+i of `b_all` (the batch gathered over ranks)."""
    logits = a @ b_all.t() / tau
    tgt = torch.arange(a.shape[0], device=a.device) + offset
    return F.cross_entropy(logits, tgt)


def margin_contrastive(v: torch.Tensor, a: torch.Tensor, words: torch.Tensor, margin: float) -> torch.Tensor:
    """The DAVS paper's contrastive loss: matched pairs close, pairs of different words >= margin apart."""
    d = torch.cdist(v, a)  # [B, B]
    pos = d.diagonal().pow(2).mean()
    neg_mask = (words[:, None] != words[None, :]).float()
    neg = (F.relu(margin - d).pow(2) * neg_mask).sum() / neg_mask.sum().clamp(min=1)
    return pos + neg


def sync_loss(vf: torch.Tensor, af: torch.Tensor, tau: float, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Frame-level InfoNCE within each clip over time offsets: [B,T,D] x [B,T,D].

    shift [B]: the audio was rolled by shift[b] frames, so video frame t matches audio frame (t + shift) mod T
    (and audio frame u matches video frame (u - shift) mod T)."""
    logits = torch.einsum("btd,bsd->bts", vf.float(), af.float()) / tau  # [B, T, T]
    b, t, _ = logits.shape
    pos = torch.arange(t, device=vf.device).expand(b, t)
    s = torch.zeros(b, 1, dtype=torch.long, device=vf.device) if shift is None else shift.view(b, 1).long()
    tgt_v = ((pos + s) % t).reshape(-1)
    tgt_a = ((pos - s) % t).reshape(-1)
    return 0.5 * (
        F.cross_entropy(logits.reshape(b * t, t), tgt_v)
        + F.cross_entropy(logits.transpose(1, 2).reshape(b * t, t), tgt_a)
    )


def offset_infonce(vf: torch.Tensor, af: torch.Tensor, offset: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Within-window offset loss on [B, T, D] unit features: video frame t matches audio frame t - offset[b]
    (the audio window starts offset[b] frames after the video window); frames whose partner falls outside
    the window are left out. Symmetric InfoNCE over the window's frames."""
    logits = torch.einsum("btd,bsd->bts", vf.float(), af.float()) / temperature
    b, t, _ = logits.shape
    pos = torch.arange(t, device=vf.device)[None].expand(b, t)
    off = offset.view(b, 1).to(vf.device).long()
    ignore = torch.full_like(pos, -100)
    tv, ta = pos - off, pos + off
    tv = torch.where((tv >= 0) & (tv < t), tv, ignore).reshape(-1)
    ta = torch.where((ta >= 0) & (ta < t), ta, ignore).reshape(-1)
    return 0.5 * (
        F.cross_entropy(logits.reshape(b * t, t), tv, ignore_index=-100)
        + F.cross_entropy(logits.transpose(1, 2).reshape(b * t, t), ta, ignore_index=-100)
    )


def offset_clip_ce(
    vf: torch.Tensor, af: torch.Tensor, offset: torch.Tensor, max_offset: int, temperature: float = 0.05
) -> torch.Tensor:
    """The window's offset as a classification over [-max_offset, max_offset], scored the way `avrep sync`
    decides (`avrep.eval.sync_metrics`): for each candidate c, the mean similarity of video frame t and audio
    frame t - c over the frames where both exist. Unlike `offset_infonce` no single frame has to be
    recognisable on its own (a closed mouth in a pause cannot be): what counts is the whole window's verdict."""
    sim = torch.einsum("btd,bsd->bts", vf.float(), af.float())
    scores = [torch.diagonal(sim, -c, 1, 2).mean(-1) for c in range(-max_offset, max_offset + 1)]
    logits = torch.stack(scores, 1) / temperature
    return F.cross_entropy(logits, offset.to(vf.device).long() + max_offset)


def window_match_infonce(
    vf: torch.Tensor, af: torch.Tensor, offset: torch.Tensor, max_offset: int, temperature: float = 0.05
) -> torch.Tensor:
    """Which audio window belongs to this video window, among the batch's: the score of a pair is the mean
    similarity of its aligned frames (video frame t against audio frame t - offset), as retrieval by temporal
    matching (`avrep.eval.retrieval.match_scores`) ranks clips. `offset_infonce` only ever contrasts a clip
    with itself shifted, so nothing asks its features to tell one clip's speech from another's. Each window
    keeps the W - max_offset frames both streams cover whatever the offset, so every pair is scored on as
    many frames. Symmetric InfoNCE over the batch."""
    b, t, _ = vf.shape
    n = t - max_offset
    if n < 1:
        raise ValueError(f"window of {t} frames leaves nothing aligned at offsets up to {max_offset}")
    off = offset.view(b, 1).to(vf.device).long()
    ar = torch.arange(n, device=vf.device)[None]
    iv = (off.clamp(min=0) + ar).unsqueeze(-1).expand(b, n, vf.shape[2])
    ia = ((-off).clamp(min=0) + ar).unsqueeze(-1).expand(b, n, af.shape[2])
    v, a = torch.gather(vf.float(), 1, iv), torch.gather(af.float(), 1, ia)
    logits = torch.einsum("itd,jtd->ij", v, a) / (n * temperature)
    tgt = torch.arange(b, device=vf.device)
    return 0.5 * (F.cross_entropy(logits, tgt) + F.cross_entropy(logits.T, tgt))


def roll_audio(audio: torch.Tensor, frames: int, max_shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Roll each clip's waveform [B, T*spf] by a random whole number of frames in [-max, max]."""
    b = audio.shape[0]
    spf = audio.shape[1] // frames
    shift = torch.randint(-max_shift, max_shift + 1, (b,), device=audio.device)
    idx = (torch.arange(audio.shape[1], device=audio.device)[None] - shift[:, None] * spf) % audio.shape[1]
    return torch.gather(audio, 1, idx), shift


def masked_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the rows whose target is known (>= 0); 0 (with a graph) when none is: clips
    without word labels still train every other term."""
    keep = target >= 0
    if bool(keep.all()):
        return F.cross_entropy(logits, target)
    if not bool(keep.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[keep], target[keep])


def _against(head: nn.Module, x: torch.Tensor, y: torch.Tensor, mode: str) -> torch.Tensor:
    """Encoder-side adversarial loss against a frozen adversary head."""
    if mode == "grl":
        return masked_ce(head.forward_frozen(grad_reverse(x)), y)
    logp = F.log_softmax(head.forward_frozen(x).float(), -1)
    return -logp.mean()  # cross-entropy to the uniform distribution


class DAVSLoss(nn.Module):
    """Wraps a DAVS model: forward(batch) -> (total loss, {term: detached value}, stats)."""

    def __init__(self, model: nn.Module, loss_cfg: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.model = model
        self.cfg = {**DEFAULT_LOSS, **(loss_cfg or {})}

    def forward(
        self,
        mouth: torch.Tensor,
        audio: torch.Tensor,
        face: torch.Tensor,
        word: torch.Tensor,
        speaker: torch.Tensor,
        landmarks: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        c, m = self.cfg, self.model
        shift = None
        if self.training and c.get("sync_shift_max", 0) > 0:  # see DAVSLossConfig.sync_shift_max
            audio, shift = roll_audio(audio, mouth.shape[1], int(c["sync_shift_max"]))
        out = m(mouth, audio, face, landmarks)
        ve, ae = out["video_emb"].float(), out["audio_emb"].float()
        vn, an = F.normalize(ve, dim=-1), F.normalize(ae, dim=-1)
        idf = out["identity"].float()
        terms: dict[str, torch.Tensor] = {}

        lv, la = m.word_head(ve), m.word_head(ae)
        terms["cls"] = masked_ce(lv, word) + masked_ce(la, word)  # only where the words are known

        if c["assoc_kind"] == "infonce":
            a_all, offset = gather_with_grad(an)
            v_all, _ = gather_with_grad(vn)
            terms["assoc"] = 0.5 * (
                infonce(vn, a_all, c["temperature"], offset) + infonce(an, v_all, c["temperature"], offset)
            )
        else:
            terms["assoc"] = margin_contrastive(vn, an, word, c["margin"])
        terms["sync"] = sync_loss(out["video_frames"], out["audio_frames"], c["sync_temperature"], shift)
        terms["id"] = F.cross_entropy(m.speaker_head(idf), speaker)

        # adversaries learn on detached features ...
        emb = torch.cat([vn, an])
        modality = torch.cat([torch.ones_like(word), torch.zeros_like(word)])
        spk2 = torch.cat([speaker, speaker])
        adv_train = (
            F.cross_entropy(m.modality_disc(emb.detach()), modality)
            + F.cross_entropy(m.adv_speaker_from_word(emb.detach()), spk2)
            + masked_ce(m.adv_word_from_identity(idf.detach()), word)
        )
        # ... and the encoders are trained to defeat them
        mode = c["adv_mode"]
        terms["mod"] = _against(m.modality_disc, emb, modality, mode)
        terms["dis"] = _against(m.adv_speaker_from_word, emb, spk2, mode) + _against(
            m.adv_word_from_identity, idf, word, mode
        )
        total = adv_train + sum(c[k] * v for k, v in terms.items())
        terms["adv_heads"] = adv_train
        with torch.no_grad():
            known = word >= 0  # accuracy over the clips whose word is known
            stats = {
                "video_correct": ((lv.argmax(-1) == word) & known).sum(),
                "audio_correct": ((la.argmax(-1) == word) & known).sum(),
                "n_labelled": known.sum(),
                "n": torch.tensor(word.shape[0], device=word.device),
            }
        return total, {k: v.detach() for k, v in terms.items()}, stats

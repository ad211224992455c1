"""The DAVS model: word encoders (video + audio) in one space, identity encoder, heads.

Public API (inputs are raw: uint8/0..255 pixels, float waveforms, landmark pixels; normalisation happens inside):
  embed_video(mouth [B,T,88|96,88|96], landmarks [B,T,68,2] | None) -> [B,D]  (landmarks: models whose
  config has a lip-geometry branch, `needs_landmarks`; others ignore them)   embed_audio(wave [B,T*640]) -> [B,D]
  frame_features_video / frame_features_audio -> [B,T,D]   embed_identity(face [B,3,128,128]) -> [B,Di]
  classify(mouth=None, audio=None) -> word logits [B,W] (fused = mean of log-probabilities)
  embed_video_sync / embed_audio_sync -> [B, D + frames*32]: the "sync" retrieval embedding (see below)
  sync_frames_video(mouth, landmarks) / sync_frames_audio(wave) -> [B,T,Ds]: the per-frame features that
  `avrep sync` / `avrep speakers` compare (the dedicated sync head's when the model has one, else the
  frame features above)
All embeddings are float32 and L2-normalised.

Two embedding kinds serve two searches. "word" (the clip embedding): clips saying the same word are
neighbours, whoever says it. "sync": the word embedding concatenated with the clip's time-aligned
per-frame features (random-projected to 32 dims each, renormalised): the inner product of two sync
embeddings is (clip cosine + 4 x mean per-frame cosine) / 5, so among the clips of one word the one
whose lips move with the audio wins. On held-out synthetic and GRID val splits this lifts A->V R@1 at
1:300-480 from 0.34 / 0.61 (word) to 0.95 / 0.82; weight 4 and 32 dims were chosen there (val, not test).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from avrep.models.config import DAVSConfig, davs_config
from avrep.models.encoders import AudioWordEncoder, IdentityEncoder, VideoWordEncoder
from avrep.models.heads import Adversary, CosineClassifier, Projection
from avrep.models.sync_head import SyncHead

SYNC_PROJ_DIM = 32  # per-frame dims kept in a sync embedding
SYNC_WEIGHT = 4.0  # per-frame similarity weight relative to the clip similarity


def sync_projection(dim: int, out: int = SYNC_PROJ_DIM) -> torch.Tensor:
    """Fixed +-1/sqrt(out) projection [dim, out]: bit-identical on every machine (PCG64 + exact values),
    so indexes built on one machine are queried on another with the same map."""
    import numpy as np

    signs = np.random.default_rng(20190127).integers(0, 2, size=(dim, out)) * 2 - 1
    return torch.from_numpy((signs / math.sqrt(out)).astype("float32"))


class DAVS(nn.Module):
    """The DAVS model of a config: a dict (kept as `self.config`, saved in run dirs) or a `DAVSConfig`;
    `self.cfg` is the typed view (defaults of missing keys from `DAVSConfig`)."""

    def __init__(self, config: dict[str, Any] | DAVSConfig) -> None:
        super().__init__()
        cfg = davs_config(config)
        self.cfg = cfg
        self.config = copy.deepcopy(config) if isinstance(config, dict) else cfg.to_dict()
        d = cfg.embed_dim
        self.video = VideoWordEncoder(cfg.video)
        self.audio = AudioWordEncoder(cfg.audio)
        self.identity = IdentityEncoder(cfg.identity)
        pool, frames = cfg.pool, cfg.frames
        self.video_proj = Projection(self.video.out_dim, d, pool, frames)
        self.audio_proj = Projection(self.audio.out_dim, d, pool, frames)
        nw, ns = cfg.num_words, cfg.num_speakers
        di = self.identity.out_dim
        ah = cfg.adversary_hidden
        self.word_head = CosineClassifier(d, nw, cfg.classifier_scale)
        self.speaker_head = nn.Linear(di, ns)  # identity supervision
        self.modality_disc = Adversary(d, 2, ah)  # audio vs video from the word embedding
        self.adv_speaker_from_word = Adversary(d, ns, ah)  # dis-ID: identity must not be in word features
        self.adv_word_from_identity = Adversary(di, nw, ah)  # dis-word: word must not be in identity features
        self.register_buffer("sync_proj", sync_projection(d), persistent=False)  # not a weight: never saved
        # trained on its own after the rest (avrep.train.sync_loop); absent in v1-style configs
        self.sync_head = SyncHead(cfg.sync_head) if cfg.sync_head is not None else None

    @property
    def sync_dim(self) -> int:
        return int(self.cfg.embed_dim + self.cfg.frames * self.sync_proj.shape[1])

    def to_channels_last(self) -> DAVS:
        """channels_last for the 2-D conv trunks (faster convs on GPU); 3-D front-end stays as is."""
        for m in (self.video.trunk, self.identity.stem, self.identity.trunk):
            m.to(memory_format=torch.channels_last)
        return self

    # ---- raw (unnormalised) outputs for training --------------------------------------------
    @property
    def needs_landmarks(self) -> bool:
        """True when the video side reads lip landmarks [B, T, 68, 2] beside the mouth pixels."""
        return self.video.needs_landmarks

    @property
    def sync_needs_landmarks(self) -> bool:
        """True when `sync_frames_video` reads landmarks (a sync head, or a lip-geometry video trunk)."""
        return self.video.needs_landmarks or self.sync_head is not None

    def encode_video(
        self, mouth: torch.Tensor, landmarks: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (frame features [B,T,D] normalised, clip embedding [B,D] unnormalised)."""
        return self.video_proj(self.video(mouth, landmarks))

    def encode_audio(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.audio_proj(self.audio(wave))

    # ---- public inference API ---------------------------------------------------------------
    def embed_video(self, mouth: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        return F.normalize(self.encode_video(mouth, landmarks)[1].float(), dim=-1)

    def embed_audio(self, wave: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encode_audio(wave)[1].float(), dim=-1)

    def sync_embedding(self, frames: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
        """[B,T,D] frame features + [B,D] clip embedding -> unit [B, D + frames*32] (clips of another
        length are resampled in time to the config's `frames`)."""
        T = self.cfg.frames
        f = frames.float()
        if f.shape[1] != T:
            f = F.interpolate(f.transpose(1, 2), size=T, mode="linear", align_corners=True).transpose(1, 2)
        p = F.normalize(f @ self.sync_proj, dim=-1).flatten(1) / math.sqrt(T)
        c = F.normalize(clip.float(), dim=-1)
        return torch.cat([c / math.sqrt(1 + SYNC_WEIGHT), p * math.sqrt(SYNC_WEIGHT / (1 + SYNC_WEIGHT))], 1)

    def embed_video_sync(self, mouth: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        return self.sync_embedding(*self.encode_video(mouth, landmarks))

    def embed_audio_sync(self, wave: torch.Tensor) -> torch.Tensor:
        return self.sync_embedding(*self.encode_audio(wave))

    def frame_features_video(self, mouth: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode_video(mouth, landmarks)[0].float()

    def frame_features_audio(self, wave: torch.Tensor) -> torch.Tensor:
        return self.encode_audio(wave)[0].float()

    def sync_frames_video(self, mouth: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """Per-frame video features [B,T,Ds] for offset finding and speaker agreement."""
        if self.sync_head is None:
            return self.frame_features_video(mouth, landmarks)
        if landmarks is None:
            raise ValueError("this model's sync head reads lip landmarks: pass landmarks [B, T, 68, 2]")
        return self._blend(
            self.sync_head.video_frames(landmarks, mouth), lambda: self.frame_features_video(mouth, landmarks)
        )

    def sync_frames_audio(self, wave: torch.Tensor) -> torch.Tensor:
        """Per-frame audio features [B,T,Ds], comparable with `sync_frames_video`."""
        if self.sync_head is None:
            return self.frame_features_audio(wave)
        return self._blend(self.sync_head.audio_frames(wave), lambda: self.frame_features_audio(wave))

    def _blend(self, head: torch.Tensor, word) -> torch.Tensor:
        """The head's unit features, or with `sync_head.blend` = w the unit [head, w * word] / sqrt(1 + w²)."""
        w = self.cfg.sync_head.blend if self.cfg.sync_head is not None else 0.0
        if w <= 0:
            return head
        return torch.cat([head, w * F.normalize(word().float(), dim=-1)], -1) / math.sqrt(1 + w * w)

    def embed_identity(self, face: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.identity(face).float(), dim=-1)

    def classify(
        self,
        mouth: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        landmarks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Word logits from video, audio, or both (fused: mean of log-probabilities)."""
        outs = []
        if mouth is not None:
            outs.append(F.log_softmax(self.word_head(self.encode_video(mouth, landmarks)[1]).float(), -1))
        if audio is not None:
            outs.append(F.log_softmax(self.word_head(self.encode_audio(audio)[1]).float(), -1))
        if not outs:
            raise ValueError("classify needs mouth and/or audio")
        return torch.stack(outs).mean(0)

    def forward(
        self, mouth: torch.Tensor, audio: torch.Tensor, face: torch.Tensor, landmarks: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Training forward: everything the losses need (see avrep.train.losses)."""
        vf, ve = self.encode_video(mouth, landmarks)
        af, ae = self.encode_audio(audio)
        idf = self.identity(face)
        return {"video_frames": vf, "audio_frames": af, "video_emb": ve, "audio_emb": ae, "identity": idf}

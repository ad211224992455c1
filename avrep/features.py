"""Audio features as nn.Modules (CPU or GPU): 4 feature frames per 25 fps video frame (hop 160 @ 16 kHz).

Input waveforms [B, T*640] (or [T*640]) -> features [B, 4T, n] (or [4T, n]).
"""
from __future__ import annotations

import torch
from torch import nn

SAMPLE_RATE = 16000
HOP = 160
WIN = 400
N_FFT = 512
FRAMES_PER_VIDEO_FRAME = 4


def _normalize(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-utterance mean/variance normalisation over time, per channel. x [B, F, n]."""
    return (x - x.mean(dim=1, keepdim=True)) / (x.std(dim=1, keepdim=True) + eps)


def _frames(wav: torch.Tensor) -> tuple[torch.Tensor, bool, int]:
    squeeze = wav.dim() == 1
    if squeeze:
        wav = wav.unsqueeze(0)
    if wav.dim() != 2:
        raise ValueError(f"expected waveform [B, N] or [N], got {tuple(wav.shape)}")
    return wav, squeeze, wav.shape[-1] // HOP


class LogMel(nn.Module):
    """Log mel spectrogram: [B, T*640] -> [B, 4T, n_mels] (window 25 ms, hop 10 ms)."""

    def __init__(self, n_mels: int = 80, sample_rate: int = SAMPLE_RATE, normalize: bool = False,
                 f_min: float = 0.0, f_max: float | None = None):
        super().__init__()
        import torchaudio

        self.normalize = normalize
        self.n_mels = n_mels
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=N_FFT, win_length=WIN, hop_length=HOP, f_min=f_min, f_max=f_max,
            n_mels=n_mels, power=2.0, center=True, pad_mode="reflect", norm="slaney", mel_scale="slaney")

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        wav, squeeze, n = _frames(wav)
        x = self.mel(wav.float())[..., :n].transpose(1, 2)  # drop the extra centred frame -> exactly 4T
        x = torch.log(x + 1e-6)
        if self.normalize:
            x = _normalize(x)
        return x.squeeze(0) if squeeze else x


class MFCC(nn.Module):
    """MFCCs (+ optional deltas and delta-deltas): [B, T*640] -> [B, 4T, n_mfcc * (3 if deltas else 1)]."""

    def __init__(self, n_mfcc: int = 13, n_mels: int = 40, deltas: bool = False, normalize: bool = False,
                 sample_rate: int = SAMPLE_RATE):
        super().__init__()
        import torchaudio

        self.deltas = deltas
        self.normalize = normalize
        self.n_features = n_mfcc * (3 if deltas else 1)
        self.mfcc = torchaudio.transforms.MFCC(
            sample_rate=sample_rate, n_mfcc=n_mfcc, log_mels=True,
            melkwargs=dict(n_fft=N_FFT, win_length=WIN, hop_length=HOP, n_mels=n_mels, center=True,
                           pad_mode="reflect", norm="slaney", mel_scale="slaney"))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        import torchaudio

        wav, squeeze, n = _frames(wav)
        c = self.mfcc(wav.float())[..., :n]  # [B, n_mfcc, 4T]
        if self.deltas:
            d1 = torchaudio.functional.compute_deltas(c)
            d2 = torchaudio.functional.compute_deltas(d1)
            c = torch.cat([c, d1, d2], dim=1)
        x = c.transpose(1, 2)
        if self.normalize:
            x = _normalize(x)
        return x.squeeze(0) if squeeze else x


def create_audio_features(name: str = "logmel", **kw) -> nn.Module:
    """'logmel' or 'mfcc' by name (for configs)."""
    if name == "logmel":
        return LogMel(**kw)
    if name == "mfcc":
        return MFCC(**kw)
    raise ValueError(f"unknown audio feature {name!r} (logmel, mfcc)")

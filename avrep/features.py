"""Audio features as nn.Modules (CPU or GPU): 4 feature frames per 25 fps video frame (hop 160 @ 16 kHz).

Input waveforms [B, T*640] (or [T*640]) -> features [B, 4T, n] (or [4T, n]). torchaudio style: `log_mel`
is the functional core, `LogMel` the module that holds its window and filterbank as buffers. `LogMel` is
the one audio front-end of avrep (the DAVS audio encoder reads it).
"""

from __future__ import annotations

import torch
from torch import nn

from avrep.conventions import AUDIO_HOP as HOP
from avrep.conventions import AUDIO_N_FFT as N_FFT
from avrep.conventions import AUDIO_WIN as WIN
from avrep.conventions import FEATS_PER_FRAME as FRAMES_PER_VIDEO_FRAME  # noqa: F401  (re-exported)
from avrep.conventions import SAMPLE_RATE


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


def log_mel(wav: torch.Tensor, fb: torch.Tensor, window: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Functional core of `LogMel`: waveform [B, T*640] (or [T*640]) -> log mel power [B, 4T, n_mels].

    fb: mel filterbank [N_FFT // 2 + 1, n_mels] (`torchaudio.functional.melscale_fbanks`); window: the
    analysis window [WIN] (Hann). Power spectrogram of centred, reflect-padded frames (hop HOP), the extra
    centred frame dropped so there are exactly 4 frames per video frame, then log(x + 1e-6); `normalize`:
    per-utterance mean/variance normalisation per channel.
    """
    import torchaudio.functional as AF

    wav, squeeze, n = _frames(wav)
    spec = AF.spectrogram(
        wav.float(), 0, window, N_FFT, HOP, WIN, 2.0, False, center=True, pad_mode="reflect", onesided=True
    )  # [B, freq, frames]
    x = torch.matmul(spec.transpose(-1, -2), fb)[:, :n]  # [B, 4T, n_mels]
    x = torch.log(x + 1e-6)
    if normalize:
        x = _normalize(x)
    return x.squeeze(0) if squeeze else x


class LogMel(nn.Module):
    """Log mel spectrogram: [B, T*640] -> [B, 4T, n_mels] (window 25 ms, hop 10 ms), over `log_mel`.

    Slaney mel scale and filter norm, f_min..f_max (default 0 Hz..Nyquist). The window and filterbank are
    buffers of a torchaudio `MelSpectrogram` (`self.mel`), so they follow `.to(device)` and trained
    checkpoints keep their keys.
    """

    def __init__(
        self,
        n_mels: int = 80,
        sample_rate: int = SAMPLE_RATE,
        normalize: bool = False,
        f_min: float = 0.0,
        f_max: float | None = None,
    ):
        super().__init__()
        import torchaudio

        self.normalize = normalize
        self.n_mels = n_mels
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=N_FFT,
            win_length=WIN,
            hop_length=HOP,
            f_min=f_min,
            f_max=f_max,
            n_mels=n_mels,
            power=2.0,
            center=True,
            pad_mode="reflect",
            norm="slaney",
            mel_scale="slaney",
        )

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return log_mel(wav, self.mel.mel_scale.fb, self.mel.spectrogram.window, self.normalize)


class MFCC(nn.Module):
    """MFCCs (+ optional deltas and delta-deltas): [B, T*640] -> [B, 4T, n_mfcc * (3 if deltas else 1)]."""

    def __init__(
        self,
        n_mfcc: int = 13,
        n_mels: int = 40,
        deltas: bool = False,
        normalize: bool = False,
        sample_rate: int = SAMPLE_RATE,
    ):
        super().__init__()
        import torchaudio

        self.deltas = deltas
        self.normalize = normalize
        self.n_features = n_mfcc * (3 if deltas else 1)
        self.mfcc = torchaudio.transforms.MFCC(
            sample_rate=sample_rate,
            n_mfcc=n_mfcc,
            log_mels=True,
            melkwargs=dict(
                n_fft=N_FFT,
                win_length=WIN,
                hop_length=HOP,
                n_mels=n_mels,
                center=True,
                pad_mode="reflect",
                norm="slaney",
                mel_scale="slaney",
            ),
        )

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

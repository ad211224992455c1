"""Audio features: exact 4 frames per video frame, normalisation, deltas, and they carry real content."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avrep.features import MFCC, LogMel, create_audio_features


@pytest.mark.parametrize("T", [1, 29, 75])
def test_four_feature_frames_per_video_frame(T):
    wav = torch.randn(3, T * 640) * 0.1
    assert LogMel()(wav).shape == (3, 4 * T, 80)
    assert MFCC()(wav).shape == (3, 4 * T, 13)
    assert MFCC(deltas=True)(wav).shape == (3, 4 * T, 39)
    assert LogMel(n_mels=40)(wav[0]).shape == (4 * T, 40)


def test_logmel_localises_a_tone_in_time_and_frequency():
    sr, T = 16000, 29
    wav = np.zeros(T * 640, np.float32)
    s, e = 10 * 640, 15 * 640  # tone during video frames 10..14
    t = np.arange(e - s) / sr
    wav[s:e] = 0.5 * np.sin(2 * np.pi * 1000 * t)
    x = LogMel()(torch.from_numpy(wav))
    energy = x.mean(1)
    loud = torch.nonzero(energy > energy.min() + 5).flatten()
    assert 39 <= loud.min() <= 41 and 59 <= loud.max() <= 61  # 4 feature frames per video frame
    band = x[50].argmax().item()
    from torchaudio.functional import melscale_fbanks

    fb = melscale_fbanks(257, 0, 8000, 80, 16000, norm="slaney", mel_scale="slaney")
    centre_hz = (fb[:, band] * torch.linspace(0, 8000, 257)).sum() / fb[:, band].sum()
    assert abs(centre_hz.item() - 1000) < 120


def test_per_utterance_normalisation():
    wav = torch.randn(2, 29 * 640)
    x = LogMel(normalize=True)(wav * 5)
    assert torch.allclose(x.mean(1), torch.zeros(2, 80), atol=1e-4)
    assert torch.allclose(x.std(1), torch.ones(2, 80), atol=1e-2)
    y = create_audio_features("mfcc", normalize=True)(wav)
    assert y.shape == (2, 116, 13) and torch.allclose(y.mean(1), torch.zeros(2, 13), atol=1e-4)
    with pytest.raises(ValueError):
        create_audio_features("wav2vec")

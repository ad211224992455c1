"""Training augmentation that makes a few identities look and sound like many (issue 23).

`AUGMENT_LEVELS`: "basic" is the dataset's old behaviour (random 88x88 crop, flip, time mask); "strong"
adds, per clip (the same draw for every frame, so motion is untouched):
  * appearance (mouth ROI, uint8 [T, H, W]): scale/rotation/shift, brightness/contrast/gamma, blur,
    JPEG re-compression, an occluding block, sensor noise;
  * landmarks [T, 68, 2]: per-point jitter of up to 1% of the inter-ocular distance (detector noise), and
    `articulation`: another speaker's mouth (a wider/narrower mean mouth, motion of another amplitude and
    aspect) under a slowly moving head;
  * voice (float32 waveform): gain, pitch shift without a change of tempo (phase vocoder), spectral tilt,
    room reverb, background noise at 5-30 dB SNR.
No augmentation here moves anything in time: a tempo change would need the video resampled with the audio,
so it is not done (sync targets stay exact).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from avrep.conventions import SAMPLE_RATE
from avrep.data.ibug import LEFT_EYE, MOUTH, RIGHT_EYE

AUGMENT_LEVELS = ("basic", "strong")


def appearance(mouth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [T, H, W] mouth ROIs -> the same clip as another camera / skin / light might show it."""
    T, H, W = mouth.shape
    x = mouth.astype(np.float32)
    if rng.random() < 0.7:  # geometry: one similarity transform for the whole clip
        s = float(rng.uniform(0.88, 1.12))
        a = float(rng.uniform(-12, 12))
        M = cv2.getRotationMatrix2D((W / 2, H / 2), a, s)
        M[:, 2] += rng.uniform(-4, 4, size=2)
        x = np.stack([cv2.warpAffine(f, M, (W, H), borderMode=cv2.BORDER_REFLECT) for f in x])
    if rng.random() < 0.8:  # light and skin: contrast, brightness, gamma
        g = float(rng.uniform(0.7, 1.4))
        x = 255.0 * np.power(np.clip(x / 255.0, 0, 1), g)
        x = (x - x.mean()) * float(rng.uniform(0.6, 1.4)) + x.mean() + float(rng.uniform(-30, 30))
    if rng.random() < 0.3:  # focus / low resolution
        sig = float(rng.uniform(0.5, 1.8))
        x = np.stack([cv2.GaussianBlur(f, (0, 0), sig) for f in x])
    if rng.random() < 0.2:  # an occluder (hand, microphone) on part of the mouth box
        h, w = int(rng.integers(H // 6, H // 3)), int(rng.integers(W // 6, W // 2))
        y0, x0 = int(rng.integers(0, H - h)), int(rng.integers(0, W - w))
        x[:, y0 : y0 + h, x0 : x0 + w] = float(rng.uniform(0, 255))
    if rng.random() < 0.3:
        x = x + rng.normal(0, float(rng.uniform(2, 7)), size=x.shape).astype(np.float32)
    out = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:  # compression artefacts of a low-bitrate upload
        q = int(rng.integers(15, 60))
        out = np.stack(
            [cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_GRAYSCALE) for f in out]
        )
    return out


def jitter_landmarks(lm: np.ndarray, rng: np.random.Generator, frac: float = 0.01) -> np.ndarray:
    """[T, 68, 2] pixels + Gaussian noise of `frac` x the inter-ocular distance per point and frame."""
    iod = float(np.median(np.linalg.norm(lm[:, 42:48].mean(1) - lm[:, 36:42].mean(1), axis=-1)))
    return (lm + rng.normal(0, max(iod, 1.0) * frac * float(rng.uniform(0.3, 1.0)), size=lm.shape)).astype(np.float32)


def _slow(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n] smooth random curve in [-1, 1]: a cosine of random period (>= 1.5 s at 25 fps) and phase."""
    period = float(rng.uniform(40, 150))
    return np.cos(2 * math.pi * np.arange(n) / period + float(rng.uniform(0, 2 * math.pi)))


def articulation(lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[T, 68, 2] pixels -> the same timing as another speaker's mouth might show it: in the face's frame, the
    clip's mean mouth scaled (width, height: 0.85-1.15 each), the motion around it scaled (amplitude 0.7-1.4,
    aspect 0.8-1.25: some open wide, some spread), then a slow head roll (+-3 deg) and scale wobble (+-3%).
    Every change is smooth or constant over the clip, so no frame moves in time."""
    lm = np.asarray(lm, np.float64)
    T = len(lm)
    eye = lm[:, RIGHT_EYE].mean(1) - lm[:, LEFT_EYE].mean(1)
    ang = float(np.median(np.arctan2(eye[:, 1], eye[:, 0])))
    c, s = math.cos(ang), math.sin(ang)
    R = np.array([[c, -s], [s, c]])  # face frame -> image: p_img = R @ p_face
    mouth = lm[:, MOUTH] @ R  # row vectors: p @ R == (R^T p)^T, into the face frame
    mean = mouth.mean(0)
    centre = mean.mean(0)
    amp, asp = float(rng.uniform(0.7, 1.4)), float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    shape = np.array([rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15)])
    motion = (mouth - mean) * np.array([amp * asp, amp / asp])
    out = lm.copy()
    out[:, MOUTH] = (centre + (mean - centre) * shape + motion) @ R.T
    if rng.random() < 0.5:  # a slowly moving head: roll and distance change, about the face's centre
        roll = np.deg2rad(3.0 * float(rng.uniform(0, 1))) * _slow(rng, T)
        sc = 1.0 + 0.03 * float(rng.uniform(0, 1)) * _slow(rng, T)
        piv = out.mean(1, keepdims=True)
        cr, sr = np.cos(roll)[:, None], np.sin(roll)[:, None]
        d = out - piv
        x, y = d[..., 0], d[..., 1]
        out = piv + sc[:, None, None] * np.stack([cr * x - sr * y, sr * x + cr * y], -1)
    return out.astype(np.float32)


def pitch_shift(wave: np.ndarray, semitones: float, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Pitch moved by `semitones`, same length and timing: phase-vocoder stretch to r x the length, then read
    it r times faster (pitch x r, duration back to the original)."""
    import torchaudio.functional as AF

    r = 2.0 ** (semitones / 12.0)
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    win = torch.hann_window(n_fft)
    spec = torch.stft(x, n_fft, hop, window=win, return_complex=True)
    adv = torch.linspace(0, math.pi * hop, spec.shape[0])[..., None]
    st = AF.phase_vocoder(spec, 1.0 / r, adv)  # r > 1: stretched longer by r, same pitch
    y = torch.istft(st, n_fft, hop, window=win).numpy()
    n = len(wave)
    pos = np.arange(n, dtype=np.float64) * (len(y) / n)
    return np.interp(pos, np.arange(len(y)), y).astype(np.float32)


def _reverb(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rt60 = float(rng.uniform(0.1, 0.5))
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    rir = rng.normal(0, 1, n) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0 / float(rng.uniform(0.3, 1.0))  # the direct path first: nothing moves in time
    rir /= np.sqrt(np.sum(rir**2))
    y = np.fft.irfft(np.fft.rfft(wave, len(wave) + n) * np.fft.rfft(rir, len(wave) + n))[: len(wave)]
    return y.astype(np.float32)


def _coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink or brown noise of unit RMS."""
    w = rng.normal(0, 1, n)
    beta = float(rng.choice([0.0, 1.0, 2.0]))
    if beta:
        f = np.fft.rfftfreq(n)
        f[0] = f[1]
        w = np.fft.irfft(np.fft.rfft(w) / f ** (beta / 2), n)
    return (w / (np.sqrt(np.mean(w**2)) + 1e-9)).astype(np.float32)


def voice(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 waveform -> the same words, timing kept, in another voice / room / channel."""
    y = np.asarray(wave, np.float32)
    rms = float(np.sqrt(np.mean(y**2)))
    if rms < 1e-5:
        return y  # silence (padding) stays silence
    if rng.random() < 0.5:
        y = pitch_shift(y, float(rng.uniform(-4, 4)))
    if rng.random() < 0.3:  # spectral tilt: first-order pre-emphasis or de-emphasis
        a = float(rng.uniform(-0.9, 0.9))
        y = (y - a * np.concatenate([[0.0], y[:-1]])).astype(np.float32)
    if rng.random() < 0.3:
        y = _reverb(y, rng)
    r2 = float(np.sqrt(np.mean(y**2))) + 1e-9
    y = y * (rms / r2)  # keep the level before noise so SNR means what it says
    if rng.random() < 0.5:
        snr = float(rng.uniform(5, 30))
        y = y + _coloured_noise(len(y), rng) * rms / (10 ** (snr / 20))
    y = y * float(10 ** (rng.uniform(-6, 6) / 20))
    peak = float(np.max(np.abs(y)))
    return (y / peak if peak > 1.0 else y).astype(np.float32)


__all__ = ["AUGMENT_LEVELS", "appearance", "articulation", "jitter_landmarks", "pitch_shift", "voice"]

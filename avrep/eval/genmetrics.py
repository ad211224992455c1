"""Generation metrics: PSNR, SSIM, mouth landmark distance (LMD) and an audio-visual sync offset.

Images are uint8 [..., H, W, 3] RGB (or [H, W] gray). LMD follows Chen et al. (2018): the same landmark
detector (dlib 68 points) runs on real and generated aligned face crops; LMD is the mean distance of the
20 mouth points, in pixels of the 128x128 face crop. Both crops are aligned to the mean face, so dlib
gets one fixed face box instead of a detector pass (which can miss on tight crops).

PSNR and SSIM are the talking-face literature's settings, and equal scikit-image's (tests/test_metrics_reference.py,
to 1e-12): PSNR = `skimage.metrics.peak_signal_noise_ratio(a, b, data_range=255)` per frame, averaged;
SSIM = `skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255, channel_axis=-1)` (Wang et al. 2004: 11x11 Gaussian window,
sigma 1.5, K1 0.01, K2 0.03, mean over the valid region and the channels), per frame, averaged. scikit-image's
own defaults (7x7 uniform window, sample covariance) give other numbers: on a noisy 128x128 crop 0.411
against 0.363 here, so a paper's SSIM is comparable only where it says it used these settings.
"""

from __future__ import annotations

import numpy as np

from avrep.conventions import FACE_SIZE, MOUTH_LANDMARKS


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Mean PSNR (dB, data range 255) over leading frames of uint8 images a, b [..., H, W, C]; identical frames
    count 148 dB (MSE floored at 1e-10) where scikit-image says inf."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ {a.shape} vs {b.shape}")
    a2, b2 = a.reshape(-1, *a.shape[-3:]), b.reshape(-1, *b.shape[-3:])
    mse = ((a2 - b2) ** 2).reshape(len(a2), -1).mean(1)
    return float(np.mean(10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))))


def _gauss(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - size // 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).astype(np.float64)


def ssim_image(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004; 11x11 Gaussian, sigma 1.5, data range 255, population covariance, valid region)
    of two uint8 images, averaged over channels: scikit-image's `structural_similarity` with those settings."""
    import cv2

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = _gauss()
    k = np.outer(g, g)

    def f(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, k, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]  # valid region

    vals = []
    for ch in range(a.shape[-1]):
        x, y = a[..., ch], b[..., ch]
        mx, my = f(x), f(y)
        sxx, syy, sxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
        vals.append(m.mean())
    return float(np.mean(vals))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over frames of uint8 [..., H, W, 3]."""
    a2, b2 = np.asarray(a).reshape(-1, *np.shape(a)[-3:]), np.asarray(b).reshape(-1, *np.shape(b)[-3:])
    if a2.shape != b2.shape:
        raise ValueError(f"ssim: shapes differ {a2.shape} vs {b2.shape}")
    return float(np.mean([ssim_image(x, y) for x, y in zip(a2, b2)]))


def crop_face_box(size: int = FACE_SIZE) -> np.ndarray:
    """Fixed dlib box (x0, y0, x1, y1) for aligned face crops: the mean face's landmark extent."""
    from avrep.data.align import FACE_BOX, MEAN_FACE

    s = size / (FACE_BOX[2] - FACE_BOX[0])
    p = (MEAN_FACE - np.array(FACE_BOX[:2])) * s
    return np.array([p[:, 0].min(), p[17:, 1].min() - 0.05 * size, p[:, 0].max(), p[:, 1].max()], np.float32)


def crop_landmarks(faces: np.ndarray) -> np.ndarray:
    """dlib 68 landmarks [N, 68, 2] on aligned face crops uint8 [N, S, S, 3]."""
    import cv2

    from avrep.data.landmarks import predict_landmarks

    faces = np.asarray(faces)
    box = crop_face_box(faces.shape[1])
    return np.stack([predict_landmarks(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY), box) for f in faces])


def lmd(generated: np.ndarray, real: np.ndarray) -> float:
    """Mouth landmark distance (px in the crop) between generated and real aligned faces [N, S, S, 3]."""
    g = crop_landmarks(np.asarray(generated).reshape(-1, *np.shape(generated)[-3:]))
    r = crop_landmarks(np.asarray(real).reshape(-1, *np.shape(real)[-3:]))
    return float(np.linalg.norm(g[:, MOUTH_LANDMARKS] - r[:, MOUTH_LANDMARKS], axis=-1).mean())


def sync_offset(video_frames: np.ndarray, audio_frames: np.ndarray, max_shift: int = 5) -> dict[str, float]:
    """Audio-visual offset by shifting per-frame features [T, D] (cosine, L2-normalised inside).

    Returns offset in frames (positive = audio leads video), ms, and a SyncNet-style confidence
    (median minus minimum of the mean distance over shifts).
    """
    v = np.asarray(video_frames, np.float64)
    a = np.asarray(audio_frames, np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-9)
    T = min(len(v), len(a))
    dists = []
    shifts = list(range(-max_shift, max_shift + 1))
    for s in shifts:  # audio leads by s frames: video frame t matches audio frame t - s
        if s >= 0:
            vv, aa = v[s:T], a[: T - s]
        else:
            vv, aa = v[: T + s], a[-s:T]
        dists.append(float(1 - (vv * aa).sum(-1).mean()) if len(vv) else np.inf)
    d = np.array(dists)
    i = int(np.argmin(d))
    return {"offset_frames": shifts[i], "offset_ms": shifts[i] * 40.0, "confidence": float(np.median(d) - d[i])}

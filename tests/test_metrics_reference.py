"""avrep's metrics against the libraries the field reports with: AP (scikit-learn, ties one threshold) and
PSNR / SSIM (scikit-image, the talking-face settings: 11x11 Gaussian, sigma 1.5, data range 255)."""

from __future__ import annotations

import numpy as np
import pytest

from avrep.eval.detection import average_precision
from avrep.eval.genmetrics import psnr, ssim, ssim_image


def _ap_per_item(y: np.ndarray, s: np.ndarray) -> float:
    """The former benchmarks/speakers.py AP: items ranked one by one (ties in input order)."""
    o = np.argsort(-s, kind="stable")
    y = np.asarray(y, bool)[o]
    tp = np.cumsum(y)
    return float(((tp / np.arange(1, len(y) + 1)) * y).sum() / y.sum())


def _ap_thresholds(y: np.ndarray, s: np.ndarray) -> float:
    """AP written out from its definition: sum over distinct thresholds (high to low) of dRecall * Precision."""
    y = np.asarray(y, bool)
    ap, prev_r = 0.0, 0.0
    for th in np.unique(s)[::-1]:
        sel = s >= th
        tp = (y & sel).sum()
        r = tp / y.sum()
        ap += (r - prev_r) * tp / sel.sum()
        prev_r = r
    return float(ap)


def test_ap_counts_ties_as_one_threshold():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.5, 0.5, 0.5, 0.1])
    # at 0.5: 2 of 3 right, all positives found -> AP 2/3, whatever the order of the tied items
    assert average_precision(y, s) == pytest.approx(2 / 3)
    assert average_precision(y[[1, 0, 2, 3]], s[[1, 0, 2, 3]]) == pytest.approx(2 / 3)
    # ranked one by one, the same scores give 0.833 or 0.583 depending on the input order
    assert _ap_per_item(y, s) == pytest.approx(5 / 6)
    assert _ap_per_item(y[[1, 0, 2, 3]], s[[1, 0, 2, 3]]) == pytest.approx(7 / 12)


def test_ap_equals_sklearn_and_the_definition_with_many_ties():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    differs = 0
    for _ in range(50):
        n = int(rng.integers(5, 300))
        y = rng.random(n) < rng.uniform(0.1, 0.6)
        y[0] = True
        s = np.round(rng.random(n) * 0.6 + 0.4 * y, 1)  # a tenth's resolution: many tied scores
        ap = average_precision(y, s)
        assert ap == pytest.approx(average_precision_score(y, s), abs=1e-12)
        assert ap == pytest.approx(_ap_thresholds(y, s), abs=1e-12)
        perm = rng.permutation(n)
        assert average_precision(y[perm], s[perm]) == pytest.approx(ap, abs=1e-12)
        differs += abs(_ap_per_item(y, s) - ap) > 1e-6
    assert differs > 25  # the per-item AP would have disagreed on most of these


def test_ap_edge_cases():
    assert np.isnan(average_precision(np.zeros(4), np.arange(4.0)))
    assert average_precision(np.ones(3), np.array([0.1, 0.1, 0.1])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        average_precision(np.ones(3), np.ones(2))


def _pairs(rng: np.random.Generator):
    """(a, b) uint8 image pairs: smooth textures with noise, colour and grey, even and odd sizes."""
    import cv2

    for shape in ((128, 128, 3), (29, 37, 3), (64, 96), (11, 11, 3)):
        a = (rng.random(shape) * 255).astype(np.uint8)
        a = cv2.GaussianBlur(a, (7, 7), 2)
        b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
        yield a, b


def _sk_ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    kw = {"channel_axis": -1} if a.ndim == 3 else {}
    return float(
        structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, **kw)
    )


def test_ssim_psnr_equal_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(1)
    for a, b in _pairs(rng):
        assert ssim_image(a, b) == pytest.approx(_sk_ssim(a, b), abs=1e-12)
        assert psnr(a[None], b[None]) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9)
    # the settings matter: scikit-image's defaults (7x7 uniform window, sample covariance) give other numbers
    a, b = next(_pairs(np.random.default_rng(1)))
    assert abs(structural_similarity(a, b, data_range=255, channel_axis=-1) - ssim_image(a, b)) > 0.01


def test_ssim_psnr_on_real_faces_equal_scikit_image(shared_data):
    """GRID frames (a real face): frame 0 vs a JPEG-compressed copy and vs frame 10, per-frame means."""
    import cv2
    from mediautil import grid_frames
    from skimage.metrics import peak_signal_noise_ratio

    fr = grid_frames(11)
    jpeg = np.stack(
        [cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 30])[1], cv2.IMREAD_UNCHANGED) for f in fr]
    )
    for a, b in ((fr, jpeg), (fr[:1], fr[10:11])):
        want_ssim = np.mean([_sk_ssim(x, y) for x, y in zip(a, b)])
        want_psnr = np.mean([peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(a, b)])
        assert ssim(a, b) == pytest.approx(want_ssim, abs=1e-12)
        assert psnr(a, b) == pytest.approx(want_psnr, abs=1e-9)
        assert 0.3 < ssim(a, b) < 0.999
    # identical frames: scikit-image says inf, avrep floors the MSE (148 dB) so a mean stays finite
    with np.errstate(divide="ignore"):
        assert np.isinf(peak_signal_noise_ratio(fr[0], fr[0], data_range=255))
    assert psnr(fr[:1], fr[:1]) == pytest.approx(10 * np.log10(255.0**2 / 1e-10))

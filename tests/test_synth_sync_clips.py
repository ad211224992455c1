"""Synthetic sentences for sync training: landmarks and audio in step, deterministic, new faces."""

from __future__ import annotations

import numpy as np

from avrep.conventions import SAMPLES_PER_FRAME
from avrep.synth.sync_clips import sentence


def _lag_corr(opening: np.ndarray, energy: np.ndarray, k: int) -> float:
    x, y = (opening[k:], energy[: len(energy) - k]) if k >= 0 else (opening[:k], energy[-k:])
    return float(np.corrcoef(x, y)[0, 1])


def test_sentence_is_in_step_and_deterministic():
    lm, au = sentence(3)
    assert lm.shape[1:] == (68, 2) and len(au) == len(lm) * SAMPLES_PER_FRAME and np.isfinite(lm).all()
    lm2, au2 = sentence(3)
    assert np.array_equal(lm, lm2) and np.array_equal(au, au2)
    # the inner-lip opening follows the audio's loudness best with no lag (a shifted track would peak elsewhere)
    opening = np.linalg.norm(lm[:, 62] - lm[:, 66], axis=1)
    energy = np.log(np.sqrt((au.reshape(len(lm), -1) ** 2).mean(1)) + 1e-4)
    corr = {k: _lag_corr(opening, energy, k) for k in range(-6, 7, 2)}
    assert max(corr, key=corr.get) == 0 and corr[0] > 0.4, corr
    other, _ = sentence(4)  # another seed: another face (eye distance) and sentence
    assert not np.allclose(np.linalg.norm(lm[0, 36] - lm[0, 45]), np.linalg.norm(other[0, 36] - other[0, 45]))

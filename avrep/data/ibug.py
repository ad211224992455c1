"""The dlib/iBUG 68-point landmark layout: which points are which, and its left-right mirror."""

from __future__ import annotations

import numpy as np

from avrep.conventions import N_LANDMARKS

MOUTH = slice(48, 68)  # the 20 mouth points (outer 48-59, inner 60-67)
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)
NOSE_BRIDGE = slice(27, 31)

# index i of a mirrored face is point MIRROR[i] of the original
MIRROR = (
    list(range(16, -1, -1))  # jaw
    + list(range(26, 21, -1))  # brows
    + list(range(21, 16, -1))
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # nose base
    + [45, 44, 43, 42, 47, 46]  # eyes
    + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48]  # outer lips, top
    + [59, 58, 57, 56, 55]  # outer lips, bottom
    + [64, 63, 62, 61, 60]  # inner lips, top
    + [67, 66, 65]  # inner lips, bottom
)
assert len(MIRROR) == N_LANDMARKS and sorted(MIRROR) == list(range(N_LANDMARKS))


def mirror_landmarks(lm: np.ndarray, width: float) -> np.ndarray:
    """Landmarks [..., 68, 2] of the frame flipped left-right (x -> width - 1 - x, points renumbered)."""
    out = np.array(lm[..., MIRROR, :], dtype=np.float32)
    out[..., 0] = (width - 1) - out[..., 0]
    return out


__all__ = ["LEFT_EYE", "MIRROR", "MOUTH", "NOSE_BRIDGE", "RIGHT_EYE", "mirror_landmarks"]

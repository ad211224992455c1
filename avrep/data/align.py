"""Mean-face similarity alignment and crops, after mpc001/Lipreading_using_TCN's preprocessing.

Per frame, a similarity transform maps temporally smoothed stable points (eye corners + nose tip) onto
a mean face in a 256x256 reference frame; the 96x96 grayscale mouth ROI is cut around the mouth centre
in that frame, and the 128x128 RGB face crop is a fixed box of it. The mean face below is the
Procrustes mean of dlib 68-point shapes of real frontal faces (GRID, VoxCeleb, HDTF frames),
mirrored for symmetry and scaled so the outer eye corners are 80 px apart; warps are done in one
step with cv2.warpAffine (the crop offset is folded into the matrix), so nothing is warped twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avrep.conventions import FACE_SIZE, MOUTH_SIZE
from avrep.conventions import MOUTH_LANDMARKS as MOUTH
from avrep.data.landmarks import smooth, to_gray

REF_SIZE = 256
STABLE_POINTS = (33, 36, 39, 42, 45)  # nose tip, eye corners
FACE_BOX = (36.0, 40.0, 220.0, 224.0)  # x0, y0, x1, y1 of the face crop in the reference frame

MEAN_FACE = np.array(
    [
        [60.2, 95.6],
        [61.0, 114.0],
        [62.9, 132.5],
        [66.0, 150.9],
        [71.9, 168.2],
        [81.7, 183.6],
        [94.9, 196.3],
        [110.2, 205.9],
        [128.0, 209.1],
        [145.8, 205.9],
        [161.2, 196.3],
        [174.3, 183.6],
        [184.1, 168.2],
        [190.0, 150.9],
        [193.1, 132.5],
        [195.0, 114.0],
        [195.8, 95.6],
        [74.6, 78.4],
        [82.2, 70.1],
        [93.6, 67.4],
        [105.5, 68.9],
        [116.7, 73.5],
        [139.3, 73.5],
        [150.5, 68.9],
        [162.4, 67.4],
        [173.8, 70.1],
        [181.4, 78.4],
        [128.0, 89.2],
        [128.0, 101.1],
        [128.0, 112.7],
        [128.0, 124.9],
        [114.6, 135.4],
        [121.1, 137.6],
        [128.0, 139.3],
        [134.9, 137.6],
        [141.4, 135.4],
        [88.0, 92.6],
        [95.0, 88.7],
        [103.5, 88.8],
        [110.9, 93.7],
        [103.1, 95.6],
        [94.7, 95.6],
        [145.1, 93.7],
        [152.5, 88.8],
        [161.0, 88.7],
        [168.0, 92.6],
        [161.3, 95.6],
        [152.9, 95.6],
        [103.9, 162.6],
        [112.5, 156.8],
        [121.5, 153.6],
        [128.0, 155.4],
        [134.5, 153.6],
        [143.5, 156.8],
        [152.1, 162.6],
        [143.8, 170.8],
        [135.0, 174.8],
        [128.0, 175.6],
        [121.0, 174.8],
        [112.2, 170.8],
        [108.2, 162.6],
        [121.5, 160.0],
        [128.0, 160.5],
        [134.5, 160.0],
        [147.8, 162.6],
        [134.6, 165.1],
        [128.0, 165.9],
        [121.4, 165.1],
    ],
    dtype=np.float32,
)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src -> dst, as 2x3."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    n = (a**2).sum()
    if n < 1e-9:
        raise ValueError("degenerate points for similarity transform")
    c = (a * b).sum() / n
    s = (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum() / n
    R = np.array([[c, -s], [s, c]])
    t = md - R @ ms
    return np.hstack([R, t[:, None]])


def apply(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to points [..., 2]."""
    return pts @ M[:, :2].T + M[:, 2]


def compose(A: np.ndarray, M: np.ndarray) -> np.ndarray:
    """A after M for 2x3 affine matrices (apply M, then A), as 2x3."""
    A3 = np.vstack([A, [0, 0, 1]])
    M3 = np.vstack([M, [0, 0, 1]])
    return (A3 @ M3)[:2]


@dataclass
class Crops:
    mouth: np.ndarray  # uint8 [T, 96, 96]
    face: np.ndarray  # uint8 [T, 128, 128, 3]
    transforms: np.ndarray  # float32 [T, 2, 3] source px -> reference frame
    mouth_centres: np.ndarray  # float32 [T, 2] mouth centre in the reference frame


def similarity_batch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """`similarity` for many point sets at once: src [T, N, 2] -> dst [N, 2], returns [T, 2, 3]."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    ms, md = src.mean(1, keepdims=True), dst.mean(0)
    a, b = src - ms, dst - md
    n = (a**2).sum((1, 2))
    if (n < 1e-9).any():
        raise ValueError("degenerate points for similarity transform")
    c = (a * b).sum((1, 2)) / n
    s = (a[..., 0] * b[:, 1] - a[..., 1] * b[:, 0]).sum(1) / n
    R = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], 1)  # [T, 2, 2]
    t = md - np.einsum("tij,tj->ti", R, ms[:, 0])
    return np.concatenate([R, t[:, :, None]], 2)


def reference_transforms(landmarks: np.ndarray, stable_window: int = 12) -> np.ndarray:
    """Per-frame 2x3 transforms to the mean face, fitted on temporally smoothed stable points."""
    stable = smooth(landmarks[:, STABLE_POINTS], stable_window)
    return similarity_batch(stable, MEAN_FACE[list(STABLE_POINTS)]).astype(np.float32)


def crop_clip(
    frames: np.ndarray,
    landmarks: np.ndarray,
    *,
    frame_scale: float = 1.0,
    stable_window: int = 12,
    mouth_size: int = MOUTH_SIZE,
    face_size: int = FACE_SIZE,
    want_face: bool = True,
    grays: np.ndarray | None = None,
) -> Crops:
    """Mouth ROIs and face crops for frames uint8 [T, H, W, 3] RGB with landmarks [T, 68, 2].

    Landmarks are in source pixels; `frame_scale` = source px per frame px (frames decoded smaller).
    `grays` (uint8 [T, H, W]) = the frames in grayscale when the caller already has them.
    """
    import cv2

    T = len(frames)
    lm = landmarks.astype(np.float64) / frame_scale
    Ms = reference_transforms(lm, stable_window).astype(np.float64)
    G = to_gray(frames) if grays is None else grays
    mouth = np.empty((T, mouth_size, mouth_size), np.uint8)
    face = np.empty((T, face_size, face_size, 3), np.uint8) if want_face else np.zeros((T, 0, 0, 3), np.uint8)
    # ROI centre = mouth centre in the reference frame (affine maps commute with the mean)
    centres = np.einsum("tij,tj->ti", Ms[:, :, :2], lm[:, MOUTH].mean(1)) + Ms[:, :, 2]
    half = mouth_size / 2
    Mm = Ms.copy()
    Mm[:, :, 2] += half - centres
    fx0, fy0, fx1, fy1 = FACE_BOX
    fs = face_size / (fx1 - fx0)
    Mf = Ms * fs  # the face box's offset and scale folded into the matrix: one warp per crop
    Mf[:, :, 2] -= np.array([fx0 * fs, fy0 * fs])
    flags, border = cv2.INTER_LINEAR, cv2.BORDER_REPLICATE
    for t in range(T):
        cv2.warpAffine(G[t], Mm[t], (mouth_size, mouth_size), dst=mouth[t], flags=flags, borderMode=border)
        if want_face:
            cv2.warpAffine(frames[t], Mf[t], (face_size, face_size), dst=face[t], flags=flags, borderMode=border)
    Ms_src = Ms.copy()
    Ms_src[:, :, :2] /= frame_scale  # report transforms from source pixels
    return Crops(mouth=mouth, face=face, transforms=Ms_src.astype(np.float32), mouth_centres=centres.astype(np.float32))

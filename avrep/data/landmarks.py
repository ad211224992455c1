"""Face detection and 68-point landmarks with dlib, cheap enough for whole corpora.

HOG detection runs on a few key frames only (every `detect_every`-th plus the last, on a frame
rescaled so faces have a detectable size); face boxes are interpolated in between, the 68-point shape
predictor runs on every frame, and the landmark tracks are smoothed over time. Frames without a face
(GRID clips that open on grey frames) get landmarks filled from the nearest faces and a flag.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from avrep.errors import AvrepError, NoFaceError

MIN_FACE = 20  # px in the source frame
DETECT_SIDE = 400  # frames are rescaled so their longest side is about this before HOG detection


def model_path(name: str) -> str:
    """Path of a face_recognition_models .dat file (its __init__ needs pkg_resources, so find by spec)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise AvrepError("face_recognition_models is not installed (needed for dlib landmarks)")
    p = os.path.join(os.path.dirname(spec.origin), "models", name)
    if not os.path.exists(p):
        raise AvrepError(f"{p}: dlib model file missing")
    return p


@lru_cache(maxsize=1)
def _models():
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(model_path("shape_predictor_68_face_landmarks.dat"))


@lru_cache(maxsize=1)
def _cnn():
    import dlib

    return dlib.cnn_face_detection_model_v1(model_path("mmod_human_face_detector.dat"))


def is_blank(gray: np.ndarray, thresh: float = 8.0) -> bool:
    """Nearly uniform frame (GRID clips open on grey frames): no face can be there."""
    return float(gray[::4, ::4].std()) < thresh


def detect_faces_cnn(gray: np.ndarray, target_side: int = 320) -> np.ndarray:
    """dlib's MMOD CNN detector (slower, handles turned heads HOG misses); boxes like detect_faces."""
    import cv2

    h, w = gray.shape[:2]
    s = min(1.0, target_side / max(h, w))
    img = gray if s == 1.0 else cv2.resize(gray, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_AREA)
    up = 1 if max(img.shape) < 200 else 0
    rects = [d.rect for d in _cnn()(img, up)]
    boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32).reshape(-1, 4)
    boxes /= img.shape[1] / w
    return _largest_first(boxes, gray.shape)


@dataclass
class LandmarkTrack:
    """Per-frame landmarks of the tracked (largest) face."""

    landmarks: np.ndarray  # float32 [T, 68, 2], source-frame pixels
    face: np.ndarray  # bool [T]: a face was present (False = filled from neighbours)
    n_faces: int  # most faces seen in one key frame (>1: the largest was taken)
    n_detections: int  # detector calls made
    boxes: np.ndarray = field(repr=False, default=None)  # float32 [T, 4] x0 y0 x1 y1


def _to_gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame


def detect_faces(gray: np.ndarray, target_side: int = DETECT_SIDE) -> np.ndarray:
    """HOG face boxes [N, 4] (x0, y0, x1, y1) in `gray` pixels, largest first.

    The frame is rescaled so its longest side is ~target_side (huge frames shrink, small ones grow);
    if nothing is found, one more pass upsamples by 2 for small faces.
    """
    import cv2

    det, _ = _models()
    h, w = gray.shape[:2]
    s = target_side / max(h, w)
    img = gray if abs(s - 1) < 0.15 else cv2.resize(gray, (int(round(w * s)), int(round(h * s))),
                                                    interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    s_eff = img.shape[1] / w
    rects = det(img, 0)
    if len(rects) == 0:
        rects = det(img, 1)
    boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32).reshape(-1, 4)
    boxes /= s_eff
    return _largest_first(boxes, gray.shape)


def _largest_first(boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sort by area; drop boxes too small to hold a usable face (false hits in noise, upsampled)."""
    side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    boxes = boxes[side >= max(MIN_FACE, 0.08 * min(shape[:2]))]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return boxes[np.argsort(-area, kind="stable")]


def predict_landmarks(gray: np.ndarray, box: np.ndarray) -> np.ndarray:
    """68 landmarks [68, 2] float32 for one face box (in `gray` pixels)."""
    import dlib

    _, sp = _models()
    r = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])), int(round(box[3])))
    shp = sp(gray, r)
    return np.array([[p.x, p.y] for p in shp.parts()], np.float32)


def _fill(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation over invalid frames along axis 0; edges repeat the nearest valid value."""
    t = np.arange(len(values))
    vi = np.flatnonzero(valid)
    flat = values.reshape(len(values), -1).astype(np.float32, copy=True)
    for j in range(flat.shape[1]):
        flat[:, j] = np.interp(t, vi, flat[vi, j])
    return flat.reshape(values.shape)


def smooth(track: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over time with edge padding (window 1 = no smoothing)."""
    if window <= 1 or len(track) < 2:
        return track.astype(np.float32, copy=True)
    k = np.ones(window, np.float32) / window
    pad_l, pad_r = window // 2, window - 1 - window // 2
    flat = track.reshape(len(track), -1)
    padded = np.concatenate([np.repeat(flat[:1], pad_l, 0), flat, np.repeat(flat[-1:], pad_r, 0)])
    out = np.stack([np.convolve(padded[:, j], k, mode="valid") for j in range(flat.shape[1])], 1)
    return out.reshape(track.shape).astype(np.float32)


def track_landmarks(frames: np.ndarray, *, detect_every: int = 10, smooth_window: int = 3,
                    scale: float = 1.0, cnn_fallback: bool = True, name: str = "clip") -> LandmarkTrack:
    """Landmarks for every frame of `frames` (uint8 [T, H, W, 3] RGB or [T, H, W] gray).

    `scale` maps frame pixels to source pixels (frames decoded smaller than the source).
    Frames before the first / after the last face, or blank, are flagged (face=False) and filled.
    Raises NoFaceError if no frame of the clip has a face.
    """
    T = len(frames)
    if T == 0:
        raise NoFaceError(f"{name}: no frames")
    grays: list[np.ndarray | None] = [None] * T

    def gray(i: int) -> np.ndarray:
        if grays[i] is None:
            grays[i] = _to_gray(frames[i])
        return grays[i]

    blank = np.zeros(T, bool)
    found: dict[int, np.ndarray | None] = {}
    n_faces = 0

    def detect(i: int, cnn: bool = False) -> np.ndarray | None:
        nonlocal n_faces
        if i in found and (found[i] is not None or not cnn):
            return found[i]
        g = gray(i)
        if is_blank(g):
            blank[i] = True
            found[i] = None
            return None
        b = detect_faces(g)
        if len(b) == 0 and cnn:
            b = detect_faces_cnn(g)
        n_faces = max(n_faces, len(b))
        found[i] = b[0] if len(b) else None
        return found[i]

    keys = sorted(set(range(0, T, max(1, detect_every))) | {T - 1})
    for i in keys:
        detect(i)
    if cnn_fallback and any(found[i] is None and not blank[i] for i in keys):
        for i in keys:
            if found[i] is None and not blank[i]:
                detect(i, cnn=True)
    # Where a face appears/disappears between two key frames, find the exact boundary frames.
    for a, b in zip(keys[:-1], keys[1:]):
        if (found[a] is None) != (found[b] is None):
            for i in range(a + 1, b):
                detect(i)
    if all(found[i] is None for i in keys):
        # Key frames may all be faceless (a cut, a turned head); look at more frames before giving up.
        for i in range(0, T, 2):
            detect(i, cnn=cnn_fallback and i % 10 == 0)
    det_idx = sorted(i for i, b in found.items() if b is not None)
    if not det_idx:
        raise NoFaceError(f"{name}: no face found")
    for i in range(T):  # cheap blank check on every frame
        if i not in found:
            blank[i] = is_blank(gray(i))
    # Between the first and the last detection the face is tracked (missed detections = pose,
    # blur); outside that range, and on blank frames, there is no face.
    face = np.zeros(T, bool)
    face[det_idx[0]:det_idx[-1] + 1] = True
    face &= ~blank
    boxes = np.zeros((T, 4), np.float32)
    known = np.zeros(T, bool)
    for i in det_idx:
        boxes[i] = found[i]
        known[i] = True
    boxes = _fill(boxes, known)
    lms = np.zeros((T, 68, 2), np.float32)
    for i in np.flatnonzero(face):
        lms[i] = predict_landmarks(gray(i), boxes[i])
    lms = _fill(lms, face)
    sm = smooth(lms, smooth_window)
    lms = _fill(sm, face) if not face.all() else sm  # fills are re-made from the smoothed faces
    return LandmarkTrack(landmarks=(lms * scale).astype(np.float32), face=face, n_faces=n_faces,
                         n_detections=len(found), boxes=boxes * scale)


def landmark_error(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """Mean point error in pixels and normalised by the outer inter-ocular distance (36-45)."""
    d = np.linalg.norm(pred - true, axis=-1).mean(axis=-1)  # [T]
    iod = np.linalg.norm(true[:, 36] - true[:, 45], axis=-1)
    return float(d.mean()), float((d / np.maximum(iod, 1e-6)).mean())

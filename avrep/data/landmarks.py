"""Face detection and 68-point landmarks with dlib, cheap enough for whole corpora.

HOG detection (~7 shape-predictor calls' worth) runs on a few key frames only (every `detect_every`-th
plus the last); where a face appears or disappears between two key frames the boundary is found by
bisection, and boxes are interpolated between detections. The 68-point shape predictor (~1 ms a call
whatever the image size, so downscaling frames does not help it) runs on every `landmark_every`-th
face frame; landmarks in between are interpolated linearly and the tracks smoothed over time. The
defaults come from measurements on real GRID and wild clips against the per-frame path (see
benchmarks/results/preprocess.json). Frames without a face (GRID clips that open on grey frames) get
landmarks filled from the nearest faces and a flag.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from avrep.conventions import N_LANDMARKS
from avrep.errors import AvrepError, NoFaceError

MIN_FACE = 20  # px in the source frame
DETECT_SIDE = 400  # frames are rescaled so their longest side is about this before HOG detection
DETECT_EVERY = 25  # frames between detector runs (boxes are interpolated in between)
LANDMARK_EVERY = 2  # shape predictor on every k-th frame, linear interpolation between (1 = every frame)


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
def dlib_models():
    """(HOG face detector, 68-point shape predictor), loaded once per process."""
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
    n_faces: int  # most faces seen in one full-frame detection (>1: the largest was taken)
    n_detections: int  # detector calls made
    boxes: np.ndarray = field(repr=False, default=None)  # float32 [T, 4] x0 y0 x1 y1
    n_predictions: int = 0  # shape-predictor calls made (the rest of the frames are interpolated)


def to_gray(frames: np.ndarray) -> np.ndarray:
    """uint8 [T, H, W] grayscale of RGB frames [T, H, W, 3] in one cv2 call (gray input is returned as is)."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim == 3:
        return frames
    T, H, W = frames.shape[:3]
    flat = np.ascontiguousarray(frames).reshape(T * H, W, 3)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY).reshape(T, H, W)


def _blank_all(grays: np.ndarray, thresh: float = 8.0) -> np.ndarray:
    """is_blank for every frame at once."""
    sub = grays[:, ::4, ::4].reshape(len(grays), -1).astype(np.float64)
    return sub.std(axis=1) < thresh


def _detect_scale(h: int, w: int, target_side: int = DETECT_SIDE) -> float:
    """Scale at which a frame is searched (longest side ~target_side; near 1 = native)."""
    s = target_side / max(h, w)
    return 1.0 if abs(s - 1) < 0.15 else s


def detect_faces(gray: np.ndarray, target_side: int = DETECT_SIDE) -> np.ndarray:
    """HOG face boxes [N, 4] (x0, y0, x1, y1) in `gray` pixels, largest first.

    The frame is rescaled so its longest side is ~target_side (huge frames shrink, small ones grow);
    if nothing is found, one more pass upsamples by 2 for small faces.
    """
    import cv2

    det, _ = dlib_models()
    h, w = gray.shape[:2]
    s = _detect_scale(h, w, target_side)
    img = (
        gray
        if s == 1.0
        else cv2.resize(
            gray, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        )
    )
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

    _, sp = dlib_models()
    r = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])), int(round(box[3])))
    shp = sp(gray, r)
    return np.array([[p.x, p.y] for p in shp.parts()], np.float32)


def _fill(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation over invalid frames along axis 0; edges repeat the nearest valid value."""
    vi = np.flatnonzero(valid)
    flat = values.reshape(len(values), -1).astype(np.float64)
    if len(vi) == len(values):
        return values.astype(np.float32, copy=True)
    t = np.arange(len(values))
    j = np.clip(np.searchsorted(vi, t, side="right") - 1, 0, len(vi) - 1)
    left, right = vi[j], vi[np.minimum(j + 1, len(vi) - 1)]
    w = np.clip((t - left) / np.maximum(right - left, 1), 0.0, 1.0)[:, None]
    out = flat[left] * (1 - w) + flat[right] * w
    return out.reshape(values.shape).astype(np.float32)


def smooth(track: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over time with edge padding (window 1 = no smoothing)."""
    if window <= 1 or len(track) < 2:
        return track.astype(np.float32, copy=True)
    pad_l, pad_r = window // 2, window - 1 - window // 2
    flat = track.reshape(len(track), -1).astype(np.float64)
    padded = np.concatenate([np.repeat(flat[:1], pad_l, 0), flat, np.repeat(flat[-1:], pad_r, 0)])
    c = np.concatenate([np.zeros((1, flat.shape[1])), np.cumsum(padded, 0)])
    return ((c[window:] - c[:-window]) / window).reshape(track.shape).astype(np.float32)


def _predict_frames(face: np.ndarray, k: int) -> list[int]:
    """Frames the shape predictor runs on: every k-th frame of each run of face frames and the run's
    last frame (so nothing is extrapolated)."""
    sel: set[int] = set()
    idx = np.flatnonzero(face)
    if len(idx):
        runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
        for r in runs:
            sel.update(range(int(r[0]), int(r[-1]) + 1, k))
            sel.add(int(r[-1]))
    return sorted(sel)


def _find_faces(
    G: np.ndarray, blank: np.ndarray, detect_every: int, cnn_fallback: bool
) -> tuple[dict[int, np.ndarray | None], int, int]:
    """Face boxes of gray frames `G` where the detector ran: every `detect_every`-th frame and the last,
    the frames where the face appears or disappears (by bisection), and more frames when no key frame
    has a face -> (box or None by frame, most faces seen in one frame, detector calls)."""
    T = len(G)
    found: dict[int, np.ndarray | None] = {}
    n_faces = 0
    n_calls = 0

    def detect(i: int, cnn: bool = False) -> np.ndarray | None:
        nonlocal n_faces, n_calls
        if blank[i]:
            found[i] = None
            return None
        if i in found and (found[i] is not None or not cnn):
            return found[i]
        b = detect_faces(G[i])
        n_calls += 1
        if len(b) == 0 and cnn:
            b = detect_faces_cnn(G[i])
            n_calls += 1
        n_faces = max(n_faces, len(b))
        found[i] = b[0] if len(b) else None
        return found[i]

    keys = sorted(set(range(0, T, detect_every)) | {T - 1})
    for i in keys:
        detect(i)
    hits = [i for i in keys if found[i] is not None]
    if cnn_fallback:
        # HOG misses turned heads; the CNN detector only matters where it would extend the face range
        # (inside it the face is tracked anyway).
        for i in keys:
            if found[i] is None and not blank[i] and (not hits or i < hits[0] or i > hits[-1]):
                detect(i, cnn=True)
    # Where a face appears/disappears between two key frames, find the boundary by bisection.
    for a, b in zip(keys[:-1], keys[1:]):
        lo, hi = a, b
        while hi - lo > 1 and (found[lo] is None) != (found[hi] is None):
            mid = (lo + hi) // 2
            detect(mid)
            if (found[mid] is None) == (found[lo] is None):
                lo = mid
            else:
                hi = mid
    if all(found[i] is None for i in keys):
        # Key frames may all be faceless (a cut, a turned head); look at more frames before giving up.
        for i in range(0, T, 2):
            detect(i, cnn=cnn_fallback and i % 10 == 0)
    return found, n_faces, n_calls


def track_landmarks(
    frames: np.ndarray,
    *,
    detect_every: int = DETECT_EVERY,
    landmark_every: int = LANDMARK_EVERY,
    smooth_window: int = 3,
    scale: float = 1.0,
    cnn_fallback: bool = True,
    name: str = "clip",
) -> LandmarkTrack:
    """Landmarks for every frame of `frames` (uint8 [T, H, W, 3] RGB or [T, H, W] gray).

    `landmark_every` = k runs the shape predictor on every k-th face frame and interpolates the rest
    (1 = every frame). `scale` maps frame pixels to source pixels (frames decoded smaller).
    Frames before the first / after the last face, or blank, are flagged (face=False) and filled.
    Raises NoFaceError if no frame of the clip has a face.
    """
    if landmark_every < 1 or detect_every < 1:
        raise AvrepError(f"{name}: landmark_every and detect_every must be >= 1")
    T = len(frames)
    if T == 0:
        raise NoFaceError(f"{name}: no frames")
    G = to_gray(frames)
    blank = _blank_all(G)
    found, n_faces, n_calls = _find_faces(G, blank, detect_every, cnn_fallback)
    det_idx = sorted(i for i, b in found.items() if b is not None)
    if not det_idx:
        raise NoFaceError(f"{name}: no face found")
    # Between the first and the last detection the face is tracked (missed detections = pose,
    # blur); outside that range, and on blank frames, there is no face.
    face = np.zeros(T, bool)
    face[det_idx[0] : det_idx[-1] + 1] = True
    face &= ~blank
    boxes = np.zeros((T, 4), np.float32)
    known = np.zeros(T, bool)
    for i in det_idx:
        boxes[i] = found[i]
        known[i] = True
    boxes = _fill(boxes, known)  # detector boxes, interpolated between detections
    raw = np.zeros((T, N_LANDMARKS, 2), np.float32)
    done = np.zeros(T, bool)
    sel = _predict_frames(face, landmark_every)
    for i in sel:
        raw[i] = predict_landmarks(G[i], boxes[i])
        done[i] = True
    lms = _fill(raw, done)
    sm = smooth(lms, smooth_window)
    lms = _fill(sm, face) if not face.all() else sm  # fills are re-made from the smoothed faces
    return LandmarkTrack(
        landmarks=(lms * scale).astype(np.float32),
        face=face,
        n_faces=n_faces,
        n_detections=n_calls,
        boxes=boxes * scale,
        n_predictions=len(sel),
    )


def landmark_error(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """Mean point error in pixels and normalised by the outer inter-ocular distance (36-45)."""
    d = np.linalg.norm(pred - true, axis=-1).mean(axis=-1)  # [T]
    iod = np.linalg.norm(true[:, 36] - true[:, 45], axis=-1)
    return float(d.mean()), float((d / np.maximum(iod, 1e-6)).mean())

"""SyncNet-style audio-video offset estimation from per-frame features, and its benchmark helpers.

Sign convention (the project's, and SyncNet's): **positive offset = audio leads video**. With an offset
of o frames the sound of video frame t sits at audio frame t - o, so we compare video frame t with
audio frame t - o; a file is put back in sync by delaying its audio by o frames (o * 40 ms).

Numbers reported (computed as SyncNet computes its own, but on avrep's features, so they are *avrep-sync*
distance and confidence, on another scale than SyncNet's LSE-D / LSE-C: never compare the two):
  min_dist    avrep-sync distance: the mean distance (1 - cosine) at the best offset (lower = better match);
  confidence  avrep-sync confidence: median(distance over offsets) - min(distance), how much the best offset
              stands out (near 0 = no usable evidence, e.g. no speech or no face);
  p_correct   with a `SyncCalibration` (fitted on held-out people, shipped beside the model): the probability
              that the offset is right within +-1 frame, from the confidence, the distance and the clip length.
A clip with too few face frames or too little speech gets no offset (`offset_frames` None) and says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from avrep.conventions import FRAME_MS, SAMPLES_PER_FRAME, SYNC_SIGN
from avrep.utils import window_starts


def distance_matrix(vf: np.ndarray, af: np.ndarray, max_offset: int) -> np.ndarray:
    """D[t, j] = 1 - cos(video t, audio t - o) for o = offsets[j] = -max..+max; NaN outside the clip.

    vf, af: [T, D] per-frame features (L2-normalised here, whatever they come as).
    """
    vf = np.asarray(vf, np.float32)
    af = np.asarray(af, np.float32)
    if vf.ndim != 2 or vf.shape != af.shape:
        raise ValueError(f"video/audio features must both be [T, D], got {vf.shape} and {af.shape}")
    vf = vf / np.maximum(np.linalg.norm(vf, axis=1, keepdims=True), 1e-8)
    af = af / np.maximum(np.linalg.norm(af, axis=1, keepdims=True), 1e-8)
    T = len(vf)
    offsets = np.arange(-max_offset, max_offset + 1)
    # only the 2*max+1 diagonals are needed: never the [T, T] product (900 MB for a 10-minute clip)
    D = np.full((T, len(offsets)), np.nan, np.float32)
    for j, o in enumerate(offsets):
        t = np.arange(max(0, o), min(T, T + o))  # audio index t - o must be inside [0, T)
        D[t, j] = 1.0 - np.einsum("td,td->t", vf[t], af[t - o])
    return D


@dataclass
class OffsetEstimate:
    offset: int  # frames, positive = audio leads video
    confidence: float  # median(dist) - min(dist)
    min_dist: float  # distance at the best offset
    dists: list[float]  # mean distance per offset, offsets -max..+max

    @property
    def offset_ms(self) -> float:
        return self.offset * FRAME_MS


def estimate(D: np.ndarray, max_offset: int, min_overlap: int = 1) -> OffsetEstimate:
    """Best offset of a distance matrix (or of rows t0:t1 of it): mean over frames, then argmin.

    Offsets whose overlap has fewer than `min_overlap` frames are not candidates.
    """
    n = np.sum(~np.isnan(D), axis=0)
    with np.errstate(invalid="ignore"):
        mean = np.where(n >= max(1, min_overlap), np.nansum(D, axis=0) / np.maximum(n, 1), np.nan)
    if np.all(np.isnan(mean)):
        return OffsetEstimate(0, 0.0, float("nan"), [float("nan")] * D.shape[1])
    j = int(np.nanargmin(mean))
    mn = float(mean[j])
    conf = float(np.nanmedian(mean) - mn)
    return OffsetEstimate(j - max_offset, conf, mn, [float(x) for x in mean])


@dataclass(frozen=True)
class SyncCalibration:
    """Logistic map from (confidence, min_dist, log2 frames) to P(offset right within +-1 frame), fitted on
    shifted copies of people the model never trained on (`fit_calibration`); saved as JSON beside a model."""

    coef: tuple[float, float, float]
    intercept: float
    fitted_on: str = ""
    threshold: float = 0.5  # below it the offset is reported as uncertain

    FILE = "sync_calibration.json"

    def p_correct(self, confidence: float, min_dist: float, n_frames: int) -> float:
        x = calibration_features(confidence, min_dist, n_frames)
        z = float(np.dot(self.coef, x) + self.intercept)
        return float(1.0 / (1.0 + np.exp(-z)))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "coef": list(self.coef), "features": ["confidence", "min_dist", "log2_frames"]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SyncCalibration:
        return cls(
            coef=tuple(float(c) for c in d["coef"]),  # type: ignore[arg-type]
            intercept=float(d["intercept"]),
            fitted_on=str(d.get("fitted_on", "")),
            threshold=float(d.get("threshold", 0.5)),
        )


def calibration_features(confidence: float, min_dist: float, n_frames: int) -> np.ndarray:
    return np.array([confidence, min_dist, np.log2(max(n_frames, 1))], np.float64)


def fit_calibration(rows: list[tuple[float, float, int, bool]], fitted_on: str) -> SyncCalibration:
    """rows: (confidence, min_dist, n_frames, offset right within +-1) -> a fitted SyncCalibration."""
    from sklearn.linear_model import LogisticRegression

    X = np.stack([calibration_features(c, d, n) for c, d, n, _ in rows])
    y = np.array([bool(r[3]) for r in rows])
    if y.all() or not y.any():
        raise ValueError("calibration needs both right and wrong offsets among the rows")
    lr = LogisticRegression(C=10.0, max_iter=1000).fit(X, y)
    return SyncCalibration(tuple(float(c) for c in lr.coef_[0]), float(lr.intercept_[0]), fitted_on)  # type: ignore[arg-type]


def speech_frames(audio: np.ndarray, n_frames: int, floor: float = 3e-3) -> np.ndarray:
    """bool [T]: frames whose audio RMS is above `floor` and above 10% of the clip's loud (95th pct) level."""
    a = np.asarray(audio, np.float64)[: n_frames * SAMPLES_PER_FRAME]
    a = np.concatenate([a, np.zeros(n_frames * SAMPLES_PER_FRAME - a.size)])
    rms = np.sqrt((a.reshape(n_frames, SAMPLES_PER_FRAME) ** 2).mean(1))
    loud = float(np.percentile(rms, 95)) if n_frames else 0.0
    return (rms > floor) & (rms > 0.1 * loud)


def usable_evidence(
    face_mask: np.ndarray | None, audio: np.ndarray, n_frames: int, min_face: float = 0.5, min_speech: float = 0.1
) -> str | None:
    """None when a clip has enough face frames and speech to measure sync; else the reason, in words."""
    if face_mask is not None and len(face_mask) and float(np.mean(face_mask)) < min_face:
        return f"no usable face: a face was found in {int(np.sum(face_mask))} of {len(face_mask)} frames"
    sp = speech_frames(audio, n_frames)
    if float(np.mean(sp)) < min_speech:
        return f"no usable speech: {int(sp.sum())} of {n_frames} frames have speech-level audio"
    return None


@dataclass
class SyncResult:
    """Whole-clip estimate plus per-window estimates (sliding windows over video frames).

    `offset_frames` is None when the clip has no usable face or speech (`reason` says which)."""

    offset_frames: int | None
    offset_ms: float | None
    confidence: float
    min_dist: float
    max_offset: int
    n_frames: int
    dists: list[float]
    windows: list[dict[str, Any]] = field(default_factory=list)
    sign_convention: str = SYNC_SIGN
    p_correct: float | None = None  # calibrated P(offset right within +-1), when the model has a calibration
    reliable: bool | None = None  # p_correct >= the calibration's threshold
    reason: str | None = None  # why there is no offset (no usable face / speech)
    metric_names: str = "avrep-sync distance (min_dist) / confidence: SyncNet's formulas on avrep features"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def withhold(self, reason: str) -> SyncResult:
        """The same measurement with no offset claimed (the evidence is not there)."""
        self.offset_frames, self.offset_ms, self.reason, self.reliable = None, None, reason, False
        return self


def sync_from_features(
    vf: np.ndarray,
    af: np.ndarray,
    max_offset: int = 15,
    window: int = 50,
    hop: int = 25,
    calibration: SyncCalibration | None = None,
) -> SyncResult:
    """SyncNet-style offset from per-frame video/audio features [T, D].

    The whole-clip distance curve averages every frame's distance per offset (every window of a long clip
    counts: SyncNet's averaging); per-window offsets use `window`-frame spans every `hop` frames (a drifting
    offset shows up there). With a calibration, `p_correct` and `reliable` say how far to trust it.
    """
    T = len(vf)
    max_offset = int(max(0, min(max_offset, T - 1)))
    D = distance_matrix(vf, af, max_offset)
    # an offset is only a candidate when at least ~1/3 of the clip overlaps (a few frames decide nothing)
    min_overlap = max(1, min(T - max_offset, T // 3))
    est = estimate(D, max_offset, min_overlap)
    wins = []
    if T > window:
        for s in window_starts(T, window, hop):
            w = estimate(D[s : s + window], max_offset, min_overlap=max(1, window // 3))
            wins.append(
                {
                    "start_frame": s,
                    "end_frame": s + window,
                    "start_s": s * FRAME_MS / 1000,
                    "offset_frames": w.offset,
                    "offset_ms": w.offset_ms,
                    "confidence": round(w.confidence, 4),
                    "min_dist": round(w.min_dist, 4),
                }
            )
    res = SyncResult(
        offset_frames=est.offset,
        offset_ms=est.offset_ms,
        confidence=est.confidence,
        min_dist=est.min_dist,
        max_offset=max_offset,
        n_frames=T,
        dists=est.dists,
        windows=wins,
    )
    if calibration is not None and np.isfinite(est.min_dist):
        res.p_correct = round(calibration.p_correct(est.confidence, est.min_dist, T), 4)
        res.reliable = res.p_correct >= calibration.threshold
    return res


# ---- benchmark helpers ---------------------------------------------------------------------------------
def shifted_pair(
    mouth: np.ndarray, audio: np.ndarray, offset: int, margin: int, samples_per_frame: int = SAMPLES_PER_FRAME
) -> tuple[np.ndarray, np.ndarray]:
    """A desynchronised copy with real content on both sides (no padding the detector could spot).

    Video frames [margin, T - margin) with audio that leads it by `offset` frames (|offset| <= margin):
    output audio frame t = input audio frame t + offset, so the sound of video frame t plays at t - offset.
    """
    T = len(mouth)
    if abs(offset) > margin or T - 2 * margin < 1:
        raise ValueError(f"offset {offset} needs margin >= |offset| and a clip longer than 2 * margin")
    v = mouth[margin : T - margin]
    a0 = (margin + offset) * samples_per_frame
    a = audio[a0 : a0 + len(v) * samples_per_frame]
    return v, a


def offset_accuracy(found: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Share found exactly and within +-1 frame, plus mean absolute error in frames."""
    found, true = np.asarray(found), np.asarray(true)
    err = np.abs(found - true)
    return {
        "n": int(len(err)),
        "exact": float((err == 0).mean()) if len(err) else float("nan"),
        "within_1": float((err <= 1).mean()) if len(err) else float("nan"),
        "mae_frames": float(err.mean()) if len(err) else float("nan"),
    }


__all__ = [
    "FRAME_MS",
    "OffsetEstimate",
    "SyncCalibration",
    "SyncResult",
    "calibration_features",
    "fit_calibration",
    "speech_frames",
    "usable_evidence",
    "distance_matrix",
    "estimate",
    "offset_accuracy",
    "shifted_pair",
    "sync_from_features",
]

"""`avrep speakers`: who is speaking in a video with several faces (active speaker detection).

A face whose lips agree with the audio is speaking. Two passes over the video, `chunk_frames` frames at a
time (memory bounded whatever the length):
  1. dlib HOG faces on every `detect_every`-th frame (and the last), linked into tracks by IoU
     (`avrep.data.tracks`: a track survives `max_missed` key frames without a detection);
  2. per track, 68 landmarks on every `landmark_every`-th frame from its interpolated box, the training
     preprocessing's aligned 96x96 mouth ROI (`avrep.data.align.crop_clip`), and the DAVS video encoder's
     per-frame features (chunks overlap by `margin` frames so the windows see real context at the seams).
The audio's per-frame features are computed once. Each track is scored per frame by its agreement with the
audio around that frame (`avrep.apps.agreement.agreement`: the cosine at offset 0 (+-1) and how far it
stands out from +-6 frames, over a 51-frame window), mapped to [0, 1] by a logistic fitted for the
shipped model on people it never trained on that no benchmark uses (the lrc_ar `val` identities;
`benchmarks/speakers.py --calibrate` refits it), gated to 0 on digital silence, and turned into speaking segments with hysteresis
(on at >= `on`, off below `off`, segments shorter than `min_segment` frames dropped). A voice from off
screen or silence leaves every score low: no segments.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avrep.conventions import FPS
from avrep.conventions import SAMPLES_PER_FRAME as SPF
from avrep.errors import AvrepError, MediaError, NoFaceError
from avrep.io import media


@dataclass
class SpeakersConfig:
    detect_every: int = 5  # HOG on every k-th frame (and the last); tracks carry the boxes in between
    iou_min: float = 0.3  # least IoU that continues a track
    max_missed: int = 2  # key frames a track may go undetected (0.4 s at k=5) before it is closed
    min_track_frames: int = 12  # shorter tracks are detector noise
    landmark_every: int = 2  # 68-point predictor on every k-th track frame, interpolated between
    chunk_frames: int = 250  # frames decoded at a time (10 s)
    margin: int = 16  # context frames on each side of a chunk for the encoder windows
    half_window: int = 25  # agreement averaged over t-25..t+25 (2 s: 1 s windows were too noisy on new faces)
    max_offset: int = 6  # offsets the agreement near 0 is compared with
    tolerance: int = 1  # "in sync" = the best of offsets -1..+1
    # logistic on (cos0, conf0): fitted by `benchmarks/speakers.py --calibrate` for davs_small_v1 on the 2 lrc_ar
    # `val` identities (not trained on, not benchmarked): matched vs other-speaker and silent audio
    # (benchmarks/results/speakers_calibration.json)
    weights: tuple[float, float] = (7.598, 19.869)
    bias: float = -3.851
    on: float = 0.5  # hysteresis around the calibrated 0.5: speaking starts at >= on, ends below off
    off: float = 0.3
    min_segment: int = 8  # frames; shorter speaking runs are dropped
    # > 0: a face's logit also moves by contrast * (its logit - the best other face's): who speaks among the
    # faces on screen gets clearer, but a voice from off screen is more often given to someone (benchmark)
    contrast: float = 0.0
    silence_rms: float = 1e-3  # audio RMS over +-0.5 s below this: nobody speaks
    silence_half_window: int = 12
    max_side: int = media.DECODE_MAX_SIDE
    max_duration: float = media.MAX_STREAM_DURATION  # streamed: only the audio is held whole

    def check(self) -> SpeakersConfig:
        if min(self.detect_every, self.landmark_every, self.chunk_frames, self.min_track_frames) < 1:
            raise AvrepError("speakers: detect_every, landmark_every, chunk_frames, min_track_frames must be >= 1")
        if not 0 <= self.off <= self.on <= 1:
            raise AvrepError(f"speakers: need 0 <= off ({self.off}) <= on ({self.on}) <= 1")
        return self


@dataclass
class SpeakerTrack:
    """One face over frames first..last: its box (decoded-frame pixels scaled to the source), speaking
    score in [0, 1] and speaking flag on every frame."""

    id: int
    first: int
    last: int
    boxes: np.ndarray  # float32 [L, 4] x0 y0 x1 y1, source pixels
    agreement: np.ndarray  # float32 [L]: the audio-visual agreement alone, as a probability
    scores: np.ndarray  # float32 [L]: the speaking score (= agreement unless `contrast` > 0)
    speaking: np.ndarray  # bool [L]
    video_features: np.ndarray = field(repr=False, default=None)  # float32 [L, D] (for sync)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "first_frame": self.first,
            "last_frame": self.last,
            "speaking_frames": int(self.speaking.sum()),
            "mean_score": round(float(self.scores.mean()), 4) if len(self.scores) else 0.0,
            "boxes": np.round(self.boxes.astype(np.float64), 1).tolist(),
            "scores": np.round(self.scores.astype(np.float64), 4).tolist(),
        }


@dataclass
class SpeakersResult:
    path: str
    n_frames: int
    fps: int
    tracks: list[SpeakerTrack]
    segments: list[dict[str, Any]]
    n_detections: int = 0
    audio_features: np.ndarray = field(repr=False, default=None)  # float32 [T, D]

    def scores_matrix(self) -> np.ndarray:
        """[n_tracks, T] speaking score per track and frame (0 where the track is absent)."""
        S = np.zeros((len(self.tracks), self.n_frames), np.float32)
        for i, t in enumerate(self.tracks):
            S[i, t.first : t.last + 1] = t.scores
        return S

    def speaker_per_frame(self) -> np.ndarray:
        """int [T]: the id of the speaking track with the highest score on each frame, -1 = nobody."""
        out = np.full(self.n_frames, -1, np.int64)
        best = np.full(self.n_frames, -1.0)
        for t in self.tracks:
            sl = slice(t.first, t.last + 1)
            s = np.where(t.speaking, t.scores, -1.0)
            win = s > best[sl]
            out[sl] = np.where(win, t.id, out[sl])
            best[sl] = np.maximum(best[sl], s)
        return out

    def main_track(self) -> SpeakerTrack | None:
        """The track that speaks most (ties: the higher mean score); None without tracks."""
        if not self.tracks:
            return None
        return max(self.tracks, key=lambda t: (int(t.speaking.sum()), float(t.scores.mean())))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "n_frames": self.n_frames,
            "fps": self.fps,
            "duration_s": round(self.n_frames / self.fps, 3),
            "tracks": [t.to_dict() for t in self.tracks],
            "segments": self.segments,
        }


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def hysteresis(p: np.ndarray, on: float, off: float, min_run: int = 1) -> np.ndarray:
    """bool [L]: True from where p reaches `on` until it falls below `off`; runs shorter than min_run
    dropped. NaN counts as 0."""
    p = np.nan_to_num(np.asarray(p, np.float64), nan=0.0)
    out = np.zeros(len(p), bool)
    state = False
    for i, v in enumerate(p):
        state = v >= off if state else v >= on
        out[i] = state
    if min_run > 1:
        for a, b in runs(out):
            if b - a < min_run:
                out[a:b] = False
    return out


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[(start, end_exclusive)] of the True runs of a bool array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[::2].tolist(), d[1::2].tolist()))


def speaking_scores(vf: np.ndarray, af: np.ndarray, start: int, cfg: SpeakersConfig, rms: np.ndarray | None = None):
    """Per-frame speaking probability [L] of a track (video features vf of frames start..start+L-1)."""
    from avrep.apps.agreement import agreement

    cos0, conf0 = agreement(
        vf, af, start, half_window=cfg.half_window, max_offset=cfg.max_offset, tolerance=cfg.tolerance
    )
    z = cfg.weights[0] * np.nan_to_num(cos0) + cfg.weights[1] * np.nan_to_num(conf0) + cfg.bias
    p = _sigmoid(z).astype(np.float32)
    if rms is not None:
        p[rms[start : start + len(vf)] < cfg.silence_rms] = 0.0
    return p


def windowed_rms(wav: np.ndarray, n_frames: int, half_window: int) -> np.ndarray:
    """float [T]: audio RMS over frames t-half_window..t+half_window."""
    e = (np.asarray(wav[: n_frames * SPF], np.float64) ** 2).reshape(n_frames, SPF).mean(1)
    cs = np.concatenate([[0.0], np.cumsum(e)])
    lo = np.clip(np.arange(n_frames) - half_window, 0, n_frames)
    hi = np.clip(np.arange(n_frames) + half_window + 1, 0, n_frames)
    return np.sqrt((cs[hi] - cs[lo]) / np.maximum(hi - lo, 1))


def _chunks(path, info: media.MediaInfo, cfg: SpeakersConfig, margin: int = 0):
    """Yield (first frame, last-of-core + 1, decoded frames [a, b) with `margin` context, a) chunk by chunk."""
    s = 0
    while True:
        a = max(0, s - margin)
        try:
            v = media.read_video(
                path, a, s + cfg.chunk_frames + margin, info=info, max_side=cfg.max_side, max_duration=cfg.max_duration
            )
        except MediaError as e:
            if s > 0 and "outside the video" in str(e):
                return
            raise
        got = a + len(v.frames)
        last = got < s + cfg.chunk_frames + margin  # the video ends inside this read: it is the last chunk
        yield s, (got if last else s + cfg.chunk_frames), v, a
        if last:
            return
        s += cfg.chunk_frames


def _interp_landmarks(idx: list[int], lms: list[np.ndarray], n: int) -> np.ndarray:
    """[n, 68, 2] linear between the predicted frames idx (relative, sorted, first 0 and last n-1)."""
    P = np.stack(lms).reshape(len(idx), -1).astype(np.float64)
    t = np.arange(n)
    return np.stack([np.interp(t, idx, P[:, k]) for k in range(P.shape[1])], 1).reshape(n, -1, 2).astype(np.float32)


def speakers(
    path: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    *,
    config: SpeakersConfig | None = None,
    device: str = "auto",
    model=None,
    progress: bool = True,
) -> SpeakersResult:
    """Faces, their tracks, per-frame speaking scores and speaking segments of one video (see module doc).

    Raises AvrepError (one line) for a file without video or audio, or where no face is found.
    """
    from tqdm import tqdm

    from avrep.apps.agreement import stream_features
    from avrep.data.align import crop_clip
    from avrep.data.landmarks import detect_faces, predict_landmarks, smooth, to_gray
    from avrep.data.tracks import IoUTracker, track_boxes
    from avrep.device import resolve_device

    cfg = (config or SpeakersConfig()).check()
    info = media.probe(path)
    if not info.has_video:
        raise MediaError(f"{info.path}: no video stream")
    if not info.has_audio:
        raise MediaError(f"{info.path}: no audio stream; speaker detection needs the sound")
    media.check_limits(info, cfg.max_duration)
    dev = resolve_device(device)
    if model is None:
        from avrep.loader import open_model

        model = open_model(checkpoint, "davs", dev, quiet=not progress).model
    K = cfg.detect_every
    n_est = max(1, info.n_frames_25)

    # pass 1: faces on key frames -> tracks
    tracker = IoUTracker(cfg.iou_min, cfg.max_missed, hold=K - 1)
    n_calls, T, scale, last_gray, last_done = 0, 0, 1.0, None, -1
    bar = tqdm(total=n_est, desc="faces", unit="frame", disable=not progress, leave=False)
    for s, e, v, a in _chunks(path, info, cfg):
        G = to_gray(v.frames[s - a : e - a])
        scale = v.scale
        for i in range(len(G)):
            f = s + i
            if f % K == 0:
                tracker.update(f, detect_faces(G[i]))
                n_calls += 1
                last_done = f
        T = e
        last_gray = G[-1]
        bar.update(len(G))
    bar.close()
    if T == 0:
        raise MediaError(f"{info.path}: video has no frames")
    if last_done != T - 1:  # the last frame is a key frame too, so a track reaches the end
        tracker.update(T - 1, detect_faces(last_gray))
        n_calls += 1
    tracks = [t for t in tracker.finish(T) if t.last - t.first + 1 >= cfg.min_track_frames]
    if not tracks:
        raise NoFaceError(f"{info.path}: no face found")
    boxes = {t.id: track_boxes(t) for t in tracks}

    # pass 2: landmarks -> mouth ROIs -> video features per track
    feats: dict[int, list[np.ndarray]] = {t.id: [] for t in tracks}
    M = cfg.margin
    bar = tqdm(total=T, desc="mouths", unit="frame", disable=not progress, leave=False)
    for s, e, v, a in _chunks(path, info, cfg, margin=M):
        b_end = a + len(v.frames)
        G = to_gray(v.frames)
        for t in tracks:
            lo, hi = max(t.first, a), min(t.last + 1, b_end)  # frames of the track in this decoded span
            klo, khi = max(t.first, s), min(t.last + 1, e)  # ... and in the chunk's core
            if khi <= klo:
                continue
            n = hi - lo
            rel = sorted(set(range(0, n, cfg.landmark_every)) | {n - 1})
            bx = boxes[t.id][lo - t.first : hi - t.first]
            lm = [predict_landmarks(G[lo - a + r], bx[r]) for r in rel]
            lms = smooth(_interp_landmarks(rel, lm, n), 3)
            crops = crop_clip(v.frames[lo - a : hi - a], lms, want_face=False, grays=G[lo - a : hi - a])
            vf = stream_features(model, crops.mouth, True, device=dev, landmarks=lms, features="word")
            feats[t.id].append(vf[klo - lo : khi - lo])
        bar.update(e - s)
    bar.close()
    wav = media.fit_audio(media.read_audio(path, info=info, max_duration=cfg.max_duration), T)
    af = stream_features(model, wav, False, device=dev, features="word")  # the calibrated score's features
    rms = windowed_rms(wav, T, cfg.silence_half_window)

    out_tracks = []
    for t in sorted(tracks, key=lambda t: (t.first, t.id)):  # ids 0..n-1 in order of appearance
        vf = np.concatenate(feats[t.id])
        p = speaking_scores(vf, af, t.first, cfg, rms)
        out_tracks.append(SpeakerTrack(len(out_tracks), t.first, t.last, boxes[t.id] * scale, p, p, p > 0, vf))
    res = SpeakersResult(str(path), T, FPS, out_tracks, [], n_calls, af)
    return decide(res, cfg)


def decide(result: SpeakersResult, config: SpeakersConfig | None = None) -> SpeakersResult:
    """(Re)make the scores, speaking flags and segments of `result` from its tracks' agreement
    probabilities under `config` (hysteresis, `contrast`), in place; returns it."""
    cfg = (config or SpeakersConfig()).check()
    T = result.n_frames
    Z = np.full((len(result.tracks), T), np.nan)
    for i, t in enumerate(result.tracks):
        q = np.clip(t.agreement.astype(np.float64), 1e-6, 1 - 1e-6)
        Z[i, t.first : t.last + 1] = np.log(q / (1 - q))
    segments = []
    for i, t in enumerate(result.tracks):
        z = Z[i, t.first : t.last + 1]
        if cfg.contrast > 0 and len(result.tracks) > 1:
            others = np.delete(Z, i, 0)[:, t.first : t.last + 1]
            with np.errstate(all="ignore"):
                best = np.nanmax(np.where(np.isnan(others), -np.inf, others), 0)
            # lift a face that agrees better than every other face on screen (and lower one that agrees worse)
            z = np.where(np.isfinite(best), z + cfg.contrast * (z - best), z)
        p = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
        p[t.agreement <= 1e-6] = 0.0  # silence stays 0
        t.scores = p
        t.speaking = hysteresis(p, cfg.on, cfg.off, cfg.min_segment)
        for r0, r1 in runs(t.speaking):
            f0, f1 = t.first + r0, t.first + r1 - 1
            segments.append(
                {
                    "track": t.id,
                    "start_frame": f0,
                    "end_frame": f1,
                    "start_s": round(f0 / FPS, 3),
                    "end_s": round((f1 + 1) / FPS, 3),
                    "mean_score": round(float(p[r0:r1].mean()), 4),
                }
            )
    result.segments = sorted(segments, key=lambda d: (d["start_frame"], d["track"]))
    return result


def check_annotated_path(path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """`out` as a Path if it can take the annotated video (an .mp4 that is not the input), else AvrepError."""
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise AvrepError(f"{out}: the annotated video is an .mp4 file; give out a name ending in .mp4", param="out")
    if out.resolve() == Path(path).resolve():
        raise AvrepError(f"{out}: the annotated video must not overwrite the input", param="out")
    return out


def write_annotated(
    path: str | os.PathLike,
    result: SpeakersResult,
    out: str | os.PathLike,
    *,
    config: SpeakersConfig | None = None,
    progress: bool = True,
) -> Path:
    """Write `out` (.mp4): the video with every face boxed (green while speaking, grey otherwise, with its
    track id and score) and the original audio, decoded and encoded chunk by chunk (`avrep.io.encode.Mp4Writer`)."""

    import cv2
    from tqdm import tqdm

    from avrep.io.encode import Mp4Writer

    cfg = (config or SpeakersConfig()).check()
    out = check_annotated_path(path, out)
    info = media.probe(path)
    wav = media.fit_audio(media.read_audio(path, info=info, max_duration=cfg.max_duration), result.n_frames)
    with (
        ExitStack() as stack,
        tqdm(total=result.n_frames, desc="annotate", unit="frame", disable=not progress, leave=False) as bar,
    ):
        writer = None
        for s, e, v, _ in _chunks(path, info, cfg):
            frames = v.frames[: e - s].copy()
            if writer is None:
                writer = stack.enter_context(Mp4Writer(out, frames.shape[2], frames.shape[1], audio=wav, crf=20))
            th = max(1, round(frames.shape[2] / 320))
            for i in range(len(frames)):
                f = s + i
                for t in result.tracks:
                    if t.first <= f <= t.last:
                        x0, y0, x1, y1 = (t.boxes[f - t.first] / v.scale).round().astype(int).tolist()
                        col = (0, 220, 0) if t.speaking[f - t.first] else (160, 160, 160)
                        cv2.rectangle(frames[i], (x0, y0), (x1, y1), col, th)
                        label = f"{t.id}: {t.scores[f - t.first]:.2f}"
                        org = (x0, max(12, y0 - 4))
                        cv2.putText(frames[i], label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * th, col, th)
            writer.write(frames)
            bar.update(len(frames))
    return out


__all__ = [
    "SpeakerTrack",
    "SpeakersConfig",
    "SpeakersResult",
    "check_annotated_path",
    "decide",
    "hysteresis",
    "runs",
    "speakers",
    "speaking_scores",
    "write_annotated",
]

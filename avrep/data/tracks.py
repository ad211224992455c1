"""Face tracks: link per-frame face boxes into tracks by IoU, surviving missed detections.

The detector runs on key frames only (every K-th frame); `IoUTracker.update(frame, boxes)` matches the
boxes of one key frame to the live tracks greedily by IoU (best pairs first). A track that finds no box is
kept for `max_missed` more key frames (a turned head, a hand in front of the face, one frame HOG misses)
and then closed; boxes that match no track start new ones. `track_boxes` gives a track's box on every
frame of its span, interpolated linearly between the frames where it was detected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [N, 4] against b [M, 4] (x0, y0, x1, y1) -> [N, M]."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass
class FaceTrack:
    """One face over time: the key frames where it was detected and its box there."""

    id: int
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    missed: int = 0  # consecutive key frames without a match
    first_miss: int = -1  # the first of those key frames
    end: int | None = None  # last frame of the track once closed (the frame before the miss that closed it)

    @property
    def first(self) -> int:
        return self.frames[0]

    @property
    def last(self) -> int:
        return self.frames[-1] if self.end is None else self.end

    @property
    def box(self) -> np.ndarray:
        return self.boxes[-1]


class IoUTracker:
    """Greedy IoU linking of key-frame detections into tracks.

    iou_min: the least overlap that continues a track; max_missed: key frames a track may go without a
    detection before it is closed; `hold`: frames a track's last box is held after its last detection
    (so a face detected on key frame k is on frames k..k+hold until the next key frame says otherwise).
    """

    def __init__(self, iou_min: float = 0.3, max_missed: int = 2, hold: int = 0) -> None:
        self.iou_min = iou_min
        self.max_missed = max_missed
        self.hold = hold
        self.live: list[FaceTrack] = []
        self.done: list[FaceTrack] = []
        self._next = 0
        self._last_frame = -1

    def update(self, frame: int, boxes: np.ndarray) -> None:
        """Match the detections `boxes` [N, 4] of key frame `frame` (frames in increasing order)."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        matched_t: set[int] = set()
        matched_b: set[int] = set()
        if self.live and len(boxes):
            ious = iou_matrix(np.stack([t.box for t in self.live]), boxes)
            for ti, bi in sorted(np.argwhere(ious >= self.iou_min).tolist(), key=lambda p: -ious[p[0], p[1]]):
                if ti in matched_t or bi in matched_b:
                    continue
                matched_t.add(ti)
                matched_b.add(bi)
                tr = self.live[ti]
                tr.frames.append(frame)
                tr.boxes.append(boxes[bi])
                tr.missed = 0
        still = []
        for ti, tr in enumerate(self.live):
            if ti not in matched_t:
                tr.missed += 1
                if tr.missed == 1:
                    tr.first_miss = frame
                if tr.missed > self.max_missed:
                    tr.end = min(tr.frames[-1] + self.hold, tr.first_miss - 1)
                    self.done.append(tr)
                    continue
            still.append(tr)
        for bi in range(len(boxes)):
            if bi not in matched_b:
                still.append(FaceTrack(self._next, [frame], [boxes[bi]]))
                self._next += 1
        self.live = still
        self._last_frame = frame

    def finish(self, n_frames: int | None = None) -> list[FaceTrack]:
        """Close every track and return them all in id order; live tracks end at their last detection +
        `hold` (at most frame n_frames - 1)."""
        for tr in self.live:
            end = tr.frames[-1] + self.hold if tr.missed == 0 else min(tr.frames[-1] + self.hold, tr.first_miss - 1)
            tr.end = end if n_frames is None else min(end, n_frames - 1)
            self.done.append(tr)
        self.live = []
        return sorted(self.done, key=lambda t: t.id)


def track_boxes(track: FaceTrack) -> np.ndarray:
    """Box [L, 4] float32 on every frame first..last of `track`: linear between detections, the last one
    held to the end."""
    f = np.asarray(track.frames)
    b = np.stack(track.boxes).astype(np.float64)
    t = np.arange(track.first, track.last + 1)
    return np.stack([np.interp(t, f, b[:, k]) for k in range(4)], 1).astype(np.float32)


__all__ = ["FaceTrack", "IoUTracker", "iou_matrix", "track_boxes"]

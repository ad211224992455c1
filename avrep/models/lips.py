"""Lip geometry: the 20 mouth landmarks as an identity-invariant per-frame stream.

`lip_geometry(landmarks)` is the functional core, `LipGeometry` the `nn.Module` a video encoder holds.
Input: dlib/iBUG 68-point landmarks [B, T, 68, 2] in pixels of any frame (source or crop); output
[B, T, LIP_FEATURES] float32 per frame:

* pose and size: each clip is rotated so its eye line is level and scaled by its inter-ocular distance
  (the clip's median, so detector jitter on the eyes does not shake the mouth), and every frame is moved
  so the eye-and-nose-bridge centre is the origin (head translation removed);
* who it is: the clip's mean mouth shape is subtracted, so what is left is how the mouth moves, not the
  shape of this person's resting mouth (the same idea as subtracting the clip's mean mouth image);
* 20 points (x, y) relative to that mean, their velocities (frame t - frame t-1), and 5 scale-free
  openings (three inner-lip heights, outer height, width, each minus its clip mean).

Missing faces are the caller's business (the store fills them by interpolation).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from avrep.conventions import N_LANDMARKS
from avrep.data.ibug import LEFT_EYE, MOUTH, NOSE_BRIDGE, RIGHT_EYE

_EYES_NOSE = [*range(NOSE_BRIDGE.start, NOSE_BRIDGE.stop), *range(LEFT_EYE.start, RIGHT_EYE.stop)]  # stable origin
_OPENINGS = ((61, 67), (62, 66), (63, 65), (51, 57))  # inner-lip heights and the outer height
_N_MOUTH = MOUTH.stop - MOUTH.start
OPENING_FEATURES = len(_OPENINGS) + 1  # the last columns of lip_geometry: the openings and the width
LIP_FEATURES = _N_MOUTH * 2 * 2 + OPENING_FEATURES  # points and velocities (x, y), openings + width


def lip_geometry(landmarks: torch.Tensor) -> torch.Tensor:
    """[B, T, 68, 2] landmarks (pixels) -> [B, T, LIP_FEATURES] pose-, size- and identity-normalised lip motion."""
    if landmarks.dim() != 4 or landmarks.shape[-2:] != (N_LANDMARKS, 2):
        raise ValueError(f"landmarks must be [B, T, {N_LANDMARKS}, 2], got {tuple(landmarks.shape)}")
    lm = landmarks.float()
    le, re = lm[:, :, LEFT_EYE].mean(2), lm[:, :, RIGHT_EYE].mean(2)  # [B, T, 2]
    eye = re - le
    iod = eye.norm(dim=-1).median(dim=1).values.clamp(min=1.0)  # [B]: the clip's size
    ang = torch.atan2(eye[..., 1], eye[..., 0]).median(dim=1).values  # [B]: the clip's roll
    c, s = torch.cos(-ang), torch.sin(-ang)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # [B, 2, 2]
    origin = lm[:, :, _EYES_NOSE].mean(2, keepdim=True)  # [B, T, 1, 2]
    m = (lm[:, :, MOUTH] - origin) @ rot.transpose(1, 2)[:, None]  # row vectors: p @ R^T
    m = m / iod[:, None, None, None]
    rel = m - m.mean(1, keepdim=True)  # the clip's mean mouth shape removed
    vel = torch.diff(rel, dim=1, prepend=rel[:, :1])
    # openings are distances: rotation-free, only the scale matters
    heights = [(lm[:, :, a] - lm[:, :, b]).norm(dim=-1) for a, b in _OPENINGS]
    width = (lm[:, :, 54] - lm[:, :, 48]).norm(dim=-1)
    op = torch.stack(heights + [width], -1) / iod[:, None, None]  # [B, T, 5]
    op = op - op.mean(1, keepdim=True)
    B, T = lm.shape[:2]
    # scale so each group has roughly unit spread on real faces (points move ~0.02-0.1 IOD)
    return torch.cat([rel.reshape(B, T, -1) * 10.0, vel.reshape(B, T, -1) * 20.0, op * 10.0], -1)


class LipGeometry(nn.Module):
    """Per-frame lip-geometry branch: landmarks [B, T, 68, 2] -> [B, T, out] added to the pixel trunk's
    features. The last layer starts at zero, so a model initialised from a pixel-only run starts out as
    that run and learns how much of the geometry to use."""

    def __init__(self, out: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(LIP_FEATURES, hidden, 3, padding=1),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, hidden, 3, padding=1),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, out, 1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        g = lip_geometry(landmarks)  # [B, T, F]
        g = torch.nan_to_num(g).clamp(-20.0, 20.0)  # a bad detection must not blow up a batch
        return self.net(g.transpose(1, 2)).transpose(1, 2)


__all__ = ["LIP_FEATURES", "OPENING_FEATURES", "LipGeometry", "lip_geometry"]

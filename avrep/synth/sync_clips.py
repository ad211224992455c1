"""Synthetic talking sentences as lip landmarks + audio only (no frames rendered): new faces and voices
without limit for a sync model that reads lip geometry (`avrep.train.sync_loop`).

Each clip: 4-9 random words of the synthetic vocabulary spoken by a random espeak-ng voice (rate 130-230
wpm, pitch 25-75), silence of 3-12 frames at each end, the viseme articulation track of those phonemes
(`avrep.synth.visemes`), and the true 68 iBUG landmarks of a freshly sampled face identity under small
head motion and blinks, in the frames of `FaceRenderer(size)`. Audio and landmarks are in step by
construction (the track is computed from the audio's own phoneme timings).
"""

from __future__ import annotations

import math

import numpy as np

from avrep.conventions import MOUTH_LANDMARKS as MOUTH
from avrep.conventions import SAMPLE_RATE, SAMPLES_PER_FRAME

SPF = SAMPLES_PER_FRAME


# The renderer's visemes move the lips ~3x as far (and ~4x as fast) as the real speakers in the stores do
# (lip_geometry spread: synthetic 0.64 / 0.70 for points / velocities, lrc_ar 0.21 / 0.17, GRID s1 0.23 /
# 0.19): the mouth's motion about its mean shape is scaled by this so the two look alike to a sync model.
MOTION_SCALE = 0.33


def sentence(seed: int, size: int = 160, motion: float = MOTION_SCALE) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic clip, deterministic in `seed`: (landmarks float32 [T, 68, 2], audio float32 [T * SPF]);
    `motion` scales the mouth's movement about the clip's mean mouth."""
    from avrep.synth.corpus import load_vocabulary
    from avrep.synth.face import FaceRenderer, Identity, blink_track, head_motion
    from avrep.synth.speech import add_noise, list_voices, synthesize
    from avrep.synth.visemes import articulation_track

    rng = np.random.default_rng([int(seed), 0x5C])
    vocab, voices = load_vocabulary(), list_voices()
    words = [vocab[int(i)] for i in rng.integers(len(vocab), size=int(rng.integers(4, 10)))]
    voice = voices[int(rng.integers(len(voices)))]
    sp = synthesize(" ".join(words), voice=voice, rate=int(rng.integers(130, 231)), pitch=int(rng.integers(25, 76)))
    lead = int(rng.integers(3, 13))
    T = 2 * lead + math.ceil(len(sp.audio) / SPF)
    audio = np.zeros(T * SPF, np.float32)
    audio[lead * SPF : lead * SPF + len(sp.audio)] = sp.audio
    # a room's noise floor: digital silence is not what a microphone records
    audio = add_noise(audio, float(rng.uniform(20, 40)), rng, kind="pink").astype(np.float32)
    track = articulation_track(sp.phonemes, T, sample_rate=SAMPLE_RATE, offset_samples=-lead * SPF, voice=voice)
    face = FaceRenderer(Identity.sample(int(rng.integers(2**31 - 1))), size)
    poses, blinks = head_motion(T, rng), blink_track(T, rng)
    pts = np.stack([face.landmarks(np.clip(a, 0, 1), float(np.round(b * 8) / 8)) for a, b in zip(track, blinks)])
    mean = pts[:, MOUTH].mean(0)
    pts[:, MOUTH] = mean + (pts[:, MOUTH] - mean) * motion
    lms = np.empty((T, 68, 2), np.float32)
    for i in range(T):
        m = face.pose_matrix(poses[i])
        lms[i] = pts[i] @ m[:, :2].T + m[:, 2]
    return lms, audio


__all__ = ["sentence"]

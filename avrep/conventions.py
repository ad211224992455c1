"""avrep's conventions as code: the one place for each fixed fact every stage agrees on.

Pure constants; imports nothing from avrep, so any module (and the GPU scripts on a bare machine) can
import it. `docs/architecture.md` ("Conventions") describes the same facts in words.

Time
  Video runs at `FPS` (25) frames per second; audio is `SAMPLE_RATE` (16 kHz) mono float32 in [-1, 1];
  one video frame spans `SAMPLES_PER_FRAME` (640) audio samples, so sample n * 640 lines up with frame n.
  Audio features run at 100 Hz (hop `AUDIO_HOP` = 160 samples, window `AUDIO_WIN` = 400, FFT `AUDIO_N_FFT`):
  `FEATS_PER_FRAME` (4) feature frames per video frame.
Clips
  A word clip is `CLIP_FRAMES` (29) frames = 1.16 s = `CLIP_SAMPLES` (18,560) samples, LRW-style, with
  the word centred.
Images
  Mouth ROI: `MOUTH_SIZE` (96) square grayscale uint8; training takes random `MOUTH_CROP` (88) crops, eval
  the centre crop. Face crop: `FACE_SIZE` (128) square RGB uint8, aligned by the same similarity transform.
Landmarks
  dlib/iBUG `N_LANDMARKS` (68) points, float32 (x, y) in pixels of the frame; `MOUTH_LANDMARKS` are the
  mouth's (outer + inner lip).
Sync offset sign
  Positive offset = audio leads video (the audio is early): with an offset of o frames the sound of video
  frame t sits at audio frame t - o, and the file is put back in sync by delaying its audio by o frames
  (o * `FRAME_MS` ms). Offsets are reported in frames and in ms. This is SyncNet's convention too.
"""

from __future__ import annotations

# ---- time ---------------------------------------------------------------------------------------------
FPS: int = 25  # video frames per second (every decoder converts to this)
SAMPLE_RATE: int = 16000  # audio samples per second, mono
SAMPLES_PER_FRAME: int = SAMPLE_RATE // FPS  # 640 audio samples per video frame
FRAME_MS: float = 1000.0 / FPS  # 40.0 ms per video frame

# ---- audio features (100 Hz) ------------------------------------------------------------------------------
AUDIO_HOP: int = 160  # 10 ms hop
AUDIO_WIN: int = 400  # 25 ms window
AUDIO_N_FFT: int = 512
FEATS_PER_FRAME: int = SAMPLES_PER_FRAME // AUDIO_HOP  # 4 feature frames per video frame

# ---- clips ----------------------------------------------------------------------------------------------
CLIP_FRAMES: int = 29  # LRW-style word window (1.16 s), word centred
CLIP_SAMPLES: int = CLIP_FRAMES * SAMPLES_PER_FRAME  # 18,560

# ---- images ---------------------------------------------------------------------------------------------
MOUTH_SIZE: int = 96  # stored mouth ROI side (grayscale uint8)
MOUTH_CROP: int = 88  # model input side: random crop in training, centre crop in eval
FACE_SIZE: int = 128  # stored aligned face crop side (RGB uint8)

# ---- landmarks ------------------------------------------------------------------------------------------
N_LANDMARKS: int = 68  # dlib/iBUG point count
MOUTH_LANDMARKS: slice = slice(48, 68)  # outer (48-59) and inner (60-67) lip points

# ---- sync offsets ---------------------------------------------------------------------------------------
SYNC_SIGN: str = "positive = audio leads video (audio is early); fix by delaying the audio"

assert SAMPLE_RATE % FPS == 0 and SAMPLES_PER_FRAME % AUDIO_HOP == 0  # whole samples / features per frame

__all__ = [
    "FPS",
    "SAMPLE_RATE",
    "SAMPLES_PER_FRAME",
    "FRAME_MS",
    "AUDIO_HOP",
    "AUDIO_WIN",
    "AUDIO_N_FFT",
    "FEATS_PER_FRAME",
    "CLIP_FRAMES",
    "CLIP_SAMPLES",
    "MOUTH_SIZE",
    "MOUTH_CROP",
    "FACE_SIZE",
    "N_LANDMARKS",
    "MOUTH_LANDMARKS",
    "SYNC_SIGN",
]

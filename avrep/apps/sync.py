"""`avrep sync`: SyncNet-style audio-video offset of any talking-face clip, from the DAVS shared space.

Raw clip -> the training preprocessing (`avrep.preprocess.process_file`: 25 fps, dlib landmarks, aligned
96x96 mouth ROIs, 16 kHz audio at 640 samples/frame) -> per-frame video and audio features of the trained
word encoders (trained with a frame-level sync loss, so video frame t matches audio frame t) -> the
distance (1 - cosine) between video frame t and audio frame t - o for every offset o in -max..+max,
averaged over every frame of the clip -> offset, avrep-sync confidence (SyncNet's median - min distance, on
avrep's features), per-window offsets, and with the model's calibration P(offset right within +-1 frame).
A clip with no usable face or speech gets no offset and the reason.

Sign convention: positive offset = audio leads video (audio early); `--fix` delays it by that much.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avrep.apps.agreement import frame_features
from avrep.conventions import FRAME_MS
from avrep.conventions import SAMPLES_PER_FRAME as SPF
from avrep.device import resolve_device
from avrep.errors import AvrepError, MediaError
from avrep.eval.sync_metrics import SyncCalibration, SyncResult, sync_from_features, usable_evidence
from avrep.loader import open_model
from avrep.security import load_json_object


def load_model(checkpoint: str | os.PathLike | None, device: str = "cpu"):
    """-> (DAVS model in eval mode, config, words) (`avrep.loader.open_model`: argument, environment, shipped)."""
    m = open_model(checkpoint, "davs", device)
    return m.model, m.config, m.words


def sync_arrays(
    model,
    mouth: np.ndarray,
    audio: np.ndarray,
    max_offset: int = 15,
    *,
    device: str | torch.device = "cpu",
    window: int = 50,
    hop: int = 25,
    landmarks: np.ndarray | None = None,
    calibration: SyncCalibration | None = None,
) -> SyncResult:
    """Offset estimate for preprocessed arrays (mouth uint8 [T,96,96], audio [T*640], landmarks [T,68,2]
    for models that read lip geometry)."""
    vf, af = frame_features(model, mouth, audio, device=device, landmarks=landmarks)
    return sync_from_features(vf, af, max_offset, window=window, hop=hop, calibration=calibration)


def load_calibration(run: str | os.PathLike) -> SyncCalibration | None:
    """The model's sync calibration (`sync_calibration.json` beside its weights), or None if it has none."""
    p = Path(run) / SyncCalibration.FILE
    if not p.exists():
        return None
    try:
        return SyncCalibration.from_dict(load_json_object(p))
    except (KeyError, TypeError, ValueError) as e:
        raise AvrepError(f"{p}: not a sync calibration ({e})") from None


def sync_file(
    path: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    *,
    max_offset: int = 15,
    device: str = "auto",
    model=None,
    config=None,
    chunk_frames: int | None = None,
    max_duration: float | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Offset of one raw clip of any length -> JSON-able dict (offset in frames and ms, confidence, windows...).

    The video is streamed `chunk_frames` frames at a time (`avrep.apps.stream`: memory bounded by a chunk,
    features those of the whole file); the audio is read whole. `progress`: a bar over frames on stderr.
    """
    from avrep.apps.agreement import stream_features
    from avrep.apps.stream import CHUNK_FRAMES, mouth_chunks, progress_bar, stream_config, video_frame_features
    from avrep.io import media

    if max_offset < 0:
        raise AvrepError(f"max_offset {max_offset}: must be >= 0", param="max_offset")
    cfg = stream_config(config, max_duration).check()
    dev = resolve_device(device)
    run = None
    if model is None:
        m = open_model(checkpoint, "davs", dev)
        run, model = m.run_dir, m.model
    info = media.probe(path)
    if not info.has_video:
        raise MediaError(f"{info.path}: no video stream")
    if not info.has_audio:
        raise MediaError(f"{info.path}: no audio stream")
    media.check_limits(info, cfg.max_duration, cfg.max_pixels)
    wav = media.read_audio(path, info=info, max_duration=cfg.max_duration)  # whole: 38 MB for 10 minutes
    if not np.any(np.abs(wav) > 1e-4):
        raise MediaError(f"{path}: the audio track is silent; nothing to synchronise")
    bar = progress_bar(info.n_frames_25, "sync", progress)
    chunks = mouth_chunks(path, info, cfg, chunk_frames=chunk_frames or CHUNK_FRAMES, on_chunk=bar.update)
    vf, face_mask, n_faces = video_frame_features(model, chunks, device=dev)
    bar.close()
    T = len(vf)
    if T < 5:
        raise MediaError(f"{path}: only {T} frames; sync needs at least 5 (0.2 s)")
    wav = media.fit_audio(wav, T)
    if not np.any(np.abs(wav) > 1e-4):
        raise MediaError(f"{path}: the audio track is silent; nothing to synchronise")
    # several faces: measure on the one that speaks, not the largest
    d = _sync_speaking_track(path, model, dev, max_offset, cfg.max_duration) if n_faces > 1 else None
    if d is None:
        af = stream_features(model, wav, False, device=dev)
        calib = load_calibration(run if run is not None else checkpoint) if (run or checkpoint) else None
        r = sync_from_features(vf, af, max_offset, calibration=calib)
        reason = usable_evidence(face_mask, wav, T)
        d = (r.withhold(reason) if reason else r).to_dict()
        d["face_frames"] = int(face_mask.sum())
    d.update(
        path=str(path),
        duration_s=round(T * FRAME_MS / 1000, 3),
        checkpoint=str(run) if run is not None else str(checkpoint) if checkpoint else None,
    )
    if "speaker_track" not in d and d["face_frames"] < T:
        d["note"] = f"no face in {T - d['face_frames']} of {T} frames (landmarks interpolated there)"
    return d


def _sync_speaking_track(
    path, model, device, max_offset: int, max_duration: float | None = None
) -> dict[str, Any] | None:
    """Offset measured on the speaking face of a video with several (`avrep.apps.speakers`): the track that
    speaks most, or, where none is found speaking (a large offset hides the agreement the speaker score
    looks for near 0), the track whose offset stands out most (SyncNet confidence). None when only one
    face lasts long enough to be a track (a stray detection): the single-face path then applies."""
    from avrep.apps.speakers import SpeakersConfig, speakers
    from avrep.eval.sync_metrics import sync_from_features

    cfg = SpeakersConfig() if max_duration is None else SpeakersConfig(max_duration=max_duration)
    sp = speakers(path, model=model, config=cfg, device=str(device), progress=False)
    if len(sp.tracks) < 2:
        return None
    per = {
        t.id: sync_from_features(t.video_features, sp.audio_features[t.first : t.last + 1], max_offset)
        for t in sp.tracks
    }
    main = sp.main_track()
    if main is None or not main.speaking.any():
        main = max(sp.tracks, key=lambda t: per[t.id].confidence)
        how = "no face found speaking; the track with the clearest offset"
    else:
        how = f"speaking {int(main.speaking.sum())} of {main.last - main.first + 1} frames"
    d = per[main.id].to_dict()
    d.update(
        speaker_track=main.id,
        n_tracks=len(sp.tracks),
        face_frames=main.last - main.first + 1,
        track_frames=[main.first, main.last],
        note=f"{len(sp.tracks)} faces: measured on track {main.id} ({how}); see `avrep speakers`",
    )
    return d


def shift_audio(wav: np.ndarray, delay_frames: int) -> np.ndarray:
    """Delay audio by `delay_frames` video frames (negative: advance), same length, silence padded."""
    n = wav.size
    k = int(delay_frames) * SPF
    if k > 0:
        return np.concatenate([np.zeros(min(k, n), np.float32), wav[: max(0, n - k)]])
    if k < 0:
        return np.concatenate([wav[-k:], np.zeros(min(-k, n), np.float32)])
    return wav.copy()


def fix_file(path: str | os.PathLike, out: str | os.PathLike, offset_frames: int) -> Path:
    """Write `out` (mp4): the clip's frames at 25 fps with the audio delayed by `offset_frames`.

    Video is re-encoded (H.264, CRF 18) at its own resolution when that fits in memory, audio as AAC
    16 kHz mono; the result plays in sync when the estimate was right.
    """
    from avrep.io import media
    from avrep.io.encode import write_mp4

    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise AvrepError(f"{out}: the re-synced copy is an .mp4 file; give fix a name ending in .mp4", param="fix")
    if out.resolve() == Path(path).resolve():
        raise AvrepError(f"{out}: the re-synced copy must not overwrite the input", param="fix")
    info = media.probe(path)
    n = max(1, info.n_frames_25)
    side = max(info.width, info.height)
    # full resolution unless that would need more than ~2 GB of frames
    max_side = side if info.width * info.height * 3 * n < 2e9 else media.DECODE_MAX_SIDE
    video, wav = media.read_av(path, max_side=max(64, max_side))
    write_mp4(out, video.frames, shift_audio(wav, offset_frames))
    return out


__all__ = [
    "fix_file",
    "frame_features",
    "load_model",
    "shift_audio",
    "sync_arrays",
    "sync_file",
]

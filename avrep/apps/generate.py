"""`avrep generate`: a talking-face video from one photo and speech (an audio file or a driving video).

Pipeline: dlib finds the face in the photo -> similarity alignment to the mean face -> 128x128 face crop
(the reference) -> speech features per 29-frame window (hop 15, triangular blending of the per-frame
conditioning where windows overlap, so audio of any length works and window seams do not jump) ->
the generator decodes every frame once -> each generated crop is warped back into the photo by the
inverse similarity transform and blended with a feathered lower-face mask -> H.264 + AAC mp4.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from avrep.conventions import CLIP_FRAMES as WINDOW
from avrep.conventions import FACE_SIZE, FPS
from avrep.conventions import SAMPLES_PER_FRAME as SPF
from avrep.data.align import FACE_BOX, MEAN_FACE, STABLE_POINTS, compose, similarity
from avrep.device import resolve_device
from avrep.errors import AvrepError, MediaError, NoFaceError
from avrep.io import media
from avrep.utils import window_starts as _window_starts

HOP = 15
MAX_PHOTO_SIDE = 4096


def read_photo(path: str | os.PathLike) -> np.ndarray:
    """RGB uint8 [H, W, 3]; MediaError for missing/unreadable images."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise MediaError(f"{p}: file not found")
    img = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if img is None:
        raise MediaError(f"{p}: not a readable image")
    if max(img.shape[:2]) > MAX_PHOTO_SIDE:
        raise MediaError(f"{p}: image {img.shape[1]}x{img.shape[0]} is larger than {MAX_PHOTO_SIDE} px")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def face_transform(photo: np.ndarray, name: str = "photo") -> tuple[np.ndarray, np.ndarray]:
    """(2x3 photo px -> 128x128 face-crop px, landmarks [68, 2]) of the largest face; NoFaceError if none."""
    import cv2

    from avrep.data.landmarks import detect_faces, detect_faces_cnn, predict_landmarks

    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    boxes = detect_faces(gray)
    if len(boxes) == 0:
        boxes = detect_faces_cnn(gray)
    if len(boxes) == 0:
        raise NoFaceError(f"{name}: no face found in the photo")
    lm = predict_landmarks(gray, boxes[0])
    M = similarity(lm[list(STABLE_POINTS)], MEAN_FACE[list(STABLE_POINTS)])
    fx0, fy0, fx1, _ = FACE_BOX
    s = FACE_SIZE / (fx1 - fx0)
    to_face = np.array([[s, 0, -fx0 * s], [0, s, -fy0 * s]])
    return compose(to_face, M), lm


def paste_mask(size: int = FACE_SIZE) -> np.ndarray:
    """Feathered lower-face mask in face-crop pixels, float32 [S, S] in [0, 1]."""
    import cv2

    from avrep.models.generator import default_mouth_centre

    m = np.zeros((size, size), np.float32)
    c = default_mouth_centre() * size / FACE_SIZE
    cv2.ellipse(
        m, (int(round(c[0])), int(round(c[1] + 0.04 * size))), (int(0.34 * size), int(0.3 * size)), 0, 0, 360, 1.0, -1
    )
    return cv2.GaussianBlur(m, (0, 0), 0.05 * size)


def paste_back(photo: np.ndarray, crops: np.ndarray, A: np.ndarray, ref_seen: np.ndarray | None = None) -> np.ndarray:
    """Warp generated 128x128 crops [T, S, S, 3] into the photo (inverse of A) and blend with a feathered mask.

    ref_seen: the reference crop as the generator saw it (resized to its size and back). When given, only the
    change the generator made (crop - ref_seen) is warped back and added to the photo, so a low-resolution
    generator moves the mouth without blurring the photo's own detail (skin, stubble, teeth edges)."""
    import cv2

    H, W = photo.shape[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    mask = cv2.warpAffine(paste_mask(crops.shape[1]), A, (W, H), flags=flags, borderValue=0)[..., None]
    base = photo.astype(np.float32)
    out = np.empty((len(crops), H, W, 3), np.uint8)
    ref = None if ref_seen is None else ref_seen.astype(np.float32)
    for t, c in enumerate(crops):
        if ref is None:
            g = cv2.warpAffine(c, A, (W, H), flags=flags, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            out[t] = np.clip(mask * g + (1 - mask) * base + 0.5, 0, 255).astype(np.uint8)
        else:
            d = cv2.warpAffine(c.astype(np.float32) - ref, A, (W, H), flags=flags, borderMode=cv2.BORDER_REPLICATE)
            out[t] = np.clip(base + mask * d + 0.5, 0, 255).astype(np.uint8)
    return out


@torch.no_grad()
def seen_by(G, crop: np.ndarray) -> np.ndarray:
    """A 128x128 uint8 crop as a generator of another size sees it (its resize, then the same bilinear
    upsampling `generate_frames` applies), float32 0..255 [128, 128, 3]."""
    x = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None].float() / 255
    return (to_face_size(G.resize(x))[0].permute(1, 2, 0).numpy() * 255).astype(np.float32)


def to_face_size(y: torch.Tensor) -> torch.Tensor:
    """Generator output [N, 3, S, S] -> [N, 3, 128, 128] (bilinear), as every crop leaves `generate_frames`."""

    if y.shape[-1] == FACE_SIZE:
        return y
    return F.interpolate(y, size=(FACE_SIZE, FACE_SIZE), mode="bilinear", align_corners=False)


def check_speech(audio: np.ndarray, name: str) -> None:
    """Energy check: refuse silent or near-silent audio (no 40 ms frame above -40 dBFS)."""
    n = len(audio) // SPF
    if n == 0:
        raise AvrepError(f"{name}: audio shorter than one video frame (40 ms)")
    rms = np.sqrt((audio[: n * SPF].reshape(n, SPF).astype(np.float64) ** 2).mean(1))
    db = 20 * np.log10(np.maximum(rms, 1e-10))
    if (db > -40).sum() < 3:
        raise AvrepError(f"{name}: no speech found (audio is silent: peak level {db.max():.0f} dBFS)")


def window_starts(T: int, window: int = WINDOW, hop: int = HOP) -> list[int]:
    """Window starts covering [0, T) (the last window ends at T)."""
    return _window_starts(T, window, hop)


@torch.no_grad()
def conditioning(
    G,
    davs,
    T: int,
    audio: np.ndarray | None = None,
    mouth: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    window: int = WINDOW,
    hop: int = HOP,
) -> torch.Tensor:
    """Per-frame generator conditioning [T, C] over sliding windows, blended with triangular weights."""
    L = max(T, window)
    if audio is not None:
        audio = np.concatenate([audio, np.zeros(max(0, L * SPF - len(audio)), np.float32)])[: L * SPF]
    if mouth is not None and len(mouth) < L:
        mouth = np.concatenate([mouth, np.repeat(mouth[-1:], L - len(mouth), 0)])
    w = np.minimum(np.arange(1, window + 1), np.arange(window, 0, -1)).astype(np.float32)
    acc, wsum = None, np.zeros(L, np.float32)
    for s in window_starts(L, window, hop):
        if mouth is not None:
            sp = davs.frame_features_video(
                torch.from_numpy(np.ascontiguousarray(mouth[s : s + window]))[None].to(device)
            )
        else:
            wave = torch.from_numpy(audio[s * SPF : (s + window) * SPF])[None].to(device)
            sp = davs.frame_features_audio(wave) if davs is not None else G.speech_features(wave)
        c = G.condition(sp.float())[0].cpu().numpy()
        if acc is None:
            acc = np.zeros((L, c.shape[-1]), np.float32)
        acc[s : s + window] += c * w[:, None]
        wsum[s : s + window] += w
    return torch.from_numpy(acc[:T] / wsum[:T, None])


@torch.no_grad()
def generate_frames(
    G,
    ref: np.ndarray,
    cond: torch.Tensor,
    batch: int = 16,
    progress: bool = True,
    device: str | torch.device = "cpu",
    pose: np.ndarray | None = None,
) -> np.ndarray:
    """Decode face crops uint8 [T, 128, 128, 3] from a reference crop [128, 128, 3] and cond [T, C], `batch`
    frames at a time through the generator's forward (the path training takes).

    pose: optional target frames [T, 128, 128, 3] whose upper half sets head pose and everything but the
    mouth (their lower half is masked inside the model) - the dubbing setting, as in Wav2Lip; without it
    every frame keeps the reference's pose."""
    T = len(cond)
    if pose is not None and len(pose) != T:
        raise ValueError(f"pose has {len(pose)} frames, conditioning {T}")
    ref_t = torch.from_numpy(np.ascontiguousarray(ref.transpose(2, 0, 1)))[None].to(device)
    out = np.empty((T, FACE_SIZE, FACE_SIZE, 3), np.uint8)
    it = range(0, T, batch)
    if progress:
        it = tqdm(it, desc="generate", unit="batch", total=(T + batch - 1) // batch)
    for s in it:
        p = None
        if pose is not None:
            p = torch.from_numpy(np.ascontiguousarray(pose[s : s + batch].transpose(0, 3, 1, 2)))[None].to(device)
        y = to_face_size(G(ref_t, pose=p, cond=cond[None, s : s + batch].to(device))[0])
        out[s : s + len(y)] = (y.clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).cpu().numpy()
    return out


def driving_video(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Mouth ROIs [T, 96, 96] of the driving video and its audio (None if it has none)."""
    from avrep.data.align import crop_clip
    from avrep.data.landmarks import track_landmarks

    info = media.probe(path)
    video = media.read_video(path, info=info)
    tr = track_landmarks(video.frames, scale=video.scale, name=str(path))
    crops = crop_clip(video.frames, tr.landmarks, frame_scale=video.scale, want_face=False)
    audio = media.fit_audio(media.read_audio(path, info=info), len(video.frames)) if info.has_audio else None
    return crops.mouth, audio


def generate_video(
    face: str | os.PathLike,
    out: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    audio: str | os.PathLike | None = None,
    video: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    batch: int = 16,
    chunk: int = 250,
) -> dict[str, Any]:
    """Write a talking-face mp4 for `face` driven by `audio` or `video`; returns a summary dict.
    `device`: auto, cpu, cuda or cuda:N (avrep.device.resolve_device); `chunk`: frames decoded, pasted and
    encoded at a time (memory does not grow with the length of the speech).
    `checkpoint`: a generator run, a DAVS run holding generator/, or None for the shipped generator."""
    from avrep.io.encode import Mp4Writer
    from avrep.loader import open_model

    if (audio is None) == (video is None):
        raise AvrepError("give exactly one of audio or video", param=("audio", "video"))
    photo = read_photo(face)
    A, lm = face_transform(photo, str(face))
    device = resolve_device(device)
    m = open_model(checkpoint, "generator", device, quiet=not progress)
    G, davs = m.model, m.davs
    import cv2

    ref = cv2.warpAffine(photo, A, (FACE_SIZE, FACE_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    t0 = time.perf_counter()
    if audio is not None:
        wav = media.read_audio(audio)
        check_speech(wav, str(audio))
        T = int(np.ceil(len(wav) / SPF))
        wav = media.fit_audio(wav, T)
        cond = conditioning(G, davs, T, audio=wav, device=device)
    else:
        if davs is None:
            raise AvrepError(
                f"{checkpoint}: a driving video needs a generator trained with a DAVS run (davs); "
                "this one has its own audio encoder only",
                param="video",
            )
        mouth, wav = driving_video(video)
        T = len(mouth)
        cond = conditioning(G, davs, T, mouth=mouth, device=device)
    # chunk by chunk: decode, paste back, encode; memory stays bounded for audio of any length

    seen = seen_by(G, ref)
    H, W = photo.shape[:2]
    bar = tqdm(total=T, desc="generate", unit="frame", disable=not progress)
    with Mp4Writer(out, W, H, wav) as writer:
        for s in range(0, T, chunk):
            crops = generate_frames(G, ref, cond[s : s + chunk], batch=batch, progress=False, device=device)
            writer.write(paste_back(photo, crops, A, ref_seen=seen))
            bar.update(len(crops))
    bar.close()
    gen_s = time.perf_counter() - t0
    return {
        "out": str(out),
        "frames": T,
        "seconds": T / FPS,
        "generate_fps": T / max(gen_s, 1e-9),
        "face_landmarks": lm.tolist(),
        "size": [int(photo.shape[1]), int(photo.shape[0])],
    }

"""Encoders/decoders for the compact feature store's per-sample arrays (bytes in, arrays out).

Video (mouth ROI uint8 [T, 96, 96], face crop uint8 [T, 128, 128, 3]) as H.264 mp4 (lossy, `crf`), FFV1
(lossless) or per-frame JPEG/PNG/WebP; audio float32 [T*640] as 16-bit FLAC (quantised to int16, error
<= 1/32767) or raw int16; small arrays (landmarks, face mask) as .npy. The choice for the store is
made by measurement (benchmarks/scale.py, docs/architecture.md); the others stay for that table.
"""

from __future__ import annotations

import io

import numpy as np

from avrep.conventions import FPS, SAMPLE_RATE

VIDEO_CODECS = ("h264", "ffv1", "jpeg", "png", "webp")
# Chosen by measurement (benchmarks/results/scale.json): mouth crf 20 cost the shipped model 0.6 points of
# GRID s1 video top-1 (88.3 vs 89.0%), crf 18 none (89.0%) for 5% more store bytes.
DEFAULT_CRF = {"mouth": 18, "face": 22}
DEFAULT_PRESET = "veryfast"  # half medium's encode time for ~the same bytes (measured on the tiny corpus)


def _pad_even(frames: np.ndarray) -> np.ndarray:
    """Even sides (H.264 macroblock rows): pad by repeating the last row/column (cut again on decode)."""
    h, w = frames.shape[1:3]
    ph, pw = h % 2, w % 2
    if not (ph or pw):
        return frames
    pad = [(0, 0), (0, ph), (0, pw)] + [(0, 0)] * (frames.ndim - 3)
    return np.pad(frames, pad, mode="edge")


def encode_video(
    frames: np.ndarray, codec: str = "h264", crf: int = 23, quality: int = 90, preset: str = "medium"
) -> bytes:
    """uint8 [T, H, W] (gray) or [T, H, W, 3] (RGB) -> bytes in `codec` (see VIDEO_CODECS)."""
    frames = np.ascontiguousarray(frames, np.uint8)
    gray = frames.ndim == 3
    if codec in ("jpeg", "png", "webp"):
        return _encode_images(frames, codec, quality)
    import av

    buf = io.BytesIO()
    fmt = "mp4" if codec == "h264" else "matroska"
    with av.open(buf, "w", format=fmt) as c:
        if codec == "h264":
            s = c.add_stream("libx264", rate=FPS)
            # Planes go in and come out as they are (no swscale): gray rides in Y (flat chroma), RGB as
            # full-range YCrCb, both yuv444p. swscale's conversions cost 10x the decode itself.
            s.pix_fmt = "yuv444p"
            # A store must be the same bytes for the same input: one thread, and no macroblock tree (with
            # mbtree, libx264 gave different bytes for the same 96x96 frames after a decode in the same
            # process, measured; it costs ~1/3 more bytes at one crf, so the crfs are 2 lower than they
            # would be with it)
            s.codec_context.thread_count = 1
            s.codec_context.thread_type = "NONE"
            s.options = {
                "crf": str(crf),
                "preset": preset,
                "threads": "1",
                "x264-params": "threads=1:lookahead-threads=1:mbtree=0",
            }
            frames = _pad_even(frames)
        elif codec == "ffv1":
            s = c.add_stream("ffv1", rate=FPS)
            s.pix_fmt = "gray" if gray else "bgr0"
            s.options = {"threads": "1", "level": "3", "slices": "4", "context": "1"}
        else:
            raise ValueError(f"unknown video codec {codec!r}")
        s.width, s.height = frames.shape[2], frames.shape[1]
        for i, f in enumerate(frames):
            vf = _to_frame(f, codec)
            vf.pts = i  # explicit timestamps: rate control must not see whatever an unset pts holds
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def _planes_frame(planes: list[np.ndarray], fmt: str):
    """A VideoFrame whose buffers, padding included, are exactly these planes (zeros past the width):
    av's buffer pool hands out recycled memory, and x264 reads the row padding, so an uninitialised pad
    made the same frames encode to different bytes after a decode in the same process."""
    import av

    h, w = planes[0].shape
    vf = av.VideoFrame(w, h, fmt)
    for p, a in zip(vf.planes, planes):
        full = np.zeros((p.buffer_size // p.line_size, p.line_size), np.uint8)
        full[: a.shape[0], : a.shape[1]] = a
        p.update(full.tobytes())
    return vf


def _to_frame(f: np.ndarray, codec: str):
    if codec == "ffv1":
        import av

        return av.VideoFrame.from_ndarray(f, format="gray" if f.ndim == 2 else "rgb24")
    if f.ndim == 2:
        c = np.full(f.shape, 128, np.uint8)  # 4:4:4 too: x264's 4:2:0 chroma copy over-reads the buffer
        return _planes_frame([f, c, c], "yuv444p")
    import cv2

    ycc = cv2.cvtColor(f, cv2.COLOR_RGB2YCrCb)
    # yuv444p planes are Y, U (=Cb), V (=Cr)
    return _planes_frame([ycc[..., 0], ycc[..., 2], ycc[..., 1]], "yuv444p")


def _from_frame(f, codec: str, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    if codec == "ffv1":
        return f.to_ndarray(format="gray" if len(shape) == 2 else "rgb24")
    if len(shape) == 2:  # the Y plane alone, copied out of the frame's (padded) buffer
        p = f.planes[0]
        return np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:h, :w].copy()
    a = f.to_ndarray()
    import cv2

    ycc = np.stack([a[0, :h, :w], a[2, :h, :w], a[1, :h, :w]], axis=-1)  # Y, V (=Cr), U (=Cb)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def decode_video(data: bytes, codec: str, shape: tuple[int, ...], stop: int | None = None) -> np.ndarray:
    """bytes -> uint8 [T, *shape]; `shape` is (H, W) for gray or (H, W, 3) for RGB. `stop`: decode only the
    first `stop` frames (a clip window early in a long sample needs no more)."""
    if codec in ("jpeg", "png", "webp"):
        return _decode_images(data, shape, stop)
    import av

    out = []
    with av.open(io.BytesIO(data)) as c:
        s = c.streams.video[0]
        s.thread_type = "NONE"
        for f in c.decode(s):
            out.append(_from_frame(f, codec, shape))
            if stop is not None and len(out) >= stop:
                break
    if not out:
        return np.zeros((0, *shape), np.uint8)
    return np.stack(out)


def _encode_images(frames: np.ndarray, codec: str, quality: int) -> bytes:
    """Per-frame images, each prefixed by its byte length (uint32), in one blob."""
    import cv2

    ext, params = {
        "jpeg": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality]),
        "png": (".png", [cv2.IMWRITE_PNG_COMPRESSION, 9]),
        "webp": (".webp", [cv2.IMWRITE_WEBP_QUALITY, quality]),
    }[codec]
    parts = []
    for f in frames:
        img = f if f.ndim == 2 else f[..., ::-1]  # cv2 wants BGR
        ok, b = cv2.imencode(ext, img, params)
        if not ok:
            raise ValueError(f"cannot encode a frame as {codec}")
        parts += [np.uint32(len(b)).tobytes(), b.tobytes()]
    return b"".join(parts)


def _decode_images(data: bytes, shape: tuple[int, ...], stop: int | None) -> np.ndarray:
    import cv2

    out, pos, mv = [], 0, memoryview(data)
    flag = cv2.IMREAD_GRAYSCALE if len(shape) == 2 else cv2.IMREAD_COLOR
    while pos < len(data) and (stop is None or len(out) < stop):
        n = int(np.frombuffer(mv[pos : pos + 4], np.uint32)[0])
        img = cv2.imdecode(np.frombuffer(mv[pos + 4 : pos + 4 + n], np.uint8), flag)
        out.append(img if img.ndim == 2 else img[..., ::-1])
        pos += 4 + n
    return np.stack(out) if out else np.zeros((0, *shape), np.uint8)


def audio_to_int16(audio: np.ndarray) -> np.ndarray:
    return np.round(np.clip(np.asarray(audio, np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)


def encode_audio(audio: np.ndarray, codec: str = "flac") -> bytes:
    """float32 [-1, 1] -> FLAC bytes (16-bit) or raw int16 .npy bytes."""
    pcm = audio_to_int16(audio)
    if codec == "int16":
        return encode_npy(pcm)
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16", compression_level=1.0)  # 3% smaller, measured
    return buf.getvalue()


def decode_audio(data: bytes, codec: str = "flac") -> np.ndarray:
    """-> float32 [N] in [-1, 1]."""
    if codec == "int16":
        pcm = decode_npy(data)
    else:
        import soundfile as sf

        pcm, _ = sf.read(io.BytesIO(data), dtype="int16", always_2d=False)
    return pcm.astype(np.float32) * np.float32(1 / 32767.0)


LANDMARK_STEP = 16  # landmarks kept to 1/16 px: error <= 1/32 px, far below a detector's ~1 px


def encode_landmarks(lm: np.ndarray) -> bytes:
    """float32 [T, 68, 2] -> zlib of int32 frame-to-frame deltas in 1/16 px (tag b"Q"); arrays with
    non-finite or huge values are kept exact (tag b"F"). 61-111 B/frame measured vs 544 raw."""
    import zlib

    lm = np.asarray(lm, np.float32)
    if lm.size and np.isfinite(lm).all() and np.abs(lm).max() < 2**26 / LANDMARK_STEP:
        q = np.round(lm.astype(np.float64) * LANDMARK_STEP).astype(np.int32)
        d = np.diff(q, axis=0, prepend=np.zeros_like(q[:1]))
        return b"Q" + zlib.compress(encode_npy(d), 9)
    return b"F" + zlib.compress(encode_npy(lm), 9)


def decode_landmarks(data: bytes) -> np.ndarray:
    import zlib

    a = decode_npy(zlib.decompress(data[1:]))
    if data[:1] == b"F":
        return a
    return (np.cumsum(a, axis=0, dtype=np.int64) / LANDMARK_STEP).astype(np.float32)


def encode_npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def decode_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)

"""What avrep reads from a file, on its clock: stream start times, rates, frame counts and the A/V offset
it applies (`avrep probe`). Decodes the video's timestamps, so variable frame rate shows as it is."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from avrep.conventions import FPS, SAMPLE_RATE
from avrep.errors import MediaError
from avrep.io.media import MAX_DURATION, _short, check_limits, frames_at_25, probe


def describe(path: str | os.PathLike, *, max_duration: float = MAX_DURATION) -> dict[str, Any]:
    """Streams, start times, frame timing (from decoded timestamps) and the 25 fps / 16 kHz result."""
    import av

    info = probe(path)
    check_limits(info, max_duration)
    out: dict[str, Any] = {"path": info.path, "container": info.container, "duration_s": round(info.duration, 3)}
    times: list[float] = []
    audio_first: float | None = None
    try:
        with av.open(info.path) as c:
            vs = c.streams.video[0] if c.streams.video else None
            as_ = c.streams.audio[0] if c.streams.audio else None
            if vs is not None:
                vs.thread_type = "AUTO"
                for f in c.decode(vs):
                    if f.time is not None:
                        times.append(float(f.time))
                    if len(times) > (max_duration + 1) * 240:
                        raise MediaError(
                            f"{info.path}: video longer than max_duration {max_duration:g}s", param="max_duration"
                        )
            if as_ is not None:
                c.seek(0)
                for f in c.decode(as_):
                    if f.time is not None:
                        audio_first = float(f.time)
                        break
    except MediaError:
        raise
    except Exception as e:
        raise MediaError(f"{info.path}: cannot decode ({_short(e)})") from None
    v0 = info.video_start
    if info.has_video:
        t = np.asarray(times, np.float64)
        d = np.diff(t) if len(t) > 1 else np.zeros(0)
        vfr = bool(len(d) and (d.max() - d.min()) > 0.25 * max(float(np.median(d)), 1e-6))
        # the same count read_video produces: the last frame lasts as long as the interval before it
        last_step = min(float(d[-1]), 1.0) if len(d) else 1.0 / (info.fps or FPS)
        n_out = frames_at_25(float(t[-1]) - v0, last_step) if len(t) else 0
        out["video"] = {
            "codec": info.video_codec,
            "size": [info.width, info.height],
            "fps_declared": round(info.fps, 3),
            "frames_decoded": len(t),
            "start_s": round(v0, 4),
            "first_frame_s": round(float(t[0]), 4) if len(t) else None,
            "frame_interval_ms": [round(float(d.min()) * 1000, 2), round(float(d.max()) * 1000, 2)] if len(d) else None,
            "variable_frame_rate": vfr,
            "frames_at_25fps": max(n_out, 0),
        }
    if info.has_audio:
        a0 = audio_first if audio_first is not None else info.audio_start
        offset_ms = (a0 - v0) * 1000.0 if info.has_video else 0.0
        action = (
            "none"
            if abs(offset_ms) < 0.5
            else f"pad {offset_ms:.1f} ms of silence before the audio"
            if offset_ms > 0
            else f"drop the first {-offset_ms:.1f} ms of audio (before the first video frame)"
        )
        out["audio"] = {
            "codec": info.audio_codec,
            "sample_rate": info.sample_rate,
            "channels": info.channels,
            "start_s": round(a0, 4),
            "resampled_to": SAMPLE_RATE,
            "offset_vs_video_ms": round(offset_ms, 2),
            "applied": action,
        }
    out["decoder"] = "PyAV, frames placed by presentation timestamp, resampled to 25 fps"
    return out


def format_description(d: dict[str, Any]) -> str:
    """Human-readable lines for `avrep probe`."""
    lines = [f"{d['path']}: {d['container']}, {d['duration_s']:.2f} s"]
    v = d.get("video")
    if v:
        iv = v["frame_interval_ms"]
        lines.append(
            f"  video: {v['codec']} {v['size'][0]}x{v['size'][1]}, {v['fps_declared']:g} fps declared"
            f"{' (variable frame rate)' if v['variable_frame_rate'] else ''}, {v['frames_decoded']} frames,"
            f" starts at {v['start_s']:.3f} s (first frame {v['first_frame_s']} s)"
            + (f", frame interval {iv[0]:g}-{iv[1]:g} ms" if iv else "")
        )
        lines.append(
            f"  -> {v['frames_at_25fps']} frames at 25 fps (frame k = [k/25, (k+1)/25) s after the video start)"
        )
    else:
        lines.append("  video: none")
    a = d.get("audio")
    if a:
        lines.append(
            f"  audio: {a['codec']} {a['sample_rate']} Hz x{a['channels']}, starts at {a['start_s']:.3f} s"
            f" -> {a['resampled_to']} Hz mono"
        )
        lines.append(
            f"  A/V offset: audio starts {a['offset_vs_video_ms']:+.1f} ms from the video; applied: {a['applied']}"
        )
    else:
        lines.append("  audio: none")
    return "\n".join(lines)

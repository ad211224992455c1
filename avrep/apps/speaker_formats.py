"""`avrep speakers` results in the formats the field scores with, and a per-track score plot.

* AVA-ActiveSpeaker CSV (`ava_csv`): one row per face track and frame, no header, the columns of the official
  evaluator's predictions file (`get_ava_active_speaker_performance.py`):
  video_id, frame_timestamp, entity_box_x1, entity_box_y1, entity_box_x2, entity_box_y2, label, entity_id, score.
  Boxes are normalised to [0, 1] by the source frame size; frame_timestamp is seconds on avrep's 25 fps
  timeline (frame / 25, two decimals as in AVA's files); entity_id is "<video_id>:<track id>"; score is the
  per-frame speaking score. The official evaluator takes a predictions file whose label is SPEAKING_AUDIBLE on
  every row (the score ranks them), so that is the default (`labels="predictions"`); `labels="decisions"`
  writes avrep's own decision (SPEAKING_AUDIBLE while the track is speaking, NOT_SPEAKING otherwise), the
  ground-truth files' labels, in the same columns. The evaluator scores given face tracks: to score against
  AVA's ground truth, avrep's tracks must first be matched to its entities (its boxes must equal theirs).
* RTTM (`rttm`): one `SPEAKER <file> 1 <onset> <dur> <NA> <NA> <speaker> <NA> <NA>` line per speaking
  segment (seconds, 3 decimals), the speaker being "track_<id>": the input of md-eval, dscore and pyannote.
* `plot_scores`: the speaking score of every track over time, speaking segments shaded, the hysteresis
  thresholds drawn (matplotlib Agg, the [report] extra).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from avrep.apps.speakers import SpeakersConfig, SpeakersResult
from avrep.errors import AvrepError, require
from avrep.io import media
from avrep.plotting import png_bytes, pyplot

AVA_COLUMNS: tuple[str, ...] = (
    "video_id",
    "frame_timestamp",
    "entity_box_x1",
    "entity_box_y1",
    "entity_box_x2",
    "entity_box_y2",
    "label",
    "entity_id",
    "score",
)
SPEAKING, NOT_SPEAKING = "SPEAKING_AUDIBLE", "NOT_SPEAKING"
FORMATS: tuple[str, ...] = ("json", "ava", "ava-decisions", "rttm")


def _video_id(result: SpeakersResult, video_id: str | None) -> str:
    vid = video_id if video_id is not None else Path(result.path).stem
    if not vid or any(c.isspace() for c in vid) or "," in vid:
        raise AvrepError(f"{result.path}: video id {vid!r} must be non-empty, without spaces or commas")
    return vid


def _frame_size(result: SpeakersResult, size: tuple[int, int] | None) -> tuple[int, int]:
    if size is None:
        info = media.probe(result.path)
        size = (info.width, info.height)
    w, h = size
    if w <= 0 or h <= 0:
        raise AvrepError(f"{result.path}: unknown frame size {w}x{h}; AVA boxes are normalised by it")
    return int(w), int(h)


def ava_rows(
    result: SpeakersResult,
    size: tuple[int, int] | None = None,
    *,
    video_id: str | None = None,
    labels: str = "predictions",
) -> list[tuple]:
    """AVA-ActiveSpeaker rows (`AVA_COLUMNS`), sorted by frame then track; `size` = source (width, height)
    (probed from `result.path` when None); `labels` "predictions" (SPEAKING_AUDIBLE everywhere, what the
    official evaluator takes) or "decisions" (avrep's speaking flag)."""
    if labels not in ("predictions", "decisions"):
        raise AvrepError(f"ava labels: {labels!r} is neither 'predictions' nor 'decisions'")
    vid = _video_id(result, video_id)
    w, h = _frame_size(result, size)
    norm = np.array([w, h, w, h], np.float64)
    rows = []
    for t in result.tracks:
        boxes = np.clip(t.boxes.astype(np.float64) / norm, 0.0, 1.0)
        for i in range(len(t.scores)):
            f = t.first + i
            if labels == "decisions":
                label = SPEAKING if bool(t.speaking[i]) else NOT_SPEAKING
            else:
                label = SPEAKING
            x1, y1, x2, y2 = (round(float(v), 3) for v in boxes[i])
            rows.append(
                (vid, round(f / result.fps, 2), x1, y1, x2, y2, label, f"{vid}:{t.id}", round(float(t.scores[i]), 4))
            )
    rows.sort(key=lambda r: (r[1], r[7]))
    return rows


def ava_csv(
    result: SpeakersResult,
    size: tuple[int, int] | None = None,
    *,
    video_id: str | None = None,
    labels: str = "predictions",
) -> str:
    """The AVA-ActiveSpeaker CSV text (no header, as AVA's files): see `ava_rows`."""
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    for r in ava_rows(result, size, video_id=video_id, labels=labels):
        wr.writerow([r[0], f"{r[1]:.2f}", *(f"{v:.3f}" for v in r[2:6]), r[6], r[7], f"{r[8]:.4f}"])
    return buf.getvalue()


def rttm(result: SpeakersResult, *, file_id: str | None = None) -> str:
    """RTTM text: one SPEAKER line per speaking segment, onset and duration in seconds (3 decimals)."""
    fid = _video_id(result, file_id)
    lines = []
    for sg in result.segments:
        onset = sg["start_frame"] / result.fps
        dur = (sg["end_frame"] + 1 - sg["start_frame"]) / result.fps
        lines.append(f"SPEAKER {fid} 1 {onset:.3f} {dur:.3f} <NA> <NA> track_{sg['track']} <NA> <NA>")
    return "".join(line + "\n" for line in lines)


def plot_scores(result: SpeakersResult, config: SpeakersConfig | None = None, *, dpi: int = 100) -> bytes:
    """PNG of every track's speaking score over time (seconds), its speaking segments shaded and the
    hysteresis thresholds (`on`, `off`) drawn. Needs matplotlib (the [report] extra)."""
    cfg = config or SpeakersConfig()
    plt = pyplot()
    dur = result.n_frames / result.fps
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.25 * dur + 4)), 3.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, t in enumerate(result.tracks):
        c = colors[k % len(colors)]
        x = (t.first + np.arange(len(t.scores))) / result.fps
        ax.plot(x, t.scores, color=c, lw=1.2, label=f"track {t.id}")
        for sg in result.segments:
            if sg["track"] == t.id:
                ax.axvspan(sg["start_frame"] / result.fps, (sg["end_frame"] + 1) / result.fps, color=c, alpha=0.15)
    ax.axhline(cfg.on, color="0.4", ls="--", lw=0.8, label=f"on {cfg.on:g}")
    ax.axhline(cfg.off, color="0.6", ls=":", lw=0.8, label=f"off {cfg.off:g}")
    ax.set_xlim(0, max(dur, 1.0 / result.fps))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("speaking score")
    ax.set_title(f"{Path(result.path).name}: speaking score per face track (shaded: speaking)", fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return png_bytes(fig, dpi)


def check_plot_path(path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """`out` as a Path if it can take the plot (a .png that is not the input) and matplotlib is installed,
    else AvrepError; called before the work, not after."""

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise AvrepError(f"{out}: the plot is a .png file; give a name ending in .png", param="plot")
    if out.resolve() == Path(path).resolve():
        raise AvrepError(f"{out}: the plot must not overwrite the input", param="plot")
    require("matplotlib", "report", "avrep speakers --plot")
    return out


def write_plot(result: SpeakersResult, out: str | os.PathLike, config: SpeakersConfig | None = None) -> Path:
    """Write `plot_scores` to `out` (.png) atomically; returns the path."""
    from avrep.utils import atomic_write_bytes

    out = check_plot_path(result.path, out)
    atomic_write_bytes(out, plot_scores(result, config))
    return out


def render(result: SpeakersResult, fmt: str, size: tuple[int, int] | None = None) -> str:
    """The result as text in `fmt` (one of FORMATS): json, ava (predictions), ava-decisions or rttm."""
    if fmt == "json":
        return json.dumps(result.to_dict()) + "\n"
    if fmt == "ava":
        return ava_csv(result, size)
    if fmt == "ava-decisions":
        return ava_csv(result, size, labels="decisions")
    if fmt == "rttm":
        return rttm(result)
    raise AvrepError(f"fmt {fmt!r}: choose one of {', '.join(FORMATS)}", param="fmt")


__all__ = [
    "AVA_COLUMNS",
    "FORMATS",
    "NOT_SPEAKING",
    "SPEAKING",
    "ava_csv",
    "ava_rows",
    "check_plot_path",
    "plot_scores",
    "render",
    "rttm",
    "write_plot",
]

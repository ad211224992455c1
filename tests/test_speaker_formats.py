"""avrep speakers --format ava|ava-decisions|rttm|json and --plot, on the real two-GRID-speaker composite of
tests/test_speakers.py (two people the model never trained on, side by side, the audio of the left one)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def composite(shared_data, tmp_path_factory):
    """(mp4 path, SpeakersResult, frame size) of the composite, speakers run once with the shipped model."""
    import torch

    from avrep.apps.speakers import speakers
    from avrep.apps.sync import load_model
    from avrep.io.encode import write_mp4
    from avrep.io.media import read_av

    torch.set_num_threads(2)
    (va, aa), (vb, _) = (read_av(shared_data / "grid" / f) for f in ("bbaf2n.mpg", "swiz3n.mpg"))
    T = min(len(va.frames), len(vb.frames))
    frames = np.concatenate([va.frames[:T], vb.frames[:T]], axis=2)
    p = tmp_path_factory.mktemp("fmt") / "two_left.mp4"
    write_mp4(p, frames, aa[: T * 640])
    r = speakers(p, model=load_model(None)[0], progress=False)
    assert len(r.tracks) == 2 and r.segments
    return p, r, (frames.shape[2], frames.shape[1])


def _read_ava(text: str) -> pd.DataFrame:
    from avrep.apps.speaker_formats import AVA_COLUMNS

    # the official evaluator's reader: no header, its column names
    return pd.read_csv(io.StringIO(text), header=None, names=list(AVA_COLUMNS))


def test_ava_csv_column_contract(composite):
    from avrep.apps.speaker_formats import AVA_COLUMNS, ava_csv

    p, r, (w, h) = composite
    assert AVA_COLUMNS == (
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
    text = ava_csv(r)  # frame size probed from the file
    assert text == ava_csv(r, (w, h))
    df = _read_ava(text)
    assert len(df.columns) == 9 and not df.isna().any().any()
    assert len(df) == sum(len(t.scores) for t in r.tracks)
    assert (df.video_id == p.stem).all()
    # the evaluator's uid (timestamp:entity) is unique, and its predictions file holds one label only
    uid = df.frame_timestamp.map(str) + ":" + df.entity_id
    assert uid.is_unique
    assert set(df.label) == {"SPEAKING_AUDIBLE"}
    assert df.frame_timestamp.is_monotonic_increasing
    boxes = df[["entity_box_x1", "entity_box_y1", "entity_box_x2", "entity_box_y2"]].to_numpy()
    assert boxes.min() >= 0 and boxes.max() <= 1
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    for t in r.tracks:
        rows = df[df.entity_id == f"{p.stem}:{t.id}"].sort_values("frame_timestamp")
        assert len(rows) == len(t.scores)
        np.testing.assert_allclose(rows.frame_timestamp, (t.first + np.arange(len(t.scores))) / 25, atol=1e-9)
        np.testing.assert_allclose(rows.score, t.scores, atol=6e-5)
        want = np.clip(t.boxes / np.array([w, h, w, h]), 0, 1)
        np.testing.assert_allclose(
            rows[["entity_box_x1", "entity_box_y1", "entity_box_x2", "entity_box_y2"]], want, atol=6e-4
        )
    # the left face (the one whose audio this is) is the left half of the frame
    left = min(r.tracks, key=lambda t: t.boxes[:, 0].mean())
    lrows = df[df.entity_id == f"{p.stem}:{left.id}"]
    assert (
        lrows.entity_box_x2.max() <= 0.55
        and lrows.score.mean() > df[df.entity_id != lrows.entity_id.iloc[0]].score.mean()
    )


def test_ava_decisions_follow_the_speaking_flags(composite):
    from avrep.apps.speaker_formats import ava_csv

    p, r, size = composite
    df = _read_ava(ava_csv(r, size, labels="decisions"))
    assert set(df.label) <= {"SPEAKING_AUDIBLE", "NOT_SPEAKING"} and len(set(df.label)) == 2
    for t in r.tracks:
        rows = df[df.entity_id == f"{p.stem}:{t.id}"].sort_values("frame_timestamp")
        assert ((rows.label == "SPEAKING_AUDIBLE").to_numpy() == t.speaking).all()


def test_rttm_matches_the_json_segments(composite):
    from avrep.apps.speaker_formats import render

    p, r, size = composite
    segs = json.loads(render(r, "json"))["segments"]
    lines = render(r, "rttm").splitlines()
    assert len(lines) == len(segs) > 0
    for line, sg in zip(lines, segs):
        f = line.split(" ")
        assert len(f) == 10 and f[0] == "SPEAKER" and f[1] == p.stem and f[2] == "1"
        assert f[5:7] == ["<NA>", "<NA>"] and f[8:] == ["<NA>", "<NA>"]
        assert f[7] == f"track_{sg['track']}"
        assert float(f[3]) == pytest.approx(sg["start_s"], abs=1e-3)
        assert float(f[3]) + float(f[4]) == pytest.approx(sg["end_s"], abs=2e-3)
        assert float(f[4]) > 0
    # speaking frames in the RTTM = speaking frames of the tracks
    total = sum(float(line.split()[4]) for line in lines)
    assert total == pytest.approx(sum(int(t.speaking.sum()) for t in r.tracks) / 25, abs=1e-3 * len(lines))


def test_plot_is_a_png_with_the_tracks(composite, tmp_path):
    import cv2

    from avrep.apps.speaker_formats import write_plot

    p, r, _ = composite
    out = write_plot(r, tmp_path / "scores.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[0] > 200 and img.shape[1] > 500
    # coloured pixels: the score lines and the shaded segments (a blank axes is grey/white only)
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    assert (hsv[..., 1] > 80).mean() > 0.005


def test_bad_plot_and_format_arguments(composite, tmp_path):
    from avrep.apps.speaker_formats import FORMATS, check_plot_path, render
    from avrep.errors import AvrepError

    p, r, _ = composite
    with pytest.raises(AvrepError, match=r"\.png"):
        check_plot_path(p, tmp_path / "scores.jpg")
    with pytest.raises(AvrepError, match="choose one of"):
        render(r, "csv")
    # the command offers exactly the library's formats
    from avrep.commands.apps import speakers as cmd

    choice = next(o for o in cmd.params if o.name == "fmt").type.choices
    assert tuple(choice) == FORMATS


def test_cli_format_and_plot(composite, tmp_path):
    """`avrep speakers CLIP --format rttm --plot P.png` end to end in a subprocess: RTTM on stdout, the PNG
    written; the same segments as the library gave."""
    from avrep.apps.speaker_formats import rttm

    p, r, _ = composite
    png = tmp_path / "s.png"
    c = subprocess.run(
        [sys.executable, "-m", "avrep", "speakers", str(p), "--format", "rttm", "--plot", str(png), "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert c.returncode == 0, c.stderr
    assert c.stdout == rttm(r)
    assert png.read_bytes()[:4] == b"\x89PNG"

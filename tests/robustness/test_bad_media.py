"""Bad and odd media through every media command: a one-line error naming the file and the reason
(exit 2) or a correct result; batch preprocessing records failures and finishes the rest."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pandas as pd
import pytest

from avrep.testing.robustness import (
    CLI,
    MEDIA_COMMANDS,
    REPO,
    SUB_ENV,
    face_source,
    make_media_zoo,
    make_photo_zoo,
    run_cli,
    run_media_command,
    zoo_manifest,
)

# Which commands a valid-but-odd file is run through (all of them decode through the same
# avrep.io.media + avrep.preprocess.process_file path; the error cases run every command).
OK_COMMANDS = {
    "valid": MEDIA_COMMANDS,
    "unicode-path": MEDIA_COMMANDS,
    "odd-fps": ("preprocess", "sync", "search_audio"),
    "odd-sample-rate": ("preprocess", "sync", "search_audio"),
    "real": ("preprocess", "lipread", "search_audio"),
    "silent": ("preprocess", "lipread", "sync", "search_audio", "generate_audio"),
}


@pytest.fixture(scope="session")
def zoo(rb_corpus, rb_root):
    return make_media_zoo(rb_root / "zoo", rb_corpus)


@pytest.fixture(scope="session")
def ctx(rb_run, rb_index, rb_gen_run, rb_corpus, rb_root):
    from avrep.embed import Embedder

    frames, _, _ = face_source(rb_corpus)
    photos = make_photo_zoo(rb_root / "photos", frames[len(frames) // 2])
    return {
        "run": rb_run,
        "index_video": rb_index["video"],
        "index_audio": rb_index["audio"],
        "gen_run": rb_gen_run,
        "photo": photos[0].path,
        "photos": photos,
        "embedder": Embedder.from_checkpoint(rb_run, device="cpu"),
    }


def _check_error(case, cmd: str, code: int, line: str) -> list[str]:
    want = case.errors[cmd]
    probs = []
    if code != 1:
        probs.append(f"{case.name}/{cmd}: exit {code}, want 1 ({line[:200]!r})")
    if "\n" in line.strip() or not line.startswith("avrep: error:"):
        probs.append(f"{case.name}/{cmd}: not one error line: {line[:400]!r}")
    if case.path.name not in line:
        probs.append(f"{case.name}/{cmd}: message does not name the file: {line!r}")
    if not re.search(want, line, re.I):
        probs.append(f"{case.name}/{cmd}: reason {line!r} does not match {want!r}")
    return probs


def test_media_zoo_every_command(zoo, ctx, tmp_path):
    problems, n = [], 0
    for case in zoo:
        cmds = MEDIA_COMMANDS if case.errors else OK_COMMANDS[case.category]
        for cmd in cmds:
            code, line = run_media_command(cmd, case.path, ctx, tmp_path / f"{case.name}_{cmd}")
            n += 1
            if cmd in case.errors:
                problems += _check_error(case, cmd, code, line)
            elif code != 0:
                problems.append(f"{case.name}/{cmd}: should succeed, got exit {code}: {line[:300]!r}")
    assert n > 60
    assert not problems, "\n".join(problems)


def test_odd_rates_decode_to_the_conventions(zoo, tmp_path):
    """Any fps -> 25 fps frames, any rate/channels -> 16 kHz mono, 640 samples per frame."""
    from avrep.preprocess import process_file

    for case in zoo:
        if case.category not in ("odd-fps", "odd-sample-rate"):
            continue
        pv = process_file(case.path)
        assert abs(len(pv.mouth) - 29) <= 1, (case.name, len(pv.mouth))
        assert pv.audio.shape == (len(pv.mouth) * 640,) and pv.audio.dtype == np.float32
        assert np.abs(pv.audio).max() > 0.01, case.name  # the speech-like track survived resampling
        assert pv.face_mask.mean() > 0.8, case.name


def test_photo_zoo_generate(zoo, ctx, tmp_path):
    good_audio = next(c.path for c in zoo if c.name == "good")
    problems = []
    for case in ctx["photos"]:
        argv = [
            "generate",
            "--face",
            str(case.path),
            "--audio",
            str(good_audio),
            "-o",
            str(tmp_path / "g.mp4"),
            "--checkpoint",
            str(ctx["gen_run"]),
            "--quiet",
        ]
        r = run_cli(argv)
        assert "Traceback" not in r.err
        if case.errors:
            line = r.error_lines[0] if len(r.error_lines) == 1 else r.err
            problems += _check_error(case, "generate_audio", r.code, line)
        elif r.code != 0:
            problems.append(f"{case.name}: {r.err[-300:]}")
    assert not problems, "\n".join(problems)
    from avrep.io.media import probe

    info = probe(tmp_path / "g.mp4")  # the good photo made a playable talking-face video
    assert info.has_video and info.has_audio and info.n_frames >= 28


def test_limits_are_configurable(zoo, tmp_path):
    """--max-pixels / --max-duration refuse what the defaults would take, before decoding."""
    good = next(c.path for c in zoo if c.name == "good")
    r = run_cli(["preprocess", str(good), "--out", str(tmp_path / "s1"), "--max-pixels", "10000", "--no-preview"])
    assert r.code == 1 and len(r.error_lines) == 1 and "max-pixels" in r.error_lines[0] and good.name in r.err
    r = run_cli(["preprocess", str(good), "--out", str(tmp_path / "s2"), "--max-duration", "0.5", "--no-preview"])
    assert r.code == 1 and "max-duration" in r.error_lines[0]
    huge = next(c.path for c in zoo if c.name == "huge_resolution")
    big = 4224 * 4224
    r = run_cli(["preprocess", str(huge), "--out", str(tmp_path / "s3"), "--max-pixels", str(big), "--no-preview"])
    # allowed in: it decodes (scaled to --max-side while decoding) and then finds no face
    assert r.code == 1 and "no face" in r.error_lines[0], r.err


def test_batch_records_failures_and_finishes_the_rest(zoo, tmp_path):
    man, cases = zoo_manifest(zoo, tmp_path / "zoo.parquet")
    out = tmp_path / "store"
    r = run_cli(["preprocess", str(man), "--out", str(out), "--shard-size", "3", "--no-preview"])
    assert r.code == 0, r.err[-2000:]
    clips = pd.read_parquet(out / "clips.parquet")
    fails = pd.read_parquet(out / "failures.parquet")
    want_fail = {c.name for c in cases if "preprocess" in c.errors}
    assert set(fails.clip_id) == want_fail
    assert set(clips.clip_id) == {c.name for c in cases} - want_fail  # nothing lost
    by = {c.name: c for c in cases}
    for f in fails.itertuples():
        assert re.search(by[f.clip_id].errors["preprocess"], f.reason, re.I), (f.clip_id, f.reason)
        assert "\n" not in f.reason
    from avrep.data.store import FeatureStore

    fs = FeatureStore(out)
    for i in range(len(fs)):
        c = fs.clip(i, keys=("mouth", "audio"))
        assert c["mouth"].shape[1:] == (96, 96) and len(c["audio"]) == len(c["mouth"]) * 640


def test_real_exit_code_and_single_line(zoo, tmp_path):
    """The installed entry point (a real process): exit 2 and exactly one stderr line."""
    bad = next(c.path for c in zoo if c.name == "not_media")
    r = subprocess.run(
        CLI + ["preprocess", str(bad), "--out", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=SUB_ENV,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "faiss" not in ln.lower()]
    assert len(lines) == 1 and lines[0].startswith("avrep: error:") and bad.name in lines[0], r.stderr

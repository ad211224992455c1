"""Shared by tests/robustness and benchmarks/robustness.py (formerly tests/robustness/rbharness.py): a zoo of bad/odd media files, the in-process
CLI runner, SIGKILL-and-resume trials and a crash-isolating fuzz runner.

Nothing here mocks avrep: every case runs the real decoders, models and writers.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avrep.testing.media import write_media

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
PY = sys.executable
CLI = [PY, "-m", "avrep.cli"]
SUB_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}

MEDIA_COMMANDS = (
    "preprocess",
    "lipread",
    "sync",
    "search_video",
    "search_audio",
    "embed_video",
    "embed_audio",
    "generate_audio",
    "generate_video",
)


# --------------------------------------------------------------------------------------------
# writing test media with PyAV
# --------------------------------------------------------------------------------------------


def speechlike(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Amplitude-modulated harmonics: not silent, speech-like energy envelope."""
    t = np.arange(int(seconds * sr)) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    x = sum(np.sin(2 * np.pi * f * t) / (k + 1) for k, f in enumerate((140, 280, 560, 1100)))
    return (0.2 * env * x).astype(np.float32)


def face_source(corpus: Path) -> tuple[np.ndarray, np.ndarray, Path]:
    """Frames, audio and path of one rendered clip of the synthetic corpus (dlib finds its face)."""
    from avrep.io import media

    clip = sorted((corpus / "clips" / "test").glob("*.mp4"))[0]
    v, wav = media.read_av(clip)
    return v.frames, wav, clip


def resample_frames(frames: np.ndarray, fps_out: float, fps_in: float = 25.0) -> np.ndarray:
    n = max(1, int(round(len(frames) * fps_out / fps_in)))
    idx = np.minimum((np.arange(n) * fps_in / fps_out).astype(int), len(frames) - 1)
    return frames[idx]


def resample_audio(wav: np.ndarray, sr_out: int, sr_in: int = 16000) -> np.ndarray:
    n = int(len(wav) * sr_out / sr_in)
    return np.interp(np.arange(n) * sr_in / sr_out, np.arange(len(wav)), wav).astype(np.float32)


@dataclass
class Case:
    """One zoo file: `errors` maps command -> regex the one-line error must match (others succeed)."""

    name: str
    path: Path
    errors: dict[str, str] = field(default_factory=dict)
    category: str = ""


ALL = MEDIA_COMMANDS
VIDEO_CMDS = ("preprocess", "lipread", "sync", "search_video", "embed_video", "generate_video")
AUDIO_CMDS = ("search_audio", "embed_audio", "generate_audio")


def _all(regex: str, cmds=ALL) -> dict[str, str]:
    return {c: regex for c in cmds}


def make_media_zoo(out: Path, corpus: Path, *, big: bool = True) -> list[Case]:
    """Bad and odd media (generated, a few KB each) with the outcome each command must give."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frames, wav, clip = face_source(corpus)
    cases: list[Case] = []

    good = out / "good.mp4"
    shutil.copy(clip, good)
    cases.append(Case("good", good, {}, "valid"))

    p = out / "zero_length.mp4"
    p.write_bytes(b"")
    cases.append(Case("zero_length", p, _all(r"empty|zero"), "zero-length"))

    p = out / "not_media.mp4"
    p.write_bytes(b"this is a text file, not a video\n" * 40)
    cases.append(Case("not_media", p, _all(r"not a readable media|cannot decode|invalid"), "non-media"))

    data = good.read_bytes()
    p = out / "truncated.mp4"  # moov is at the end: cut in half, no index survives
    p.write_bytes(data[: len(data) // 2])
    cases.append(Case("truncated", p, _all(r"not a readable media|cannot decode|truncat|moov"), "truncated"))

    p = out / "corrupt.mp4"
    rng = np.random.default_rng(0)
    bad = bytearray(data)
    bad[:64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    p.write_bytes(bytes(bad))
    cases.append(Case("corrupt_header", p, _all(r"not a readable media|cannot decode|invalid"), "corrupt"))

    p = write_media(out / "no_audio.mp4", frames)
    cases.append(
        Case(
            "no_audio",
            p,
            {
                "preprocess": "no audio stream",
                "sync": "no audio stream",
                "search_audio": "no audio stream",
                "embed_audio": "no audio stream",
                "generate_audio": "no audio stream",
            },
            "no-audio",
        )
    )

    p = write_media(out / "audio_only.m4a", None, wav, container="mp4")
    cases.append(Case("no_video", p, _all("no video stream", VIDEO_CMDS), "no-video"))

    grey = np.full_like(frames, 128)
    grey += rng.integers(0, 12, grey.shape, dtype=np.uint8)
    p = write_media(out / "no_face.mp4", grey, wav)
    cases.append(
        Case(
            "no_face",
            p,
            _all("no face", ("preprocess", "lipread", "sync", "search_video", "embed_video", "generate_video")),
            "no-face",
        )
    )

    silent = write_media(out / "silent.mp4", frames, np.zeros_like(wav))
    cases.append(Case("silent_audio", silent, {"sync": "silent", "generate_audio": "silent|no speech"}, "silent"))

    tiny = write_media(out / "tiny_16px.mp4", np.ascontiguousarray(frames[:, ::10, ::10]), wav)
    cases.append(Case("tiny_resolution", tiny, _all("too small", VIDEO_CMDS), "extreme-resolution"))

    if big:  # one black 4224x4224 frame: ~30 KB on disk, 17.8 Mpx decoded (default --max-pixels 16.8 M)
        huge = write_media(out / "huge_res.mp4", np.zeros((1, 4224, 4224, 3), np.uint8), wav)
        cases.append(Case("huge_resolution", huge, _all("max.pixels", VIDEO_CMDS), "extreme-resolution"))

    # 2 tiny frames 3 hours apart: a few KB declaring 10,800 s (default --max-duration 120 s)
    long_ = write_media(out / "long_duration.mp4", frames[:2, :64, :64], wav, pts=[0, 25 * 10800])
    cases.append(Case("long_duration", long_, _all("max.duration|too long to embed"), "extreme-duration"))

    for fps in (7.5, 29.97, 60):
        p = write_media(out / f"fps_{fps}.mp4", resample_frames(frames, fps), wav, fps=fps)
        cases.append(Case(f"fps_{fps}", p, {}, "odd-fps"))
    for sr, ch in ((8000, 1), (44100, 2), (48000, 1)):
        p = write_media(out / f"sr_{sr}_{ch}ch.mp4", frames, resample_audio(wav, sr), sr=sr, channels=ch)
        cases.append(Case(f"sr_{sr}_{ch}ch", p, {}, "odd-sample-rate"))

    d = out / "ünïcødé dir with spaces" / "日本 clip é.mp4"
    d.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(clip, d)
    cases.append(Case("unicode_spaces_path", d, {}, "unicode-path"))

    grid = DATA / "grid" / "bbaf2n.mpg"
    if grid.exists():  # real MPEG-1 video, 44.1 kHz MP2 audio, 75 frames
        cases.append(Case("grid_mpeg1", grid, {}, "real"))
    return cases


def write_image(path: Path, img: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    path.write_bytes(buf.tobytes())
    return path


def make_photo_zoo(out: Path, face_frame: np.ndarray) -> list[Case]:
    """Bad face photos for `avrep generate --face`."""
    out = Path(out)
    cases = [Case("photo_good", write_image(out / "ph otö.png", face_frame), {}, "valid")]
    p = out / "empty.jpg"
    p.write_bytes(b"")
    cases.append(
        Case("photo_zero_length", p, {"generate_audio": "not a readable image|empty|not found"}, "zero-length")
    )
    p = out / "text.jpg"
    p.write_bytes(b"not an image\n" * 10)
    cases.append(Case("photo_not_image", p, {"generate_audio": "not a readable image"}, "non-media"))
    g = np.full((200, 200, 3), 120, np.uint8)
    cases.append(Case("photo_no_face", write_image(out / "grey.png", g), {"generate_audio": "no face"}, "no-face"))
    big = np.zeros((4200, 64, 3), np.uint8)
    cases.append(
        Case("photo_huge", write_image(out / "tall.png", big), {"generate_audio": "larger than"}, "extreme-resolution")
    )
    return cases


def zoo_manifest(zoo: list[Case], path: Path) -> tuple[Path, list[Case]]:
    """The zoo's files under its first case's folder as one `folder`-recipe manifest at `path`
    -> (manifest path, the cases it lists)."""
    import pandas as pd

    from avrep.data.recipes import ClipRow, write_manifest

    root = zoo[0].path.parent
    cases = [c for c in zoo if c.path.is_relative_to(root)]
    rows = [ClipRow(clip_id=c.name, path=str(c.path.relative_to(root)), speaker="s").to_dict() for c in cases]
    return write_manifest(pd.DataFrame(rows), path, root, recipe="folder"), cases


# --------------------------------------------------------------------------------------------
# in-process CLI
# --------------------------------------------------------------------------------------------


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.startswith("avrep: error:")]


def run_cli(argv: list[str]) -> CliResult:
    """avrep.cli.main(argv) in this process; stdout/stderr captured, exit status returned.

    Anything but a clean exit or a SystemExit (i.e. a traceback) propagates to the test."""
    from avrep.cli import main

    o, e = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        try:
            main(argv)
        except SystemExit as ex:
            code = ex.code if isinstance(ex.code, int) else (0 if ex.code is None else 1)
    return CliResult(code, o.getvalue(), e.getvalue())


def command_argv(cmd: str, path: Path, ctx: dict[str, Any], tmp: Path) -> list[str]:
    """argv of `cmd` applied to a media file (ctx: run, index dirs, generator run, photo)."""
    p = str(path)
    if cmd == "preprocess":
        return ["preprocess", p, "--out", str(tmp / "store"), "--no-preview"]
    if cmd == "lipread":
        return ["lipread", p, "-c", str(ctx["run"]), "--device", "cpu"]
    if cmd == "sync":
        return ["sync", p, "-c", str(ctx["run"]), "--device", "cpu", "--max-offset", "3"]
    if cmd == "search_video":
        return ["search", str(ctx["index_video"]), "--video", p, "--device", "cpu", "-k", "3"]
    if cmd == "search_audio":
        return ["search", str(ctx["index_audio"]), "--audio", p, "--device", "cpu", "-k", "3"]
    if cmd in ("generate_audio", "generate_video"):  # the file as the driving --audio or --video
        photo, out, gen = str(ctx["photo"]), str(tmp / "gen.mp4"), str(ctx["gen_run"])
        return ["generate", "--face", photo, "--" + cmd.split("_")[1], p, "-o", out, "--checkpoint", gen, "--quiet"]
    raise KeyError(cmd)


def run_media_command(cmd: str, path: Path, ctx: dict[str, Any], tmp: Path) -> tuple[int, str]:
    """(exit code, error line or '') of one media command on one file; API commands map errors to code 1, as the CLI does."""
    from avrep.errors import AvrepError

    tmp.mkdir(parents=True, exist_ok=True)
    if cmd in ("embed_video", "embed_audio"):
        emb = ctx["embedder"]
        try:
            v = emb.embed_video(path) if cmd == "embed_video" else emb.embed_audio(path)
        except AvrepError as e:
            msg = str(e)
            return 1, ("avrep: error: " + msg) if "\n" not in msg else msg
        assert v.shape == (emb.dim,) and np.isfinite(v).all() and abs(np.linalg.norm(v) - 1) < 1e-3
        return 0, ""
    r = run_cli(command_argv(cmd, path, ctx, tmp))
    assert "Traceback" not in r.err, r.err[-2000:]
    if r.code == 0:
        return 0, ""
    lines = r.error_lines
    return r.code, (lines[0] if len(lines) == 1 else r.err)


# --------------------------------------------------------------------------------------------
# SIGKILL and resume
# --------------------------------------------------------------------------------------------


def is_temp(p: Path) -> bool:
    return p.name.startswith(".") or ".tmp" in p.name


def check_final_files(root: Path) -> list[str]:
    """Every non-temp file under root must parse completely; returns the problems found."""
    import pandas as pd

    problems = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if ".tmp" not in d]
        for fn in filenames:
            f = Path(dirpath) / fn
            if fn.startswith(".") and not fn.endswith(".json") or fn.endswith(".lock"):
                continue
            if ".tmp" in fn:
                continue
            try:
                if fn.endswith(".parquet"):
                    pd.read_parquet(f)
                elif fn.endswith(".npy"):
                    a = np.load(f, mmap_mode="r")
                    np.asarray(a[-1:]).copy()
                elif fn.endswith(".json"):
                    json.loads(f.read_text())
                elif fn.endswith(".jsonl"):
                    [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
                elif fn.endswith(".safetensors"):
                    from safetensors.numpy import load_file

                    load_file(str(f))
                elif fn.endswith(".mp4"):
                    from avrep.io import media

                    media.read_video(f)
                elif fn.endswith(".faiss"):
                    import faiss

                    faiss.read_index(str(f))
            except Exception as e:  # any parse failure = a half-written file at a final path
                problems.append(f"{f}: {type(e).__name__}: {e}")
    return problems


@dataclass
class KillSpec:
    """A command to kill and re-run: `ready(out)` says when to start the random kill delay."""

    name: str
    argv: list[str]
    out: Path
    ready: Callable[[Path], bool]
    max_delay: float
    rerun_argv: list[str] | None = None


def _start(spec: KillSpec, stderr: int) -> subprocess.Popen:
    """The command in its own process group (killable as a whole), stdout discarded."""
    return subprocess.Popen(
        CLI + spec.argv, env=SUB_ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
    )


def kill_and_resume(spec: KillSpec, rng: np.random.Generator, timeout: float = 300) -> dict[str, Any]:
    """Start the command, SIGKILL its process group at a random point, check the files it left, re-run."""
    t0 = time.time()
    proc = _start(spec, stderr=subprocess.PIPE)
    while not spec.ready(spec.out) and proc.poll() is None and time.time() - t0 < timeout:
        time.sleep(0.05)
    delay = float(rng.uniform(0, 0.9 * spec.max_delay))  # max_delay = the measured work window
    deadline = time.time() + delay
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    err1 = proc.stderr.read().decode(errors="replace")
    kill_at = time.time() - t0
    left = check_final_files(spec.out) if spec.out.exists() else []
    r = subprocess.run(
        CLI + (spec.rerun_argv or spec.argv), env=SUB_ENV, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    return {
        "command": spec.name,
        "killed": killed,
        "kill_at_s": round(kill_at, 2),
        "delay_s": round(delay, 2),
        "first_rc": proc.returncode,
        "first_err": err1[-500:] if not killed else "",
        "half_written": left,
        "rerun_rc": r.returncode,
        "rerun_err": r.stderr[-800:],
    }


# --------------------------------------------------------------------------------------------
# fuzzing: byte mutations and a crash-isolating worker
# --------------------------------------------------------------------------------------------

INTERESTING = (0, 1, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x10000, 4096 * 4096)
KINDS = ("flip", "rand", "zero", "int", "truncate", "delete", "insert", "dup")


def mutate(data: bytes, ops: list[tuple[str, float, int, int]]) -> bytes:
    """Apply byte-level ops (kind, position as a fraction of the size, length, value) in order."""
    b = bytearray(data)
    for kind, frac, length, val in ops:
        if not b:
            break
        pos = min(len(b) - 1, int(frac * len(b)))
        length = max(1, min(length, len(b) - pos))
        if kind == "flip":
            b[pos] ^= (val % 255) + 1
        elif kind == "rand":
            b[pos : pos + length] = np.random.default_rng(val).integers(0, 256, length, dtype=np.uint8).tobytes()
        elif kind == "zero":
            b[pos : pos + length] = bytes(length)
        elif kind == "int":
            v = INTERESTING[val % len(INTERESTING)]
            b[pos : pos + 4] = v.to_bytes(4, "big" if val % 2 == 0 else "little")
        elif kind == "truncate":
            del b[max(1, pos) :]
        elif kind == "delete":
            del b[pos : pos + length]
        elif kind == "insert":
            b[pos:pos] = np.random.default_rng(val).integers(0, 256, length, dtype=np.uint8).tobytes()
        elif kind == "dup":
            b[pos:pos] = b[pos : pos + length]
    return bytes(b)


def random_ops(rng: np.random.Generator) -> list[tuple[str, float, int, int]]:
    n = 1 + int(rng.geometric(0.5)) - 1  # mostly 1-2 mutations: a file that still half-parses goes deeper
    ops = []
    for _ in range(min(n, 8)):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        frac = float(rng.random() ** 2) if rng.random() < 0.5 else float(rng.random())  # headers more often
        ops.append((kind, frac, int(2 ** rng.uniform(0, 11)), int(rng.integers(0, 2**31))))
    return ops


WORKER = r"""
import json, sys, traceback
import numpy as np
from avrep.errors import AvrepError
from avrep.io import media
from avrep.preprocess import PreprocessConfig, process_file
cfg = PreprocessConfig(max_duration=10.0)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    job = json.loads(line)
    res = {}
    for step in ("probe", "read_video", "read_audio", "process_file"):
        if step == "process_file" and not job.get("process"):
            continue
        try:
            if step == "probe":
                media.probe(job["path"])
            elif step == "read_video":
                media.read_video(job["path"], max_duration=10.0)
            elif step == "read_audio":
                media.read_audio(job["path"], max_duration=10.0)
            else:
                process_file(job["path"], cfg)
            res[step] = "ok"
        except AvrepError as e:
            msg = str(e)
            res[step] = "error" if "\n" not in msg and job["path"] in msg else "bad-message: " + msg[:300]
        except Exception as e:
            res[step] = "unexpected: " + type(e).__name__ + ": " + " ".join(str(e).split())[:300]
    print(json.dumps(res), flush=True)
"""


class FuzzRunner:
    """Feeds files to a worker process one at a time; a segfault/abort or a hang past `timeout` is
    recorded against that input and the worker is restarted, so the campaign itself never dies."""

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [PY, "-c", WORKER],
            env=SUB_ENV,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        line = self._readline(120)
        if line is None or "ready" not in line:
            raise RuntimeError("fuzz worker did not start")

    def _readline(self, timeout: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return None
        line = self.proc.stdout.readline()
        return line or None

    def _kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def run(self, path: Path, process: bool) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        t = time.time()
        try:
            self.proc.stdin.write(json.dumps({"path": str(path), "process": process}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self._readline(self.timeout)
        if line is None:
            if self.proc.poll() is None:
                self._kill()
                return {"outcome": "hang", "seconds": time.time() - t}
            rc = self.proc.wait()
            self.proc = None
            return {
                "outcome": "crash",
                "returncode": rc,
                "signal": signal.Signals(-rc).name if rc < 0 else None,
                "seconds": time.time() - t,
            }
        res = json.loads(line)
        bad = {k: v for k, v in res.items() if v not in ("ok", "error")}
        return {"outcome": "unexpected" if bad else "ok", "steps": res, "bad": bad, "seconds": time.time() - t}

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self._kill()
        self.proc = None


def fuzz_seeds(corpus: Path, work: Path) -> dict[str, bytes]:
    """Seed files: a synthetic clip (moov at the end), a faststart copy, and real GRID clips when present."""
    frames, wav, clip = face_source(corpus)
    seeds = {"synth_mp4": clip.read_bytes()}
    fs = write_media(work / "seed_faststart.mp4", frames, wav, faststart=True)
    seeds["synth_mp4_faststart"] = fs.read_bytes()
    g = DATA / "grid" / "bbaf2n.mpg"
    if g.exists():
        seeds["grid_mpeg1"] = g.read_bytes()
    s1 = sorted((DATA / "grid_s1" / "video").glob("*.mp4"))[:1] if (DATA / "grid_s1").is_dir() else []
    if s1:
        seeds["grid_s1_mp4"] = s1[0].read_bytes()
    return seeds


# --------------------------------------------------------------------------------------------
# the five resumable commands: how to run, when to kill, what "the same result" means
# --------------------------------------------------------------------------------------------

SYNTH_ARGS = ["--preset", "tiny", "--words", "4", "--clips-per-word", "6", "--seed", "0", "--workers", "1"]
TRAIN_ARGS = [
    "--config",
    "tiny",
    "--epochs",
    "2",
    "--batch-size",
    "8",
    "--workers",
    "0",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--seed",
    "0",
    "--quiet",
]


def _count(d: Path, pattern: str) -> int:
    return len(list(d.glob(pattern))) if d.exists() else 0


# the file (under the command's --out) whose appearance says the command has started its work
READY_FILE = {"synth": ".synth_state.json", "preprocess": "plan.json", "train": "config.json", "embed": "manifest.json"}


def _kill_argv(name: str, ref: dict[str, Path], out: Path) -> list[str]:
    o = str(out)
    if name == "synth":
        return ["synth", *SYNTH_ARGS, "--out", o]
    if name == "preprocess":
        manifest = str(ref["manifest"])
        return ["preprocess", manifest, "--out", o, "--landmarks", "true", "--shard-size", "4", "--no-preview"]
    if name == "train":
        return ["train", "--data", str(ref["store"]), "--out", o, *TRAIN_ARGS]
    if name == "embed":
        store, run = str(ref["store"]), str(ref["run"])
        return ["embed", store, "-c", run, "--modality", "video", "--out", o, "--device", "cpu", "--chunk-size", "4"]
    if name == "index_build":
        return ["index", "build", str(ref["emb_video"]), "--out", o, "--device", "cpu"]
    raise KeyError(name)


def _index_ready(o: Path) -> bool:
    return o.exists() or any(o.parent.glob(f".{o.name}.*"))


def kill_spec(name: str, ref: dict[str, Path], out: Path) -> KillSpec:
    """ref: corpus, manifest, store, run, emb_video (the uninterrupted results, made with the same args).

    `ready` turns true when the command has started its work (imports and input checks done)."""
    argv = _kill_argv(name, ref, out)
    ready = _index_ready if name == "index_build" else lambda o: (o / READY_FILE[name]).exists()
    return KillSpec(name, argv, out, ready, 0, rerun_argv=argv + ["--resume"] if name == "train" else None)


def work_seconds(spec: KillSpec, timeout: float = 300) -> float:
    """Run the command uninterrupted once: seconds from `ready` to exit (the window kills are drawn from)."""
    t0 = time.time()
    proc = _start(spec, stderr=subprocess.DEVNULL)
    t_ready = None
    while proc.poll() is None and time.time() - t0 < timeout:
        if t_ready is None and spec.ready(spec.out):
            t_ready = time.time()
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == 0, f"{spec.name}: uninterrupted run failed ({proc.returncode})"
    return max(0.05, time.time() - (t_ready or t0))


RESUMABLE = ("synth", "preprocess", "train", "embed", "index_build")


def compare_outputs(name: str, out: Path, ref: dict[str, Path]) -> list[str]:
    """Differences between a killed-and-resumed output and the uninterrupted reference ([] = same)."""
    import hashlib

    import pandas as pd

    diffs: list[str] = []

    def same_frames(x: pd.DataFrame, y: pd.DataFrame, what: str) -> None:
        try:
            pd.testing.assert_frame_equal(x, y)
        except AssertionError as e:
            diffs.append(f"{what}: {' '.join(str(e).split())[:300]}")

    def same_df(a: Path, b: Path) -> None:
        same_frames(pd.read_parquet(a), pd.read_parquet(b), a.name)

    if name == "synth":
        r = ref["corpus"]
        same_df(out / "manifest.parquet", r / "manifest.parquet")
        for f in sorted(r.rglob("*.mp4")) + sorted((r / "landmarks").glob("*.npy")):
            g = out / f.relative_to(r)
            if not g.exists():
                diffs.append(f"missing {g}")
            elif hashlib.sha256(g.read_bytes()).digest() != hashlib.sha256(f.read_bytes()).digest():
                diffs.append(f"{g.relative_to(out)} differs")
    elif name == "preprocess":
        r = ref["store"]
        same_df(out / "clips.parquet", r / "clips.parquet")
        same_df(out / "failures.parquet", r / "failures.parquet")
        for d in sorted(r.glob("shard_*")):
            for f in d.glob("*.npy"):
                if not np.array_equal(np.load(f), np.load(out / d.name / f.name)):
                    diffs.append(f"{d.name}/{f.name} differs")
    elif name == "train":
        from safetensors.numpy import load_file

        a, b = load_file(str(out / "model.safetensors")), load_file(str(ref["run"] / "model.safetensors"))
        if a.keys() != b.keys() or any(not np.array_equal(a[k], b[k]) for k in a):
            diffs.append("model.safetensors differs")
        sa, sb = (json.loads((p / "state.json").read_text()) for p in (out, ref["run"]))
        if (sa["epoch"], sa["step"]) != (sb["epoch"], sb["step"]):
            diffs.append(f"state.json {sa} != {sb}")
    elif name == "embed":
        from avrep.embed_job import load_embeddings

        (xa, ma), (xb, mb) = load_embeddings(out), load_embeddings(ref["emb_video"])
        if not np.array_equal(xa, xb):
            diffs.append(
                f"embeddings differ (max abs diff {np.abs(xa - xb).max() if xa.shape == xb.shape else xa.shape})"
            )
        same_frames(ma, mb, "embedding metadata differs")
    elif name == "index_build":
        r = ref["index_video"]
        if (out / "index.faiss").read_bytes() != (r / "index.faiss").read_bytes():
            diffs.append("index.faiss differs")
        same_df(out / "metadata.parquet", r / "metadata.parquet")
        from avrep.index import Index

        Index.open(out)
    return diffs


def temp_leftovers(out: Path) -> list[str]:
    return [str(p.relative_to(out)) for p in out.rglob("*") if ".tmp" in p.name]


def build_refs(work: Path, log=print) -> dict[str, Path]:
    """The uninterrupted pipeline the kill trials compare against (same settings as tests/robustness)."""
    import torch

    from avrep.data.recipes import write_manifest
    from avrep.data.recipes.synth import prepare_synth
    from avrep.embed_job import embed_store
    from avrep.index import build_index
    from avrep.preprocess import PreprocessConfig, preprocess
    from avrep.synth.corpus import SynthConfig, generate
    from avrep.train.gen_loop import GenTrainArgs, train_generator
    from avrep.train.loop import TrainArgs, train

    torch.set_num_threads(1)
    work.mkdir(parents=True, exist_ok=True)
    r: dict[str, Path] = {"corpus": work / "corpus"}
    generate(SynthConfig(preset="tiny", seed=0, n_words=4, clips_per_word=6), r["corpus"], workers=1, progress=False)
    log("corpus done")
    df, vocab = prepare_synth(r["corpus"])
    r["manifest"] = write_manifest(df, work / "manifest.parquet", r["corpus"], recipe="synth", vocab=vocab)
    r["store"] = work / "store"
    preprocess(r["manifest"], r["store"], config=PreprocessConfig(landmarks="true", shard_size=4), progress=False)
    r["run"] = work / "run"
    tiny: dict[str, Any] = {"config": "tiny", "data": str(r["store"]), "device": "cpu", "threads": 1}
    train(TrainArgs(**tiny, out=str(r["run"]), epochs=2, batch_size=8, workers=0, seed=0), progress=False)
    log("run done")
    for m in ("video", "audio"):
        r[f"emb_{m}"] = work / f"emb_{m}"
        embed_store(r["store"], r["run"], m, r[f"emb_{m}"], chunk_size=4, device="cpu", progress=False)
        r[f"index_{m}"] = work / f"index_{m}"
        build_index(r[f"emb_{m}"], r[f"index_{m}"], device="cpu")
    r["gen_run"] = work / "gen"
    gen_args = GenTrainArgs(**tiny, davs=str(r["run"]), out=str(r["gen_run"]), epochs=1, batch_size=4, val_clips=2)
    train_generator(gen_args, progress=False)
    log("refs done")
    return r

"""`avrep synth`: write the synthetic LRW-style audio-visual speech corpus.

Each clip: a target word inside a short carrier phrase spoken by espeak-ng, a procedural face whose
mouth follows the phoneme events, 29 frames at 25 fps with the word centred, 16 kHz mono audio.
Splits are disjoint in identity and in voice. Every clip is a pure function of (seed, clip index),
so runs are deterministic, parallel and resumable.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from importlib import resources
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from avrep.conventions import CLIP_FRAMES as N_FRAMES
from avrep.conventions import CLIP_SAMPLES, FPS, SAMPLE_RATE
from avrep.distributed import run_ray_tasks
from avrep.errors import AvrepError
from avrep.security import load_json, load_json_object
from avrep.utils import atomic_save_npy, atomic_write_json, atomic_write_parquet, write_manifest_json

SPLITS = ("train", "val", "test")
SPLIT_SHARE = (0.7, 0.15, 0.15)

# Carrier phrases put the word in running speech, like LRW's broadcast clips.
CARRIERS = (
    "say {w} again",
    "i said {w} now",
    "the word {w} is here",
    "we heard {w} today",
    "please say {w} twice",
    "now {w} please",
    "you say {w} slowly",
    "they wrote {w} down",
)


@dataclass(frozen=True)
class Preset:
    name: str
    n_words: int
    clips_per_word: int
    n_identities: int


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", 10, 20, 30),
    "small": Preset("small", 50, 100, 80),
    "medium": Preset("medium", 200, 200, 200),
    "lrw500": Preset("lrw500", 500, 1000, 400),
}


@dataclass(frozen=True)
class SynthConfig:
    preset: str
    seed: int = 0
    size: int = 160
    snr_db: float | None = None
    shard: tuple[int, int] = (0, 1)
    n_words: int | None = None  # overrides for tests / custom corpora
    clips_per_word: int | None = None
    n_identities: int | None = None

    def resolved(self) -> Preset:
        if self.preset not in PRESETS:
            raise AvrepError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        p = PRESETS[self.preset]
        return Preset(
            p.name,
            self.n_words or p.n_words,
            self.clips_per_word or p.clips_per_word,
            self.n_identities or p.n_identities,
        )


def load_vocabulary() -> list[str]:
    """The shipped English word list, in preset order."""
    text = resources.files("avrep.data").joinpath("words.txt").read_text()
    return [w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#")]


def _split_of(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Partition range(n) into train/val/test by SPLIT_SHARE (at least 1 in each)."""
    perm = rng.permutation(n)
    n_val = max(1, int(round(n * SPLIT_SHARE[1])))
    n_test = max(1, int(round(n * SPLIT_SHARE[2])))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise AvrepError(f"need at least 3 identities/voices to make disjoint splits, got {n}")
    return {
        "train": np.sort(perm[:n_train]),
        "val": np.sort(perm[n_train : n_train + n_val]),
        "test": np.sort(perm[n_train + n_val :]),
    }


def plan(cfg: SynthConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Deterministic list of clip specs (everything needed to render a clip) plus corpus info."""
    from avrep.synth.speech import list_voices

    p = cfg.resolved()
    vocab = load_vocabulary()
    if p.n_words > len(vocab):
        raise AvrepError(f"preset {p.name} needs {p.n_words} words, vocabulary has {len(vocab)}")
    words = vocab[: p.n_words]
    voices = list_voices()
    rng = np.random.default_rng([cfg.seed, 7919])
    id_split = _split_of(p.n_identities, rng)
    voice_split = _split_of(len(voices), rng)
    specs: list[dict[str, Any]] = []
    for wi, word in enumerate(words):
        n = p.clips_per_word
        n_val = max(1, int(round(n * SPLIT_SHARE[1])))
        n_test = max(1, int(round(n * SPLIT_SHARE[2])))
        split_of_clip = ["train"] * (n - n_val - n_test) + ["val"] * n_val + ["test"] * n_test
        for ci in range(n):
            idx = wi * n + ci
            crng = np.random.default_rng([cfg.seed, 104729, idx])
            split = split_of_clip[ci]
            specs.append(
                {
                    "index": idx,
                    "clip_id": f"{word}_{ci:05d}",
                    "word": word,
                    "word_id": wi,
                    "split": split,
                    "identity_id": int(crng.choice(id_split[split])),
                    "voice_id": int(crng.choice(voice_split[split])),
                    "carrier": CARRIERS[int(crng.integers(len(CARRIERS)))],
                    "rate": int(crng.integers(140, 211)),
                    "pitch": int(crng.integers(30, 71)),
                    "clip_seed": int(crng.integers(2**31 - 1)),
                }
            )
    i, n_sh = cfg.shard
    specs = [s for s in specs if s["index"] % n_sh == i]
    info = {
        "words": words,
        "voices": voices,
        "identity_split": {k: v.tolist() for k, v in id_split.items()},
        "voice_split": {k: v.tolist() for k, v in voice_split.items()},
    }
    return specs, info


def render_arrays(spec: dict[str, Any], cfg: SynthConfig, voices: list[str]) -> dict[str, Any]:
    """Synthesise and render one clip in memory: frames, true landmarks, audio and timing."""
    from avrep.synth.face import Identity, render_sequence
    from avrep.synth.speech import add_noise, synthesize
    from avrep.synth.visemes import articulation_track

    voice = voices[spec["voice_id"]]
    text = spec["carrier"].format(w=spec["word"])
    sp = synthesize(text, voice=voice, rate=spec["rate"], pitch=spec["pitch"], sample_rate=SAMPLE_RATE)
    target_pos = text.split().index(spec["word"])
    if len(sp.words) == len(text.split()):
        _, w0, w1 = sp.words[target_pos]
    else:  # espeak merged/split words: fall back to the first event spelling the word
        hits = [w for w in sp.words if w[0].lower() == spec["word"]]
        if not hits:
            raise RuntimeError(f"espeak gave no word event for {spec['word']!r} in {text!r} ({voice})")
        _, w0, w1 = hits[0]
    centre = (w0 + w1) // 2
    start = centre - CLIP_SAMPLES // 2
    audio = np.zeros(CLIP_SAMPLES, np.float32)
    src0, src1 = max(0, start), min(len(sp.audio), start + CLIP_SAMPLES)
    audio[src0 - start : src1 - start] = sp.audio[src0:src1]
    rng = np.random.default_rng(spec["clip_seed"])
    if cfg.snr_db is not None:
        audio = add_noise(audio, cfg.snr_db, rng)
    track = articulation_track(
        sp.phonemes, N_FRAMES, fps=FPS, sample_rate=SAMPLE_RATE, offset_samples=start, voice=voice
    )
    frames, lms = render_sequence(
        Identity.sample(cfg.seed * 100003 + spec["identity_id"]), track, spec["clip_seed"], size=cfg.size
    )
    return {
        "frames": frames,
        "landmarks": lms.astype(np.float32),
        "audio": audio,
        "voice": voice,
        "text": text,
        "start": start,
        "w0": w0,
        "w1": w1,
        "phonemes": sp.phonemes,
    }


def render_clip(spec: dict[str, Any], cfg: SynthConfig, voices: list[str], out_dir: Path) -> dict[str, Any]:
    """Synthesise, render and write one clip; return its manifest row."""
    from avrep.io.encode import write_mp4
    from avrep.synth.visemes import phoneme_to_viseme

    r = render_arrays(spec, cfg, voices)
    frames, lms, audio, voice, text = r["frames"], r["landmarks"], r["audio"], r["voice"], r["text"]
    start, w0, w1 = r["start"], r["w0"], r["w1"]
    sp_phonemes = r["phonemes"]
    rel = Path("clips") / spec["split"] / f"{spec['clip_id']}.mp4"
    write_mp4(out_dir / rel, frames, audio, fps=FPS, sample_rate=SAMPLE_RATE)
    atomic_save_npy(out_dir / "landmarks" / f"{spec['clip_id']}.npy", lms.astype(np.float32))
    spf = SAMPLE_RATE / FPS
    tphon = [p for p in sp_phonemes if p[1] < w1 and p[2] > w0]
    row = {
        "clip_id": spec["clip_id"],
        "path": str(rel),
        "word": spec["word"],
        "word_id": spec["word_id"],
        "voice": voice,
        "voice_id": spec["voice_id"],
        "identity_id": spec["identity_id"],
        "split": spec["split"],
        "word_start_frame": int(np.floor((w0 - start) / spf)),
        "word_end_frame": int(np.ceil((w1 - start) / spf)),
        "phonemes": " ".join(p[0] for p in tphon),
        "visemes": " ".join(phoneme_to_viseme(p[0], voice=voice) for p in tphon),
        "seed": spec["clip_seed"],
        "text": text,
        "rate": spec["rate"],
        "pitch": spec["pitch"],
        "n_frames": N_FRAMES,
        "width": int(frames.shape[2]),
        "height": int(frames.shape[1]),
        "landmarks_path": str(Path("landmarks") / f"{spec['clip_id']}.npy"),
    }
    atomic_write_json(out_dir / ".rows" / f"{spec['clip_id']}.json", row)  # written last: marks the clip done
    return row


_WORKER: dict[str, Any] = {}


def _init_worker(cfg: SynthConfig, voices: list[str], out_dir: str) -> None:
    import cv2

    cv2.setNumThreads(1)  # one core per worker: processes give the parallelism
    _WORKER.update(cfg=cfg, voices=voices, out_dir=Path(out_dir))


def _work(spec: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str | None]:
    try:
        return spec["clip_id"], render_clip(spec, _WORKER["cfg"], _WORKER["voices"], _WORKER["out_dir"]), None
    except Exception as e:  # recorded, the rest of the corpus proceeds
        return spec["clip_id"], None, f"{type(e).__name__}: {e}"


def _work_chunk(specs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    return [_work(s) for s in specs]


def _chunks(todo: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """Group clips of one identity together so a worker reuses that identity's cached face layers."""
    todo = sorted(todo, key=lambda s: (s["identity_id"], s["index"]))
    return [todo[i : i + size] for i in range(0, len(todo), size)]


def _state(cfg: SynthConfig) -> dict[str, Any]:
    """What must match for a resume: the arguments and the voice list (it fixes every clip's voice)."""
    from avrep.synth.speech import list_voices

    d = asdict(cfg)
    d["shard"] = list(cfg.shard)
    d["voices"] = list_voices()
    return d


def _prepare_out(out: Path, cfg: SynthConfig, overwrite: bool) -> None:
    state_file = out / ".synth_state.json"
    if out.exists() and not out.is_dir():
        raise AvrepError(f"{out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        if overwrite:
            shutil.rmtree(out)
        elif state_file.exists() and load_json(state_file) == _state(cfg):
            return  # same job: resume
        else:
            raise AvrepError(
                f"{out}: directory is not empty (overwrite it, or give the same arguments to resume)", param="overwrite"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(state_file, _state(cfg))
    except OSError as e:
        raise AvrepError(f"{out}: cannot write output directory ({e.strerror})") from None


def _ray_chunk(
    cfg: SynthConfig, voices: list[str], out_dir: str, specs: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """One Ray task: a chunk of clips (a worker process may run several; the setup is cheap)."""
    _init_worker(cfg, voices, out_dir)
    return _work_chunk(specs)


def generate(
    cfg: SynthConfig,
    out: str | os.PathLike,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    backend: str = "local",
    address: str | None = None,
) -> dict[str, Any]:
    """Generate (or resume) a corpus; returns a summary dict. Failed clips are listed, not fatal.

    backend "ray": one Ray task per chunk of clips on the cluster at `address` (same files)."""
    from tqdm import tqdm

    out = Path(out)
    specs, info = plan(cfg)
    _prepare_out(out, cfg, overwrite)
    for tmp in out.rglob(".*.tmp*"):  # temp files of a killed run (never at a final path): drop them
        tmp.unlink(missing_ok=True)
    rows_dir = out / ".rows"
    done = {p.stem for p in rows_dir.glob("*.json")} if rows_dir.exists() else set()
    todo = [s for s in specs if s["clip_id"] not in done]
    failures: dict[str, str] = {}
    t0 = time.time()
    bar = tqdm(
        total=len(specs), initial=len(specs) - len(todo), desc=f"synth {cfg.preset}", unit="clip", disable=not progress
    )
    chunks = _chunks(todo, 12)
    if backend == "ray":
        args = [(cfg, info["voices"], str(out), c) for c in chunks]
        for res in run_ray_tasks(_ray_chunk, args, address=address, desc="synth", progress=False):
            for cid, _, err in res:
                if err:
                    failures[cid] = err
                bar.update(1)
    elif workers <= 1:
        _init_worker(cfg, info["voices"], str(out))
        results = (_work_chunk(c) for c in chunks)
        for res in results:
            for cid, _, err in res:
                if err:
                    failures[cid] = err
                bar.update(1)
    elif todo:
        with ProcessPoolExecutor(
            workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(cfg, info["voices"], str(out))
        ) as ex:
            futs = [ex.submit(_work_chunk, c) for c in chunks]
            for f in as_completed(futs):
                for cid, _, err in f.result():
                    if err:
                        failures[cid] = err
                    bar.update(1)
    bar.close()
    elapsed = time.time() - t0
    rows = []
    for s in specs:
        f = rows_dir / f"{s['clip_id']}.json"
        if f.exists():
            rows.append(json.loads(f.read_text()))
    import pandas as pd

    df = pd.DataFrame(rows)
    atomic_write_parquet(out / "manifest.parquet", df)
    if failures:
        atomic_write_parquet(
            out / "failures.parquet", pd.DataFrame({"clip_id": list(failures), "reason": list(failures.values())})
        )
    elif (out / "failures.parquet").exists():
        (out / "failures.parquet").unlink()  # a resumed run fixed them
    vocab = vocabulary_info(info["words"])
    atomic_write_json(out / "vocab.json", vocab)
    p = cfg.resolved()
    write_manifest_json(
        out,
        "avrep synth",
        config=_state(cfg),
        preset=asdict(p),
        voices=info["voices"],
        identity_split=info["identity_split"],
        voice_split=info["voice_split"],
        n_clips=len(df),
        n_failures=len(failures),
    )
    return {
        "out": str(out),
        "n_clips": len(df),
        "n_rendered": len(todo) - len(failures),
        "failures": failures,
        "seconds": elapsed,
        "clips_per_s": (len(todo) / elapsed) if todo and elapsed > 0 else None,
    }


def vocabulary_info(words: list[str]) -> dict[str, Any]:
    """Words in word_id order plus homophene groups and the visual-only accuracy ceiling."""
    from avrep.synth.visemes import homophene_groups, visual_ceiling

    groups = homophene_groups(words)
    return {"words": words, "homophene_groups": [g for g in groups if len(g) > 1], "ceiling": visual_ceiling(words)}


def corpus_stats(out: str | os.PathLike) -> dict[str, Any]:
    """Statistics of a generated corpus (clips per split, speakers, homophenes, ceiling)."""
    import pandas as pd

    out = Path(out)
    mf = out / "manifest.parquet"
    if not mf.exists():
        raise AvrepError(f"{out}: not a synthetic corpus (no manifest.parquet)")
    df = pd.read_parquet(mf)
    vocab = (
        load_json_object(out / "vocab.json")
        if (out / "vocab.json").exists()
        else vocabulary_info(sorted(df.word.unique()))
    )
    per_split = {
        s: {
            "clips": int((df.split == s).sum()),
            "identities": int(df[df.split == s].identity_id.nunique()),
            "voices": int(df[df.split == s].voice_id.nunique()),
        }
        for s in SPLITS
    }
    return {
        "clips": len(df),
        "words": len(vocab["words"]),
        "identities": int(df.identity_id.nunique()),
        "voices": int(df.voice_id.nunique()),
        "splits": per_split,
        "homophene_groups": vocab["homophene_groups"],
        "visual_ceiling": vocab["ceiling"],
        "failures": int(len(pd.read_parquet(out / "failures.parquet"))) if (out / "failures.parquet").exists() else 0,
    }

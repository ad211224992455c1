"""Batch preprocessing: recipe manifest -> feature store (mouth ROIs, face crops, audio, landmarks).

Each source video is decoded once and every clip cut from it (GRID word windows share the sentence's
frames in the store). Work is split into shards of `shard_size` source videos in manifest order, so
the store is identical whatever the number of workers; finished shards are skipped on a re-run.

API:
    preprocess(manifest, out_dir, workers=1, config=None) -> PreprocessResult
    process_file(path, config=None, landmarks_path=None) -> ProcessedVideo   (raises AvrepError)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from avrep.conventions import FACE_SIZE, MOUTH_SIZE, N_LANDMARKS
from avrep.data import compact
from avrep.data.align import crop_clip
from avrep.distributed import run_ray_tasks
from avrep.errors import AvrepError, MediaError
from avrep.io import media
from avrep.security import load_json_object

if TYPE_CHECKING:
    from avrep.data.landmarks import LandmarkTrack

SPF = media.SAMPLES_PER_FRAME
STAGES = ("decode", "landmarks", "crop", "audio", "write")


@dataclass
class PreprocessConfig:
    landmarks: str = "dlib"  # "dlib" or "true" (use the manifest's landmarks_path when present)
    detect_every: int = 25  # HOG face detection every N frames (boxes interpolated between)
    landmark_every: int = 2  # 68-point predictor every K frames, interpolated between (1 = every frame)
    smooth_window: int = 3
    stable_window: int = 12
    cnn_fallback: bool = True  # CNN detector on key frames HOG misses (turned heads)
    max_duration: float = media.MAX_DURATION
    max_pixels: int = media.MAX_PIXELS
    max_side: int = media.DECODE_MAX_SIDE
    shard_size: int = 32  # source videos per shard
    require_audio: bool = True

    def check(self) -> PreprocessConfig:
        if self.landmarks not in ("dlib", "true"):
            raise AvrepError(f"landmarks {self.landmarks!r}: use dlib or true", param="landmarks")
        for name in ("detect_every", "landmark_every", "shard_size"):
            if getattr(self, name) < 1:
                raise AvrepError(f"{name} {getattr(self, name)}: must be >= 1", param=name)
        if self.max_side < 64:
            raise AvrepError(f"max_side {self.max_side}: must be >= 64", param="max_side")
        return self

    def track(self, grays: np.ndarray, scale: float, name: str) -> LandmarkTrack:
        """dlib face tracking + 68-point landmarks over grey frames with these settings."""
        from avrep.data.landmarks import track_landmarks

        return track_landmarks(
            grays,
            detect_every=self.detect_every,
            landmark_every=self.landmark_every,
            smooth_window=self.smooth_window,
            scale=scale,
            cnn_fallback=self.cnn_fallback,
            name=name,
        )


@dataclass
class ProcessedVideo:
    """Everything preprocessing extracts from frames [start, start+len) of one video (25 fps)."""

    mouth: np.ndarray  # uint8 [T, 96, 96]
    face: np.ndarray  # uint8 [T, 128, 128, 3]
    audio: np.ndarray  # float32 [T * 640]
    landmarks: np.ndarray  # float32 [T, 68, 2] source pixels
    face_mask: np.ndarray  # bool [T]
    start: int
    n_video_frames: int
    n_faces: int
    lm_error_px: float = float("nan")  # dlib vs true landmarks, when both exist
    lm_error_iod: float = float("nan")
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # detector / shape-predictor calls, frames


def process_file(
    path: str | os.PathLike,
    config: PreprocessConfig | None = None,
    *,
    start: int = 0,
    end: int = -1,
    landmarks_path: str | None = None,
) -> ProcessedVideo:
    """Process one video (frames [start, end) at 25 fps). Raises MediaError/NoFaceError with the reason."""
    from avrep.data.landmarks import landmark_error, to_gray

    cfg = (config or PreprocessConfig()).check()
    tm = {k: 0.0 for k in STAGES}
    t = time.perf_counter()
    info = media.probe(path)
    if not info.has_video:
        raise MediaError(f"{info.path}: no video stream")
    if cfg.require_audio and not info.has_audio:
        raise MediaError(f"{info.path}: no audio stream")
    video = media.read_video(
        path, start, end, info=info, max_duration=cfg.max_duration, max_pixels=cfg.max_pixels, max_side=cfg.max_side
    )
    frames = video.frames
    T = len(frames)
    tm["decode"] = time.perf_counter() - t
    t = time.perf_counter()
    wav = (
        media.read_audio(path, info=info, max_duration=cfg.max_duration) if info.has_audio else np.zeros(0, np.float32)
    )
    wav = media.fit_audio(wav[start * SPF :], T)
    tm["audio"] = time.perf_counter() - t
    t = time.perf_counter()
    true_lm = None
    if landmarks_path:
        try:
            true_lm = np.load(landmarks_path).astype(np.float32)
        except Exception as e:
            raise MediaError(f"{landmarks_path}: cannot read landmarks ({e})") from None
        true_lm = true_lm[start : start + T]
        if true_lm.shape != (T, N_LANDMARKS, 2):
            raise MediaError(f"{landmarks_path}: landmarks shape {true_lm.shape} does not match {T} frames")
    tm["landmarks"] = time.perf_counter() - t
    t = time.perf_counter()
    grays = to_gray(frames)  # once, for the landmarks and the mouth ROIs
    tm["crop"] = time.perf_counter() - t
    t = time.perf_counter()
    err_px = err_iod = float("nan")
    counts = {"frames": T, "detections": 0, "predictions": 0}
    if cfg.landmarks == "true" and true_lm is not None:
        lms, mask, n_faces = true_lm, np.ones(T, bool), 1  # no dlib at all
    else:
        tr = cfg.track(grays, video.scale, str(path))
        lms, mask, n_faces = tr.landmarks, tr.face, tr.n_faces
        counts.update(detections=tr.n_detections, predictions=tr.n_predictions)
        if true_lm is not None:
            err_px, err_iod = landmark_error(lms, true_lm)
    tm["landmarks"] += time.perf_counter() - t
    t = time.perf_counter()
    crops = crop_clip(frames, lms, frame_scale=video.scale, stable_window=cfg.stable_window, grays=grays)
    tm["crop"] += time.perf_counter() - t
    return ProcessedVideo(
        mouth=crops.mouth,
        face=crops.face,
        audio=wav.astype(np.float32),
        landmarks=lms,
        face_mask=mask,
        start=start,
        n_video_frames=T + start,
        n_faces=n_faces,
        lm_error_px=err_px,
        lm_error_iod=err_iod,
        timings=tm,
        counts=counts,
    )


def _reason(e: BaseException, path: str) -> str:
    """One-line failure reason without the path prefix (the path is its own column)."""
    msg = " ".join(str(e).split())
    for p in (f"{path}: ", f"{Path(path)}: "):
        if msg.startswith(p):
            msg = msg[len(p) :]
    if not isinstance(e, AvrepError):
        msg = f"{type(e).__name__}: {msg}"
    return msg[:300] or type(e).__name__


def group_by_video(df: pd.DataFrame) -> list[list[dict[str, Any]]]:
    """Rows grouped by source video (and true-landmark file), in first-appearance order."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in df.to_dict("records"):
        groups.setdefault((r["path"], r.get("landmarks_path")), []).append(r)
    return list(groups.values())


def _process_group(rows: list[dict[str, Any]], cfg: PreprocessConfig, base: int):
    """Process one source video for all its clips -> (arrays, clip rows, failure rows, timings)."""
    path = rows[0]["path"]
    lo = min(int(r["start_frame"]) for r in rows)
    his = [int(r["end_frame"]) for r in rows]
    hi = -1 if any(h < 0 for h in his) else max(his)
    try:
        if path is None:
            raise MediaError("None: clip has no path")
        pv = process_file(path, cfg, start=max(0, lo), end=hi, landmarks_path=rows[0].get("landmarks_path"))
    except Exception as e:  # any failure of this video fails its clips and nothing else
        return None, [], [dict(clip_id=r["clip_id"], path=path, reason=_reason(e, str(path))) for r in rows], {}, {}
    lo = pv.start
    T = len(pv.mouth)
    n_video = pv.n_video_frames
    parts = {
        "mouth": [pv.mouth],
        "face": [pv.face],
        "audio": [pv.audio],
        "landmarks": [pv.landmarks],
        "face_mask": [pv.face_mask],
    }
    extra = T
    ok, fails = [], []
    for r in rows:
        s = int(r["start_frame"])
        e = int(r["end_frame"]) if int(r["end_frame"]) >= 0 else n_video
        if s >= n_video or e <= s:
            fails.append(
                dict(clip_id=r["clip_id"], path=path, reason=f"frames [{s}, {e}) outside the video ({n_video} frames)")
            )
            continue
        padded = s < lo or e > lo + T
        if not padded:
            off = base + (s - lo)
            idx = np.arange(s - lo, e - lo)
        else:  # window runs past the video: repeat the edge frames (stored as its own copy)
            idx = np.clip(np.arange(s, e), lo, lo + T - 1) - lo
            for k, arr in (
                ("mouth", pv.mouth),
                ("face", pv.face),
                ("landmarks", pv.landmarks),
                ("face_mask", pv.face_mask),
            ):
                parts[k].append(arr[idx])
            parts["audio"].append(np.concatenate([pv.audio[i * SPF : (i + 1) * SPF] for i in idx]))
            off = base + extra
            extra += len(idx)
        out = dict(r)
        out.update(
            shard=-1,
            offset=int(off),
            n_frames=int(e - s),
            status="ok",
            padded=bool(padded),
            face_frames=int(pv.face_mask[idx].sum()),
            n_faces=int(pv.n_faces),
            video_frames=int(n_video),
            lm_error_px=pv.lm_error_px,
            lm_error_iod=pv.lm_error_iod,
        )
        ok.append(out)
    if not ok:
        return None, [], fails, pv.timings, pv.counts
    arrays = {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in parts.items()}
    return arrays, ok, fails, pv.timings, pv.counts


def _sum_into(
    timings: dict[str, float], counts: dict[str, int], more_timings: dict[str, float], more_counts: dict[str, int]
) -> None:
    """Add one video's (or shard's) stage timings and detector / predictor call counts to running totals."""
    for k, v in more_timings.items():
        timings[k] += v
    for k, v in more_counts.items():
        counts[k] = counts.get(k, 0) + int(v)


STORE_FORMATS = ("compact", "memmap")


def process_shard(
    store_dir: str, index: int, rows: list[dict[str, Any]], cfg_dict: dict[str, Any], store_format: str = "memmap"
) -> dict:
    """Worker entry (spawn-safe): process a shard's videos and write the shard atomically (a memmap
    shard folder, or a compact tar with one sample per source video)."""
    import cv2

    from avrep.data import store as st

    cv2.setNumThreads(1)
    cfg = PreprocessConfig(**cfg_dict)
    tm = {k: 0.0 for k in STAGES}
    counts: dict[str, int] = {}
    df = pd.DataFrame(rows)
    setup = 0.0
    if cfg.landmarks == "dlib" or "landmarks_path" not in df or df["landmarks_path"].isna().any():
        from avrep.data.landmarks import dlib_models

        t = time.perf_counter()
        dlib_models()  # load dlib's models once per worker, timed apart from the per-clip stages
        setup = time.perf_counter() - t
    cpu0 = time.process_time()
    groups = group_by_video(df)
    chunks = {k: [] for k in st.ARRAYS}
    ok_rows, fail_rows = [], []
    samples = []  # compact: (arrays, rows) per source video, offsets from its own first frame
    base = 0
    errs = []
    for g in groups:
        arrays, ok, fails, t, c = _process_group(g, cfg, 0 if store_format == "compact" else base)
        _sum_into(tm, counts, t, c)
        fail_rows += fails
        if arrays is None:
            continue
        if store_format == "compact":
            samples.append((arrays, ok))
        else:
            for k in st.ARRAYS:
                chunks[k].append(arrays[k])
        for r in ok:
            r["shard"] = index
            if not np.isnan(r["lm_error_px"]):
                errs.append(r["lm_error_px"])
        ok_rows += ok
        base += len(arrays["mouth"])
    t = time.perf_counter()
    fails = pd.DataFrame(fail_rows, columns=st.FAILURE_COLUMNS)
    if store_format == "compact":
        compact.write_shard(store_dir, index, samples, fails)
        tm["write"] = time.perf_counter() - t
        return _shard_result(index, ok_rows, fail_rows, base, tm, counts, setup, cpu0)
    empty = {
        "mouth": np.zeros((0, MOUTH_SIZE, MOUTH_SIZE), np.uint8),
        "face": np.zeros((0, FACE_SIZE, FACE_SIZE, 3), np.uint8),
        "audio": np.zeros(0, np.float32),
        "landmarks": np.zeros((0, N_LANDMARKS, 2), np.float32),
        "face_mask": np.zeros(0, bool),
    }
    arrays = {k: (np.concatenate(chunks[k]) if chunks[k] else empty[k]) for k in st.ARRAYS}
    st.write_shard(store_dir, index, arrays, pd.DataFrame(ok_rows), fails)
    tm["write"] = time.perf_counter() - t
    return _shard_result(index, ok_rows, fail_rows, base, tm, counts, setup, cpu0)


def _shard_result(index, ok_rows, fail_rows, n_frames, tm, counts, setup, cpu0) -> dict:
    return {
        "index": index,
        "n_ok": len(ok_rows),
        "n_failed": len(fail_rows),
        "n_frames": int(n_frames),
        "timings": tm,
        "counts": counts,
        "setup_s": setup,
        "cpu_s": time.process_time() - cpu0,
    }


@dataclass
class PreprocessResult:
    out_dir: str
    n_clips: int
    n_ok: int
    n_failed: int
    n_shards: int
    n_shards_skipped: int
    n_frames: int
    seconds: float
    timings: dict[str, float]
    counts: dict[str, int] = field(default_factory=dict)  # frames, detector and shape-predictor calls
    setup_s: float = 0.0  # loading dlib's models (once per worker process), not in `timings`
    cpu_s: float = 0.0  # CPU seconds of the workers' shard work (robust to a shared CPU, unlike wall time)
    lm_error_px: float | None = None
    lm_error_iod: float | None = None


def _plan_id(df: pd.DataFrame, cfg: PreprocessConfig, store_format: str = "memmap") -> str:

    h = hashlib.sha256()
    h.update(
        pd.util.hash_pandas_object(
            df[["clip_id", "path", "start_frame", "end_frame"]].astype(str), index=False
        ).values.tobytes()
    )
    h.update(json.dumps(asdict(cfg), sort_keys=True).encode())
    if store_format != "memmap":  # memmap plans keep the ids they had before the compact format existed
        h.update(store_format.encode())
    return h.hexdigest()[:16]


def preprocess(
    manifest: str | os.PathLike | pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    workers: int = 1,
    config: PreprocessConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
    limit: int | None = None,
    allow_outside_root: bool = False,
    store_format: str = "compact",
    backend: str = "local",
    address: str | None = None,
) -> PreprocessResult:
    """Build (or resume) a feature store from a recipe manifest; bad clips go to failures.parquet.

    store_format: "compact" (tar shards of H.264/FLAC samples, avrep.data.compact) or "memmap" (raw
    arrays). backend: "local" (a process pool of `workers`) or "ray" (one task per shard on the Ray
    cluster at `address`; same shards). Manifest paths outside the dataset root are refused unless
    `allow_outside_root`."""
    from avrep.data import store as st
    from avrep.utils import atomic_write_json, sha256_file, write_manifest_json

    t0 = time.perf_counter()
    cfg = (config or PreprocessConfig()).check()
    if store_format not in STORE_FORMATS:
        raise AvrepError(f"store_format {store_format!r}: use {' or '.join(STORE_FORMATS)}", param="store_format")
    if backend not in ("local", "ray"):
        raise AvrepError(f"backend {backend!r}: use local or ray", param="backend")
    df, manifest_path = _load_rows(manifest, limit, allow_outside_root)
    out = Path(out_dir)
    plan_id = _plan_id(df, cfg, store_format)
    _claim_out_dir(out, plan_id, overwrite, store_format)
    compact.clean_temp(out)
    groups = group_by_video(df)
    shards = [sum(groups[i : i + cfg.shard_size], []) for i in range(0, len(groups), cfg.shard_size)]
    plan = {"plan_id": plan_id, "n_shards": len(shards), "config": asdict(cfg), "format": store_format}
    atomic_write_json(out / "plan.json", plan)
    done = compact.shard_done if store_format == "compact" else st.shard_done
    todo = [i for i, rows in enumerate(shards) if not done(out, i, [r["clip_id"] for r in rows])]
    if backend == "ray":
        results = run_ray_tasks(
            process_shard,
            [(str(out), i, shards[i], asdict(cfg), store_format) for i in todo],
            address=address,
            desc="preprocess",
            progress=progress,
        )
        total = _empty_total()
        for r in results:
            _collect_into(total, r)
    else:
        total = _run_shards(
            out, shards, todo, cfg, workers=workers, n_clips=len(df), progress=progress, store_format=store_format
        )
    clips, fails = (compact.write_index if store_format == "compact" else st.write_index)(out, len(shards))
    err_px, err_iod = _mean_landmark_error(clips)
    secs = time.perf_counter() - t0
    res = PreprocessResult(
        out_dir=str(out),
        n_clips=len(df),
        n_ok=len(clips),
        n_failed=len(fails),
        n_shards=len(shards),
        n_shards_skipped=len(shards) - len(todo),
        n_frames=total["n_frames"],
        seconds=secs,
        timings=total["timings"],
        counts=total["counts"],
        setup_s=total["setup_s"],
        cpu_s=total["cpu_s"],
        lm_error_px=err_px,
        lm_error_iod=err_iod,
    )
    inputs = {"manifest": manifest_path, "manifest_sha256": sha256_file(manifest_path) if manifest_path else None}
    write_manifest_json(
        out,
        "preprocess",
        config=asdict(cfg),
        seed=None,
        inputs=inputs,
        plan_id=plan_id,
        landmarks=_landmarks_info(cfg, total["counts"]),
        workers=workers,
        store_format=store_format,
        backend=backend,
        result=asdict(res),
        vocab=df.attrs.get("vocab"),
        recipe=df.attrs.get("recipe"),
    )
    return res


def _load_rows(
    manifest: str | os.PathLike | pd.DataFrame, limit: int | None, allow_outside_root: bool
) -> tuple[pd.DataFrame, str | None]:
    """The manifest's rows (optional columns filled, only the first `limit` source videos) and its path
    (None when given as a DataFrame)."""
    from avrep.data.recipes import load_manifest

    manifest_path = None
    if isinstance(manifest, pd.DataFrame):
        df = manifest.copy()
    else:
        manifest_path = str(manifest)
        df = load_manifest(manifest, allow_outside_root=allow_outside_root)
    for c, d in (("start_frame", 0), ("end_frame", -1), ("landmarks_path", None)):
        if c not in df:
            df[c] = d
    if limit:
        keep = list(dict.fromkeys(df["path"]))[:limit]
        df = df[df["path"].isin(keep)]
    return df, manifest_path


def _claim_out_dir(out: Path, plan_id: str, overwrite: bool, store_format: str = "memmap") -> None:
    """Ready `out` for the plan `plan_id`: a store of the same plan is resumed, another one refused (or
    removed with `overwrite`); temp files of a killed run are cleaned."""

    from avrep.data import store as st

    plan_file = out / "plan.json"
    if out.exists() and any(out.iterdir()):
        plan = load_json_object(plan_file) if plan_file.exists() else {}
        if plan.get("plan_id") != plan_id:
            if not overwrite:
                fmt = plan.get("format", "memmap") if plan else None
                other = fmt and fmt != store_format
                hint = f" (it is a {fmt} store: store_format {fmt!r} resumes it)" if other else ""
                raise AvrepError(
                    f"{out}: holds a different store (other manifest or settings){hint}; use a new out or overwrite",
                    param=("out", "overwrite", "store_format") if other else ("out", "overwrite"),
                )
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    st.clean_temp(out)


def _run_shards(
    out: Path,
    shards: list[list[dict[str, Any]]],
    todo: list[int],
    cfg: PreprocessConfig,
    *,
    workers: int,
    n_clips: int,
    progress: bool,
    store_format: str = "memmap",
) -> dict[str, Any]:
    """Process the `todo` shards, in this process or a spawn pool of `workers` -> their summed timings,
    counts, setup_s, cpu_s and n_frames."""
    from tqdm import tqdm

    total = _empty_total()
    bar = tqdm(
        total=n_clips,
        desc="preprocess",
        unit="clip",
        disable=not progress,
        initial=n_clips - sum(len(shards[i]) for i in todo),
    )
    cfg_dict = asdict(cfg)

    def collect(res: dict) -> None:
        _collect_into(total, res)
        bar.update(res["n_ok"] + res["n_failed"])

    try:
        if workers <= 1 or len(todo) <= 1:
            for i in todo:
                collect(process_shard(str(out), i, shards[i], cfg_dict, store_format))
        else:
            from concurrent.futures.process import BrokenProcessPool

            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as ex:
                futs = {ex.submit(process_shard, str(out), i, shards[i], cfg_dict, store_format): i for i in todo}
                try:
                    for f in as_completed(futs):
                        collect(f.result())
                except BrokenProcessPool:
                    raise AvrepError(f"{out}: a worker crashed; finished shards are kept, re-run to resume") from None
    finally:
        bar.close()
    return total


def _empty_total() -> dict[str, Any]:
    return {"timings": {k: 0.0 for k in STAGES}, "counts": {}, "setup_s": 0.0, "cpu_s": 0.0, "n_frames": 0}


def _collect_into(total: dict[str, Any], res: dict) -> None:
    """Add one shard's result (timings, counts, setup and CPU seconds, frames) to the running totals."""
    _sum_into(total["timings"], total["counts"], res["timings"], res.get("counts", {}))
    total["setup_s"] += res.get("setup_s", 0.0)
    total["cpu_s"] += res.get("cpu_s", 0.0)
    total["n_frames"] += res["n_frames"]


def _mean_landmark_error(clips: pd.DataFrame) -> tuple[float | None, float | None]:
    """dlib's landmark error against the true landmarks, mean over source videos (px, fraction of the
    inter-ocular distance); None when no clip has true landmarks."""
    if len(clips) and "lm_error_px" in clips and clips["lm_error_px"].notna().any():
        per_video = clips.drop_duplicates("path")
        return float(per_video["lm_error_px"].mean()), float(per_video["lm_error_iod"].mean())
    return None, None


def _landmarks_info(cfg: PreprocessConfig, counts: dict[str, int]) -> dict[str, Any]:
    """What the landmarks are made of, in words and in calls (counts cover the shards built in this run)."""
    if cfg.landmarks == "true":
        lm_method = "true landmarks from landmarks_path where given (no dlib); dlib for other rows"
    else:
        lm_method = (
            f"dlib HOG detection every {cfg.detect_every} frames (boxes interpolated), 68-point shape "
            f"predictor every {cfg.landmark_every} frame(s), linear interpolation between, "
            f"smoothed over {cfg.smooth_window} frames"
        )
    return {
        "method": lm_method,
        "landmarks": cfg.landmarks,
        "landmark_every": cfg.landmark_every,
        "detect_every": cfg.detect_every,
        "smooth_window": cfg.smooth_window,
        "counts": counts,
    }


def preview(
    store_dir: str | os.PathLike, out_png: str | os.PathLike, *, n_clips: int = 8, n_cols: int = 10, seed: int = 0
) -> Path:
    """PNG strip for a human: per row one clip's mouth ROIs over time, then its face crop."""
    import cv2

    from avrep.data.store import FeatureStore

    fs = FeatureStore(store_dir)
    if len(fs) == 0:
        raise AvrepError(f"{store_dir}: store has no clips to preview")
    rng = np.random.default_rng(seed)
    rows_idx = sorted(rng.choice(len(fs), size=min(n_clips, len(fs)), replace=False).tolist())
    lines = []
    for i in rows_idx:
        c = fs.clip(i, keys=("mouth", "face"))
        n = len(c["mouth"])
        sel = np.linspace(0, n - 1, n_cols).round().astype(int)
        mouths = [cv2.cvtColor(c["mouth"][j], cv2.COLOR_GRAY2RGB) for j in sel]
        face = cv2.resize(c["face"][n // 2], (MOUTH_SIZE, MOUTH_SIZE), interpolation=cv2.INTER_AREA)  # tile height
        lines.append(np.concatenate(mouths + [face], axis=1))
    img = np.concatenate(lines, axis=0)
    out = Path(out_png)
    from avrep.utils import atomic_path

    with atomic_path(out, ".png") as tmp:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        tmp.write_bytes(buf.tobytes())
    return out

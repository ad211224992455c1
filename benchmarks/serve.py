"""`avrep serve` under load on localhost, side by side with the same searches through the Python API.

  python benchmarks/serve.py [--run RUN (default: the shipped model)] [--store /work/stores/lrc_ar]
                             [--n 500] [--concurrency 8] [--work DIR] [--result serve]

The corpus: the lrc_ar feature store's clips, embedded (sync kind) with the model into a video index (tuned on
the audio embeddings: `--tune-queries`) and an audio index. The queries: the raw files of the store's `test`
split (the identities held out of the shipped model's training), uploaded as files, searched by their audio
against the video index. The server is the real thing: `avrep serve` in its own process (so its peak RSS is
its own), driven by `--concurrency` client threads. The Python API side runs the same searches, in the same
run, with the same concurrency: `Embedder.embed_audio(file)` (model loaded once) + `Index.search`.
Reported: p50/p99 latency, throughput, errors, peak RSS, and the HTTP/Python ratios.
Writes benchmarks/results/<result>.json.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _common import ROOT, log, stamp, write_result


def peak_rss_mb(pid: int | str = "self") -> float:
    """VmHWM (peak resident set) of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary(lat_s: list[float], wall: float, errors: int) -> dict:
    a = np.asarray(lat_s) * 1e3
    return {
        "requests": len(lat_s) + errors,
        "errors": errors,
        "p50_ms": float(np.percentile(a, 50)) if len(a) else None,
        "p99_ms": float(np.percentile(a, 99)) if len(a) else None,
        "mean_ms": float(a.mean()) if len(a) else None,
        "throughput_per_s": len(lat_s) / wall,
        "wall_s": wall,
    }


def drive(fn, items: list, concurrency: int) -> dict:
    """Run fn(item) over items with `concurrency` threads; per-call latency, errors, throughput."""
    lat: list[float] = []
    errs: list[str] = []
    lock = threading.Lock()

    def one(it):
        t0 = time.perf_counter()
        try:
            fn(it)
        except Exception as e:  # counted, and the first few kept for the result
            with lock:
                errs.append(f"{type(e).__name__}: {str(e)[:200]}")
            return
        with lock:
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as ex:
        list(ex.map(one, items))
    out = summary(lat, time.perf_counter() - t0, len(errs))
    out["first_errors"] = errs[:3]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default=None, help="trained run dir [default: the shipped pretrained model]")
    ap.add_argument("--store", default="/work/stores/lrc_ar")
    ap.add_argument("--n", type=int, default=500, help="searches per side at --concurrency")
    ap.add_argument("--n-single", type=int, default=100, help="searches per side one at a time")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--work", default=None, help="folder for the embeddings and indexes [default: a temp dir]")
    ap.add_argument("--result", default="serve")
    args = ap.parse_args()
    import httpx
    import pandas as pd
    import torch

    from avrep.embed import Embedder
    from avrep.embed_job import embed_store
    from avrep.index import Index, build_index
    from avrep.models.pretrained import resolve_checkpoint, weights_sha256

    torch.set_num_threads(2)
    run = resolve_checkpoint(args.run)
    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="avrep-bench-serve-")
    work = Path(args.work or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for mod in ("video", "audio"):
        if not (work / f"emb_{mod}" / "manifest.json").exists():
            embed_store(args.store, run, mod, work / f"emb_{mod}", device="cpu", kind="sync", progress=True)
    if not (work / "video" / "manifest.json").exists():
        build_index(work / "emb_video", work / "video", tune_queries=work / "emb_audio")
    if not (work / "audio" / "manifest.json").exists():
        build_index(work / "emb_audio", work / "audio", tune_queries=work / "emb_video")
    log(f"embeddings + indexes ready in {time.time() - t0:.0f}s")
    clips = pd.read_parquet(Path(args.store) / "clips.parquet")
    test = clips[clips["split"] == "test"]
    files = [p for p in test["path"].astype(str) if os.path.isfile(p)]
    if not files:
        raise SystemExit(f"{args.store}: no test-split files on disk")
    queries = [files[i % len(files)] for i in range(args.n)]
    singles = queries[: args.n_single]
    blobs = {f: Path(f).read_bytes() for f in set(queries)}
    log(f"{len(files)} held-out query files ({test['speaker'].nunique()} identities), {args.n} searches")

    # --- the server: `avrep serve` in its own process ----------------------------------------
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    cmd = [sys.executable, "-m", "avrep", "serve", str(work / "video"), str(work / "audio"), "--port", str(port)]
    cmd += ["--checkpoint", str(run), "--device", "cpu"]
    t_start = time.perf_counter()
    srv = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(timeout=120, limits=httpx.Limits(max_connections=args.concurrency * 2))
    while True:
        try:
            if client.get(url + "/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if srv.poll() is not None:
            raise SystemExit("avrep serve exited: " + srv.stderr.read().decode()[-2000:])
        time.sleep(0.2)
    startup_s = time.perf_counter() - t_start
    rss_idle = peak_rss_mb(srv.pid)

    def http_search(f: str) -> None:
        r = client.post(
            url + "/search",
            files={"file": (Path(f).name, blobs[f], "video/mp4")},
            data={"k": "10", "index": "video", "use": "audio"},
        )
        if r.status_code != 200:
            raise RuntimeError(f"{r.status_code} {r.text[:200]}")
        r.json()["results"][0]["clip_id"]

    # --- the Python API: the same searches, model loaded once -------------------------------
    emb = Embedder.from_checkpoint(run, device="cpu")
    ix = Index.open(work / "video")
    kind = ix.manifest["kind"]

    def py_search(f: str) -> None:
        ix.search(emb.embed_audio(f, kind=kind)[None], 10).records()

    own_rank1 = 0  # a sanity figure: audio -> its own video at rank 1 (HTTP answers)
    for f in files[:50]:
        r = client.post(
            url + "/search", files={"file": ("q.mp4", blobs.get(f) or Path(f).read_bytes())}, data={"k": "10"}
        ).json()
        own_rank1 += r["results"][0]["clip_id"] == test.loc[test["path"] == f, "clip_id"].iloc[0]
    res: dict = {}
    res["python_single"] = drive(py_search, singles, 1)
    res["http_single"] = drive(http_search, singles, 1)
    res["http_concurrent"] = drive(http_search, queries, args.concurrency)
    res["python_concurrent"] = drive(py_search, queries, args.concurrency)
    for k, v in res.items():
        log(k, {a: (round(b, 2) if isinstance(b, float) else b) for a, b in v.items() if a != "first_errors"})
    res["server"] = {
        "startup_s": startup_s,
        "peak_rss_mb_after_startup": rss_idle,
        "peak_rss_mb": peak_rss_mb(srv.pid),
        "healthz_after": client.get(url + "/healthz").json(),
    }
    res["python_api_process_peak_rss_mb"] = peak_rss_mb()
    srv.send_signal(signal.SIGINT)
    srv.wait(30)
    res["ratios_http_over_python"] = {
        "p50_single": res["http_single"]["p50_ms"] / res["python_single"]["p50_ms"],
        "p99_single": res["http_single"]["p99_ms"] / res["python_single"]["p99_ms"],
        "p50_concurrent": res["http_concurrent"]["p50_ms"] / res["python_concurrent"]["p50_ms"],
        "throughput_concurrent": res["http_concurrent"]["throughput_per_s"]
        / res["python_concurrent"]["throughput_per_s"],
    }
    man = ix.manifest
    out = {
        **stamp("torch", "faiss-cpu", "fastapi", "uvicorn", "httpx", "av"),
        "run": str(run),
        "weights_sha256": weights_sha256(run),
        "corpus": {
            "store": args.store,
            "indexed_clips": ix.ntotal,
            "index": {k: man.get(k) for k in ("factory", "kind", "recall_at_k", "tuning_query_kind")},
        },
        "queries": {
            "what": "raw test-split files uploaded whole (mp4), searched by their audio against the video index, k=10",
            "held_out": f"the {test['speaker'].nunique()} lrc_ar identities of the store's test split "
            "(not in the shipped model's training)",
            "distinct_files": len(set(queries)),
            "searches": args.n,
            "concurrency": args.concurrency,
            "own_video_at_rank1_of_50": int(own_rank1),
        },
        **res,
        "notes": "Both sides embed the uploaded file's audio with the same model and search the same index; the "
        "HTTP side adds the upload, the temp file, a probe of the media limits, the event loop and JSON; both run "
        "requests through one shared model from --concurrency threads.",
    }
    write_result(args.result, out)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()

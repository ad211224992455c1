"""Benchmark avrep's index choice against the same FAISS index called directly and autofaiss.

Writes benchmarks/results/index.json. For each collection size: (a) `avrep index build` through
`avrep.Index`, (b) the very same index.faiss searched with plain FAISS, (c) autofaiss' choice at the
same memory budget (run in its own venv: scripts/autofaiss_venv.sh; autofaiss is not an avrep
dependency). Builds run as subprocesses so wall time and peak RSS are measured the same way.
All three are measured by one harness in this process on the same held-out queries.

    python benchmarks/index.py --sizes 10000,100000,1000000 [--real EMB_DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np
from _common import RESULTS, ROOT, machine_info, now, read_result, versions, write_result

from avrep.index import Index
from avrep.index.build import EF_GRID, NPROBE_GRID
from avrep.index.params import kind_of, make_params, recall_at_k


def synthetic(n: int, d: int, seed: int) -> np.ndarray:
    """Clustered vectors with low intrinsic dimension, like learned embeddings: each point is a
    cluster centre + a 32-dim latent offset through a shared random projection + small isotropic
    noise, L2-normalised."""
    rng = np.random.default_rng(seed)
    nc = max(64, n // 500)
    rng_c = np.random.default_rng(12345)  # centres/projection shared by data and queries
    centres = rng_c.standard_normal((nc, d)).astype(np.float32)
    proj = rng_c.standard_normal((32, d)).astype(np.float32) / np.sqrt(32)
    out = np.empty((n, d), np.float32)
    for i in range(0, n, 100_000):
        m = min(100_000, n - i)
        x = centres[rng.integers(0, nc, m)] + 0.8 * rng.standard_normal((m, 32)).astype(np.float32) @ proj
        x += 0.25 * rng.standard_normal((m, d)).astype(np.float32)
        out[i : i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def write_emb_dir(path: Path, x: np.ndarray, per_file: int = 250_000) -> None:
    import pandas as pd

    path.mkdir(parents=True, exist_ok=True)
    for j, s in enumerate(range(0, len(x), per_file)):
        part = x[s : s + per_file]
        np.save(path / f"emb_{j:05d}.npy", part)
        ids = np.arange(s, s + len(part))
        pd.DataFrame(
            {
                "clip_id": [f"syn{i}" for i in ids],
                "path": [f"synthetic/{i}.mp4" for i in ids],
                "word": "",
                "speaker": [f"spk{i % 50}" for i in ids],
                "split": np.array(["train", "val", "test"])[ids % 3],
                "start_s": 0.0,
                "end_s": 1.16,
            }
        ).to_parquet(path / f"meta_{j:05d}.parquet", index=False)
    (path / "manifest.json").write_text(
        json.dumps(
            {
                "modality": "video",
                "dim": x.shape[1],
                "metric": "ip",
                "normalized": True,
                "checkpoint_sha256": None,
                "checkpoint": None,
                "model": "synthetic",
            }
        )
    )


def run_child(cmd: list[str], log: Path) -> dict:
    """Run a build subprocess; wall time and its own peak RSS (os.wait4)."""
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[:3]} failed, see {log}:\n" + log.read_text()[-2000:])
    return {"build_seconds": wall, "peak_rss_bytes": ru.ru_maxrss * 1024}


def paired_latency(fns: dict, queries, k, n_single: int, batch: int) -> dict:
    """Single-query latency of several search functions, interleaved query by query (so load on
    the shared machine hits all alike), plus batched ms/query."""
    names = list(fns)
    for f in fns.values():
        for q in queries[:10]:
            f(q[None], k)
    ts = {n: np.empty(n_single) for n in names}
    block = 50  # alternate blocks of queries (not single calls): OpenMP spin-waits of one index
    for b, s in enumerate(range(0, n_single, block)):  # would otherwise land on the next one's timing
        order = names if b % 2 == 0 else names[::-1]
        for n in order:
            for i in range(s, min(s + block, n_single)):
                t0 = time.perf_counter()
                fns[n](queries[i : i + 1], k)
                ts[n][i] = time.perf_counter() - t0
    bt: dict = {n: [] for n in names}
    for r in range(5):  # batched runs interleaved too; best of 5 (least disturbed by other jobs)
        for n in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            fns[n](queries[:batch], k)
            bt[n].append((time.perf_counter() - t0) / batch)
    out = {}
    for n in names:
        out[n] = {
            "p50_ms": float(np.percentile(ts[n], 50) * 1e3),
            "p99_ms": float(np.percentile(ts[n], 99) * 1e3),
            "mean_ms": float(ts[n].mean() * 1e3),
            "batch_ms_per_query": float(min(bt[n]) * 1e3),
            "batch_size": batch,
        }
    return out


def sweep_equal_recall(index, queries, truth, k, target) -> dict | None:
    """Smallest efSearch/nprobe at which `index` reaches `target` recall (for latency at equal recall)."""
    kind = kind_of(index)
    if kind == "flat":
        return None
    grid = EF_GRID if kind == "hnsw" else [v for v in NPROBE_GRID if v <= faiss.extract_index_ivf(index).nlist]
    for v in grid:
        p, keep = make_params(index, v)
        r = recall_at_k(index.search(queries, k, params=p)[1], truth, k)
        if r >= target:
            return {
                "param": "efSearch" if kind == "hnsw" else "nprobe",
                "value": v,
                "recall_at_10": r,
                "params": p,
                "keep": keep,
            }
    return None


AUTOFAISS_SCRIPT = """
import json, sys, time
from autofaiss import build_index
emb, out, mem, nq = sys.argv[1:5]
index, infos = build_index(embeddings=emb, index_path=out + '/knn.index', index_infos_path=out + '/infos.json',
                           max_index_memory_usage=mem, current_memory_available='16G', metric_type='ip',
                           max_index_query_time_ms=10.0, nb_cores=2, save_on_disk=True, verbose=30)
"""


def bench_size(n: int, args, work: Path, real: np.ndarray | None) -> dict:
    d, k, nq = args.dim, 10, args.queries
    if real is not None and len(real) >= n + nq:
        x_all, source = real[: n + nq], "real embeddings"
    else:
        syn = synthetic(n + nq - (0 if real is None else len(real)), d, seed=n)
        x_all = syn if real is None else np.vstack([real, syn])
        source = "synthetic clustered" if real is None else f"{len(real)} real + synthetic clustered"
    rng = np.random.default_rng(7)
    perm = rng.permutation(len(x_all))
    queries, x = x_all[perm[:nq]].copy(), x_all[perm[nq:]].copy()  # queries held out of the index
    del x_all
    emb = work / f"emb_{n}"
    shutil.rmtree(emb, ignore_errors=True)
    write_emb_dir(emb, x)
    flat = faiss.IndexFlatIP(d)
    flat.add(x)
    truth = flat.search(queries, k)[1]
    del flat
    res: dict = {"n": n, "dim": d, "data": source, "queries": nq, "queries_held_out": True}

    # (a)+(b): avrep build in a subprocess
    out = work / f"avrep_{n}"
    shutil.rmtree(out, ignore_errors=True)
    py = sys.executable
    a_build = run_child(
        [
            py,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[4]); from avrep.index import build_index; "
            "build_index(sys.argv[1], sys.argv[2], max_memory=sys.argv[3])",
            str(emb),
            str(out),
            args.max_memory,
            str(ROOT),
        ],
        work / f"avrep_{n}.log",
    )
    man = json.loads((out / "manifest.json").read_text())
    ix = Index.open(out)
    raw = faiss.read_index(str(out / "index.faiss"))  # efSearch/nprobe were stored by the build
    a_found = ix.search(queries, k).ids
    b_found = raw.search(queries, k)[1]
    lat = paired_latency(
        {
            "avrep": lambda q, kk: ix.search(q, kk),
            "faiss": lambda q, kk: raw.search(q, kk),
            "avrep_to_frame": lambda q, kk: ix.search(q, kk).to_frame(),
        },
        queries,
        k,
        args.single,
        nq,
    )
    common = {
        "factory": man["factory"],
        "search_param": man["search_param"],
        "search_value": man["search_value"],
        "index_bytes": man["index_bytes"],
        **a_build,
    }
    res["avrep"] = {
        **common,
        "recall_at_10": recall_at_k(a_found, truth, k),
        "latency": lat["avrep"],
        "latency_with_metadata_frame": lat["avrep_to_frame"],
        "build_recall_at_10_recorded": man["recall_at_k"],  # on its held-out tuning queries
        "choice_reason": man["choice_reason"],
    }
    res["faiss_direct"] = {**common, "recall_at_10": recall_at_k(b_found, truth, k), "latency": lat["faiss"]}
    res["overhead_vs_faiss"] = {
        m: lat["avrep"][m] / lat["faiss"][m] for m in ("p50_ms", "p99_ms", "batch_ms_per_query")
    }

    # (c) autofaiss in its own venv
    afpy = Path(args.autofaiss_venv) / "bin" / "python"
    if not afpy.exists():
        res["autofaiss"] = {"skipped": f"{afpy} missing (run scripts/autofaiss_venv.sh)"}
        return res
    af_out = work / f"autofaiss_{n}"
    shutil.rmtree(af_out, ignore_errors=True)
    af_out.mkdir(parents=True)
    mem_af = args.max_memory.upper().replace("GB", "G").replace("MB", "M")
    c_build = run_child(
        [str(afpy), "-c", AUTOFAISS_SCRIPT, str(emb), str(af_out), mem_af, str(nq)], work / f"autofaiss_{n}.log"
    )
    infos = json.loads((af_out / "infos.json").read_text())
    af = faiss.read_index(str(af_out / "knn.index"))
    if infos.get("index_param"):
        faiss.ParameterSpace().set_index_parameters(af, infos["index_param"])
    c_found = af.search(queries, k)[1]
    c_rec = recall_at_k(c_found, truth, k)
    fns = {"autofaiss": lambda q, kk: af.search(q, kk), "avrep": lambda q, kk: ix.search(q, kk)}
    eq = sweep_equal_recall(af, queries, truth, k, res["avrep"]["recall_at_10"])
    if eq is not None:
        p_eq = eq["params"]
        fns["autofaiss_at_avrep_recall"] = lambda q, kk: af.search(q, kk, params=p_eq)
    lat_c = paired_latency(fns, queries, k, args.single, nq)
    res["autofaiss"] = {
        "index_key": infos.get("index_key"),
        "index_param": infos.get("index_param"),
        "index_bytes": os.path.getsize(af_out / "knn.index"),
        **c_build,
        "recall_at_10": c_rec,
        "latency": lat_c["autofaiss"],
        "avrep_latency_same_run": lat_c["avrep"],
    }
    if eq is not None:
        res["autofaiss"]["at_avrep_recall"] = {
            "param": eq["param"],
            "value": eq["value"],
            "recall_at_10": eq["recall_at_10"],
            "latency": lat_c["autofaiss_at_avrep_recall"],
        }
    for p in (emb, af_out / "knn.index"):
        if not args.keep:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    return res


def autofaiss_versions(afpy: Path) -> dict:
    """avrep's, FAISS's, numpy's and pandas's versions here, and autofaiss/faiss/numpy in its own venv."""
    v = versions("faiss-cpu", "numpy", "pandas")
    try:
        v["autofaiss_env"] = subprocess.run(
            [
                str(afpy),
                "-c",
                "import autofaiss, faiss, numpy; "
                "print(autofaiss.__version__ if hasattr(autofaiss,'__version__') else '2.18', "
                "faiss.__version__, numpy.__version__)",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--single", type=int, default=500, help="single queries timed per method")
    ap.add_argument("--max-memory", default="4GB")
    ap.add_argument("--autofaiss-venv", default="/work/.venv-autofaiss")
    ap.add_argument("--real", default=None, help="EMB_DIR of real model embeddings to mix in")
    ap.add_argument("--work", default="/tmp/avrep_index_bench")
    ap.add_argument("--out", default=str(RESULTS / "index.json"))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    real = None
    if args.real:
        from avrep.index.store import open_embeddings

        e = open_embeddings(args.real)
        real, args.dim = e.vectors(), e.dim
    out = Path(args.out)
    report = {
        "benchmark": "avrep index vs raw FAISS vs autofaiss",
        "date": now(),
        "machine": machine_info(
            omp_threads=faiss.omp_get_max_threads(),
            note="2 cores shared with other jobs: latencies are noisy; a/b/c are interleaved to share the noise",
        ),
        "versions": autofaiss_versions(Path(args.autofaiss_venv) / "bin/python"),
        "max_memory": args.max_memory,
        "k": 10,
        "data_note": (
            "synthetic clustered vectors (cluster centre + 32-dim latent offset + isotropic noise, "
            f"L2-normalised), dimension {args.dim}"
        )
        + (f"; real embeddings from {args.real} first" if args.real else ""),
        "recall": "recall@10 of held-out queries against exact inner-product search",
        "results": [],
    }
    # keep sizes measured by earlier runs (the 1M run is done separately)
    report["results"] = list(read_result(out).get("results", []))
    for n in [int(s) for s in args.sizes.split(",")]:
        print(f"== n={n}", flush=True)
        r = bench_size(n, args, work, real)
        r["date"] = now()
        report["results"] = [o for o in report["results"] if o["n"] != n] + [r]
        report["results"].sort(key=lambda o: o["n"])
        write_result(out, report)
        print(json.dumps({k: v for k, v in r.items()}, indent=1, default=str)[:3000], flush=True)


if __name__ == "__main__":
    main()

"""Exact GPU search with torch only (no faiss): matmul + topk over N x 256 unit vectors.

Run on a GPU machine (Python 3.12, torch >= 2.4):  python benchmarks/gpu_search.py --out results/gpu_search.json
(prints the JSON too)
Times with CUDA events: per query batch size (1/64/1024) and dtype (fp32/fp16), the median and p99
of search time (ms) over repeats, queries/s, and recall@10 of fp16 against fp32 (fp32 is exact up to
float rounding). The database is generated on the GPU (synthetic clustered vectors, stated).
"""

from __future__ import annotations

import argparse
import json

import torch
from _common import stamp, write_result


def make_db(n: int, d: int, gen: torch.Generator, device) -> torch.Tensor:
    """Clustered unit vectors (centre + 32-dim latent offset + noise), built in chunks on the GPU."""
    nc = max(64, n // 500)
    centres = torch.randn(nc, d, generator=gen, device=device)
    proj = torch.randn(32, d, generator=gen, device=device) / 32**0.5
    out = torch.empty(n, d, device=device)
    for s in range(0, n, 1 << 20):
        m = min(1 << 20, n - s)
        idx = torch.randint(0, nc, (m,), generator=gen, device=device)
        x = centres[idx] + 0.8 * torch.randn(m, 32, generator=gen, device=device) @ proj
        x += 0.25 * torch.randn(m, d, generator=gen, device=device)
        out[s : s + m] = torch.nn.functional.normalize(x, dim=1)
    return out


@torch.inference_mode()
def search(db: torch.Tensor, q: torch.Tensor, k: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k inner product, chunked over the database so the score matrix stays bounded."""
    best_s, best_i = None, None
    for s in range(0, db.shape[0], chunk):
        sc = q @ db[s : s + chunk].T
        v, i = sc.topk(k, dim=1)
        i = i + s
        if best_s is None:
            best_s, best_i = v, i
        else:
            v2, j = torch.cat([best_s, v], 1).topk(k, dim=1)
            best_i = torch.cat([best_i, i], 1).gather(1, j)
            best_s = v2
    return best_s, best_i


def time_it(fn, reps: int) -> list[float]:
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b))
    return ts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--batches", default="1,64,1024")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--chunk", type=int, default=1 << 22, help="database rows per matmul")
    ap.add_argument("--out", default=None, help="also write the JSON here (atomically)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_search.py needs a CUDA GPU")
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 here
    gen = torch.Generator(device=dev).manual_seed(0)
    props = torch.cuda.get_device_properties(dev)
    report = {
        "benchmark": "torch exact GPU search (matmul + topk)",
        **stamp("torch"),
        "device": props.name,
        "gpu_memory_bytes": props.total_memory,
        "cuda": torch.version.cuda,
        "k": args.k,
        "data": f"synthetic clustered unit vectors, dim {args.dim}",
        "tf32": False,
        "results": [],
    }
    for n in [int(s) for s in args.sizes.split(",")]:
        db32 = make_db(n, args.dim, gen, dev)
        db16 = db32.half()
        queries = make_db(max(int(b) for b in args.batches.split(",")), args.dim, gen, dev)
        for b in [int(s) for s in args.batches.split(",")]:
            q32 = queries[:b].contiguous()
            q16 = q32.half()
            _, i32 = search(db32, q32, args.k, args.chunk)
            _, i16 = search(db16, q16, args.k, args.chunk)
            hits = sum(len(set(a.tolist()) & set(c.tolist())) for a, c in zip(i16, i32))
            for name, db, q in (("fp32", db32, q32), ("fp16", db16, q16)):
                for _ in range(3):
                    search(db, q, args.k, args.chunk)
                torch.cuda.synchronize()
                ts = torch.tensor(time_it(lambda db=db, q=q: search(db, q, args.k, args.chunk), args.reps))
                med = float(ts.median())
                report["results"].append(
                    {
                        "n": n,
                        "batch": b,
                        "dtype": name,
                        "median_ms": med,
                        "p99_ms": float(ts.quantile(0.99)),
                        "queries_per_s": b / med * 1e3,
                        "db_bytes": db.numel() * db.element_size(),
                        **({"recall_at_k_vs_fp32": hits / (b * args.k)} if name == "fp16" else {}),
                    }
                )
                print(json.dumps(report["results"][-1]), flush=True)
        del db32, db16
        torch.cuda.empty_cache()
    print(json.dumps(report, indent=1))
    if args.out:
        write_result(args.out, report)


if __name__ == "__main__":
    main()

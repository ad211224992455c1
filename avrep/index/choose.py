"""Choose a FAISS index for a collection: what to build, how much memory it needs, what to tune.

The ladder follows autofaiss' rules (and FAISS's "Guidelines to choose an index"), with two changes:
exact `Flat` is kept far longer (autofaiss switches to HNSW at 1k vectors, where brute force is both
exact and sub-millisecond), and search parameters are tuned to the *smallest* value that reaches a
recall target rather than the largest one a latency budget allows (see `avrep.index.build`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from avrep.errors import AvrepError

# Up to this many float32 values (n * d) brute force is exact and about as fast as a tuned HNSW
# (~0.1 ms/query on one core at 4k x 256; measured 0.6 ms at 10k x 256 vs 0.12 ms for HNSW32).
FLAT_MAX_VALUES = 4096 * 256
HNSW_MAX_M = 32
HNSW_MIN_M = 8
_UNITS = {
    "": 1,
    "B": 1,
    "K": 1 << 10,
    "KB": 1 << 10,
    "M": 1 << 20,
    "MB": 1 << 20,
    "G": 1 << 30,
    "GB": 1 << 30,
    "T": 1 << 40,
    "TB": 1 << 40,
    "KIB": 1 << 10,
    "MIB": 1 << 20,
    "GIB": 1 << 30,
}


def parse_memory(spec: str | int | float) -> int:
    """'4GB', '512M', '1.5GiB' or a byte count -> bytes."""
    if isinstance(spec, (int, float)):
        return int(spec)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(spec))
    if not m or m.group(2).upper() not in _UNITS:
        raise AvrepError(f"max_memory {spec!r}: expected a size like 4GB or 512MB", param="max_memory")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def nb_clusters(n: int) -> int:
    """IVF list count: ~4*sqrt(n) rounded to a power of two (FAISS guideline), 65536 past 10M.

    autofaiss jumps to 16384 lists at 1M; 4096 trains 4x faster there and needs fewer probes per
    recall point on a few cores."""
    if n >= 10_000_000:
        return 65_536
    return max(16, 2 ** round(math.log2(4 * math.sqrt(max(n, 1)))))


@dataclass(frozen=True)
class Choice:
    """A FAISS factory string plus what the tuner should sweep."""

    factory: str
    param: str | None  # "efSearch" | "nprobe" | None (exact)
    est_bytes: int
    reason: str

    @property
    def needs_training(self) -> bool:
        return "IVF" in self.factory or "PQ" in self.factory


def _ivf_quantizer(nlist: int) -> str:
    # Past ~1000 lists a flat coarse quantizer costs more than the lists it picks: use HNSW.
    return f"IVF{nlist}_HNSW32" if nlist >= 4096 else f"IVF{nlist}"


def estimate_bytes(factory: str, n: int, d: int) -> int:
    """Rough resident size of an index built with `factory` over n vectors of dim d."""
    f = factory
    if f == "Flat":
        return 4 * n * d
    m = re.fullmatch(r"HNSW(\d+)(?:,Flat)?", f)
    if m:  # vectors + level-0 links (2M) + upper levels (~M/(M-1) * 1/ln M, rounded up)
        return int(n * (4 * d + 2 * int(m.group(1)) * 4 * 1.1))
    ivf = re.search(r"IVF(\d+)", f)
    nlist = int(ivf.group(1)) if ivf else 0
    quant = 4 * nlist * d + (nlist * 32 * 8 if "_HNSW" in f else 0)
    if f.endswith(",Flat"):
        code = 4 * d
    elif f.endswith(",SQ8"):
        code = d
    else:
        pq = re.search(r"PQ(\d+)", f)
        code = int(pq.group(1)) if pq else 4 * d
        if "Refine(SQ8)" in f or "RSQ8" in f:
            code += d
        opq = re.match(r"OPQ(\d+)_(\d+)", f)
        if opq:
            quant += 4 * d * int(opq.group(2))
    return int(n * (code + 8) + quant)  # +8: the id stored next to each code


def choose_index(n: int, d: int, max_memory: int, index_type: str = "auto") -> Choice:
    """Pick the index for n vectors of dim d within `max_memory` bytes (index_type forces one)."""
    if n <= 0:
        raise AvrepError("cannot build an index over an empty collection")
    if index_type and index_type != "auto":
        return _forced(index_type, n, d)
    flat = estimate_bytes("Flat", n, d)
    if n * d <= FLAT_MAX_VALUES and flat <= max_memory:
        return Choice("Flat", None, flat, f"n*d={n * d} small: exact brute force is as fast as a graph")
    # HNSW: best latency/recall while vectors + graph fit (autofaiss' rule for M).
    m_hnsw = int((max_memory / (4 * n) - d) // 2)
    if m_hnsw >= HNSW_MIN_M:
        m_hnsw = min(m_hnsw, HNSW_MAX_M)
        fac = f"HNSW{m_hnsw},Flat"
        return Choice(fac, "efSearch", estimate_bytes(fac, n, d), f"HNSW{m_hnsw} fits {max_memory} B")
    nlist = nb_clusters(n)
    q = _ivf_quantizer(nlist)
    for fac, why in ((f"{q},Flat", "IVF-Flat fits memory"), (f"{q},SQ8", "IVF-SQ8: 8-bit codes fit memory")):
        est = estimate_bytes(fac, n, d)
        if est <= max_memory:
            return Choice(fac, "nprobe", est, why)
    # Product quantisation with OPQ rotation; the largest code that fits wins (recall grows with it).
    for pq in (128, 64, 48, 32, 24, 16, 8, 4):
        if pq > d:
            continue
        y = pq * max(1, min(d // pq, 4))  # OPQ output dim: a multiple of pq, at most d
        for refine in (True, False):
            fac = f"OPQ{pq}_{y},{q},PQ{pq}" + (",Refine(SQ8)" if refine else "")
            est = estimate_bytes(fac, n, d)
            if est <= max_memory:
                return Choice(fac, "nprobe", est, f"OPQ+IVF-PQ{pq}{' + SQ8 refine' if refine else ''} fits memory")
    raise AvrepError(
        f"{n} vectors of dim {d} do not fit in {max_memory} bytes with any index (raise max_memory)", param="max_memory"
    )


def _forced(index_type: str, n: int, d: int) -> Choice:
    t = index_type.strip()
    if t == "Flat":
        return Choice("Flat", None, estimate_bytes("Flat", n, d), "forced")
    if re.fullmatch(r"HNSW\d+", t):
        t += ",Flat"
    if t.startswith("HNSW"):
        return Choice(t, "efSearch", estimate_bytes(t, n, d), "forced")
    if t == "IVF":  # just "IVF": pick the list count for this n
        t = f"{_ivf_quantizer(nb_clusters(n))},Flat"
    if "IVF" in t:
        if re.search(r"IVF\d+(?:_HNSW\d+)?$", t):
            t += ",Flat"
        return Choice(t, "nprobe", estimate_bytes(t, n, d), "forced")
    raise AvrepError(
        f"index_type {index_type!r}: use auto, Flat, HNSW<M> or an IVF factory string "
        "(e.g. IVF1024,Flat or OPQ32_128,IVF4096,PQ32)",
        param="index_type",
    )

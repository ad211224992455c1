"""Run a batch job's shards as Ray tasks (`--backend ray [--address auto]`): one task per shard.

The jobs (`avrep synth`, `preprocess`, `embed`) decide which shards are still to do and what a shard's
output is; this module only runs `fn(*args)` for each shard on a Ray cluster, with at most
`max_in_flight` tasks submitted at once (bounded driver and object-store memory), retries of a task
whose worker died (`max_retries`), and a clear error for a task that still fails (finished shards are
kept; a re-run resumes). Ray is an optional extra: `pip install -e '.[distributed]'`.

`AVREP_RAY_FAIL_ONCE=DIR` (for recovery tests and drills): the first task submitted kills its own worker
process once (a marker file in DIR remembers it), so Ray must retry it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from avrep.errors import AvrepError


def _ray():
    try:
        import ray
    except ImportError:
        raise AvrepError("backend 'ray' needs Ray: pip install -e '.[distributed]'", param="backend") from None
    return ray


def init(address: str | None = None) -> bool:
    """Connect to the cluster at `address` ("auto": the one `ray start` made here; None: a new local one)
    unless already connected; True if this call connected."""
    ray = _ray()
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except ConnectionError as e:
        raise AvrepError(
            f"address {address}: no Ray cluster there ({' '.join(str(e).split())[:120]})", param="address"
        ) from None
    return True


def _task(fn: Callable, args: tuple, fail_marker: str | None) -> Any:
    if fail_marker:
        try:
            fd = os.open(fail_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.close(fd)
            os._exit(1)  # the worker dies mid-job, as a killed machine would
        except FileExistsError:
            pass
    return fn(*args)


def run_ray_tasks(
    fn: Callable,
    args_list: Sequence[tuple],
    *,
    address: str | None = None,
    desc: str = "shards",
    progress: bool = True,
    max_retries: int = 3,
    max_in_flight: int | None = None,
    num_cpus: float = 1,
    num_gpus: float = 0,
    gpu_if_present: bool = False,
) -> list[Any]:
    """Run fn(*args) for each args as a Ray task -> results in the order of `args_list`.

    gpu_if_present: each task asks for one GPU when the cluster has any (embedding; untested here: no GPU)."""
    from tqdm import tqdm

    ray = _ray()
    if not args_list:
        return []
    init(address)
    if gpu_if_present and ray.cluster_resources().get("GPU", 0) > 0:
        num_gpus = max(num_gpus, 1)
    remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries, retry_exceptions=False)(_task)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    limit = max_in_flight or max(2, 2 * cpus)
    fail_dir = os.environ.get("AVREP_RAY_FAIL_ONCE")
    marker = None
    if fail_dir:
        Path(fail_dir).mkdir(parents=True, exist_ok=True)
        marker = str(Path(fail_dir) / f"{desc}.failed-once")
    results: list[Any] = [None] * len(args_list)
    pending: dict[Any, int] = {}
    nxt = 0
    bar = tqdm(total=len(args_list), desc=f"{desc} (ray)", unit="shard", disable=not progress)
    try:
        while nxt < len(args_list) or pending:
            while nxt < len(args_list) and len(pending) < limit:
                ref = remote.remote(fn, tuple(args_list[nxt]), marker if nxt == 0 else None)
                pending[ref] = nxt
                nxt += 1
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i = pending.pop(ref)
                try:
                    results[i] = ray.get(ref)
                except Exception as e:  # a task failed after its retries: keep what is done, say which
                    msg = " ".join(str(e).split())[:200]
                    raise AvrepError(
                        f"{desc}: shard task {i} failed on Ray ({msg}); finished shards are kept, re-run to resume"
                    ) from None
                bar.update(1)
    finally:
        bar.close()
    return results

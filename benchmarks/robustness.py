"""Robustness benchmark -> benchmarks/results/robustness.json.

  bad media : every zoo file (avrep.testing.robustness) through every media command; batch
              preprocessing of the whole zoo (failures recorded vs clips lost)
  kill      : SIGKILL at random points of synth / preprocess / train / embed / index build, then re-run;
              mismatches against the uninterrupted result and half-written files at final paths
  fuzz      : >= 10,000 byte-mutated real media files through probe / read_video / read_audio /
              process_file in crash-isolating worker processes (crash = segfault/abort, hang = timeout)

Usage: python benchmarks/robustness.py [--fuzz 10000] [--kill-trials 10] [--fuzz-workers 2] [--work DIR]
Long: run it with nohup; partial results are written as it goes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import log, robustness_harness, versions, write_result

rb = robustness_harness()


def bad_media(refs: dict[str, Path], work: Path) -> dict:
    from avrep.embed import Embedder

    zoo = rb.make_media_zoo(work / "zoo", refs["corpus"])
    frames, _, _ = rb.face_source(refs["corpus"])
    photos = rb.make_photo_zoo(work / "photos", frames[len(frames) // 2])
    ctx = {
        "run": refs["run"],
        "index_video": refs["index_video"],
        "index_audio": refs["index_audio"],
        "gen_run": refs["gen_run"],
        "photo": photos[0].path,
        "embedder": Embedder.from_checkpoint(refs["run"], "cpu"),
    }
    cats: dict[str, dict] = {}
    problems = []
    for case in zoo:
        c = cats.setdefault(
            case.category,
            {"inputs": 0, "runs": 0, "errors_reported": 0, "succeeded": 0, "wrong_outcome": 0, "crashes": 0},
        )
        c["inputs"] += 1
        for cmd in rb.MEDIA_COMMANDS:
            c["runs"] += 1
            try:
                code, line = rb.run_media_command(cmd, case.path, ctx, work / "out" / f"{case.name}_{cmd}")
            except BaseException as e:  # a traceback (not a one-line error) counts as a crash of the command
                c["crashes"] += 1
                problems.append(f"{case.name}/{cmd}: {type(e).__name__}: {str(e)[:300]}")
                continue
            if cmd in case.errors:
                ok = (
                    code == 2
                    and line.startswith("avrep: error:")
                    and "\n" not in line.strip()
                    and case.path.name in line
                    and re.search(case.errors[cmd], line, re.I)
                )
                c["errors_reported" if ok else "wrong_outcome"] += 1
                if not ok:
                    problems.append(f"{case.name}/{cmd}: {code} {line[:300]}")
            else:
                c["succeeded" if code == 0 else "wrong_outcome"] += 1
                if code != 0:
                    problems.append(f"{case.name}/{cmd}: {code} {line[:300]}")
    # batch: the zoo as one manifest
    import pandas as pd

    man, cases = rb.zoo_manifest(zoo, work / "zoo.parquet")
    r = rb.run_cli(["preprocess", str(man), "--out", str(work / "zoo_store"), "--shard-size", "3", "--no-preview"])
    ok = pd.read_parquet(work / "zoo_store" / "clips.parquet") if r.code == 0 else pd.DataFrame()
    fails = pd.read_parquet(work / "zoo_store" / "failures.parquet") if r.code == 0 else pd.DataFrame()
    batch = {
        "clips": len(cases),
        "ok": len(ok),
        "failures_recorded": len(fails),
        "lost": len(cases) - len(ok) - len(fails),
        "exit_code": r.code,
        "expected_failures": sum("preprocess" in c.errors for c in cases),
    }
    return {"per_category": cats, "commands": list(rb.MEDIA_COMMANDS), "problems": problems, "batch_preprocess": batch}


def kill_trials(refs: dict[str, Path], work: Path, n: int, seed: int) -> dict:
    out: dict[str, dict] = {}
    for ci, name in enumerate(rb.RESUMABLE):
        s = {
            "trials": 0,
            "killed": 0,
            "mismatches": 0,
            "half_written": 0,
            "rerun_failed": 0,
            "temp_leftovers": 0,
            "kill_times_s": [],
            "details": [],
        }
        calib = rb.kill_spec(name, refs, work / f"calib_{name}")
        window = rb.work_seconds(calib)
        s["work_window_s"] = round(window, 2)
        s["uninterrupted_rerun_mismatch"] = bool(rb.compare_outputs(name, calib.out, refs))
        for t in range(n):
            rng = np.random.default_rng([seed, ci, t])
            d = work / f"kill_{name}_{t}"
            spec = rb.kill_spec(name, refs, d / "out")
            spec.max_delay = window
            res = rb.kill_and_resume(spec, rng)
            s["trials"] += 1
            s["killed"] += res["killed"]
            s["kill_times_s"].append(res["kill_at_s"])
            if res["half_written"]:
                s["half_written"] += 1
            rerun_ok = res["rerun_rc"] == 0 or (name == "index_build" and "already exists" in res["rerun_err"])
            diffs = rb.compare_outputs(name, spec.out, refs) if rerun_ok else ["rerun failed"]
            s["rerun_failed"] += not rerun_ok
            s["mismatches"] += bool(diffs)
            left = rb.temp_leftovers(spec.out) if spec.out.exists() else []
            s["temp_leftovers"] += bool(left)
            if diffs or res["half_written"] or not rerun_ok or left:
                s["details"].append({**res, "diffs": diffs[:5], "temp_leftovers": left[:5]})
            shutil.rmtree(d, ignore_errors=True)
            log(f"kill {name} {t + 1}/{n}: killed={res['killed']} at {res['kill_at_s']}s diffs={len(diffs)}")
        out[name] = s
    return out


def fuzz(refs: dict[str, Path], work: Path, n: int, n_workers: int, seed: int, timeout: float, state: dict) -> dict:
    seeds = rb.fuzz_seeds(refs["corpus"], work)
    names = sorted(seeds)
    stats = {
        k: {"inputs": 0, "ok": 0, "errors_recorded": 0, "crashes": 0, "hangs": 0, "unexpected": 0, "seconds": 0.0}
        for k in names
    }
    examples: list[dict] = []
    crash_dir = work / "crashes"
    crash_dir.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    counter = iter(range(n))

    def worker(w: int) -> None:
        runner = rb.FuzzRunner(timeout=timeout)
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                rng = np.random.default_rng([seed, i])
                name = names[i % len(names)]
                ops = rb.random_ops(rng)
                p = work / f"fuzz_w{w}.bin"
                p.write_bytes(rb.mutate(seeds[name], ops))
                res = runner.run(p, process=name.startswith("synth") or i % 4 == 0)
                with lock:
                    s = stats[name]
                    s["inputs"] += 1
                    s["seconds"] += res["seconds"]
                    o = res["outcome"]
                    if o == "ok":
                        s["ok"] += 1
                        for step, v in res["steps"].items():
                            s.setdefault("steps", {}).setdefault(step, {"ok": 0, "error": 0})[v] += 1
                        s["errors_recorded"] += sum(v == "error" for v in res["steps"].values()) > 0
                    else:
                        s[{"crash": "crashes", "hang": "hangs", "unexpected": "unexpected"}[o]] += 1
                        keep = crash_dir / f"{o}_{i}_{name}.bin"
                        shutil.copy(p, keep)
                        examples.append(
                            {
                                "i": i,
                                "seed": name,
                                "outcome": o,
                                "ops": ops,
                                "file": str(keep),
                                **{k: v for k, v in res.items() if k not in ("outcome",)},
                            }
                        )
                    state["fuzz_done"] = sum(x["inputs"] for x in stats.values())
        finally:
            runner.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(n_workers)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(30)
        log(f"fuzz {state.get('fuzz_done', 0)}/{n}")
        state["fuzz_partial"] = {"per_seed": stats, "examples": examples[:50]}
        state["save"]()
    for t in threads:
        t.join()
    for s in stats.values():
        s["mean_seconds"] = round(s["seconds"] / max(1, s["inputs"]), 4)
        s["seconds"] = round(s["seconds"], 1)
    total = {
        k: sum(s[k] for s in stats.values())
        for k in ("inputs", "ok", "errors_recorded", "crashes", "hangs", "unexpected")
    }
    return {
        "per_seed": stats,
        "total": total,
        "timeout_s": timeout,
        "workers": n_workers,
        "problem_examples": examples[:100],
        "seed": seed,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fuzz", type=int, default=10_000)
    ap.add_argument("--fuzz-workers", type=int, default=2)
    ap.add_argument("--fuzz-timeout", type=float, default=60.0)
    ap.add_argument("--kill-trials", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--skip", nargs="*", default=[], choices=["bad_media", "kill", "fuzz"])
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="avrep_robust_"))
    t0 = time.time()
    result: dict = {
        "versions": versions("torch", "av", "decord", "faiss-cpu", "numpy", "dlib-bin"),
        "settings": {"fuzz_inputs": a.fuzz, "kill_trials_per_command": a.kill_trials, "seed": a.seed},
        "status": "running",
    }
    state: dict = {}

    def save() -> None:
        if "fuzz_partial" in state and "fuzz" not in result:
            result["fuzz_progress"] = {"done": state.get("fuzz_done", 0), **state["fuzz_partial"]}
        result["seconds"] = round(time.time() - t0, 1)
        write_result("robustness", result)

    state["save"] = save
    log(f"work dir {work}")
    refs = rb.build_refs(work / "refs", log)
    if "bad_media" not in a.skip:
        result["bad_media"] = bad_media(refs, work / "bad")
        log("bad media", result["bad_media"]["batch_preprocess"], len(result["bad_media"]["problems"]), "problems")
        save()
    if "kill" not in a.skip:
        result["kill_resume"] = kill_trials(refs, work / "kill", a.kill_trials, a.seed)
        save()
    if "fuzz" not in a.skip:
        result["fuzz"] = fuzz(refs, work / "fuzz", a.fuzz, a.fuzz_workers, a.seed, a.fuzz_timeout, state)
        result.pop("fuzz_progress", None)
    bm = result.get("bad_media", {})
    kr = result.get("kill_resume", {})
    fz = result.get("fuzz", {}).get("total", {})
    result["summary"] = {
        "bad_media_runs": sum(c["runs"] for c in bm.get("per_category", {}).values()),
        "bad_media_wrong_outcomes": sum(c["wrong_outcome"] for c in bm.get("per_category", {}).values()),
        "bad_media_crashes": sum(c["crashes"] for c in bm.get("per_category", {}).values()),
        "batch_lost_clips": bm.get("batch_preprocess", {}).get("lost"),
        "kill_trials": sum(s["trials"] for s in kr.values()),
        "kill_mismatches": sum(s["mismatches"] for s in kr.values()),
        "kill_half_written": sum(s["half_written"] for s in kr.values()),
        "fuzz_inputs": fz.get("inputs"),
        "fuzz_crashes": fz.get("crashes"),
        "fuzz_hangs": fz.get("hangs"),
        "fuzz_unexpected_exceptions": fz.get("unexpected"),
    }
    result["status"] = "done"
    save()
    log("summary", result["summary"])


if __name__ == "__main__":
    main()

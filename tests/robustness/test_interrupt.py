"""SIGKILL at a random point, then re-run: the same final result as an uninterrupted run, and no
half-written file ever visible at a final path. CI runs one trial per command (AVREP_KILL_TRIALS=n for
more; benchmarks/robustness.py runs many)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import KILL_TRIALS

from avrep.testing.robustness import (
    RESUMABLE,
    compare_outputs,
    kill_and_resume,
    kill_spec,
    temp_leftovers,
    work_seconds,
)

SEED = int(os.environ.get("AVREP_KILL_SEED", np.random.SeedSequence().entropy % 2**31))


@pytest.fixture(scope="session")
def refs(rb_corpus, rb_manifest, rb_store, rb_run, rb_emb, rb_index):
    return {
        "corpus": rb_corpus,
        "manifest": rb_manifest,
        "store": rb_store,
        "run": rb_run,
        "emb_video": rb_emb["video"],
        "index_video": rb_index["video"],
    }


@pytest.mark.parametrize("trial", range(KILL_TRIALS))
@pytest.mark.parametrize("command", RESUMABLE)
def test_kill_and_resume(command, trial, refs, tmp_path):
    rng = np.random.default_rng([SEED, RESUMABLE.index(command), trial])
    calib = kill_spec(command, refs, tmp_path / "uninterrupted")
    window = work_seconds(calib)  # also a second uninterrupted run: it must match the reference too
    assert compare_outputs(command, calib.out, refs) == []
    out = tmp_path / "out"
    spec = kill_spec(command, refs, out)
    spec.max_delay = window
    res = kill_and_resume(spec, rng)
    info = f"seed={SEED} {res}"
    assert res["killed"] or res["first_rc"] == 0, info
    assert not res["half_written"], info
    if command == "index_build" and res["rerun_rc"] == 1:  # the killed build had already published it
        assert "already exists" in res["rerun_err"], info
    else:
        assert res["rerun_rc"] == 0, info
    assert compare_outputs(command, out, refs) == [], info
    if command in ("synth", "preprocess", "index_build"):  # these clean up temp files of killed runs
        assert not temp_leftovers(out), info

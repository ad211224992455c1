"""Fuzzing: hypothesis mutates the bytes of real media (a rendered synthetic mp4, a faststart copy and
GRID clips when ../shared/data is present) and feeds them to avrep.io.media.probe / read_video /
read_audio and avrep.preprocess.process_file in a separate worker process. No input may crash it
(segfault/abort), hang past the timeout, or raise anything but a one-line AvrepError naming the file.
CI runs AVREP_FUZZ_EXAMPLES (default 300); benchmarks/robustness.py runs >= 10,000."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from avrep.testing.robustness import KINDS, FuzzRunner, fuzz_seeds, mutate

N = int(os.environ.get("AVREP_FUZZ_EXAMPLES", "300"))


@pytest.fixture(scope="session")
def seeds(rb_corpus, rb_root):
    return fuzz_seeds(rb_corpus, rb_root)


@pytest.fixture(scope="session")
def runner():
    r = FuzzRunner(timeout=60)
    yield r
    r.close()


@pytest.fixture(scope="session")
def fuzz_dir(rb_root):
    d = rb_root / "fuzz"
    d.mkdir()
    return d


OPS = st.lists(
    st.tuples(st.sampled_from(KINDS), st.floats(0, 1), st.integers(1, 4096), st.integers(0, 2**31 - 1)),
    min_size=1,
    max_size=8,
)


def test_seeds_are_valid(seeds, runner, fuzz_dir):
    for name, data in seeds.items():
        p = fuzz_dir / f"seed_{name}"
        p.write_bytes(data)
        res = runner.run(p, process=name.startswith("synth"))
        assert res["outcome"] == "ok" and set(res["steps"].values()) == {"ok"}, (name, res)


def test_fuzz_media_decoders(seeds, runner, fuzz_dir):
    names = sorted(seeds)
    outcomes: dict[str, int] = {}

    @settings(
        max_examples=N,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(name=st.sampled_from(names), ops=OPS)
    def check(name, ops):
        path = fuzz_dir / f"case_{names.index(name)}{os.path.splitext(name)[1] or '.bin'}"
        path.write_bytes(mutate(seeds[name], ops))
        res = runner.run(path, process=name.startswith("synth"))
        outcomes[res["outcome"]] = outcomes.get(res["outcome"], 0) + 1
        assert res["outcome"] == "ok", (name, ops, res)

    check()
    assert sum(outcomes.values()) >= N and set(outcomes) == {"ok"}, outcomes

"""Shared fixtures: the real sample data folder and a small synthetic corpus made once per session."""

from __future__ import annotations

import os
from pathlib import Path

# PyAV first, before any test imports decord: decord bundles an FFmpeg whose symbols would otherwise shadow
# PyAV's, and PyAV then fails to open encoders such as libvpx-vp9 with options.
import av  # noqa: F401
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """10 words x 8 clips of the tiny preset (80 clips), rendered once for all tests."""
    from avrep.synth.corpus import SynthConfig, generate

    out = tmp_path_factory.mktemp("corpus") / "tiny"
    res = generate(SynthConfig(preset="tiny", seed=0, clips_per_word=8), out, workers=2, progress=False)
    assert not res["failures"], res["failures"]
    return out

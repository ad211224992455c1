"""Helpers for avrep's tests (robustness suite included): locate the shared real data and write small test
media with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avrep.testing.media import tone, write_media, write_mp4

__all__ = ["DATA", "grid_frames", "needs_data", "tone", "write_media", "write_mp4"]

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "grid").is_dir(), reason="shared real data absent")


def grid_frames(n: int = 29, name: str = "bbaf2n", start: int = 20) -> np.ndarray:
    """Real GRID frames (a frontal face) to build test videos from: frames start.. in presentation order,
    decoded by PyAV directly (not by avrep's decoder, which several of these tests check)."""
    import av

    with av.open(str(DATA / "grid" / f"{name}.mpg")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return np.stack([frames[min(len(frames) - 1, start + i)] for i in range(n)])

"""Figure helpers shared by evaluation and the report: matplotlib (Agg backend) to PNG bytes.

A low module (numpy + matplotlib only), so `avrep.eval` and `avrep.report` both draw with it and
neither imports the other for a figure.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from avrep.errors import require


def pyplot():
    """matplotlib.pyplot on the Agg backend (nothing touches a display); matplotlib is the [report] extra."""
    require("matplotlib", "report", "plotting (avrep report, eval's confusion PNG, speakers --plot)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig, dpi: int = 90) -> bytes:
    """Render `fig` to PNG bytes and close it."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def confusion(
    cm: np.ndarray,
    words: Sequence[str],
    title: str,
    *,
    max_inches: float = 16,
    min_inches: float = 4.5,
    inches_per_word: float = 0.16,
    max_labels: int = 60,
    font: int = 9,
    dpi: int = 90,
) -> bytes:
    """Row-normalised confusion matrix (compact for the report; `avrep eval` asks for a larger one)."""
    plt = pyplot()
    n = len(words)
    rown = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = min(max_inches, max(min_inches, inches_per_word * n + 3))
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(rown, cmap="viridis", vmin=0, vmax=1)
    if n <= max_labels:
        ax.set_xticks(range(n), words, rotation=90, fontsize=max(4, font - n // 10))
        ax.set_yticks(range(n), words, fontsize=max(4, font - n // 10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return png_bytes(fig, dpi)


__all__ = ["confusion", "png_bytes", "pyplot"]

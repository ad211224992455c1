"""Detection scores: average precision as the field reports it (scikit-learn's `average_precision_score`).

AP = sum_n (R_n - R_{n-1}) P_n over the distinct score thresholds, highest first: items with equal scores
are one threshold (they enter the ranking together), so AP does not depend on how ties are ordered. One
class of speaking vs not is what AVA-ActiveSpeaker calls mAP.
"""

from __future__ import annotations

import numpy as np


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """AP of `scores` for binary `labels` (scikit-learn's step definition, ties = one threshold).

    NaN when there is no positive label (AP is undefined there); ValueError when the lengths differ.
    """
    from sklearn.metrics import average_precision_score

    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, np.float64).ravel()
    if len(y) != len(s):
        raise ValueError(f"average_precision: {len(y)} labels but {len(s)} scores")
    if not y.any():
        return float("nan")
    return float(average_precision_score(y, s))


__all__ = ["average_precision"]

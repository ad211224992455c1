"""Retrieval by temporal matching (`avrep.eval.retrieval.match_scores`) and the loss that trains for it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_lips import _shifted_windows

from avrep.eval.retrieval import match_scores, metrics_from_scores


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_match_scores_equal_a_brute_force_over_lengths_and_offsets():
    rng = np.random.default_rng(0)
    q = [_unit(rng.normal(size=(n, 6))) for n in (5, 9, 7)]
    g = [_unit(rng.normal(size=(n, 6))) for n in (8, 4)]
    s = match_scores(q, g, max_offset=2)
    for i, a in enumerate(q):
        for j, v in enumerate(g):
            best = max(np.mean([a[t + o] @ v[t] for t in range(len(v)) if 0 <= t + o < len(a)]) for o in range(-2, 3))
            assert s[i, j] == pytest.approx(best, abs=1e-5)


def test_a_clip_one_frame_off_is_found_and_pooled_features_cannot_tell():
    """Each gallery clip is the same frames in another order (one pooled vector for all); the query is one
    of them one frame late. Only the temporal match finds it."""
    rng = np.random.default_rng(1)
    frames = _unit(rng.normal(size=(12, 8)))
    gallery = [frames[rng.permutation(12)] for _ in range(20)]
    query = [np.concatenate([frames[:1], g[:-1]]) for g in gallery]  # moved one frame later
    r = metrics_from_scores(match_scores(query, gallery, max_offset=1))
    assert r["R@1"] == 1.0 and r["N"] == 20
    assert metrics_from_scores(match_scores(query, gallery, max_offset=0))["R@1"] < 0.5
    pooled = np.stack([x.mean(0) for x in gallery])
    assert np.allclose(pooled, pooled[0], atol=1e-6)  # nothing to rank on


def test_metrics_from_scores_count_ties_against_the_true_item():
    s = np.array([[1.0, 1.0], [0.0, 2.0]])
    r = metrics_from_scores(s, ks=(1,))
    assert r["R@1"] == 0.5 and r["chance_R@1"] == 0.5
    with pytest.raises(ValueError, match="square"):
        metrics_from_scores(np.zeros((2, 3)))


def test_window_match_infonce_is_low_for_the_aligned_pairs_and_rejects_short_windows():
    from avrep.train.losses import window_match_infonce

    torch.manual_seed(0)
    B, W, K = 8, 12, 3
    base = torch.nn.functional.normalize(torch.randn(B, W + 2 * K, 16), dim=-1)
    off = torch.randint(-K, K + 1, (B,))
    v = base[:, K : K + W]
    a = torch.stack([base[b, K + int(off[b]) : K + int(off[b]) + W] for b in range(B)])  # audio starts off later
    right = window_match_infonce(v, a, off, K, 0.05)
    wrong = window_match_infonce(v, a, (off + 1).clamp(max=K), K, 0.05)
    shuffled = window_match_infonce(v, a[torch.roll(torch.arange(B), 1)], off, K, 0.05)
    assert right < 0.01 and shuffled > 1.0 and wrong > right, (right, wrong, shuffled)
    with pytest.raises(ValueError, match="aligned"):
        window_match_infonce(v, a, off, W, 0.05)


def test_sync_head_trained_with_the_match_loss_retrieves_new_peoples_clips():
    """A tiny sync head trained for real on the retrieval loss alone tells new people's clips apart by
    temporal matching, far above chance (and above the untrained head)."""
    from avrep.models.config import SyncHeadConfig
    from avrep.models.sync_head import SyncHead
    from avrep.train.losses import window_match_infonce

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    head = SyncHead(SyncHeadConfig(hidden=32, out=16))

    def r1() -> float:
        head.eval()
        with torch.no_grad():
            lm, a, _ = _shifted_windows(np.random.default_rng(7), 24, 21, 0)  # new people, in sync
            v = list(head.video_frames(lm).numpy())
            au = list(head.audio_frames(a).numpy())
        head.train()
        return metrics_from_scores(match_scores(au, v))["R@1"]

    before = r1()
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(60):
        lm, a, k = _shifted_windows(rng, 16, 17, 4)
        loss = window_match_infonce(head.video_frames(lm), head.audio_frames(a), k, 4)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = r1()
    assert after >= 0.5 and after >= before + 0.25, (before, after)

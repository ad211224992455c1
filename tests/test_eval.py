"""Evaluation metrics on constructed inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from avrep.eval.lipread import confusion, lipread_metrics, plot_confusion, topk_accuracy
from avrep.eval.probes import disentanglement_probes, linear_probe
from avrep.eval.retrieval import ranks_of_matches, retrieval_metrics


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_retrieval_perfect_and_known_ranks():
    rng = np.random.default_rng(0)
    g = np.linalg.qr(rng.normal(size=(64, 50)))[0].T.astype(np.float32)  # 50 orthonormal rows
    m = retrieval_metrics(g, g)
    assert m["R@1"] == 1.0 and m["median_rank"] == 1.0 and m["N"] == 50
    # query i is closest to gallery (i+1) % N, second closest to its own match
    q = _unit(np.roll(g, -1, axis=0) * 3 + g)
    r = ranks_of_matches(q, g)
    assert (r == 2).all()
    assert retrieval_metrics(q, g)["R@1"] == 0.0 and retrieval_metrics(q, g)["R@5"] == 1.0


def test_retrieval_random_is_near_chance():
    rng = np.random.default_rng(1)
    a, v = _unit(rng.normal(size=(400, 32))), _unit(rng.normal(size=(400, 32)))
    m = retrieval_metrics(a, v)
    assert m["R@1"] < 0.02 and 150 < m["median_rank"] < 250


def test_topk_confusion_and_lipread_metrics(tmp_path):
    y = np.array([0, 1, 2, 2])
    logits = np.array([[3, 2, 1], [3, 2, 1], [0, 1, 5], [5, 1, 0]], float)
    assert topk_accuracy(logits, y, 1) == 0.5
    assert topk_accuracy(logits, y, 2) == 0.75
    cm = confusion(logits.argmax(1), y, 3)
    assert cm.tolist() == [[1, 0, 0], [1, 0, 0], [1, 0, 1]]
    audio = np.eye(3)[y] * 10
    res = lipread_metrics(logits, audio, y, ["a", "b", "c"], ceiling=0.8)
    assert res["video"]["top1"] == 0.5 and res["audio"]["top1"] == 1.0
    assert res["fused"]["top1"] >= res["video"]["top1"]
    assert res["per_word"]["c"]["video"] == 0.5
    assert res["video_top1_over_ceiling"] == pytest.approx(0.625)
    png = tmp_path / "cm.png"
    plot_confusion(cm, ["a", "b", "c"], png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_probes_separate_signal_from_nuisance():
    rng = np.random.default_rng(0)
    n, words, spk = 600, rng.integers(0, 6, 600), rng.integers(0, 4, 600)
    word_feat = np.eye(6)[words] * 2 + rng.normal(0, 0.5, (n, 6))  # word only
    id_feat = np.eye(4)[spk] * 2 + rng.normal(0, 0.5, (n, 4))  # speaker only
    p = disentanglement_probes(word_feat, id_feat, words, spk)
    assert p["word_from_word_features"]["accuracy"] > 0.9
    assert p["speaker_from_identity_features"]["accuracy"] > 0.9
    assert p["speaker_from_word_features"]["accuracy"] < p["speaker_from_word_features"]["chance"] + 0.12
    assert p["word_from_identity_features"]["accuracy"] < p["word_from_identity_features"]["chance"] + 0.12
    assert linear_probe(word_feat, np.zeros(n, int))["accuracy"] is None

"""Disentanglement probes: linear classifiers (scikit-learn) reading labels from frozen features.

Word features should hold the word but not the speaker; identity features the speaker but not the
word. Probes are fitted and scored on a held-out stratified split of the evaluation set, so unseen
speakers can be probed too.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def linear_probe(
    x: np.ndarray, y: np.ndarray, seed: int = 0, test_size: float = 0.3, max_train: int = 20000
) -> dict[str, Any]:
    """Accuracy of a logistic-regression probe on a held-out part; chance = majority-class rate there."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        return {"accuracy": None, "chance": None, "n_classes": int(len(classes)), "note": "one class only"}
    keep = np.isin(y, classes[counts >= 2])  # stratification needs two of each
    x, y = x[keep], y[keep]
    classes = np.unique(y)
    n_test = int(np.ceil(len(y) * test_size))
    if len(classes) < 2 or n_test < len(classes) or len(y) - n_test < len(classes):
        # a stratified split needs at least one test and one training example per class
        return {
            "accuracy": None,
            "chance": None,
            "n_classes": int(len(classes)),
            "n": int(len(y)),
            "note": "too few clips per class for a held-out probe",
        }
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
    if len(ytr) > max_train:
        xtr, ytr = xtr[:max_train], ytr[:max_train]
    sc = StandardScaler().fit(xtr)
    clf = LogisticRegression(max_iter=2000, C=1.0)
    clf.fit(sc.transform(xtr), ytr)
    acc = float((clf.predict(sc.transform(xte)) == yte).mean())
    chance = float(np.unique(yte, return_counts=True)[1].max() / len(yte))
    return {"accuracy": acc, "chance": chance, "n_classes": int(len(np.unique(y))), "n_test": int(len(yte))}


def disentanglement_probes(
    emb_word: np.ndarray, emb_identity: np.ndarray, word_id: np.ndarray, speaker_id: np.ndarray, seed: int = 0
) -> dict[str, Any]:
    """Four probes: identity<-word features and word<-identity features (want ~chance), and the reverse
    pair word<-word features and identity<-identity features (want well above chance)."""
    return {
        "speaker_from_word_features": linear_probe(emb_word, speaker_id, seed),
        "word_from_identity_features": linear_probe(emb_identity, word_id, seed),
        "word_from_word_features": linear_probe(emb_word, word_id, seed),
        "speaker_from_identity_features": linear_probe(emb_identity, speaker_id, seed),
    }

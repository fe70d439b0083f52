"""The fast linear probe: features once, then an L2-regularised logistic regression with C chosen on validation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

DEFAULT_CS = (0.001, 0.01, 0.1, 1.0, 10.0)


@dataclass
class ProbeResult:
    """Accuracy of the best regularisation strength, and the search that found it."""

    best_c: float
    val_acc: float
    test_acc: float
    test_pred: np.ndarray
    search: dict[float, float] = field(default_factory=dict)


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    cs: tuple[float, ...] = DEFAULT_CS,
    max_iter: int = 2000,
) -> ProbeResult:
    """Multinomial logistic regression on standardised features; C (inverse L2 strength) picked on val.

    The final model is refitted on train + val with the chosen C and scored on test.
    """
    scaler = StandardScaler().fit(train_x)
    tx, vx = scaler.transform(train_x), scaler.transform(val_x)
    search: dict[float, float] = {}
    for c in cs:
        clf = LogisticRegression(C=c, max_iter=max_iter)
        clf.fit(tx, train_y)
        search[c] = float((clf.predict(vx) == val_y).mean())
    best = max(search, key=lambda c: (search[c], -c))
    all_x = np.concatenate([train_x, val_x])
    all_y = np.concatenate([train_y, val_y])
    scaler = StandardScaler().fit(all_x)
    clf = LogisticRegression(C=best, max_iter=max_iter).fit(scaler.transform(all_x), all_y)
    pred = clf.predict(scaler.transform(test_x))
    return ProbeResult(best, search[best], float((pred == test_y).mean()), pred, search)

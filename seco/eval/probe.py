"""The fast linear probe: features once, then L2-regularised logistic regression with C chosen on validation.

- Multi-class (EuroSAT): one multinomial logistic regression (:func:`linear_probe`).
- Multi-label (BigEarthNet): one binary logistic regression per label, one shared C (:func:`multilabel_probe`),
  chosen by the validation micro mAP (the SeCo paper's BigEarthNet metric).
- Label fractions: :func:`fraction_indices` draws seeded, stratified and nested subsets of the train split.

Features are standardised with the train statistics before fitting.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from seco.errors import ConfigError
from seco.eval.config import DEFAULT_CS
from seco.eval.metrics import average_precision


@dataclass
class ProbeResult:
    """Accuracy of the best regularisation strength, and the search that found it."""

    best_c: float
    val_acc: float
    test_acc: float
    test_pred: np.ndarray
    search: dict[float, float] = field(default_factory=dict)


@dataclass
class MultiLabelProbeResult:
    """Per-label logistic regressions: the chosen C, its val micro mAP, and the test scores (N, K)."""

    best_c: float
    val_map: float
    test_scores: np.ndarray
    search: dict[float, float] = field(default_factory=dict)


def _fit(x: np.ndarray, y: np.ndarray, c: float, max_iter: int) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the best C on val decides, not convergence
        return LogisticRegression(C=c, max_iter=max_iter).fit(x, y)


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    cs: tuple[float, ...] = DEFAULT_CS,
    max_iter: int = 2000,
    refit: bool = True,
) -> ProbeResult:
    """Multinomial logistic regression on standardised features; C (inverse L2 strength) picked on val.

    Args:
        train_x, val_x, test_x: (N, D) features; train_y, val_y, test_y: (N,) class indices.
        cs: inverse L2 strengths to try; ties go to the smaller C (stronger regularisation).
        refit: refit on train + val with the chosen C before scoring test (False: the train-only model,
            which keeps label-fraction runs honest: val labels never train the classifier).
    """
    scaler = StandardScaler().fit(train_x)
    tx, vx = scaler.transform(train_x), scaler.transform(val_x)
    search: dict[float, float] = {}
    models: dict[float, LogisticRegression] = {}
    for c in cs:
        models[c] = _fit(tx, train_y, c, max_iter)
        search[c] = float((models[c].predict(vx) == val_y).mean())
    best = max(search, key=lambda c: (search[c], -c))
    if refit:
        all_x = np.concatenate([train_x, val_x])
        all_y = np.concatenate([train_y, val_y])
        scaler = StandardScaler().fit(all_x)
        clf = _fit(scaler.transform(all_x), all_y, best, max_iter)
    else:
        clf = models[best]
    pred = clf.predict(scaler.transform(test_x))
    return ProbeResult(best, search[best], float((pred == test_y).mean()), pred, search)


def _binary_scores(x_fit: np.ndarray, y: np.ndarray, x_eval: list[np.ndarray], c: float, max_iter: int):
    """Scores of one label on each array of ``x_eval``; a label with one class in train scores constant."""
    if y.min() == y.max():
        return [np.full(len(x), float(y[0])) for x in x_eval]
    clf = _fit(x_fit, y, c, max_iter)
    return [clf.decision_function(x) for x in x_eval]


def multilabel_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    test_x: np.ndarray,
    cs: tuple[float, ...] = DEFAULT_CS,
    max_iter: int = 1000,
) -> MultiLabelProbeResult:
    """One-vs-rest logistic regression per label on standardised features; one C chosen by val micro mAP.

    Args:
        train_x, val_x, test_x: (N, D) features; train_y, val_y: (N, K) multi-hot targets.

    Returns:
        The test decision scores (N_test, K) of the chosen C (rank-equivalent to probabilities).
    """
    train_y = np.asarray(train_y).astype(np.int64)
    scaler = StandardScaler().fit(train_x)
    tx, vx, sx = scaler.transform(train_x), scaler.transform(val_x), scaler.transform(test_x)
    k = train_y.shape[1]
    search: dict[float, float] = {}
    test_scores: dict[float, np.ndarray] = {}
    for c in cs:
        val_s = np.zeros((len(vx), k))
        test_s = np.zeros((len(sx), k))
        for j in range(k):
            val_s[:, j], test_s[:, j] = _binary_scores(tx, train_y[:, j], [vx, sx], c, max_iter)
        ap = average_precision(val_y.ravel(), val_s.ravel())
        search[c] = -1.0 if np.isnan(ap) else ap
        test_scores[c] = test_s
    best = max(search, key=lambda c: (search[c], -c))
    return MultiLabelProbeResult(best, search[best], test_scores[best], search)


def fraction_indices(strata: np.ndarray, percent: float, seed: int) -> np.ndarray:
    """A seeded, stratified subset of ``percent`` % of the items, nested across percentages.

    Each stratum is shuffled once by a generator seeded with ``seed`` and its first
    ``max(1, round(percent / 100 * n_s))`` items are kept, so the 1 % subset lies inside the 10 % one, and
    every stratum (class) keeps at least one item.

    Args:
        strata: (N,) stratum per item (the class, or the rarest label for multi-label data).
        percent: in (0, 100].

    Returns:
        Sorted (n,) int64 positions.
    """
    if not 0 < percent <= 100:
        raise ConfigError(f"label fraction {percent} % must be in (0, 100]")
    strata = np.asarray(strata)
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        members = members[rng.permutation(len(members))]
        keep.append(members[: max(1, int(round(percent / 100.0 * len(members))))])
    return np.sort(np.concatenate(keep)).astype(np.int64) if keep else np.zeros(0, np.int64)

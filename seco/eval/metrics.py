"""Evaluation metrics in numpy: multi-class accuracy, multi-label average precision, change detection.

Average precision follows scikit-learn's definition (no interpolation): ``AP = sum_n (R_n - R_{n-1}) P_n``
over the distinct score thresholds in decreasing order; ``micro`` pools every (item, label) pair, ``macro``
averages the per-label APs of the labels that have a positive.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seco.errors import ConfigError


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts; rows are the true class, columns the prediction."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ConfigError(f"labels {y_true.shape} and predictions {y_pred.shape} differ in shape")
    bad = [int(v) for v in np.unique(np.concatenate([y_true, y_pred])) if not 0 <= v < num_classes]
    if bad:
        raise ConfigError(f"class index(es) {bad} outside [0, {num_classes}); pass num_classes = the class count")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class accuracy (recall of each class; None for a class absent from ``y_true``) and the
    confusion matrix (rows true, columns predicted)."""
    cm = confusion_matrix(y_true, y_pred, len(classes))
    support = cm.sum(axis=1)
    per_class = {
        c: (float(cm[i, i] / support[i]) if support[i] else None) for i, c in enumerate(classes)
    }
    n = int(cm.sum())
    return {
        "accuracy": float(np.trace(cm) / n) if n else float("nan"),
        "per_class_accuracy": per_class,
        "confusion_matrix": cm.tolist(),
        "support": support.tolist(),
        "n": n,
    }


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Average precision of one binary problem (NaN when there is no positive)."""
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ConfigError(f"targets {y.shape} and scores {s.shape} differ in shape")
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct threshold
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def multilabel_metrics(targets: np.ndarray, scores: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Micro / macro mAP and per-class AP of (N, K) multi-hot ``targets`` and (N, K) ``scores``.

    Labels without a positive in ``targets`` get ``None`` and are left out of the macro average.
    """
    t = np.asarray(targets)
    s = np.asarray(scores)
    if t.shape != s.shape or t.ndim != 2 or t.shape[1] != len(classes):
        raise ConfigError(f"targets {t.shape} and scores {s.shape} must both be (N, {len(classes)})")
    per = [average_precision(t[:, k], s[:, k]) for k in range(t.shape[1])]
    valid = [a for a in per if not math.isnan(a)]
    return {
        "micro_map": average_precision(t.ravel(), s.ravel()),
        "macro_map": float(np.mean(valid)) if valid else float("nan"),
        "per_class_ap": {c: (None if math.isnan(a) else a) for c, a in zip(classes, per, strict=True)},
        "labels_without_positives": [c for c, a in zip(classes, per, strict=True) if math.isnan(a)],
        "n": int(t.shape[0]),
    }


# ---------------------------------------------------------------- change detection


@dataclass(frozen=True)
class ChangeCounts:
    """Pixel counts of the change class: true/false positives, false negatives, true negatives."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: ChangeCounts) -> ChangeCounts:
        return ChangeCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    def scores(self) -> dict[str, float]:
        """Precision, recall, F1 and IoU of the change class (0 where a denominator is 0)."""
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        union = self.tp + self.fp + self.fn
        return {"precision": p, "recall": r, "f1": f1, "iou": self.tp / union if union else 0.0}


def change_counts(pred: np.ndarray, mask: np.ndarray, valid: np.ndarray | None = None) -> ChangeCounts:
    """Counts over the pixels where ``valid`` (default all) of boolean ``pred`` against boolean ``mask``."""
    p = np.asarray(pred).astype(bool)
    m = np.asarray(mask).astype(bool)
    if p.shape != m.shape:
        raise ConfigError(f"prediction {p.shape} and mask {m.shape} differ in shape")
    v = np.ones_like(p) if valid is None else np.asarray(valid).astype(bool)
    return ChangeCounts(
        int((p & m & v).sum()), int((p & ~m & v).sum()), int((~p & m & v).sum()), int((~p & ~m & v).sum())
    )


def per_batch_average(batches: Iterable[ChangeCounts]) -> dict[str, float]:
    """Mean over batches of each batch's precision, recall, F1 and IoU: what the SeCo paper's Lightning
    metrics report (each batch scored alone, then averaged), which weighs every batch equally."""
    rows = [b.scores() for b in batches]
    if not rows:
        return {k: float("nan") for k in ("precision", "recall", "f1", "iou")}
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

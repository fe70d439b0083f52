"""Metrics against scikit-learn on known inputs, and change-detection scores on a hand-made mask."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from seco.errors import ConfigError
from seco.eval.metrics import (
    ChangeCounts,
    average_precision,
    change_counts,
    classification_metrics,
    confusion_matrix,
    multilabel_metrics,
    per_batch_average,
)
from seco.eval.report import FN_COLOUR, FP_COLOUR, TN_COLOUR, TP_COLOUR, change_map_rgb


def test_confusion_and_accuracy_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    p = np.where(rng.random(200) < 0.7, y, rng.integers(0, 4, 200))
    cm = confusion_matrix(y, p, 4)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, p, labels=range(4)))
    m = classification_metrics(y, p, ("a", "b", "c", "d"))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    recall = skm.recall_score(y, p, average=None, labels=range(4))
    assert list(m["per_class_accuracy"].values()) == pytest.approx(list(recall))


def test_per_class_accuracy_of_an_absent_class_is_none() -> None:
    m = classification_metrics(np.array([0, 0, 1]), np.array([0, 2, 1]), ("a", "b", "c"))
    assert m["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": None}
    with pytest.raises(ConfigError, match="outside"):
        confusion_matrix(np.array([0, 5]), np.array([0, 1]), 3)


def test_average_precision_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(1)
    for _ in range(5):
        y = rng.random(300) < 0.3
        s = np.round(rng.random(300) + 0.5 * y, 1)  # rounded: many tied scores
        assert average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx(
        (1 + 2 / 3) / 2
    )
    assert np.isnan(average_precision(np.zeros(4), np.arange(4)))


def test_multilabel_map_matches_sklearn() -> None:
    rng = np.random.default_rng(2)
    t = (rng.random((120, 5)) < 0.35).astype(np.uint8)
    s = rng.random((120, 5)) + 0.6 * t
    m = multilabel_metrics(t, s, tuple("abcde"))
    assert m["micro_map"] == pytest.approx(skm.average_precision_score(t, s, average="micro"))
    assert m["macro_map"] == pytest.approx(skm.average_precision_score(t, s, average="macro"))
    assert list(m["per_class_ap"].values()) == pytest.approx(list(skm.average_precision_score(t, s, average=None)))
    t[:, 2] = 0  # a label without positives is left out of the macro mean
    m = multilabel_metrics(t, s, tuple("abcde"))
    assert m["per_class_ap"]["c"] is None and m["labels_without_positives"] == ["c"]
    keep = [0, 1, 3, 4]
    assert m["macro_map"] == pytest.approx(skm.average_precision_score(t[:, keep], s[:, keep], average="macro"))


def test_change_metrics_on_a_hand_made_mask() -> None:
    mask = np.zeros((6, 6), bool)
    mask[1:4, 1:4] = True  # 9 changed pixels
    pred = np.zeros((6, 6), bool)
    pred[2:5, 2:5] = True  # 9 predicted; overlap 2:4 x 2:4 = 4
    c = change_counts(pred, mask)
    assert (c.tp, c.fp, c.fn, c.tn) == (4, 5, 5, 22)
    s = c.scores()
    assert s["precision"] == pytest.approx(4 / 9) and s["recall"] == pytest.approx(4 / 9)
    assert s["f1"] == pytest.approx(4 / 9) and s["iou"] == pytest.approx(4 / 14)
    assert s["f1"] == pytest.approx(skm.f1_score(mask.ravel(), pred.ravel()))
    assert s["iou"] == pytest.approx(skm.jaccard_score(mask.ravel(), pred.ravel()))
    valid = np.ones_like(mask)
    valid[4:, :] = False  # pixels outside the image (padding) do not count
    assert change_counts(pred, mask, valid) == ChangeCounts(4, 2, 5, 13)  # rows 0-3: 24 pixels


def test_per_batch_average_differs_from_pooled_scores() -> None:
    a = ChangeCounts(tp=1, fp=0, fn=0, tn=10)  # perfect small batch
    b = ChangeCounts(tp=10, fp=10, fn=30, tn=0)  # poor large batch
    avg = per_batch_average([a, b])
    assert avg["precision"] == pytest.approx((1.0 + 0.5) / 2)
    assert avg["recall"] == pytest.approx((1.0 + 0.25) / 2)
    pooled = (a + b).scores()
    assert pooled["precision"] == pytest.approx(11 / 21) and pooled["recall"] == pytest.approx(11 / 41)
    assert ChangeCounts().scores() == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "iou": 0.0}


def test_change_map_colours() -> None:
    pred = np.array([[1, 1], [0, 0]], bool)
    mask = np.array([[1, 0], [1, 0]], bool)
    rgb = change_map_rgb(pred, mask)
    assert tuple(rgb[0, 0]) == TP_COLOUR and tuple(rgb[0, 1]) == FP_COLOUR
    assert tuple(rgb[1, 0]) == FN_COLOUR and tuple(rgb[1, 1]) == TN_COLOUR
    assert len({TP_COLOUR, FP_COLOUR, FN_COLOUR, TN_COLOUR}) == 4

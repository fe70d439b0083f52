"""The fast probes and the label-fraction subsets."""

from __future__ import annotations

import numpy as np
import pytest

from seco.errors import ConfigError
from seco.eval.probe import fraction_indices, linear_probe, multilabel_probe


def _blobs(n: int, k: int, d: int, seed: int, sep: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * sep
    y = rng.integers(0, k, n)
    return centres[y] + rng.normal(size=(n, d)), y


def test_linear_probe_learns_separable_classes_and_picks_c_on_val() -> None:
    x, y = _blobs(300, 4, 16, seed=0, sep=3.0)
    r = linear_probe(x[:200], y[:200], x[200:250], y[200:250], x[250:], y[250:], cs=(0.01, 1.0), refit=False)
    assert r.test_acc > 0.9
    assert set(r.search) == {0.01, 1.0} and r.val_acc == r.search[r.best_c] == max(r.search.values())
    assert r.test_pred.shape == (50,)


def test_linear_probe_on_noise_is_near_chance() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 8)), rng.integers(0, 3, 300)
    r = linear_probe(x[:200], y[:200], x[200:250], y[200:250], x[250:], y[250:], cs=(0.1,))
    assert r.test_acc < 0.6  # 3 classes: chance is 1/3


def test_multilabel_probe_ranks_informative_labels_and_handles_constant_labels() -> None:
    rng = np.random.default_rng(2)
    n, d, k = 240, 12, 3
    x = rng.normal(size=(n, d))
    t = np.stack([x[:, 0] > 0, x[:, 1] + 0.3 * rng.normal(size=n) > 0.5, np.zeros(n, bool)], axis=1).astype(np.uint8)
    r = multilabel_probe(x[:160], t[:160], x[160:200], t[160:200], x[200:], cs=(0.1, 1.0))
    assert r.test_scores.shape == (40, k)
    from seco.eval.metrics import average_precision

    assert average_precision(t[200:, 0], r.test_scores[:, 0]) > 0.9
    assert np.all(r.test_scores[:, 2] == 0.0)  # a label never positive in train scores constant 0


def test_fraction_indices_are_stratified_nested_and_seeded() -> None:
    strata = np.repeat(np.arange(5), [100, 50, 20, 7, 1])
    f1 = fraction_indices(strata, 1, seed=3)
    f10 = fraction_indices(strata, 10, seed=3)
    f50 = fraction_indices(strata, 50, seed=3)
    all_ = fraction_indices(strata, 100, seed=3)
    assert np.array_equal(all_, np.arange(len(strata)))
    assert set(f1) <= set(f10) <= set(f50)
    assert np.bincount(strata[f1], minlength=5).tolist() == [1, 1, 1, 1, 1]  # at least one per class
    assert np.bincount(strata[f10], minlength=5).tolist() == [10, 5, 2, 1, 1]
    assert np.array_equal(f10, fraction_indices(strata, 10, seed=3))
    assert not np.array_equal(f10, fraction_indices(strata, 10, seed=4))
    with pytest.raises(ConfigError, match="fraction"):
        fraction_indices(strata, 0, seed=0)

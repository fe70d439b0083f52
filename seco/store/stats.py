"""Exact, mergeable per-band statistics from uint16 histograms.

Every append adds the pixels of the location's *valid* dates to a (C, 65536) histogram. Two histograms
merge by addition, so the statistics of a store are exact (no sampling) whatever the order or the
number of writer sessions. Value 0 is the nodata value: it is counted in bin 0 but left out of every
statistic. Percentiles use numpy's default ("linear") definition over the non-zero values.
"""

from __future__ import annotations

import numpy as np

from seco.errors import StoreError
from seco.store.schema import NUM_BINS


def empty_histogram(num_bands: int) -> np.ndarray:
    """A zero histogram, (C, 65536) uint64."""
    return np.zeros((num_bands, NUM_BINS), dtype=np.uint64)


def add_to_histogram(hist: np.ndarray, images: np.ndarray, valid: np.ndarray) -> None:
    """Add the valid dates of one location to ``hist`` in place.

    Args:
        hist: (C, 65536) uint64.
        images: (T, C, H, W) uint16.
        valid: (T,) bool.
    """
    x = images[valid]  # (t, C, H, W)
    for c in range(hist.shape[0]):
        hist[c] += np.bincount(x[:, c].ravel(), minlength=NUM_BINS).astype(np.uint64)


def _order_statistic(cum: np.ndarray, k: np.ndarray) -> np.ndarray:
    # value of the k-th smallest element (0-based) given the cumulative counts of values 0..65535
    return np.searchsorted(cum, k, side="right").astype(np.float64)


def percentile(hist: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` of the non-zero values a (65536,) histogram counts.

    Raises:
        StoreError: if the histogram counts no non-zero value.
    """
    h = hist.astype(np.uint64).copy()
    h[0] = 0
    cum = np.cumsum(h)
    n = int(cum[-1])
    if n == 0:
        raise StoreError("no valid non-zero pixels to compute a percentile from; append valid data first")
    pos = (n - 1) * (q / 100.0)
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    a, b = _order_statistic(cum, np.array([lo, hi]))
    t = pos - lo
    # the same interpolation numpy uses (np.lib._function_base_impl._lerp)
    return float(b - (b - a) * (1 - t)) if t >= 0.5 else float(a + (b - a) * t)


def stats_from_histogram(hist: np.ndarray, band_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Mean, std (population), 2nd and 98th percentile per band, in DN, from a (C, 65536) histogram.

    Raises:
        StoreError: naming a band with no valid non-zero pixel.
    """
    values = np.arange(NUM_BINS, dtype=np.float64)
    out: dict[str, list[float]] = {"mean": [], "std": [], "p2": [], "p98": []}
    for c, name in enumerate(band_names):
        h = hist[c].astype(np.uint64).copy()
        h[0] = 0
        n = int(h.sum())
        if n == 0:
            raise StoreError(
                f"band {name} has no valid non-zero pixel in the store; statistics need at least one valid date"
            )
        total = int(np.dot(h, np.arange(NUM_BINS, dtype=np.uint64)))  # exact: < 2**64 for any real store
        mean = total / n
        var = float(np.dot(h.astype(np.float64), (values - mean) ** 2)) / n
        out["mean"].append(mean)
        out["std"].append(var**0.5)
        out["p2"].append(percentile(h, 2.0))
        out["p98"].append(percentile(h, 98.0))
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}

"""Seeded test data for the store tests (also imported by the crash-test child process)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

BANDS = ("B02", "B03", "B04", "B08")
T, P = 3, 24


def location(i: int, seed: int = 0, num_dates: int = T, patch: int = P, bands: int = len(BANDS)) -> dict:
    """Location ``i``: uint16 images with some zero (nodata) pixels, validity, metadata and a label."""
    rng = np.random.default_rng([seed, i])
    images = rng.integers(1, 4000, size=(num_dates, bands, patch, patch)).astype(np.uint16)
    images[:, :, :2, :3] = 0  # nodata corner, ignored by the statistics
    valid = np.ones(num_dates, bool)
    if num_dates > 1 and i % 3 == 1:
        valid[i % num_dates] = False
    start = datetime(2020, 1, 1, 10, 30, tzinfo=UTC) + timedelta(days=i)
    metas = []
    for t in range(num_dates):
        if not valid[t]:
            metas.append(None)
            continue
        metas.append(
            {
                "item_id": f"S2B_33UWP_{i:04d}_{t}_L2A",
                "datetime": (start + timedelta(days=84 * t, microseconds=123456)).isoformat(),
                "cloud_fraction": round(float(rng.uniform(0, 0.3)), 4),
                "nodata_fraction": 6 / patch**2,
                "crs": "EPSG:32633",
                "transform": (10.0, 0.0, 400000.0 + 10 * i, 0.0, -10.0, 5000000.0),
                "lat": 45.0 + i * 1e-3,
                "lon": 15.0 - i * 1e-3,
            }
        )
    return {"key": f"loc-{i:05d}", "images": images, "valid": valid, "dates_meta": metas, "label": i % 4}


def stored(loc: dict) -> np.ndarray:
    """What the store should return for ``loc``: invalid dates as zeros."""
    return np.where(loc["valid"][:, None, None, None], loc["images"], 0).astype(np.uint16)


def reference_stats(locs: list[dict]) -> dict[str, np.ndarray]:
    """numpy statistics over valid dates and non-zero pixels, per band."""
    per_band = [[] for _ in range(locs[0]["images"].shape[1])]
    for loc in locs:
        x = loc["images"][loc["valid"]]
        for c in range(x.shape[1]):
            v = x[:, c].ravel()
            per_band[c].append(v[v > 0])
    vals = [np.concatenate(v).astype(np.float64) for v in per_band]
    return {
        "mean": np.array([v.mean() for v in vals]),
        "std": np.array([v.std() for v in vals]),
        "p2": np.array([np.percentile(v, 2) for v in vals]),
        "p98": np.array([np.percentile(v, 98) for v in vals]),
    }


def native_location(i: int, bands: tuple[str, ...], seed: int = 0, num_dates: int = T, patch: int = P) -> dict:
    """``location`` with 12-band-style imagery whose 20 m / 60 m bands are whole 2 x 2 / 6 x 6 blocks from the
    origin (cropped at the far edge), as a native-grid store needs; nodata corners and invalid dates as there."""
    from seco.store.packing import band_factor

    loc = location(i, seed, num_dates, patch, bands=len(bands))
    rng = np.random.default_rng([seed, i, 1])
    images = loc["images"]
    for k, b in enumerate(bands):
        f = band_factor(b)
        n = -(-patch // f)
        src = rng.integers(1, 4000, size=(num_dates, n, n)).astype(np.uint16)
        src[:, :1, :2] = 0  # nodata corner on the coarse grid
        images[:, k] = np.repeat(np.repeat(src, f, -2), f, -1)[:, :patch, :patch]
    return loc


def s1_location(i: int, seed: int = 0, num_dates: int = T, patch: int = P):
    """The S1 part of location ``i``: dB with a nodata strip, one date without S1 for some locations, records."""
    from seco.store import S1Patch

    rng = np.random.default_rng([seed, i, 1])
    db = np.stack([rng.normal(-11.0, 4.0, (num_dates, patch, patch)),
                   rng.normal(-18.0, 4.5, (num_dates, patch, patch))], axis=1).astype(np.float32)
    db[:, :, -2:, :] = np.nan  # swath edge
    valid = np.ones(num_dates, bool)
    if num_dates > 1 and i % 2 == 0:
        valid[(i // 2) % num_dates] = False
    start = datetime(2020, 1, 1, 5, 50, tzinfo=UTC) + timedelta(days=i)
    metas = [None if not valid[t] else {
        "item_id": f"S1A_IW_GRDH_{i:04d}_{t}_rtc", "datetime": (start + timedelta(days=84 * t - 2)).isoformat(),
        "product": "RTC", "quantity": "gamma0", "platform": "sentinel-1a", "orbit_state": "descending",
        "relative_orbit": 22 + i % 3, "time_offset_days": -2.2, "rule": "planetary-computer/sentinel-1-rtc",
        "nodata_fraction": 2 / patch, "looks": 4.4} for t in range(num_dates)]
    return S1Patch(db, valid, metas)

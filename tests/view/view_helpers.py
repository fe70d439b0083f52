"""A small store to view, made here (reconstructed data: seeded images with a known structure, no real item).

Ten locations spread over the globe, four dates 84 days apart, six bands, 32 px. Location 3 has a date whose
``dn_warning`` is set (the provider rule took a default); location 5 has a date 1000 DN brighter than its others
(the dark-object consistency check flags it); location 7 has a missing date. ``_collect/failures.parquet`` is
a failures table with the columns ``seco collect`` writes, including a ``radiometry-rule`` row for location 8.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
N, T, P = 10, 4, 32
WARNED_RULE, BRIGHT, MISSING, FAILED_RADIOMETRY = 3, 5, 7, 8


def location(i: int) -> dict:
    rng = np.random.default_rng([7, i])
    base = rng.integers(300, 3000, size=(1, len(BANDS), P, P))  # (1, C, H, W)
    images = np.repeat(base, T, axis=0) + rng.integers(0, 50, size=(T, len(BANDS), P, P))
    images[:, :, :2, :] = 0  # a nodata edge
    if i == BRIGHT:
        images[2] += 1000
        images[2, :, :2, :] = 0
    valid = np.ones(T, bool)
    if i == MISSING:
        valid[1] = False
    start = datetime(2021, 1, 10, 10, 0, tzinfo=UTC)
    metas = []
    for t in range(T):
        if not valid[t]:
            metas.append(None)
            continue
        metas.append({
            "item_id": f"S2A_MSIL2A_{i:03d}_{t}", "datetime": start + timedelta(days=84 * t),
            "cloud_fraction": 0.05 * t, "nodata_fraction": 2 / P, "crs": "EPSG:32633",
            "transform": (10.0, 0.0, 400000.0, 0.0, -10.0, 5000000.0),
            "lat": -50.0 + 11.0 * i, "lon": -170.0 + 35.0 * i,
            "dn_shift": (-1000,) * len(BANDS), "dn_rule": "earth-search:boa_offset_applied",
            "dn_warning": "no processing baseline: assumed >= 04.00" if (i == WARNED_RULE and t == 0) else None,
        })
    return {"key": f"{i}", "images": images.astype(np.uint16), "valid": valid, "dates_meta": metas, "label": i % 2}


def write_failures(store: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        (2, 1, "S2B_x_1", "http://h/B04.tif", "patch", "cloud 34 % > 10 %", 1),
        (4, 0, "S2B_x_2", "http://h/B04.tif", "patch", "nodata 12 %", 1),
        (11, 3, None, None, "window", "no scene left", 1),
        (FAILED_RADIOMETRY, 2, "S2A_x_3", None, "radiometry-rule", "flag missing: assumed applied", 1),
    ]
    cols = list(zip(*rows, strict=True))
    table = pa.table({
        "location_id": pa.array(cols[0], pa.int64()), "date_index": pa.array(cols[1], pa.int32()),
        "item_id": pa.array(cols[2], pa.string()), "href": pa.array(cols[3], pa.string()),
        "kind": pa.array(cols[4], pa.string()), "reason": pa.array(cols[5], pa.string()),
        "attempts": pa.array(cols[6], pa.int32()),
    })
    (store / "_collect").mkdir()
    pq.write_table(table, store / "_collect" / "failures.parquet")


def s1_patch(i: int):
    """Reconstructed S1 for location ``i``: VV around -10 dB, VH around -17 dB; date 1 without S1, a NaN edge."""
    from seco.store import S1Patch

    rng = np.random.default_rng([8, i])
    db = np.stack([rng.normal(-10, 2, (T, P, P)), rng.normal(-17, 2, (T, P, P))], axis=1).astype(np.float32)
    db[:, :, :, :3] = np.nan
    valid = np.ones(T, bool)
    valid[1] = False
    meta = [None if not valid[t] else {
        "item_id": f"S1A_IW_GRDH_1SDV_{i:03d}_{t}", "datetime": datetime(2021, 1, 11, 5, 30, tzinfo=UTC)
        + timedelta(days=84 * t), "product": "GRD", "quantity": "sigma0", "platform": "sentinel-1a",
        "orbit_state": "descending", "relative_orbit": 22, "time_offset_days": 0.8, "rule": "grd-sigma0-db",
        "nodata_fraction": 3 / P} for t in range(T)]
    return S1Patch(db=db, valid=valid, meta=meta)


def make_store(path: Path | str, n: int = N, s1: bool = False) -> None:
    from seco.store import create_store

    kw = {"sensors": ("s2", "s1")} if s1 else {}
    with create_store(path, bands=BANDS, num_dates=T, patch_size=P, label_names=["land", "water"], **kw) as w:
        for i in range(n):
            loc = location(i)
            extra = {"s1": s1_patch(i)} if s1 else {}
            w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], label=loc["label"], **extra)

"""Seeded fake SSL4EO-S12 v1.1 Zarr-zip files in the release's layout (RECONSTRUCTED from its README's xarray
listings of an S2L2A and an S1GRD file and its ssl4eos12_dataset.py / zarr_dataset.py; no real file is used).

``<root>/train/{S2L1C|S2L2A,S1GRD}/ssl4eos12_train_seasonal_data_<6 digits>.zarr.zip``, Zarr v2 (as xarray writes
it: ``_ARRAY_DIMENSIONS`` attributes, consolidated metadata), per file ``n`` samples x 4 timestamps:
``bands`` (S2 int16 = v1 DN + ``offset``; S1 float16 dB), ``band``, ``sample``, ``time``, ``time_`` (CF int64
"seconds since ..."), ``file_id``, ``sample_id``, ``center_lat/lon``, ``crs`` (UTM EPSG), ``x_``, ``y_``,
``cloud_mask`` (S2). By sample position in each file:

    0  good; S1 at every timestamp
    1  timestamp 2 has no time (NaT) and no data: that date is left out
    2  a nodata stripe (0) in timestamp 0; S1 timestamp 3 all NaN (that date keeps its S2, without S1)
    3+ good
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

L1C = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
L2A = tuple(b for b in L1C if b != "B10")
EPOCH = datetime(2019, 12, 21, tzinfo=UTC)
NAT = np.iinfo(np.int64).min


@dataclass
class FakeV11:
    root: Path
    patch: int
    dn: dict[str, np.ndarray] = field(default_factory=dict)  # sample -> (4, C, P, P) true DN (v1 values)
    times: dict[str, list[datetime | None]] = field(default_factory=dict)  # sample -> S2 time per timestamp
    s1: dict[str, np.ndarray] = field(default_factory=dict)  # sample -> (4, 2, P, P) float16 dB as written
    s1_times: dict[str, list[datetime]] = field(default_factory=dict)


def _arr(g, name, data, dims, attrs=None, chunks=None):
    a = g.create_array(name, shape=data.shape, dtype=data.dtype, chunks=chunks or data.shape,
                       attributes={"_ARRAY_DIMENSIONS": list(dims), **(attrs or {})})
    a[...] = data
    return a


def _common(g, samples, lat, lon, epsg, x0, y0, P, times, ids):
    S = len(samples)
    _arr(g, "sample", np.array(samples, dtype="<U7"), ["sample"])
    _arr(g, "time", np.arange(4, dtype=np.int64), ["time"])
    _arr(g, "x", np.arange(P, dtype=np.int64), ["x"])
    _arr(g, "y", np.arange(P, dtype=np.int64), ["y"])
    _arr(g, "center_lat", lat, ["sample"])
    _arr(g, "center_lon", lon, ["sample"])
    _arr(g, "crs", epsg, ["sample"])
    _arr(g, "x_", x0[:, None] + 10.0 * np.arange(P)[None, :], ["sample", "x"])
    _arr(g, "y_", y0[:, None] - 10.0 * np.arange(P)[None, :], ["sample", "y"])
    secs = np.array([[NAT if t is None else int((t - EPOCH).total_seconds()) for t in row] for row in times])
    _arr(g, "time_", secs, ["sample", "time"], {"units": "seconds since 2019-12-21 00:00:00",
                                                 "calendar": "proleptic_gregorian", "_FillValue": int(NAT)})
    _arr(g, "file_id", np.array(ids, dtype=f"<U{max(len(i) for row in ids for i in row)}"), ["sample", "time"])
    _arr(g, "sample_id", np.array([[f"{s}_{t}" for t in range(4)] for s in samples], dtype="<U9"), ["sample", "time"])
    assert len(times) == S


def _write(path: Path, fill) -> None:
    import zarr
    from zarr.storage import ZipStore

    path.parent.mkdir(parents=True, exist_ok=True)
    store = ZipStore(path, mode="w")
    g = zarr.create_group(store, zarr_format=2)
    fill(g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile: consolidation rewrites .zgroup/.zattrs
        zarr.consolidate_metadata(store)
    store.close()


def make_v11(root: Path, *, modality: str = "s2c", files: int = 2, per_file: int = 4, patch: int = 24,
             offset: int = 1000, seed: int = 0, with_s1: bool = True) -> FakeV11:
    """Write ``files`` S2 (and S1GRD) Zarr-zip files under ``root/train``; S2 values are the DN + ``offset``."""
    rng = np.random.default_rng(seed)
    bands = L1C if modality == "s2c" else L2A
    mdir = "S2L1C" if modality == "s2c" else "S2L2A"
    fake = FakeV11(root=root, patch=patch)
    for k in range(files):
        samples = [f"{int(rng.integers(0, 250000)):07d}" for _ in range(per_file)]
        lat = rng.uniform(-60, 60, per_file)
        lon = rng.uniform(-170, 170, per_file)
        epsg = np.array([(32600 if la >= 0 else 32700) + int((lo + 180) // 6) + 1 for la, lo in zip(lat, lon, strict=True)])
        x0, y0 = rng.uniform(2e5, 8e5, per_file), rng.uniform(1e6, 9e6, per_file)
        raw = np.zeros((per_file, 4, len(bands), patch, patch), dtype=np.int16)
        s1 = np.zeros((per_file, 4, 2, patch, patch), dtype=np.float16)
        times, ids, s1_times, s1_ids = [], [], [], []
        for s, name in enumerate(samples):
            base = EPOCH + timedelta(days=float(rng.uniform(0, 300)))
            row = [base + timedelta(days=91.0 * t + float(rng.uniform(-10, 10))) for t in range(4)]
            dn = np.zeros((4, len(bands), patch, patch), dtype=np.int32)
            for t in range(4):
                for c, b in enumerate(bands):
                    level = 22 if b == "B10" else 300 + 150 * c
                    dn[t, c] = np.clip(rng.normal(level, level / 3, size=(patch, patch)), 1, 20000)
            t_row: list[datetime | None] = list(row)
            if s == 1:
                t_row[2] = None
                dn[2] = 0
            if s == 2:
                dn[0, :, :, :3] = 0
            raw[s] = np.where(dn > 0, dn + offset, 0).astype(np.int16)
            s1_row = [w + timedelta(days=float(rng.uniform(-12, 12))) for w in row]
            db = np.stack([-12 + rng.normal(0, 4, (4, patch, patch)), -20 + rng.normal(0, 4, (4, patch, patch))], 1)
            if s == 2:
                db[3] = np.nan
            s1[s] = db.astype(np.float16)
            times.append(t_row)
            ids.append([f"{w:%Y%m%dT%H%M%S}_{w:%Y%m%dT%H%M%S}_T31UDQ" for w in row])
            s1_times.append(s1_row)
            s1_ids.append([f"S1{'AB'[t % 2]}_IW_GRDH_1SDV_{w:%Y%m%dT%H%M%S}_{w + timedelta(seconds=25):%Y%m%dT%H%M%S}_"
                           f"{int(rng.integers(20000, 40000)):06d}_03B0A6_1D1B" for t, w in enumerate(s1_row)])
            fake.dn[name], fake.times[name] = dn.astype(np.uint16), t_row
            fake.s1[name], fake.s1_times[name] = s1[s], s1_row
        fname = f"ssl4eos12_train_seasonal_data_{k + 1:06d}.zarr.zip"

        def fill_s2(g, raw=raw, samples=samples, lat=lat, lon=lon, epsg=epsg, x0=x0, y0=y0, times=times, ids=ids):
            _common(g, samples, lat, lon, epsg, x0, y0, patch, times, ids)
            _arr(g, "band", np.array(bands, dtype="<U3"), ["band"])
            _arr(g, "bands", raw, ["sample", "time", "band", "y", "x"], chunks=(len(samples), 1) + raw.shape[2:])
            mask = (rng.uniform(size=(len(samples), 4, patch, patch)) < 0.1).astype(np.uint8)
            _arr(g, "cloud_mask", mask, ["sample", "time", "y", "x"])

        _write(root / "train" / mdir / fname, fill_s2)
        if with_s1:
            def fill_s1(g, s1=s1, samples=samples, lat=lat, lon=lon, epsg=epsg, x0=x0, y0=y0, times=s1_times,
                        ids=s1_ids):
                _common(g, samples, lat, lon, epsg, x0, y0, patch, times, ids)
                _arr(g, "band", np.array(["vv", "vh"], dtype="<U2"), ["band"])
                _arr(g, "bands", s1, ["sample", "time", "band", "y", "x"], chunks=(len(samples), 1) + s1.shape[2:])

            _write(root / "train" / "S1GRD" / fname, fill_s1)
    return fake

"""SSL4EO-S12 v1.1 (DLR-MF-DAS/SSL4EO-S12-v1.1): Zarr-zip files of 64 locations x 4 timestamps.

Layout (the release's README, "Data" and "Julich DataHub"; the Hugging Face dataset has the same tree)::

    <root>/{train,val}/{S2L1C,S2L2A,S1GRD,S2RGB}/ssl4eos12_<split>_seasonal_data_<6 digits>.zarr.zip

Each file is a Zarr v2 group (as written by xarray) with ``bands (sample, time, band, y, x)`` (S2 int16 DN,
S1 float16 dB ``vv``/``vh``), ``band``, ``sample`` (7-digit location ids), ``time_ (sample, time)``
(CF-encoded or datetime64), ``file_id (sample, time)`` (the product ids), ``center_lat``/``center_lon``
``(sample)``, ``crs (sample)`` (UTM EPSG code), ``x_``/``y_ (sample, x|y)`` (pixel-centre coordinates), and for
S2 ``cloud_mask (sample, time, y, x)`` uint8. The S1GRD file of the same name holds the same samples.

One file is one unit of work (its chunks span samples: reading one location alone would decode all 64).
The S2 values carry +1000 DN (``seco.radiometry.corpora.SSL4EO_V11_ZARR``), decided per file from the data
(``v11_offset``) unless forced.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from seco.errors import CorpusError
from seco.imports.s1 import S1Location, orbit_state_from_time, pair_s1, relative_orbit
from seco.radiometry.corpora import S1_SSL4EO_V11_RULE, s1_db, v11_offset, v11_to_dn

__all__ = ["MODALITY_DIR", "V11File", "find_v11_files", "read_v11_file", "v11_names"]

MODALITY_DIR = {"s2c": "S2L1C", "s2a": "S2L2A"}
SPLITS = ("train", "val")
_CF = re.compile(r"^\s*(nanoseconds|microseconds|milliseconds|seconds|minutes|hours|days)\s+since\s+(.+)$")
_S1_ID = re.compile(r"^S1([A-D])_(\w\w)_\w{4}_\w{4}_(\d{8}T\d{6})_\d{8}T\d{6}_(\d{6})_")


@dataclass(frozen=True)
class V11File:
    """One Zarr-zip file pair: the S2 file and (``--with-s1``) the S1GRD file of the same name."""

    s2: str
    s1: str | None


def _open(path: str) -> Any:
    import zarr
    from zarr.storage import ZipStore

    return zarr.open_group(ZipStore(path, mode="r"), mode="r")


def find_v11_files(root: Path, modality: str, with_s1: bool) -> list[V11File]:
    """Every S2 file of the modality under ``root`` (a split folder, or the folder holding train/ and val/).

    Raises:
        CorpusError: no ``<S2L1C|S2L2A>/*.zarr.zip`` there, or ``--with-s1`` and no S1GRD file of the same name.
    """
    mdir = MODALITY_DIR[modality]
    splits = [root] if (root / mdir).is_dir() else [root / s for s in SPLITS if (root / s / mdir).is_dir()]
    files: list[V11File] = []
    for split in splits:
        for name in sorted(os.listdir(split / mdir)):
            if not name.endswith(".zarr.zip"):
                continue
            s1 = split / "S1GRD" / name
            if with_s1 and not s1.is_file():
                raise CorpusError(f"--with-s1: {s1} is missing (every {mdir} file has an S1GRD file of the same "
                                  "name in the release); download S1GRD too, or drop --with-s1")
            files.append(V11File(str((split / mdir / name).absolute()), str(s1.absolute()) if with_s1 else None))
    if not files:
        raise CorpusError(f"{root} has no {mdir}/*.zarr.zip (nor train/{mdir}/, val/{mdir}/); give the folder the "
                          f"SSL4EO-S12 v1.1 release was downloaded to (it holds train/ and val/)")
    return files


def v11_names(f: V11File) -> list[str]:
    """The location ids (``sample``) of a file, in file order (read in the driver: a small array)."""
    g = _open(f.s2)
    return [str(s) for s in np.asarray(g["sample"][:])]


def _times(arr: Any) -> np.ndarray:
    """(S, T) object array of UTC datetimes (``None`` for NaT / missing) from a CF-encoded or datetime64 array."""
    raw = np.asarray(arr[:])
    out = np.full(raw.shape, None, dtype=object)
    if raw.dtype.kind == "M":
        ns = raw.astype("datetime64[ns]").astype(np.int64)
        base, unit = datetime(1970, 1, 1, tzinfo=UTC), 1e-9
        bad = np.isnat(raw)
    else:
        m = _CF.match(str(arr.attrs.get("units", "")))
        if m is None:
            raise CorpusError(f"time_ has units {arr.attrs.get('units')!r}, not '<unit> since <date>'; is this an "
                              "SSL4EO-S12 v1.1 file?")
        unit = {"nanoseconds": 1e-9, "microseconds": 1e-6, "milliseconds": 1e-3, "seconds": 1.0, "minutes": 60.0,
                "hours": 3600.0, "days": 86400.0}[m.group(1)]
        base = datetime.fromisoformat(m.group(2).strip().replace(" ", "T")).replace(tzinfo=UTC)
        ns = raw.astype(np.int64)
        fill = arr.attrs.get("_FillValue", arr.fill_value)
        bad = (ns == np.iinfo(np.int64).min) | ((ns == fill) if fill is not None else False)
    for idx in np.ndindex(raw.shape):
        if not bad[idx]:
            out[idx] = base + timedelta(seconds=float(ns[idx]) * unit)
    return out


def _s2_dates(g: Any, s: int, dn: np.ndarray, names: dict[str, Any]) -> list[tuple[datetime, int, dict[str, Any]]]:
    """The valid S2 dates of sample ``s``: (time, time index, store metadata), chronological."""
    T = dn.shape[0]
    out = []
    xs, ys = names["x_"][s], names["y_"][s]
    a, e = float(xs[1] - xs[0]), float(ys[1] - ys[0])
    transform = (a, 0.0, float(xs[0]) - a / 2, 0.0, e, float(ys[0]) - e / 2)  # x_/y_ are pixel centres
    for t in range(T):
        when = names["time_"][s, t]
        if when is None:
            continue
        nodata = float(np.mean((dn[t] == 0).any(axis=0)))
        if nodata >= 1.0:
            continue
        cloud = names["cloud_mask"]
        out.append((when, t, {
            "item_id": str(names["file_id"][s, t]), "datetime": when,
            "cloud_fraction": float(np.mean(cloud[s, t] > 0)) if cloud is not None else float("nan"),
            "nodata_fraction": nodata, "crs": f"EPSG:{int(names['crs'][s])}", "transform": transform,
            "lat": float(names["center_lat"][s]), "lon": float(names["center_lon"][s]),
        }))
    out.sort(key=lambda d: (d[0], d[1]))
    return out


def _s1_of(g1: Any, s2_times: list[datetime | None], sample: str, lon: float, P: int) -> S1Location:
    """S1 of one location from the S1GRD file: each timestamp on the slot of the S2 date closest in time."""
    T = len(s2_times)
    res = S1Location(db=np.full((T, 2, P, P), np.nan, dtype=np.float32), valid=np.zeros(T, dtype=bool),
                     meta=[None] * T)
    samples = [str(x) for x in np.asarray(g1["sample"][:])]
    if sample not in samples:
        res.problems.append(f"{sample}: not in the S1GRD file")
        return res
    k = samples.index(sample)
    bands = [str(b).upper() for b in np.asarray(g1["band"][:])]
    if bands[:2] != ["VV", "VH"]:
        res.problems.append(f"{sample}: S1GRD bands {bands}, expected vv, vh")
        return res
    times = _times(g1["time_"])[k]
    ids = np.asarray(g1["file_id"][k])
    db = s1_db(np.asarray(g1["bands"][k]))  # (T, 2, H, W)
    reads = [(t, times[t]) for t in range(db.shape[0]) if times[t] is not None and not np.isnan(db[t]).all()]
    pairs = pair_s1([w for _, w in reads], s2_times)
    for i, (t, when) in enumerate(reads):
        slot = pairs.get(i)
        sid = str(ids[t])
        if slot is None:
            res.problems.append(f"{sid}: no S2 date within 30 days (its season has no S2)")
            continue
        m = _S1_ID.match(sid)
        s2_time = s2_times[slot]
        assert s2_time is not None
        res.db[slot], res.valid[slot] = db[t], True
        res.meta[slot] = {
            "item_id": sid, "datetime": when, "product": "GRD", "quantity": "sigma0",
            "platform": f"sentinel-1{m.group(1).lower()}" if m else None,
            "orbit_state": orbit_state_from_time(when, lon),
            "relative_orbit": relative_orbit(m.group(1), int(m.group(4))) if m and m.group(1) in "AB" else None,
            "time_offset_days": (when - s2_time).total_seconds() / 86400.0, "rule": S1_SSL4EO_V11_RULE,
            "nodata_fraction": float(np.mean(np.isnan(db[t]).any(axis=0))), "looks": None,
        }
    if any(res.valid):
        res.notes.append(f"{sample}: S1 orbit state from the local solar time, relative orbit from the product id")
    return res


def read_v11_file(f: V11File, job: Any) -> list[Any]:
    """Read and decide every location of one file (the unit of work of a v1.1 import).

    Args:
        f: the file pair.
        job: the :class:`seco.imports.readers.ReadJob` (``v11_offset``: ``"auto"``, ``"1000"`` or ``"0"``).

    Returns:
        One :class:`seco.imports.readers.ReadResult` per sample, in file order.
    """
    from seco.imports.layouts import LocationRef
    from seco.imports.readers import ReadResult

    corpus, P, T = job.corpus, job.patch_size, job.corpus.num_dates
    g = _open(f.s2)
    samples = [str(s) for s in np.asarray(g["sample"][:])]
    refs = [LocationRef(s, f.s2) for s in samples]
    bands = [str(b) for b in np.asarray(g["band"][:])]
    if bands != list(corpus.bands):
        raise CorpusError(f"{f.s2}: bands {bands}, expected {list(corpus.bands)} ({corpus.modality}); is this the "
                          f"{MODALITY_DIR[corpus.modality]} folder?")
    arr = g["bands"]
    if tuple(arr.shape[1:]) != (T, len(bands), P, P):
        raise CorpusError(f"{f.s2}: bands are {tuple(arr.shape)}, expected (samples, {T}, {len(bands)}, {P}, {P}); "
                          f"pass --patch-size {arr.shape[-1]}" if arr.shape[-1] != P else
                          f"{f.s2}: bands are {tuple(arr.shape)}, not (samples, {T}, {len(bands)}, {P}, {P})")
    raw = np.asarray(arr[:])  # (S, T, C, P, P) int16
    if job.v11_offset == "auto":
        offset, darkest = v11_offset(raw)
        how = f"decided from the data (darkest valid value {darkest})"
    else:
        offset, how = int(job.v11_offset), "forced by --v11-offset"
    names: dict[str, Any] = {k: (np.asarray(g[k][:]) if k in g else None)
             for k in ("file_id", "center_lat", "center_lon", "crs", "x_", "y_", "cloud_mask")}
    names["time_"] = _times(g["time_"])
    g1 = _open(f.s1) if f.s1 else None
    out = []
    for s, ref in enumerate(refs):
        key = ref.key(corpus)
        dn = v11_to_dn(raw[s], offset)  # (T, C, P, P)
        dates = _s2_dates(g, s, dn, names)
        res = ReadResult(ref, key, "ok", notes=[f"{ref.name}: v1.1 offset {offset} DN {how}"] if offset else [])
        left = T - len(dates)
        if left:
            res.date_problems += [f"{ref.name}: no data (or no time) in {left} timestamp(s)"]
        if len(dates) < job.min_dates:
            res.status = "skipped"
            res.reason = f"{len(dates)} valid date(s) of {T}, fewer than --min-dates {job.min_dates}"
            out.append(res)
            continue
        images = np.zeros((T, len(bands), P, P), dtype=np.uint16)
        valid = np.zeros(T, dtype=bool)
        metas: list[dict[str, Any] | None] = [None] * T
        for slot, (_, t, meta) in enumerate(dates):
            images[slot], valid[slot], metas[slot] = dn[t], True, meta
        res.images, res.valid, res.dates_meta = images, valid, metas
        if g1 is not None:
            res.s1 = _s1_of(g1, [m["datetime"] if m else None for m in metas], ref.name,
                            float(names["center_lon"][s]), P)
        out.append(res)
    return out

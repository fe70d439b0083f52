"""Reading one location of a corpus into the store's form: (T, C, P, P) uint16 DN on the 10 m grid.

Runs in worker processes (or on a Dask cluster): only numpy, rasterio and the JSON of the corpus; everything
it returns pickles. Each problem is a short reason string, so the report can say why a date or a location
was left out. Rules:

- a date needs every band of the corpus, each readable, one band, the corpus dtype and the expected native
  size (``P``, ``P / 2``, ``P / 6`` by resolution) within ``size_tolerance`` pixels; a band off by that much is
  centre-cropped (the downloader's own ``center_crop`` offsets) or padded with nodata zeros, and said so;
- 20 m and 60 m bands go to the 10 m grid by nearest (2 x 2 / 6 x 6 repeats), as ``seco collect`` does;
- the acquisition time comes from ``metadata.json`` (``system:time_start``) or else from the product id
  (``YYYYMMDDTHHMMSS_...``); without either the date is left out;
- valid dates are stored in chronological order in the first slots, the rest invalid;
- a location with fewer valid dates than ``min_dates`` is skipped.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from seco.errors import CorpusError
from seco.imports.layouts import Corpus, LocationRef, file_band_name, fit_patch
from seco.imports.s1 import S1Location, read_s1_location
from seco.radiometry.corpora import baseline_offset, to_dn

__all__ = ["DateRead", "ReadJob", "ReadResult", "read_date", "read_location"]

_PRODUCT_TIME = re.compile(r"^(\d{8}T\d{6})")

#: Cloud fraction stored for every imported date. Both downloaders mask QA60 clouds and cirrus and call
#: Earth Engine's ``sampleRectangle`` without ``defaultValue`` (documented as the value "used when a sampled
#: pixel is masked"), retrying failed requests at new locations, so written patches are expected to hold no
#: QA60-masked pixel. An inference from the API and the download code, not checked on the files; QA60 is
#: coarse (60 m): this is the QA60 patch fraction, not a cloud-free guarantee (docs/IMPORT.md).
QA60_CLOUD_FRACTION = 0.0


@dataclass(frozen=True)
class ReadJob:
    """What every worker needs (pickles with the task).

    Attributes:
        corpus: the corpus and modality.
        patch_size: ``P``, the 10 m grid side (264 in both corpora; a multiple of 6).
        min_dates: fewest valid dates a location needs to be imported.
        size_tolerance: native pixels a band may be off its expected size (cropped / padded).
        s1_base: the SSL4EO-S12 ``s1/`` folder (absolute) when Sentinel-1 is imported with the S2 dates,
            else ``None``.
        v11_offset: SSL4EO-S12 v1.1 only: ``"auto"``, ``"1000"`` or ``"0"`` (``seco.imports.v11``).
    """

    corpus: Corpus
    patch_size: int = 264
    min_dates: int = 3
    size_tolerance: int = 1
    s1_base: str | None = None
    v11_offset: str = "auto"


@dataclass
class DateRead:
    """One date folder read: pixels (C, P, P) uint16 or the reason it was left out."""

    item_id: str
    when: datetime | None = None
    pixels: np.ndarray | None = None
    meta: dict[str, Any] | None = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ReadResult:
    """One location, decided.

    Attributes:
        ref: the location folder.
        key: its store key.
        status: ``"ok"`` (append it) or ``"skipped"``.
        reason: why it was skipped (``None`` when ok).
        images: (T, C, P, P) uint16 DN; ``valid``: (T,) bool; ``dates_meta``: T dicts or None.
        date_problems: ``"<product id>: <reason>"`` of every date left out.
        notes: what was adjusted (crops, pads, baseline offsets, metadata fallbacks).
        s1: Sentinel-1 on the same date slots (``ReadJob.s1_base`` set), else ``None``.
    """

    ref: LocationRef
    key: str
    status: str
    reason: str | None = None
    images: np.ndarray | None = None
    valid: np.ndarray | None = None
    dates_meta: list[dict[str, Any] | None] | None = None
    date_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    s1: S1Location | None = None


def _time_of(meta: dict[str, Any] | None, item_id: str) -> tuple[datetime | None, str | None]:
    """Acquisition time from metadata (``system:time_start``, ms) or the product id; note on fallback."""
    if meta and isinstance(meta.get("system:time_start"), (int, float)):
        return datetime.fromtimestamp(float(meta["system:time_start"]) / 1000.0, tz=UTC), None
    m = _PRODUCT_TIME.match(item_id)
    if m:
        return datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC), "datetime from the product id"
    return None, None


def _lonlat(crs: Any, x: float, y: float) -> tuple[float, float]:
    if crs is None or crs.is_geographic:
        return x, y
    from rasterio.warp import transform as warp

    xs, ys = warp(crs, "EPSG:4326", [x], [y])
    return float(xs[0]), float(ys[0])


def _crs_text(crs: Any) -> str:
    if crs is None:
        return "EPSG:4326"  # both downloaders write '+proj=latlong'; an absent CRS is recorded as that
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def read_date(path: str, item_id: str, job: ReadJob) -> DateRead:
    """Read one date folder (every band of the corpus) onto the 10 m grid; never raises on bad files."""
    import rasterio
    from rasterio.transform import Affine

    corpus, P = job.corpus, job.patch_size
    out = DateRead(item_id=item_id)
    meta_path = os.path.join(path, "metadata.json")
    props: dict[str, Any] | None = None
    if os.path.isfile(meta_path):
        try:
            with open(meta_path, encoding="utf-8") as f:
                loaded = json.load(f)
            props = loaded if isinstance(loaded, dict) else None
            if props is not None and isinstance(props.get("properties"), dict) and "system:time_start" not in props:
                props = props["properties"]  # the SSL4EO-S12 downloader saves image.getInfo(): properties nested
            if props is None:
                out.notes.append("metadata.json is not an object; ignored")
        except (OSError, ValueError) as e:
            out.notes.append(f"unreadable metadata.json ({type(e).__name__}); ignored")
    else:
        out.notes.append("no metadata.json")
    when, how = _time_of(props, item_id)
    if when is None:
        out.problem = "no acquisition time (no system:time_start in metadata.json, product id not YYYYMMDDTHHMMSS_...)"
        return out
    out.when = when
    if how:
        out.notes.append(how)
    try:
        offset = baseline_offset(props)
    except CorpusError as e:
        out.problem = str(e)
        return out
    if offset:
        out.notes.append(f"processing baseline {props.get('PROCESSING_BASELINE') if props else '?'}: -{offset} DN")
    want = np.dtype(corpus.scale.source_dtype)
    pixels = np.empty((len(corpus.bands), P, P), dtype=np.uint16)
    ref_transform = ref_crs = None
    for c, band in enumerate(corpus.bands):
        factor = corpus.resolution(band) // 10
        n = P // factor
        fname = f"{file_band_name(band)}.tif"
        fpath = os.path.join(path, fname)
        if not os.path.isfile(fpath):
            out.problem = f"missing band {fname}"
            return out
        try:
            with rasterio.open(fpath) as src:
                if src.count != 1:
                    out.problem = f"{fname} has {src.count} bands, expected 1"
                    return out
                if np.dtype(src.dtypes[0]) != want:
                    out.problem = f"{fname} is {src.dtypes[0]}, expected {want} ({corpus.scale.name})"
                    return out
                a = src.read(1)
                transform, crs = src.transform, src.crs
        except Exception as e:  # a truncated or corrupt file: rasterio/GDAL raise many types
            out.problem = f"unreadable {fname} ({type(e).__name__}: {str(e)[:120]})"
            return out
        try:
            a, (r0, c0), note = fit_patch(a, n, job.size_tolerance, band)
        except ValueError as e:
            out.problem = str(e)
            return out
        if note:
            out.notes.append(note)
        if factor == 1 and ref_transform is None:  # the first 10 m band sets the grid
            ref_transform, ref_crs = transform @ Affine.translation(c0, r0), crs
        dn = to_dn(a, corpus.scale, offset)
        if factor > 1:
            dn = np.repeat(np.repeat(dn, factor, axis=0), factor, axis=1)  # nearest onto the 10 m grid
        pixels[c] = dn
    assert ref_transform is not None  # every corpus has 10 m bands
    cx, cy = ref_transform @ (P / 2.0, P / 2.0)
    lon, lat = _lonlat(ref_crs, cx, cy)
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or not (math.isfinite(lat) and math.isfinite(lon)):
        out.problem = f"patch centre ({lon:.4f}, {lat:.4f}) is not a WGS 84 position; the georeference is broken"
        return out
    nodata = float(np.mean((pixels == 0).any(axis=0)))
    if nodata >= 1.0:
        out.problem = "no data: every pixel is 0 in some band"
        return out
    out.pixels = pixels
    out.meta = {
        "item_id": item_id,
        "datetime": when,
        "cloud_fraction": QA60_CLOUD_FRACTION,
        "nodata_fraction": nodata,
        "crs": _crs_text(ref_crs),
        "transform": tuple(ref_transform)[:6],
        "lat": lat,
        "lon": lon,
    }
    return out


def read_location(ref: LocationRef, job: ReadJob) -> ReadResult:
    """Read and decide one location (the unit of work of ``seco import``)."""
    import rasterio

    # one GDAL environment for the ~60 files of a location; no directory listing per open (no sidecars needed)
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        return _read_location(ref, job)


def _read_location(ref: LocationRef, job: ReadJob) -> ReadResult:
    corpus, T, P = job.corpus, job.corpus.num_dates, job.patch_size
    key = ref.key(corpus)
    try:
        # date folders; files beside them (the downloaders' --preview RGB GeoTIFFs) and hidden folders
        # (.ipynb_checkpoints, .DS_Store-like debris) are not dates
        dirs = sorted(e.name for e in os.scandir(ref.path) if e.is_dir() and not e.name.startswith("."))
    except OSError as e:
        return ReadResult(ref, key, "skipped", reason=f"cannot list the location folder ({e})")
    if not dirs:
        return ReadResult(ref, key, "skipped", reason="no date folders")
    if len(dirs) > T:
        return ReadResult(ref, key, "skipped",
                          reason=f"{len(dirs)} date folders, more than the corpus' {T}; not a {corpus.name} location")
    reads = [read_date(os.path.join(ref.path, d), d, job) for d in dirs]
    res = ReadResult(ref, key, "ok")
    for r in reads:
        res.notes += [f"{r.item_id}: {n}" for n in r.notes]
        if r.problem:
            res.date_problems.append(f"{r.item_id}: {r.problem}")
    good = sorted((r for r in reads if r.pixels is not None), key=lambda r: (r.when, r.item_id))
    if len(good) < job.min_dates:
        res.status = "skipped"
        res.reason = (f"{len(good)} valid date(s) of {len(dirs)}, fewer than --min-dates {job.min_dates}"
                      + (f" ({'; '.join(res.date_problems)})" if res.date_problems else ""))
        return res
    images = np.zeros((T, len(corpus.bands), P, P), dtype=np.uint16)
    valid = np.zeros(T, dtype=bool)
    metas: list[dict[str, Any] | None] = [None] * T
    for t, r in enumerate(good):
        assert r.pixels is not None
        images[t] = r.pixels
        valid[t] = True
        metas[t] = r.meta
    res.images, res.valid, res.dates_meta = images, valid, metas
    if job.s1_base is not None:
        s2_times = [m["datetime"] if m else None for m in metas]
        res.s1 = read_s1_location(os.path.join(job.s1_base, ref.name), s2_times, P, job.size_tolerance)
    return res

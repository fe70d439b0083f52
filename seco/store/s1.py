"""The Sentinel-1 sensor group of a store: radar backscatter in dB beside the Sentinel-2 images.

A store created with ``sensors=("s2", "s1")`` (schema version 3) holds, for every location and date, the S1
acquisition matched to that S2 date: VV and VH backscatter in **dB** on the location's own 10 m grid, with its
own validity, per-date record and exact statistics (docs/STORE.md, "Sentinel-1").

Encoding: ``u = round(dB * 100) + 32768`` in uint16, ``0`` = no data; ``dB = u * 0.01 - 327.68``. Steps of
0.01 dB (|error| <= 0.005 dB, far below speckle and calibration uncertainty, ~0.5 dB), the same sharded, Blosc +
CRC32C chunks as the S2 images (so reading, checking and histograms are the S2 machinery), and attributes
``scale_factor`` / ``add_offset`` that CF readers apply. ``bench/bench_s1_encoding.py`` measures it against
float16 (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from seco.bands import S1_BANDS
from seco.errors import StoreCorruptError, StoreError
from seco.store import schema as S
from seco.store.stats import add_to_histogram, stats_from_histogram

GROUP = "s1"
IMAGES = f"{GROUP}/images"
VALID = f"{GROUP}/valid"
META = f"{GROUP}/meta"
HIST = f"{GROUP}/stats/band_hist"
#: dB per code step and the dB of code 0 (``dB = code * SCALE + OFFSET``; code 0 itself means no data).
SCALE = S.S1_SCALE
OFFSET = S.S1_OFFSET
#: Largest magnitude the encoding holds, dB.
DB_LIMIT = 327.67
PRODUCTS = ("GRD", "RTC")
QUANTITIES = ("sigma0", "gamma0", "beta0")
ORBIT_STATES = ("ascending", "descending")

#: The per-(location, date) record of the S1 group, under ``s1/meta/``.
DATE_FIELDS: tuple[S.DateField, ...] = (
    S.DateField("item_id", "str", (), "", "STAC item id(s) of the S1 scene(s), ';'-joined when mosaicked"),
    S.DateField("datetime", "int64", (), int(S.MISSING_TIME), "S1 acquisition time, microseconds since 1970-01-01T00:00Z"),
    S.DateField("product", "str", (), "", "GRD or RTC"),
    S.DateField("quantity", "str", (), "", "sigma0 (GRD, ellipsoid), gamma0 (terrain-flattened RTC) or beta0"),
    S.DateField("platform", "str", (), "", "e.g. sentinel-1a"),
    S.DateField("orbit_state", "str", (), "", "ascending or descending"),
    S.DateField("relative_orbit", "int32", (), -1, "relative orbit number; -1 = unknown"),
    S.DateField("time_offset_days", "float64", (), math.nan, "S1 acquisition time minus the S2 date's, days"),
    S.DateField("rule", "str", (), "", "the seco.radiometry S1 rule that turned the provider's pixels into dB"),
    S.DateField("nodata_fraction", "float64", (), math.nan, "share of the patch without S1 data, 0..1"),
    S.DateField("looks", "float64", (), math.nan, "equivalent number of looks; NaN = unknown"),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in DATE_FIELDS)
REQUIRED: tuple[str, ...] = tuple(n for n in FIELD_NAMES if n != "looks")


def encode_db(db: np.ndarray) -> np.ndarray:
    """dB (NaN = no data) -> stored uint16 codes (0 = no data).

    Raises:
        StoreError: a value outside +-327.67 dB or infinite (linear power of 0 must be given as NaN).
    """
    x = np.asarray(db, dtype=np.float64)
    finite = np.isfinite(x)
    steps = np.round(np.where(finite, x, 0.0) * 100.0)
    bad = ~finite & ~np.isnan(x) | (np.abs(steps) > 32767)
    if bad.any():
        v = x[bad].flat[0]
        raise StoreError(f"S1 value {v:g} dB cannot be stored (the encoding holds -{DB_LIMIT}..{DB_LIMIT} dB, NaN = no "
                         "data); give backscatter in dB (10*log10 of linear power), with NaN where there is none")
    code = np.zeros(x.shape, dtype=np.uint16)
    code[finite] = (steps[finite] + 32768.0).astype(np.uint16)
    return code


def decode_db(code: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Stored uint16 codes -> float32 dB, NaN where no data."""
    c = np.asarray(code)
    out = np.empty(c.shape, np.float32) if out is None else out
    np.multiply(c, np.float32(SCALE), out=out, dtype=np.float32)
    out += np.float32(OFFSET)
    out[c == 0] = np.nan
    return out


@dataclass(frozen=True)
class S1Patch:
    """One location's Sentinel-1 data for ``StoreWriter.append(..., s1=...)``.

    Attributes:
        db: (T, 2, H, W) float32 backscatter in dB, bands VV, VH, on the location's 10 m grid; NaN = no data.
        valid: (T,) bool, the dates that have S1 (may be all False).
        meta: T dicts (``None`` for a date without S1) with the ``DATE_FIELDS`` keys (all but ``looks`` required
            for a valid date).
    """

    db: np.ndarray
    valid: np.ndarray | Sequence[bool]
    meta: Sequence[Mapping[str, Any] | None]


def build(root: zarr.Group, config: S.StoreConfig) -> None:
    """Create the empty S1 group of a new store."""
    cap = rows = config.layout.meta_chunk
    T, C, P = config.num_dates, len(S1_BANDS), config.patch_size
    layout = config.layout
    root.create_array(
        IMAGES, shape=(cap, T, C, P, P), dtype="uint16", fill_value=0, compressors=layout.compressors(),
        dimension_names=("location", "date", "band", "y", "x"),
        attributes={"bands": list(S1_BANDS), "units": "dB", "scale_factor": SCALE, "add_offset": OFFSET,
                    "description": "S1 backscatter: dB = code * 0.01 - 327.68, code 0 = no data"},
        **layout.chunks(T, C, P),  # type: ignore[arg-type]
    )
    root.create_array(VALID, shape=(cap, T), chunks=(rows, T), dtype="bool", fill_value=False,
                      dimension_names=("location", "date"))
    meta = root.create_group(META)
    for f in DATE_FIELDS:
        meta.create_array(f.name, shape=(cap, T), chunks=(rows, T), dtype=str if f.dtype == "str" else f.dtype,
                          fill_value=f.fill if f.dtype != "str" else None, dimension_names=("location", "date"),
                          attributes={"description": f.doc})
    root.create_array(HIST, shape=(2, C, S.NUM_BINS), chunks=(1, C, S.NUM_BINS), dtype="uint64", fill_value=0,
                      dimension_names=("slot", "band", "value"),
                      attributes={"description": "per-band histograms of the S1 codes of valid dates; the "
                                                 "manifest's hist_slot names the live slot"})


def array_names() -> tuple[str, ...]:
    """The per-location arrays of the group (resized with the store's capacity)."""
    return (IMAGES, VALID, *(f"{META}/{n}" for n in FIELD_NAMES))


# ------------------------------------------------------------------------------------------------ checking


def _text(value: Any, where: str, name: str, allowed: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise StoreError(f"{where}: S1 {name} {value!r} must be a non-empty string")
    if allowed is not None and value not in allowed:
        raise StoreError(f"{where}: S1 {name} {value!r} is not one of {', '.join(allowed)}")
    return value


def normalize_meta(meta: Mapping[str, Any] | None, valid: bool, where: str) -> dict[str, Any]:
    """One date's S1 record in its stored form.

    Raises:
        StoreError: an unknown key, a missing field of a valid date, or a value of the wrong kind.
    """
    meta = {} if meta is None else meta
    if not isinstance(meta, Mapping):
        raise StoreError(f"{where}: S1 metadata must be a dict or None, got {type(meta).__name__}")
    if "valid" in meta:  # what S1Reader.meta() hands out
        if bool(meta["valid"]) != valid:
            raise StoreError(f"{where}: S1 metadata says valid={meta['valid']!r} but the S1 validity says {valid}")
        meta = {k: v for k, v in meta.items() if k != "valid"}
    unknown = sorted(set(meta) - set(FIELD_NAMES))
    if unknown:
        raise StoreError(f"{where}: unknown S1 metadata key(s) {', '.join(unknown)}; the fields are {', '.join(FIELD_NAMES)}")
    missing = [n for n in REQUIRED if meta.get(n) is None]
    if valid and missing:
        raise StoreError(f"{where}: a date with S1 needs {', '.join(missing)}; give them or mark its S1 invalid")
    out: dict[str, Any] = {f.name: f.fill for f in DATE_FIELDS}
    for name, v in meta.items():
        if v is None:
            continue
        if name == "datetime":
            out[name] = S._to_micros(v, where)
        elif name in ("item_id", "platform", "rule"):
            out[name] = _text(v, where, name)
        elif name == "product":
            out[name] = _text(v, where, name, PRODUCTS)
        elif name == "quantity":
            out[name] = _text(v, where, name, QUANTITIES)
        elif name == "orbit_state":
            out[name] = _text(v, where, name, ORBIT_STATES)
        elif name == "relative_orbit":
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 < int(v) < 1000:
                raise StoreError(f"{where}: S1 relative_orbit {v!r} must be an integer 1..175")
            out[name] = int(v)
        elif name == "nodata_fraction":
            out[name] = S._to_fraction(v, where, "S1 nodata_fraction")
        else:  # time_offset_days, looks
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise StoreError(f"{where}: S1 {name} {v!r} is not a number") from None
            if not math.isfinite(x) or (name == "looks" and x <= 0):
                raise StoreError(f"{where}: S1 {name} {v!r} must be a finite{' positive' if name == 'looks' else ''} number")
            out[name] = x
    return out


def check_patch(s1: Any, T: int, P: int, where: str) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """An ``S1Patch`` (or ``None``: no S1 on any date) as (codes (T, 2, P, P) uint16, valid (T,), T records).

    Dates marked invalid are stored as no data whatever their pixels.

    Raises:
        StoreError: naming what does not fit.
    """
    C = len(S1_BANDS)
    if s1 is None:
        return np.zeros((T, C, P, P), np.uint16), np.zeros(T, bool), [normalize_meta(None, False, where)] * T
    if not isinstance(s1, S1Patch):
        raise StoreError(f"{where}: s1 must be an seco.store.S1Patch or None, got {type(s1).__name__}")
    db = s1.db
    if not isinstance(db, np.ndarray) or db.dtype.kind != "f" or db.shape != (T, C, P, P):
        raise StoreError(f"{where}: S1 db must be a float array (T, 2, H, W) = {(T, C, P, P)} in dB (bands "
                         f"{', '.join(S1_BANDS)}), got {getattr(db, 'dtype', type(db).__name__)} {getattr(db, 'shape', '')}")
    valid = np.asarray(s1.valid)
    if valid.dtype != np.bool_ or valid.shape != (T,):
        raise StoreError(f"{where}: S1 valid must be a bool array of shape ({T},), got {valid.dtype} {valid.shape}")
    meta = s1.meta
    if isinstance(meta, (Mapping, str)) or not isinstance(meta, Sequence) or len(meta) != T:
        raise StoreError(f"{where}: S1 meta must be a list of {T} dicts (None for a date without S1)")
    rows = [normalize_meta(m, bool(valid[t]), f"{where} date {t}") for t, m in enumerate(meta)]
    codes = encode_db(np.where(valid[:, None, None, None], db, np.nan))
    return codes, valid.copy(), rows


def flush_rows(arrays: Mapping[str, Any], start: int, pending: Sequence[Mapping[str, Any]]) -> None:
    """Write the S1 validity and records of pending locations (``p["s1_valid"]``, ``p["s1_rows"]``)."""
    stop = start + len(pending)
    arrays[VALID][start:stop] = np.stack([p["s1_valid"] for p in pending])
    for f in DATE_FIELDS:
        col = [[r[f.name] for r in p["s1_rows"]] for p in pending]
        arrays[f"{META}/{f.name}"][start:stop] = np.array(col, dtype=object if f.dtype == "str" else f.dtype)


# ------------------------------------------------------------------------------------------------ reading


class S1Reader:
    """The S1 group of an open ``Store`` (``store.s1``): pixels in dB, validity, records, statistics."""

    bands: tuple[str, ...] = S1_BANDS
    units = "dB"

    def __init__(self, store: Any):  # a seco.store.reader.Store (not imported: the reader imports this module)
        self._store = store
        self._valid: np.ndarray | None = None
        self._hist: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"S1Reader({self._store.path!r}, bands={list(self.bands)}, units={self.units!r})"

    def band_indices(self, bands: str | Sequence[str] | None) -> list[int]:
        """Positions of ``bands`` (``None`` = VV, VH) on the S1 band axis.

        Raises:
            StoreError: a band that is not VV or VH.
        """
        names = list(self.bands) if bands is None else [bands] if isinstance(bands, str) else list(bands)
        out = []
        for b in names:
            n = str(b).strip().upper()
            if n not in self.bands:
                raise StoreError(f"unknown S1 band {b!r}; the store's S1 bands are {', '.join(self.bands)}")
            out.append(self.bands.index(n))
        return out

    def read_raw(self, i: int, dates: Sequence[int] | np.ndarray | None = None,
                 bands: str | Sequence[str] | None = None, *, out: np.ndarray | None = None) -> np.ndarray:
        """The stored codes of location ``i``: (t, c, H, W) uint16, 0 = no data."""
        st = self._store
        j, d, b = st._index(i), st._dates(dates), self.band_indices(bands)
        P = st.patch_size
        if out is None:
            out = np.empty((len(d), len(b), P, P), dtype=np.uint16)
        try:
            return st._decode(j, IMAGES, d, b, out)  # type: ignore[no-any-return]
        except StoreCorruptError as e:
            raise st._explain(e) from e

    def read(self, i: int, dates: Sequence[int] | np.ndarray | None = None,
             bands: str | Sequence[str] | None = None) -> np.ndarray:
        """Backscatter of location ``i``: (t, c, H, W) float32 dB, NaN where there is no data (dates without S1
        are all NaN)."""
        return decode_db(self.read_raw(i, dates, bands))

    def valid_mask(self) -> np.ndarray:
        """(N, T) bool: which dates of each location have S1."""
        if self._valid is None:
            st = self._store
            self._valid = np.asarray(st._array(VALID)[: len(st)], dtype=bool).reshape(len(st), st.num_dates)
        return self._valid

    def valid(self, i: int) -> np.ndarray:
        """(T,) bool of location ``i``."""
        return self.valid_mask()[self._store._index(i)].copy()

    def meta_array(self, name: str) -> np.ndarray:
        """One S1 field for every location, (N, T); ``datetime`` as ``datetime64[us]``.

        Raises:
            StoreError: an unknown field.
        """
        if name not in FIELD_NAMES:
            raise StoreError(f"unknown S1 metadata field {name!r}; the fields are {', '.join(FIELD_NAMES)}")
        st = self._store
        a = np.asarray(st._array(f"{META}/{name}")[: len(st)])
        if name == "datetime":
            return a.astype(np.int64).view("datetime64[us]")
        return a.astype(object) if a.dtype.kind in "OTU" else a

    def meta(self, i: int) -> list[dict[str, Any]]:
        """The S1 record of each date of location ``i``: T dicts with ``valid`` and ``DATE_FIELDS`` (missing
        values ``None``; ``datetime`` as an ISO 8601 UTC string)."""
        st = self._store
        j = st._index(i)
        cols = {f.name: np.asarray(st._array(f"{META}/{f.name}")[j]) for f in DATE_FIELDS}
        valid = self.valid_mask()[j]
        out = []
        for t in range(st.num_dates):
            row: dict[str, Any] = {"valid": bool(valid[t])}
            for f in DATE_FIELDS:
                v = cols[f.name][t]
                if f.name == "datetime":
                    row[f.name] = S.micros_to_iso(int(v))
                elif f.dtype == "str":
                    row[f.name] = str(v) or None
                elif f.name == "relative_orbit":
                    row[f.name] = int(v) if v >= 0 else None
                else:
                    row[f.name] = float(v) if np.isfinite(v) else None
            out.append(row)
        return out

    def histogram(self) -> np.ndarray:
        """(2, 65536) uint64 counts of each stored code per band over the valid dates of all locations."""
        if self._hist is None:
            st = self._store
            hist = np.asarray(st._array(HIST)[st._hist_slot], dtype=np.uint64)
            for i in range(st._hist_locations, len(st)):  # committed after the histogram was saved
                add_to_histogram(hist, self.read_raw(i), self.valid_mask()[i])
            self._hist = hist
        return self._hist

    def stats(self, bands: str | Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Exact per-band statistics in dB over the valid pixels of valid dates.

        Returns:
            ``mean``, ``std`` (population), ``p2``, ``p98``: each (c,) float64 dB, in the order of ``bands``.

        Raises:
            StoreError: no S1 pixel in the store.
        """
        idx = self.band_indices(bands)
        try:
            raw = stats_from_histogram(self.histogram()[idx], tuple(self.bands[k] for k in idx))
        except StoreError as e:
            raise StoreError(f"store {self._store.path}: no S1 statistics ({e})") from None
        return {k: (v * SCALE if k == "std" else v * SCALE + OFFSET) for k, v in raw.items()}

    def coverage(self) -> dict[str, Any]:
        """How many S2 dates have S1: ``{"s2_dates", "with_s1", "fraction"}`` over the valid S2 dates."""
        s2 = self._store.valid_mask()
        both = s2 & self.valid_mask()
        n = int(s2.sum())
        return {"s2_dates": n, "with_s1": int(both.sum()), "fraction": float(both.sum() / n) if n else 0.0}

"""Random-access reading of a seco store, safe in DataLoader worker processes."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from seco.bands import S1_BANDS, indices, parse_bands, sensor_of
from seco.errors import StoreCorruptError, StoreError
from seco.store import s1 as S1
from seco.store import schema as S
from seco.store.packing import PackGroup, PackSpec, _upsample_np
from seco.store.reader_stats import StatsReading
from seco.store.shard import ShardReader, check_out


def open_store(
    path: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None, verify: bool = True
) -> Store:
    """Open a store for reading. Checks that it exists and its schema version before any other work.

    Args:
        path: a local folder or an fsspec URL (``s3://...``, ``gs://...``).
        storage_options: fsspec options for URLs.
        verify: check the chunk checksums of a (shard, date) at its first read in each process (stores with
            checksums; ``seco store check`` verifies the whole store up front).

    Raises:
        StoreError: the path does not exist or is not a seco store.
        StoreVersionError: the store has another schema version.
    """
    return Store(S.Location.parse(path, storage_options), verify=verify)


@dataclass(frozen=True)
class _Run:
    """Channels ``start:stop`` of a packed group, read from ``array`` at band ``positions``."""

    array: str
    positions: tuple[int, ...]
    start: int
    stop: int


class Store(StatsReading, S.StoreFacts):
    """A snapshot of the committed locations of a store.

    ``len(store)`` is the location count committed when the store was opened (``refresh`` re-reads it).
    The object pickles to its path and snapshot; every process reopens its array handles lazily on first
    use, so it can be handed to ``torch.utils.data.DataLoader`` workers (fork or spawn).
    """

    def __init__(self, loc: S.Location, *, verify: bool = True):
        self._loc = loc
        self.verify = verify
        root, attrs = S.open_root(loc, read_only=True)
        self._init_from_attrs(attrs)
        self._set_handles(root)

    # ------------------------------------------------------------------------------------------ set-up
    def _init_from_attrs(self, attrs: Mapping[str, Any]) -> None:
        self.config = S.StoreConfig.from_attrs(attrs[S.ATTR_SCHEMA])
        self.attrs: dict[str, Any] = dict(attrs.get(S.ATTR_USER, {}))
        man = attrs[S.ATTR_MANIFEST]
        self._n = int(man["num_locations"])
        self._hist_slot = int(man["hist_slot"])
        self._hist_locations = int(man["hist_locations"])
        self._valid: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._keys: np.ndarray | None = None
        self._hist: np.ndarray | None = None
        self._clear_hist: np.ndarray | None = None
        self._has_clear: bool | None = None
        self._s1: S1.S1Reader | None = S1.S1Reader(self) if self.config.has_s1 else None
        self._band_index: dict[Any, list[int]] = {}
        self._sources_cache: dict[Any, tuple[PackSpec, list[tuple[PackGroup, list[_Run]]]]] = {}
        self._groups = self.config.image_groups()
        #: the store is one 10 m grid ``images`` array (schema version 1 layout)
        self._single = len(self._groups) == 1 and self._groups[0].factor == 1
        #: band name -> (image array, position on that array's band axis)
        self._slot: dict[str, tuple[str, int]] = {
            self.bands[k]: (g.name, pos) for g in self._groups for pos, k in enumerate(g.channels)
        }
        if self.config.has_s1:  # the S1 bands read like 10 m bands, from s1/images, as their stored codes
            self._slot |= {b: (S1.IMAGES, pos) for pos, b in enumerate(S1_BANDS)}

    def _set_handles(self, root: zarr.Group | None) -> None:
        self._pid = os.getpid()
        self._root = root
        self._arrays: dict[str, zarr.Array] = {}
        self._fast: dict[str, ShardReader | None] = {}

    def _group(self) -> zarr.Group:
        if self._root is None or self._pid != os.getpid():  # first use in this process
            self._set_handles(zarr.open_group(store=self._loc.open(read_only=True), mode="r"))
        assert self._root is not None
        return self._root

    def _array(self, name: str) -> zarr.Array:
        root = self._group()
        arr = self._arrays.get(name)
        if arr is None:
            node = root[name]
            assert isinstance(node, zarr.Array)
            self._arrays[name] = arr = node
        return arr

    def _fast_reader(self, name: str = S.IMAGES) -> ShardReader | None:
        self._group()
        try:
            return self._fast[name]
        except KeyError:
            fast = None
            if self._loc.local is not None:
                fast = ShardReader.for_array(self._loc.local / name, verify=self.verify)
            self._fast[name] = fast
            return fast

    def shard_reader(self, array: str | None = None) -> ShardReader | None:
        """The direct shard reader of this process for an image array (default the first, ``images`` when the
        store has 10 m bands), for local stores of a layout seco writes; else ``None``."""
        return self._fast_reader(array or self._groups[0].name)

    @property
    def image_arrays(self) -> list[str]:
        """Names of the image arrays: ``["images"]`` on the 10 m grid; on the native grid those of the factors
        that occur among ``images`` (10 m bands), ``images_x2`` (20 m), ``images_x6`` (60 m)."""
        return [g.name for g in self._groups]

    @property
    def sensor_image_arrays(self) -> list[str]:
        """Every sharded image array: ``image_arrays`` and, with an S1 group, ``s1/images``."""
        return [*self.image_arrays, *((S1.IMAGES,) if self._s1 is not None else ())]

    @property
    def sensors(self) -> tuple[str, ...]:
        """The sensor groups of the store: ``("s2",)`` or ``("s2", "s1")``."""
        return self.config.sensors

    @property
    def s1(self) -> S1.S1Reader | None:
        """The Sentinel-1 group (``seco.store.s1.S1Reader``: dB pixels, validity, records, statistics), or
        ``None`` when the store has none."""
        return self._s1

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for k in ("_root", "_arrays", "_fast", "_pid"):
            state.pop(k)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._set_handles(None)

    def refresh(self) -> Store:
        """Re-read the manifest (locations committed since opening become visible)."""
        root, attrs = S.open_root(self._loc, read_only=True)
        self._init_from_attrs(attrs)
        self._set_handles(root)
        return self

    # ------------------------------------------------------------------------------------------ schema
    @property
    def has_checksums(self) -> bool:
        """Whether the image chunks carry CRC32C checksums (``False`` for stores of an older seco)."""
        return self.config.layout.checksum

    def has_image_file(self, i: int, array: str | None = None) -> bool:
        """Whether location ``i``'s shard of ``array`` exists (default: of every image array; sharded layouts,
        seco writes one for every location)."""
        import zarr.core.sync as zsync

        j = self._index(i)
        names = [array] if array is not None else self.image_arrays
        store = self._group().store
        return all(bool(zsync.sync(store.exists(f"{name}/c/{j}/0/0/0/0"))) for name in names)

    def image_file(self, i: int, array: str | None = None) -> str:
        """Path (or URL) of location ``i``'s shard file of ``array`` (default the first image array)."""
        return f"{self.path}/{array or self._groups[0].name}/c/{self._index(i)}/0/0/0/0"

    @property
    def label_names(self) -> list[str] | None:
        names = self.config.label_names
        return list(names) if names is not None else None

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return (
            f"Store({self.path!r}, locations={self._n}, dates={self.num_dates}, bands={len(self.bands)}, "
            f"patch={self.patch_size})"
        )

    # ------------------------------------------------------------------------------------------ pixels
    def _index(self, i: Any) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise StoreError(f"location index {i!r} must be an integer")
        j = int(i) + (self._n if i < 0 else 0)
        if not 0 <= j < self._n:
            raise S.StoreIndexError(f"location {i} out of range; the store has {self._n} locations")
        return j

    def _dates(self, dates: Sequence[int] | np.ndarray | None) -> list[int]:
        T = self.num_dates
        if dates is None:
            return list(range(T))
        out = [int(d) for d in np.asarray(dates).reshape(-1)]
        bad = [d for d in out if not 0 <= d < T]
        if bad:
            raise S.StoreIndexError(f"date index(es) {bad} out of range; this store has dates 0..{T - 1}")
        return out

    @property
    def readable_bands(self) -> tuple[str, ...]:
        """Every band ``read`` / ``read_packed`` accept: ``bands`` (Sentinel-2) and, with an S1 group, VV and VH
        (read as their stored codes: ``dB = code * 0.01 - 327.68``, 0 = no data; ``seco.store.s1``)."""
        return (*self.bands, *(S1_BANDS if self._s1 is not None else ()))

    def band_indices(self, bands: str | Sequence[str] | None) -> list[int]:
        """Channel positions of a band spec (``None`` = all, ``"RGB"``, ``["B04", "B03"]``) in the store.

        Raises:
            BandError: a band the store does not hold.
        """
        key = bands if bands is None or isinstance(bands, str) else tuple(bands)
        idx = self._band_index.get(key)
        if idx is None:
            names = self.bands if bands is None else parse_bands(bands, available=self.bands)
            idx = indices(names, self.bands)
            self._band_index[key] = idx
        return idx

    def read(
        self,
        i: int,
        dates: Sequence[int] | np.ndarray | None = None,
        bands: str | Sequence[str] | None = None,
        *,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Pixels of location ``i`` on the 10 m grid.

        A native-grid store's 20 m / 60 m bands are decoded at their resolution and nearest-upsampled here,
        on the CPU (``read_packed`` gives them without upsampling).

        Args:
            i: location index, ``0 <= i < len(store)`` (negative counts from the end).
            dates: date indices in any order (``None`` = all ``T``); invalid dates read as zeros.
            bands: band names or a set name (``None`` = the store's bands, in order).
            out: a (t, c, H, W) uint16 array to decode into (e.g. ``batch[k]`` of a preallocated batch, so a
                batch is read without per-sample arrays or a stacking copy); its (H, W) planes must be
                C-contiguous. Returned.

        Returns:
            (t, c, H, W) uint16 DN (``out`` when given).

        Raises:
            StoreIndexError: ``i`` or a date out of range.
            BandError: a band the store does not hold.
            StoreError: ``out`` has another shape or dtype, or non-contiguous planes.
            StoreCorruptError: a shard of the location (of any image array) is missing, truncated, fails a
                checksum or does not decode (``location``, ``key`` and ``path``, the damaged array's shard, name
                it; ``seco store check`` lists every such location).
        """
        j = self._index(i)
        d = self._dates(dates)
        P = self.patch_size
        try:
            if self._single and not self._asks_s1(bands):  # the 10 m grid: decode straight into out
                b = self.band_indices(bands)
                if out is None:
                    out = np.empty((len(d), len(b), P, P), dtype=np.uint16)  # (t, c, H, W)
                return self._decode(j, S.IMAGES, d, b, out)
            # native grid (or S1 bands): each array's bands at their grid, nearest-upsampled into the 10 m grid
            spec, sources = self._sources(bands)
            if out is None:
                out = np.empty((len(d), len(spec.bands), P, P), dtype=np.uint16)
            else:
                check_out(out, (len(d), len(spec.bands), P, P))
            for g, runs in sources:
                for r in runs:
                    chans = g.channels[r.start : r.stop]
                    k0 = chans[0]
                    if g.factor == 1 and chans == tuple(range(k0, k0 + len(chans))):
                        self._decode(j, r.array, d, list(r.positions), out[:, k0 : k0 + len(chans)])  # no copy
                        continue
                    tmp = np.empty((len(d), len(chans), g.side, g.side), np.uint16)
                    self._decode(j, r.array, d, list(r.positions), tmp)
                    for pos, k in enumerate(chans):
                        _upsample_np(tmp[:, pos], g.factor, out[:, k])
            return out
        except StoreCorruptError as e:
            raise self._explain(e) from e

    def _asks_s1(self, bands: str | Sequence[str] | None) -> bool:
        if self._s1 is None or bands is None:
            return False
        return any(sensor_of(b) == "s1" for b in self._sources(bands)[0].bands)  # resolved once per spec (cached)

    def _group_runs(self, spec: PackSpec, g: PackGroup) -> list[_Run]:
        """The image arrays packed group ``g`` reads from: runs of its channels that come from one array, with
        their positions on that array's band axis (one run, except where S1 bands follow S2 ones)."""
        runs: list[_Run] = []
        for idx, k in enumerate(g.channels):
            array, pos = self._slot[spec.bands[k]]
            if runs and runs[-1].array == array:
                last = runs[-1]
                runs[-1] = _Run(array, (*last.positions, pos), last.start, idx + 1)
            else:
                runs.append(_Run(array, (pos,), idx, idx + 1))
        return runs

    def _sources(self, bands: str | Sequence[str] | None) -> tuple[PackSpec, list[tuple[PackGroup, list[_Run]]]]:
        """``pack_spec(bands)`` and, per packed group, the arrays and band positions it reads (cached)."""
        key = bands if bands is None or isinstance(bands, str) else tuple(bands)
        hit = self._sources_cache.get(key)
        if hit is None:
            names = list(parse_bands(bands, available=self.readable_bands)) if bands is not None else list(self.bands)
            factors = self.grid_factors | {b: 1 for b in S1_BANDS}
            spec = PackSpec.build(names, self.patch_size, factors)
            hit = self._sources_cache[key] = (spec, [(g, self._group_runs(spec, g)) for g in spec.groups])
        return hit

    def _decode(self, j: int, name: str, d: list[int], chans: list[int], out: np.ndarray) -> np.ndarray:
        """Dates ``d`` and band positions ``chans`` of array ``name`` at location ``j`` into ``out`` (t, c, n, n)."""
        fast = self._fast_reader(name)
        if fast is not None:
            return fast.read(j, d, chans, out=out)
        side = self._array(name).shape[-1]
        check_out(out, (len(d), len(chans), side, side))
        try:
            out[...] = self._array(name).oindex[j, np.asarray(d, dtype=np.intp), np.asarray(chans, dtype=np.intp)]
        except (RuntimeError, ValueError, OSError) as e:  # zarr: a checksum or codec failure of a chunk
            raise StoreCorruptError(f"location {j}: its {name} chunks cannot be read ({type(e).__name__}: {e})",
                                    location=j, path=self.image_file(j, name)) from e
        return out

    @property
    def grid(self) -> str:
        """``"10m"`` (every band on the 10 m grid) or ``"native"`` (20 m / 60 m bands at native resolution)."""
        return self.config.layout.grid

    @property
    def grid_factors(self) -> dict[str, int]:
        """Grid factor of each band (``seco.store.packing``): all 1 in a store on the 10 m grid; on the native
        grid the factors the store records (2 for 20 m bands, 6 for 60 m bands)."""
        return self.config.grid_factors

    def pack_spec(self, bands: str | Sequence[str] | None = None) -> PackSpec:
        """The packed layout ``read_packed`` writes for ``bands`` (``None`` = the store's bands, in order)."""
        return self._sources(bands)[0]

    def read_packed(
        self,
        i: int,
        dates: Sequence[int] | np.ndarray | None = None,
        bands: str | Sequence[str] | None = None,
        *,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Pixels of location ``i`` in the packed form of ``pack_spec(bands)``: (t, length) uint16.

        Each band at the grid the store keeps it on, so nothing is upsampled here (``PackSpec.unpack`` does
        that, batched, on the training device). For a store on the 10 m grid the packed form is the
        (t, C, H, W) image flattened. Arguments and errors as ``read``; ``out`` is a C-contiguous (t, length)
        uint16 array.
        """
        j = self._index(i)
        spec, sources = self._sources(bands)
        d = self._dates(dates)
        if out is None:
            out = np.empty((len(d), spec.length), dtype=np.uint16)
        if (not isinstance(out, np.ndarray) or out.shape != (len(d), spec.length) or out.dtype != np.uint16
                or not out.flags.c_contiguous or not out.flags.writeable):
            raise StoreError(
                f"read_packed needs a writable C-contiguous uint16 out of shape {(len(d), spec.length)}, got "
                f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}"
            )
        try:
            for g, runs in sources:  # each array's bands decoded into their part of out, at its grid
                view = spec.group_view(out, g)
                for r in runs:
                    self._decode(j, r.array, d, list(r.positions), view[:, r.start : r.stop])
        except StoreCorruptError as e:
            raise self._explain(e) from e
        return out

    def _explain(self, e: StoreCorruptError) -> StoreCorruptError:
        """``e`` with the location's key and the fix added to its message."""
        j = e.location if e.location is not None else -1
        try:
            key: str | None = self.key(j) if j >= 0 else None
        except Exception:  # the key array itself may be what is damaged
            key = None
        msg = str(e).replace(f"location {j}:", f"location {j} (key {key!r}):", 1) if key is not None else str(e)
        return StoreCorruptError(
            f"store {self.path}: {msg}; run `seco store check {self.path}` to list every damaged location, then "
            "re-collect them, copy the store without them (`seco store migrate SRC DST --on-corrupt skip`), or pass "
            "`--on-corrupt skip` to `seco pretrain` to skip damaged locations",
            location=e.location, key=key, path=e.path,
        )

    # ------------------------------------------------------------------------------------------ metadata
    def valid_mask(self) -> np.ndarray:
        """(N, T) bool, which dates of each location hold imagery."""
        if self._valid is None:
            self._valid = np.asarray(self._array(S.VALID)[: self._n], dtype=bool).reshape(self._n, self.num_dates)
        return self._valid

    def valid(self, i: int) -> np.ndarray:
        """(T,) bool of location ``i``."""
        return self.valid_mask()[self._index(i)].copy()

    def keys(self) -> list[str]:
        """The key of every location, in index order."""
        if self._keys is None:
            self._keys = np.asarray(self._array(S.KEY)[: self._n]).astype(object)
        return [str(k) for k in self._keys]

    def identity(self) -> dict[str, Any]:
        """What makes this store's data these data, whatever its path, layout or grid: its size, dates, patch
        side, bands and a sha256 of its location keys in order (a moved or migrated copy has the same one)."""
        h = hashlib.sha256("\n".join(self.keys()).encode())
        out = {"num_locations": len(self), "num_dates": self.num_dates, "patch_size": self.patch_size,
               "bands": list(self.bands), "keys_sha256": h.hexdigest()}
        return out | ({"sensors": list(self.sensors)} if self._s1 is not None else {})

    def key(self, i: int) -> str:
        """The key of location ``i``."""
        j = self._index(i)
        if self._keys is None:
            self.keys()
        assert self._keys is not None
        return str(self._keys[j])

    def labels(self) -> np.ndarray | None:
        """(N,) int64 label per location (-1 = unlabelled), or ``None`` when no location has a label."""
        if self._labels is None:
            self._labels = np.asarray(self._array(S.LABEL)[: self._n], dtype=np.int64)
        if not (self._labels >= 0).any():
            return None
        return self._labels.copy()

    def meta_array(self, name: str) -> np.ndarray:
        """One metadata field for every location: (N, T) or (N, T, 6) for ``transform``.

        ``datetime`` is returned as ``datetime64[us]`` (NaT where missing).

        Raises:
            StoreError: an unknown field name.
        """
        if name in S.RADIOMETRY_NAMES:
            f = S.RADIOMETRY_FIELDS[S.RADIOMETRY_NAMES.index(name)]
            arr = self._optional(name)
            if arr is None:  # written before seco recorded it: all unknown
                shape = (self._n, self.num_dates, *S.field_shape(f, len(self.bands)))
                return np.full(shape, f.fill, dtype=object if f.dtype == "str" else f.dtype)
            a = np.asarray(arr[: self._n])
            return a.astype(object) if a.dtype.kind in "OTU" else a
        if name in ("clear_fraction", "clear_rule"):  # seco.store.clear's record; unknown in older stores
            if not self.has_clear:
                fill = math.nan if name == "clear_fraction" else ""
                return np.full((self._n, self.num_dates), fill, dtype=object if fill == "" else np.float64)
            a = np.asarray(self._array(f"{S.META}/{name}")[: self._n])
            return a.astype(object) if a.dtype.kind in "OTU" else a
        if name not in S.FIELD_NAMES:
            raise StoreError(f"unknown metadata field {name!r}; the fields are "
                             f"{', '.join(S.FIELD_NAMES + S.RADIOMETRY_NAMES)}, clear_fraction, clear_rule")
        a = np.asarray(self._array(f"{S.META}/{name}")[: self._n])
        if name == "datetime":
            return a.astype(np.int64).view("datetime64[us]")
        return a.astype(object) if a.dtype.kind in "OTU" else a  # strings as a Python str object array

    def meta(self, i: int) -> list[dict[str, Any]]:
        """Metadata of the ``T`` dates of location ``i``.

        Returns:
            T dicts with ``valid`` and the ``schema.DATE_FIELDS`` keys: ``item_id`` (str), ``datetime``
            (ISO 8601 UTC string), ``cloud_fraction``, ``nodata_fraction``, ``crs`` (str), ``transform``
            (6 floats), ``lat``, ``lon``; and the radiometry record ``dn_shift`` (one int per band),
            ``dn_rule`` and ``dn_warning`` (str). Missing values are ``None`` (the radiometry record also for
            stores written before seco recorded it).
        """
        j = self._index(i)
        cols = {f.name: np.asarray(self._array(f"{S.META}/{f.name}")[j]) for f in S.DATE_FIELDS}
        rad = {f.name: (None if (a := self._optional(f.name)) is None else np.asarray(a[j]))
               for f in S.RADIOMETRY_FIELDS}
        valid = self.valid_mask()[j]
        out = []
        for t in range(self.num_dates):
            row: dict[str, Any] = {"valid": bool(valid[t])}
            for f in S.DATE_FIELDS:
                v = cols[f.name][t]
                if f.name == "datetime":
                    row[f.name] = S.micros_to_iso(int(v))
                elif f.dtype == "str":
                    row[f.name] = str(v) or None
                elif f.name == "transform":
                    row[f.name] = tuple(float(x) for x in v) if np.all(np.isfinite(v)) else None
                else:
                    row[f.name] = float(v) if np.isfinite(v) else None
            shift = rad["dn_shift"]
            known = shift is not None and bool(np.all(shift[t] != S.DN_SHIFT_UNKNOWN))
            row["dn_shift"] = tuple(int(x) for x in shift[t]) if known else None  # type: ignore[index]
            for name in ("dn_rule", "dn_warning"):
                text = rad[name]
                row[name] = (str(text[t]) or None) if text is not None else None
            out.append(row)
        return out

    def _optional(self, name: str) -> zarr.Array | None:
        """An optional ``meta/`` array, ``None`` when this store was written before it existed."""
        key = f"{S.META}/{name}"
        if key not in self._arrays:
            node = self._group()[S.META]
            assert isinstance(node, zarr.Group)
            if name not in node:
                return None
        return self._array(key)

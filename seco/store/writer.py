"""Append-only, atomic, resumable writing of a seco store.

Commit protocol (docs/STORE.md): ``append`` writes the location's shard to slot ``n + pending`` (a
single object, written to a temporary name and renamed by zarr's LocalStore, one PUT on object stores);
``commit`` then writes the metadata rows of the pending slots, every ``hist_every`` locations the band
histogram into the *inactive* of its two slots, and last the manifest (root ``zarr.json``, again one
atomic write) with the new location count and the histogram slot. Readers trust only the manifest, so a
crash at any point leaves the committed prefix intact and the next ``open_writer`` overwrites the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import zarr
import zarr.core.sync as zsync
import zarr.storage

from seco.errors import ConfigError, StoreError
from seco.store import clear as CL
from seco.store import s1 as S1
from seco.store import schema as S
from seco.store.packing import PackSpec
from seco.store.shard import ShardWriter
from seco.store.stats import add_to_histogram


def _create_radiometry(meta: zarr.Group, f: S.DateField, cap: int, rows: int, T: int, C: int) -> zarr.Array:
    """One optional radiometry array under ``meta/`` (filled with unknown)."""
    trailing = S.field_shape(f, C)
    return meta.create_array(
        f.name,
        shape=(cap, T, *trailing),
        chunks=(rows, T, *trailing),
        dtype=str if f.dtype == "str" else f.dtype,
        fill_value=f.fill if f.dtype != "str" else None,
        dimension_names=("location", "date", *(("band",) if trailing else ())),
        attributes={"description": f.doc},
    )


def _manifest(n: int, hist_slot: int, hist_locations: int) -> dict[str, Any]:
    return {
        "num_locations": n,
        "hist_slot": hist_slot,
        "hist_locations": hist_locations,
        "updated": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


class StoreWriter(S.StoreFacts):
    """Appends locations to a store; each becomes visible to readers only once complete.

    Thread-safe (calls are serialised). One writer per store at a time.

    Args:
        loc: where the store is.
        commit_every: commit after this many appends (1: each location is durable as soon as ``append``
            returns; larger values amortise the metadata writes for fast producers such as ``seco synth``).
            Pending locations are committed by ``flush``/``close``; a crash loses only them.
        hist_every: save the band histogram after this many newly committed locations (and on close);
            a reopened writer recomputes the rest from the committed images, so nothing is ever lost.
    """

    def __init__(self, loc: S.Location, *, commit_every: int = 1, hist_every: int = 256):
        for what, v in (("commit_every", commit_every), ("hist_every", hist_every)):
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{what} must be a positive integer, got {v!r}")
        self._loc = loc
        self._commit_every = commit_every
        self._hist_every = hist_every
        self._lock = threading.RLock()
        self._root, attrs = S.open_root(loc, read_only=False)
        self.config = S.StoreConfig.from_attrs(attrs[S.ATTR_SCHEMA])
        man = attrs[S.ATTR_MANIFEST]
        self._n = int(man["num_locations"])
        self._hist_slot = int(man["hist_slot"])
        self._hist_locations = int(man["hist_locations"])
        self._groups = self.config.image_groups()
        self._image_names = [g.name for g in self._groups]
        self._arrays: dict[str, zarr.Array] = {
            name: self._root[name]  # type: ignore[misc]
            for name in (*self._image_names, S.VALID, S.KEY, S.LABEL, S.HIST,
                         *(f"{S.META}/{f}" for f in S.FIELD_NAMES))
        }
        #: how append splits the 10 m grid into the image arrays (None: one array, the images as given)
        self._split: PackSpec | None = None
        if len(self._groups) > 1 or self._groups[0].factor != 1:
            self._split = PackSpec.build(self.config.bands, self.config.patch_size, self.config.grid_factors)
        #: the S1 group's per-location arrays and histogram (a store with sensors ("s2", "s1"))
        self._s1 = self.config.has_s1
        if self._s1:
            for name in (*S1.array_names(), S1.HIST):
                self._arrays[name] = self._root[name]  # type: ignore[assignment]
        #: every sharded image array, the S1 one included (trim and sweep their uncommitted shards)
        self._shard_arrays = [*self._image_names, *((S1.IMAGES,) if self._s1 else ())]
        meta_group = self._root[S.META]
        assert isinstance(meta_group, zarr.Group)
        #: optional arrays present in this store (a store written before them gets them at its first append)
        self._radiometry = {f.name for f in S.RADIOMETRY_FIELDS if f.name in meta_group}
        for name in self._radiometry:
            self._arrays[f"{S.META}/{name}"] = meta_group[name]  # type: ignore[assignment]
        self._shard_writers: dict[str, ShardWriter | None] = {
            name: ShardWriter.for_array(loc.local / name) if loc.local is not None else None
            for name in self._shard_arrays
        }
        self._pending: list[dict[str, Any]] = []
        keys = np.asarray(self._arrays[S.KEY][: self._n]) if self._n else np.array([], dtype=str)
        self._keys: dict[str, int] = {str(k): i for i, k in enumerate(keys.tolist())}
        self._hist, self._s1_hist = self._load_histograms()
        #: clear-sky masks, records and histogram (none in a store written before them: seco.store.clear)
        self._clear = CL.ClearWriter(self._root, self.config, self._n)
        self._arrays.update(self._clear.arrays())
        self._clear.load(self._hist_slot, self._hist_locations, self._n, self._reader)
        self._closed = False
        self._sweep_partials()

    # ------------------------------------------------------------------------------------------ reading
    def __len__(self) -> int:
        """Locations appended so far (committed and pending)."""
        return self._n + len(self._pending)

    @property
    def num_committed(self) -> int:
        """Locations visible to readers."""
        return self._n

    def has(self, key: str) -> bool:
        """Whether ``key`` was appended (committed, or pending in this writer)."""
        return key in self._keys

    def keys(self) -> set[str]:
        """Every appended key."""
        return set(self._keys)

    # ------------------------------------------------------------------------------------------ writing
    def append(
        self,
        key: str,
        images: np.ndarray,
        valid: np.ndarray | Sequence[bool],
        dates_meta: Sequence[Mapping[str, Any] | None],
        label: int | None = None,
        *,
        s1: S1.S1Patch | None = None,
        clear: np.ndarray | None = None,
        clear_rule: str | Sequence[str] | None = None,
    ) -> int:
        """Append one location.

        Args:
            key: unique id of the location (e.g. ``"lat,lon"`` or a sample id); see ``has``.
            images: (T, C, H, W) uint16 DN, bands in the store's order, all on the 10 m grid. Dates with
                ``valid`` False are stored as zeros (nothing on disk). A native-grid store keeps each 20 m /
                60 m band once per 2 x 2 / 6 x 6 block, so those bands must be whole blocks from the origin.
            valid: (T,) bool, which dates hold usable imagery; at least one.
            dates_meta: T dicts with the ``schema.DATE_FIELDS`` keys (required for valid dates).
            label: class index (``0 <= label < len(label_names)`` when the store has label names).
            s1: (a store with an S1 group) the location's Sentinel-1 data, ``seco.store.s1.S1Patch``: (T, 2, H, W)
                dB on the same grid, NaN = no data, its validity and per-date record; ``None``: no S1 on any date.
            clear: (T, H, W) bool on the 10 m grid, True = a clear pixel (e.g. from the SCL: not nodata, saturated,
                cloud shadow, cloud medium / high, cirrus or snow); ``None``: the writer tests the stored bands
                (``seco.store.clear.band_test``). Nodata pixels are never clear. Ignored by a store written
                before clear masks (it records none).
            clear_rule: how ``clear`` was decided, one string or one per date (default ``"scl"``; e.g.
                ``"truth:synth"``).

        Returns:
            The index of the location in the store.

        Raises:
            StoreError: a duplicate key, or images / valid / metadata / label that do not fit the store.
            NotNativeError: (native grid) a 20 m / 60 m band that is not constant on its blocks; nothing is
                written.
        """
        with self._lock:
            if self._closed:
                raise StoreError(f"this writer of {self.path} is closed; call open_writer({self.path!r}) again")
            where = f"location {key!r}"
            if not isinstance(key, str) or not key:
                raise StoreError(f"key {key!r} must be a non-empty string identifying the location")
            if key in self._keys:
                raise StoreError(
                    f"key {key!r} is already in the store (location {self._keys[key]}); "
                    "skip it with writer.has(key) before appending"
                )
            images = self._check_images(images, where)
            valid = self._check_valid(valid, where)
            rows = self._check_meta(dates_meta, valid, where)
            label_value = self._check_label(label, where)
            if s1 is not None and not self._s1:
                raise StoreError(f"{where}: this store has no Sentinel-1 group; create it with sensors=('s2', 's1') "
                                 "to store S1")
            s1_part = S1.check_patch(s1, self.num_dates, self.patch_size, where) if self._s1 else None
            if not valid.all():
                images = np.where(valid[:, None, None, None], images, np.uint16(0))
            cm = (CL.location_mask(images, valid, self.bands, clear, clear_rule, where)
                  if self._clear.enabled else None)
            # native grid: (T, c_g, n_g, n_g) per array, refused (NotNativeError) before anything is written
            parts = [images] if self._split is None else self._split.split(images, f"{where}: ")

            slot = len(self)
            self._add_radiometry_arrays()
            self._arrays.update(self._clear.ensure_arrays(self._arrays[S.VALID].shape[0]))
            self._ensure_capacity(slot + 1)
            for name, part in zip(self._image_names, parts, strict=True):
                w = self._shard_writers[name]
                if w is not None:
                    w.write(slot, part)  # one shard per array, written atomically
                else:
                    self._arrays[name][slot] = part  # one shard: one atomic PUT / rename
            add_to_histogram(self._hist, images, valid)
            entry = {"key": key, "valid": valid, "rows": rows, "label": label_value}
            if cm is not None:
                self._arrays[CL.MASK][slot] = cm[0]  # before the commit: the clear histogram is recomputable
                assert self._clear.hist is not None  # created with the arrays
                CL.add_clear(self._clear.hist, images, cm[0], valid)
                entry |= {"clear_fraction": cm[1], "clear_rule": cm[2]}
            if s1_part is not None:
                codes, s1_valid, s1_rows = s1_part
                w = self._shard_writers[S1.IMAGES]
                if w is not None:
                    w.write(slot, codes)
                else:
                    self._arrays[S1.IMAGES][slot] = codes
                assert self._s1_hist is not None  # a store with an S1 group has its histogram
                add_to_histogram(self._s1_hist, codes, s1_valid)
                entry |= {"s1_valid": s1_valid, "s1_rows": s1_rows}
            self._pending.append(entry)
            self._keys[key] = slot
            if len(self._pending) >= self._commit_every:
                self.flush()
            return slot

    def flush(self) -> None:
        """Commit every pending location (they become visible to readers)."""
        with self._lock:
            if not self._pending:
                return
            start, k = self._n, len(self._pending)
            stop = start + k
            A = self._arrays
            A[S.VALID][start:stop] = np.stack([p["valid"] for p in self._pending])
            A[S.KEY][start:stop] = np.array([p["key"] for p in self._pending], dtype=object)
            A[S.LABEL][start:stop] = np.array([p["label"] for p in self._pending], dtype=np.int32)
            for f in (*S.DATE_FIELDS, *S.RADIOMETRY_FIELDS):
                col = [[r[f.name] for r in p["rows"]] for p in self._pending]
                arr = np.array(col, dtype=object if f.dtype == "str" else f.dtype)
                A[f"{S.META}/{f.name}"][start:stop] = arr
            if self._s1:
                S1.flush_rows(A, start, self._pending)
            CL.flush_rows(A, start, self._pending)
            hist_slot, hist_locations = self._hist_slot, self._hist_locations
            if stop - hist_locations >= self._hist_every:
                hist_slot, hist_locations = self._save_histogram(stop)
            self._commit_manifest(stop, hist_slot, hist_locations)
            self._pending.clear()

    def close(self) -> None:
        """Commit pending locations, save the histogram, trim the arrays to the location count."""
        with self._lock:
            if self._closed:
                return
            self.flush()
            if self._hist_locations != self._n:
                self._commit_manifest(self._n, *self._save_histogram(self._n))
            self._trim()
            self._closed = True

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StoreWriter({self.path!r}, locations={len(self)}, committed={self._n})"

    # ------------------------------------------------------------------------------------------ internals
    def _check_images(self, images: Any, where: str) -> np.ndarray:
        T, C, P = self.num_dates, len(self.bands), self.patch_size
        if not isinstance(images, np.ndarray):
            raise StoreError(f"{where}: images must be a numpy array (T, C, H, W), got {type(images).__name__}")
        if images.dtype != np.uint16:
            raise StoreError(
                f"{where}: images have dtype {images.dtype}, the store holds uint16 DN; convert with "
                "np.clip(np.round(reflectance * 10000), 0, 65535).astype(np.uint16)"
            )
        if images.shape != (T, C, P, P):
            raise StoreError(
                f"{where}: images have shape {images.shape}, the store expects (T, C, H, W) = {(T, C, P, P)} "
                f"with bands {', '.join(self.bands)}; resample 20/60 m bands to the 10 m grid and pad missing "
                "dates with zeros marked invalid"
            )
        return np.ascontiguousarray(images)

    def _check_valid(self, valid: Any, where: str) -> np.ndarray:
        v = np.asarray(valid)
        if v.dtype != np.bool_ or v.shape != (self.num_dates,):
            raise StoreError(
                f"{where}: valid must be a bool array of shape ({self.num_dates},), got {v.dtype} {v.shape}"
            )
        if not v.any():
            raise StoreError(f"{where}: no valid date; skip the location instead of appending it")
        return v.copy()

    def _check_meta(self, dates_meta: Any, valid: np.ndarray, where: str) -> list[dict[str, Any]]:
        if isinstance(dates_meta, (Mapping, str)) or not isinstance(dates_meta, Sequence):
            raise StoreError(f"{where}: dates_meta must be a list of {self.num_dates} dicts, got {type(dates_meta).__name__}")
        if len(dates_meta) != self.num_dates:
            raise StoreError(
                f"{where}: dates_meta has {len(dates_meta)} entries, the store has {self.num_dates} dates; "
                "give one dict per date (None for a missing date)"
            )
        C = len(self.config.bands)
        return [S.normalize_date_meta(m, bool(valid[t]), f"{where} date {t}")
                | S.normalize_radiometry(m, C, f"{where} date {t}") for t, m in enumerate(dates_meta)]

    def _check_label(self, label: Any, where: str) -> int:
        if label is None:
            return -1
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise StoreError(f"{where}: label {label!r} must be an integer class index or None")
        names = self.config.label_names
        if label < 0 or (names is not None and label >= len(names)):
            limit = f"0..{len(names) - 1} ({', '.join(names)})" if names else ">= 0"
            raise StoreError(f"{where}: label {label} out of range; this store's labels are {limit}")
        return int(label)

    def _add_radiometry_arrays(self) -> None:
        """Give a store written before the radiometry record its arrays (unknown for the rows already there)."""
        missing = [f for f in S.RADIOMETRY_FIELDS if f.name not in self._radiometry]
        if not missing:
            return
        meta_group = self._root[S.META]
        assert isinstance(meta_group, zarr.Group)
        cap = self._arrays[S.VALID].shape[0]
        for f in missing:
            self._arrays[f"{S.META}/{f.name}"] = _create_radiometry(
                meta_group, f, cap, self.config.layout.meta_chunk, self.num_dates, len(self.config.bands))
            self._radiometry.add(f.name)

    def _ensure_capacity(self, needed: int) -> None:
        rows = self.config.layout.meta_chunk
        for name, arr in self._arrays.items():
            if name not in (S.HIST, S1.HIST) and arr.shape[0] < needed:
                cap = max(needed, arr.shape[0] + max(rows, arr.shape[0] // 2))
                cap = -(-cap // rows) * rows
                arr.resize((cap, *arr.shape[1:]))

    def _trim(self) -> None:
        # Shapes become exactly the location count, so plain-zarr readers of a finished store see no extra
        # rows. zarr's own shrink would visit every chunk key of the spare capacity; instead keep the chunks
        # and delete the orphan shards of uncommitted slots, which are contiguous from the count upward.
        for name, arr in self._arrays.items():
            if name not in (S.HIST, S1.HIST) and arr.shape[0] != self._n:
                zsync.sync(arr.async_array.resize((self._n, *arr.shape[1:]), delete_outside_chunks=False))
        self._clear.trim(self._n)
        store = self._root.store
        for name in self._shard_arrays:
            i, missing = self._n, 0
            while missing < 8:
                key = f"{name}/c/{i}/0/0/0/0"
                if zsync.sync(store.exists(key)):
                    zsync.sync(store.delete(key))
                    missing = 0
                else:
                    missing += 1
                i += 1

    def _commit_manifest(self, n: int, hist_slot: int, hist_locations: int) -> None:
        self._root.attrs.update({S.ATTR_MANIFEST: _manifest(n, hist_slot, hist_locations)})
        self._n, self._hist_slot, self._hist_locations = n, hist_slot, hist_locations

    def _save_histogram(self, n: int) -> tuple[int, int]:
        # written to the slot the manifest does not point at; the manifest commit switches slots
        slot = 1 - self._hist_slot
        self._arrays[S.HIST][slot] = self._hist
        if self._s1_hist is not None:
            self._arrays[S1.HIST][slot] = self._s1_hist
        self._clear.save(slot)
        return slot, n

    def _reader(self) -> Any:
        from seco.store.reader import Store

        return Store(self._loc)

    def _load_histograms(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The S2 histogram (and the S1 one), with the locations committed after their last save added."""
        hist = np.asarray(self._arrays[S.HIST][self._hist_slot], dtype=np.uint64)
        s1 = np.asarray(self._arrays[S1.HIST][self._hist_slot], dtype=np.uint64) if self._s1 else None
        if self._hist_locations < self._n:  # the histogram was last saved before the latest commits
            from seco.store.reader import Store

            store = Store(self._loc)
            for i in range(self._hist_locations, self._n):
                add_to_histogram(hist, store.read(i), store.valid(i))
                if s1 is not None and store.s1 is not None:
                    add_to_histogram(s1, store.s1.read_raw(i), store.s1.valid(i))
        return hist, s1

    def _sweep_partials(self) -> None:
        # temporary files of writes a crash interrupted (zarr's LocalStore writes "<name>.<uuid>.partial");
        # only the chunks at and after the committed count can have been in flight
        if self._loc.local is None:
            return
        root = self._loc.local
        rows = self.config.layout.meta_chunk
        dirs = [root, root / S.META, root / "stats", *(root / n for n in self._arrays)]
        if self._s1:
            dirs += [root / S1.GROUP, root / S1.META, root / S1.GROUP / "stats"]
        dirs += self._clear.sweep_dirs(root, self._n)
        for name in self._arrays:
            if name not in (*self._shard_arrays, S.HIST, S1.HIST):
                for c in (self._n // rows, self._n // rows + 1):
                    d = root / name / "c" / str(c)
                    dirs += [d, *(x for x in d.rglob("*") if x.is_dir())] if d.is_dir() else [d.parent]
        for hist in (S.HIST, S1.HIST):
            dirs += [x for x in (root / hist / "c").rglob("*") if x.is_dir()] if (root / hist / "c").is_dir() else []
        for name in self._shard_arrays:
            i = self._n
            while (root / name / "c" / str(i)).is_dir():
                dirs.append(root / name / "c" / str(i) / "0" / "0" / "0")
                i += 1
        for d in dirs:
            if d.is_dir():
                for p in d.glob("*.partial"):
                    p.unlink(missing_ok=True)

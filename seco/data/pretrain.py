"""Pre-training data: a store-backed dataset of drawn dates, its batch path, and the resumable batch sampler.

Workers only read and convert; the views (crops, augmentations, normalisation) are made in the training loop
on the whole batch, on its device (``seco.data.views``). Per step the loop does::

    dataset.set_epoch(sampler.epoch)          # before iterating the loader (workers are re-created)
    for batch in DataLoader(dataset, batch_sampler=sampler, num_workers=..., collate_fn=collate_pretrain):
        images = to_reflectance(batch["images"].to(device, non_blocking=True))  # (B, n, C, H, W)
        q, keys = make_views(images, recipe, gen, size, normalization)  # on the CPU: pass the DN batch as is
        ...  # optimiser step
        sampler.advance()                     # one batch consumed: what state_dict() will resume after
    sampler.next_epoch()                      # after a complete pass

The DataLoader fetches a batch with ``PretrainDataset.__getitems__``: every sample is decoded straight into
one batch tensor (``Store.read(..., out=)``) that ``collate_pretrain`` passes through, with no per-sample
arrays and no stacking copy. With a batch ring (what ``seco pretrain`` uses, ``seco.data.ring``) the batch is
*packed*: (B, n, L) uint16, each band at the grid the store keeps it on (``Store.read_packed``,
``seco.store.packing``); ``seco.train.prefetch.DevicePrefetcher`` copies it to the device and rebuilds the
(B, n, C, H, W) 10 m grid there (``PackSpec.unpack``: a view for a store on the 10 m grid, nearest
upsampling of the 20 m / 60 m bands for a native-resolution store, bit for bit what a 10 m store holds).

Determinism: the sample order of an epoch is a function of ``(seed, epoch)``, the dates drawn for a
location of ``(seed, epoch, location)``, so a run resumed from ``sampler.state_dict()`` sees exactly the
samples and dates it would have seen.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate, get_worker_info

from seco.bands import REFLECTANCE_SCALE, BandSelection, parse_bands, sensors_of
from seco.data.corrupt import (
    MAX_SUBSTITUTES,
    ON_CORRUPT,
    corrupt_error,
    error_from_record,
    is_decode_error,
    record,
    substitutes,
)
from seco.data.ring import BatchRing
from seco.data.views import draw_dates
from seco.errors import ConfigError, DatasetError, StoreCorruptError
from seco.store import open_store
from seco.store.packing import PackSpec
from seco.store.source import ImageSource

__all__ = ["PretrainBatch", "PretrainDataset", "collate_pretrain", "unpack_batch"]


class PretrainDataset(Dataset):
    """Locations of a seco store, each sample ``num_dates`` randomly drawn valid dates.

    ``dataset[i]`` (or ``dataset[(epoch, i)]``, which ignores ``set_epoch``) is a dict:

    - ``images``: (num_dates, C, H, W) float32 reflectance ``DN / 10000`` in draw order (uint16 DN with
      ``as_dn=True``: half the bytes through workers and to the GPU; convert there with ``to_reflectance``);
    - ``dates``: (num_dates,) int64, the store date index of each image;
    - ``index``: ``i``; ``location``: the store location index.

    With ``ring`` set (``seco pretrain``), ``__getitems__`` decodes packed samples into the ring instead
    (``pack_spec``: each band at the grid the store keeps it on); ``DevicePrefetcher`` unpacks them on the
    training device. Every other path (``dataset[i]``, ``__getitems__`` without a ring, ``as_dn=False``) gives
    (num_dates, C, H, W) images on the 10 m grid (``ImageSource.read``).

    Only the drawn dates and the chosen bands are read. A store given by path is opened lazily in each worker
    (the open handle is not pickled); a ``Store`` object is used as given (stores are fork/pickle safe).

    Args:
        store: a store path, an open ``seco.store.Store``, or another ``seco.store.source.ImageSource``.
        bands: a ``BandSelection`` resolved for this store (used as is), or a band specification as
            ``seco.bands.parse_bands`` (``"all"`` = every band of the store).
        num_dates: dates drawn per sample (``ViewRecipe.num_dates``: 3 for SeCo, 1 MoCo, 2 MoCo+TP).
        seed: seed of the date draws.
        replace: draw dates with replacement (the official SeCo code) instead of distinct dates.
        drop_incomplete: skip locations with too few valid dates (listed in ``skipped``) instead of raising.
        as_dn: return uint16 DN instead of float32 reflectance.
        on_corrupt: ``fail`` (default): a location that cannot be decoded raises ``StoreCorruptError`` naming
            it and its file; ``skip``: ``__getitems__`` replaces it by the first readable of a seeded list of
            other samples (``seco.data.corrupt.substitutes``) and reports it in the batch's ``corrupt``.

    Raises:
        DatasetError: if a location has too few valid dates and ``drop_incomplete`` is False, or none is left.
        BandError: if a band is not in the store.
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | ImageSource,
        bands: BandSelection | str | Sequence[str] = "all",
        num_dates: int = 3,
        seed: int = 0,
        *,
        replace: bool = False,
        drop_incomplete: bool = False,
        as_dn: bool = False,
        on_corrupt: str = "fail",
    ) -> None:
        if isinstance(store, str | os.PathLike):
            self._path: Path | None = Path(store)
            store = _open(self._path)
        else:
            self._path = None
        if not isinstance(store, ImageSource):
            raise ConfigError(
                f"{type(store).__name__} is not a store: PretrainDataset reads a seco store (a path or "
                "seco.store.open_store(...)) or a seco.store.source.ImageSource (e.g. a GridSource subclass)"
            )
        self._store: ImageSource | None = store
        if num_dates < 1:
            raise ConfigError(f"num_dates={num_dates} must be >= 1 (3 for SeCo, 1 for MoCo, 2 for MoCo+TP)")
        if seed < 0:
            raise ConfigError(f"seed {seed} must be >= 0")
        # a store with a Sentinel-1 group also reads VV / VH (``Store.readable_bands``)
        self.bands: BandSelection = parse_bands(bands, available=getattr(store, "readable_bands", store.bands))
        self.num_dates = int(num_dates)
        self.seed = int(seed)
        self.replace = bool(replace)
        self.as_dn = bool(as_dn)
        if on_corrupt not in ON_CORRUPT:
            raise ConfigError(f"on_corrupt={on_corrupt!r} is not one of {', '.join(ON_CORRUPT)}")
        self.on_corrupt = on_corrupt
        #: store locations known to be damaged (skip mode: not read again); the loop seeds it on resume
        self.known_bad: set[int] = set()
        #: batch buffers shared with the workers (``seco.data.ring``); set by the loop before the loader starts
        self.ring: BatchRing | None = None
        self.epoch = 0
        #: layout of a ring slot's samples, (n, pack_spec.length) each: each band at the grid the store keeps it on
        self.pack_spec: PackSpec = store.pack_spec(list(self.bands))
        if not isinstance(self.pack_spec, PackSpec) or self.pack_spec.bands != tuple(self.bands):
            raise DatasetError(f"store.pack_spec({list(self.bands)}) gave {self.pack_spec!r}, not a PackSpec of "
                               "those bands; the store is damaged or not a seco store")
        self._valid = _valid_for(store, self.bands)  # (N, T)
        if self._valid.ndim != 2 or self._valid.shape[0] != len(store):
            raise DatasetError(
                f"store valid_mask() has shape {self._valid.shape}, expected ({len(store)}, T); the store is damaged"
            )
        need = 1 if self.replace else self.num_dates
        counts = self._valid.sum(axis=1)  # (N,)
        short = np.flatnonzero(counts < need)
        if short.size and not drop_incomplete:
            show = ", ".join(f"{int(i)} ({int(counts[i])})" for i in short[:5])
            raise DatasetError(
                f"{short.size} of {len(counts)} locations have fewer than {need} valid dates, e.g. location "
                f"(valid dates): {show}; pass drop_incomplete=True to skip them, or use a method with fewer dates"
            )
        self.skipped: tuple[int, ...] = tuple(int(i) for i in short)
        self.locations = np.flatnonzero(counts >= need)  # (N',) store index of each dataset index
        if self.locations.size == 0:
            raise DatasetError(f"no location of the store has {need} valid dates; collect more dates")

    def __len__(self) -> int:
        return int(self.locations.size)

    @property
    def sensors(self) -> tuple[str, ...]:
        """The sensors of the selected bands (``("s2",)``, ``("s1",)`` or ``("s2", "s1")``)."""
        return sensors_of(self.bands)

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose date draws ``dataset[i]`` returns (call before creating the loader iterator)."""
        self.epoch = int(epoch)

    def draw(self, i: int, epoch: int | None = None) -> list[int]:
        """The store date indices drawn for dataset index ``i`` in ``epoch`` (default: the current one)."""
        e = self.epoch if epoch is None else int(epoch)
        loc = int(self.locations[i])
        rng = np.random.default_rng([self.seed, e, loc])
        return draw_dates(self._valid[loc], self.num_dates, rng, replace=self.replace)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, i = _parse_key(key)
        loc = int(self.locations[i])
        dates = self.draw(i, epoch)
        uniq = sorted(set(dates))
        store = self._get_store()
        try:
            arr = store.read(loc, dates=uniq, bands=list(self.bands))  # (t, C, H, W) uint16
        except Exception as e:
            if is_decode_error(e):
                raise corrupt_error(store, loc, e) from e
            raise
        if arr.ndim != 4 or arr.shape[:2] != (len(uniq), len(self.bands)):
            raise DatasetError(
                f"store read of location {loc} gave shape {arr.shape}, expected ({len(uniq)}, {len(self.bands)}, H, W)"
            )
        if uniq != dates:  # back to draw order (and repeats, with replacement)
            arr = arr[[uniq.index(d) for d in dates]]
        images = torch.from_numpy(np.ascontiguousarray(arr))  # (n, C, H, W)
        if not self.as_dn:
            images = images.to(torch.float32).div_(REFLECTANCE_SCALE)
        return {
            "images": images,
            "dates": torch.tensor(dates, dtype=torch.long),
            "index": i,
            "location": loc,
        }

    def __getitems__(self, keys: Sequence[int | tuple[int, int]]) -> PretrainBatch:
        """A whole batch at once; torch's ``DataLoader`` calls this with one batch's keys when it exists.

        Equal to ``[self[k] for k in keys]`` (same dates, draw order, dtypes and dict keys), but every sample is
        decoded straight into one (B, num_dates, C, H, W) tensor (uint16 with ``as_dn``, else float32
        reflectance), so there are no per-sample arrays and no stacking copy: a fresh tensor (in a worker
        process in shared memory, as ``default_collate`` allocates); the items' ``images`` are views of it.

        With ``self.ring`` set and ``keys`` naming a slot (``seco.data.ring.SlotKeys``) the samples are decoded
        *packed* into that slot instead: (B, num_dates, L) uint16, ``L = pack_spec.length``
        (``Store.read_packed``); the items carry ``packed`` views of it, the collated batch ``slot`` instead of
        ``images`` (take it with ``unpack_batch``, rebuild the 10 m grid with ``pack_spec.unpack``).
        ``collate_pretrain`` returns the collated batch (``PretrainBatch.collated``) as is.

        A sample that cannot be decoded raises ``StoreCorruptError`` (``on_corrupt="fail"``; inside a
        DataLoader worker the batch comes back with ``failed`` and ``unpack_batch`` raises it, so the message
        and attributes survive) or is replaced by a substitute (``"skip"``); the collated batch then has a
        ``corrupt`` list of the damaged locations met (records of ``seco.data.corrupt``).
        """
        store = self._get_store()
        parsed = [_parse_key(k) for k in keys]
        if not parsed:
            return PretrainBatch([], None)
        slot: int = int(getattr(keys, "slot", -1))
        ring = self.ring if slot >= 0 else None
        corrupt: list[dict[str, Any]] = []
        if ring is not None:
            images = ring.view(slot, len(parsed))  # (B, n, L) uint16 packed, shared with the main process
            used = self._fill_ring(store, parsed, ring, images.numpy(), corrupt)
        else:
            images, used = self._fill_batch(store, parsed, corrupt)
        if used is None:
            return self._failed(corrupt)
        return self._collate(images, used, corrupt, slot if ring is not None else None)

    def _fill_ring(
        self, store: ImageSource, parsed: list[tuple[int | None, int]], ring: BatchRing, dst: np.ndarray,
        corrupt: list[dict[str, Any]],
    ) -> list[tuple[int, int, list[int]]] | None:
        """Decode the samples packed into a ring slot ``dst`` (B, n, L); ``None`` when one is damaged (fail)."""
        self._check_ring(ring)
        used = []
        for k, (epoch, i) in enumerate(parsed):
            got = self._read_guarded(
                store, epoch, i, corrupt, lambda loc, d, t=dst[k]: self.read_drawn_packed(loc, d, t)
            )
            if got is None:
                return None
            used.append(got)
        return used

    def _fill_batch(
        self, store: ImageSource, parsed: list[tuple[int | None, int]], corrupt: list[dict[str, Any]]
    ) -> tuple[torch.Tensor, list[tuple[int, int, list[int]]] | None]:
        """Decode the samples into one fresh (B, n, C, H, W) batch tensor: uint16 DN with ``as_dn``, else float32
        reflectance (each sample through a uint16 scratch)."""
        b, n, c, p = len(parsed), self.num_dates, len(self.bands), int(store.patch_size)
        images = _batch_tensor((b, n, c, p, p), torch.uint16 if self.as_dn else torch.float32)
        dn = images.numpy() if self.as_dn else None  # (B, n, C, H, W), shares memory with images
        scratch = None if self.as_dn else np.empty((n, c, p, p), dtype=np.uint16)
        used = []
        for k, (epoch, i) in enumerate(parsed):
            target = dn[k] if dn is not None else scratch
            got = self._read_guarded(store, epoch, i, corrupt, lambda loc, d, t=target: self.read_drawn(loc, d, t))
            if got is None:
                return images, None
            used.append(got)
            if scratch is not None:
                images[k].copy_(torch.from_numpy(scratch)).div_(REFLECTANCE_SCALE)  # as __getitem__
        return images, used

    def read_drawn(self, loc: int, dates: list[int], out: np.ndarray) -> None:
        """Decode ``dates`` (draw order, repeats allowed) of store location ``loc`` into ``out`` (n, C, H, W)
        uint16 on the 10 m grid, each date once."""
        store, bands = self._get_store(), list(self.bands)
        _each_date_once(lambda d, o: store.read(loc, dates=d, bands=bands, out=o), dates, out)

    def read_drawn_packed(self, loc: int, dates: list[int], out: np.ndarray) -> None:
        """As :meth:`read_drawn`, packed into ``out`` (n, L) uint16 (``pack_spec``: each band at its grid)."""
        store, bands = self._get_store(), list(self.bands)
        _each_date_once(lambda d, o: store.read_packed(loc, dates=d, bands=bands, out=o), dates, out)

    def _collate(
        self, images: torch.Tensor, used: list[tuple[int, int, list[int]]], corrupt: list[dict[str, Any]],
        slot: int | None,
    ) -> PretrainBatch:
        """The batch's items (views of ``images``) and its collated dict (``slot`` instead of ``images`` for a
        ring batch, whose small fields travel as numpy arrays)."""
        dates_t = torch.tensor([d for _, _, d in used], dtype=torch.long).reshape(len(used), self.num_dates)
        field = "images" if slot is None else "packed"
        items = [
            {field: images[k], "dates": dates_t[k], "index": i, "location": loc} for k, (i, loc, _) in enumerate(used)
        ]
        collated: dict[str, Any] = {
            "dates": dates_t,
            "index": torch.tensor([i for i, _, _ in used], dtype=torch.long),
            "location": torch.tensor([loc for _, loc, _ in used], dtype=torch.long),
        }
        if corrupt:
            collated["corrupt"] = corrupt  # damaged locations met (and substituted) in this batch
        if slot is not None:
            collated["slot"] = slot  # the main process views its own mapping of the slot: nothing is sent
            # small fields as numpy: pickled inline, where a tensor would cost a shared-memory file per batch
            for name in ("dates", "index", "location"):
                collated[name] = collated[name].numpy()
        else:
            collated["images"] = images
        return PretrainBatch(items, collated)

    def _read_guarded(
        self, store: ImageSource, epoch: int | None, i: int, corrupt: list[dict[str, Any]], read: Any
    ) -> tuple[int, int, list[int]] | None:
        """Read sample ``i`` with ``read(loc, dates)``; on damage, fail or substitute (see ``__getitems__``).

        Returns ``(dataset index, location, dates)`` actually read, or ``None`` when ``on_corrupt="fail"``
        and the sample is damaged (its record appended to ``corrupt``).
        """
        e = self.epoch if epoch is None else int(epoch)
        skip = self.on_corrupt == "skip"
        for j in itertools.chain([i], substitutes(self.seed, e, i, len(self)) if skip else []):
            loc = int(self.locations[j])
            if skip and loc in self.known_bad:  # as reading it and failing, without the cost
                continue
            dates = self.draw(j, e)
            try:
                read(loc, dates)
            except Exception as exc:
                if not is_decode_error(exc):
                    raise
                corrupt.append(record(corrupt_error(store, loc, exc)))
                if not skip:
                    return None
                self.known_bad.add(loc)
                continue
            return j, loc, dates
        raise StoreCorruptError(
            f"sample {i} of epoch {e} and its {MAX_SUBSTITUTES} substitutes are all damaged "
            f"({len(self.known_bad)} damaged locations found so far, e.g. {sorted(self.known_bad)[:5]}); "
            "the store is badly damaged: check and repair it",
            location=int(self.locations[i]),
        )

    @staticmethod
    def _failed(corrupt: list[dict[str, Any]]) -> PretrainBatch:
        """``on_corrupt="fail"``: raise here, or (in a DataLoader worker, whose exceptions torch re-raises as
        a traceback text) hand the record to the main process, where ``unpack_batch`` raises it."""
        if get_worker_info() is None:
            raise error_from_record(corrupt[-1])
        return PretrainBatch([], {"failed": True, "corrupt": corrupt})

    def _check_ring(self, ring: BatchRing) -> None:
        """Raises when the ring cannot hold this dataset's packed samples."""
        want = (self.num_dates, self.pack_spec.length)
        if not self.as_dn or ring.shape[1:] != want or ring.dtype != torch.uint16:
            raise DatasetError(
                f"ring buffers of {ring.shape} {ring.dtype} cannot hold this dataset's samples "
                + (f"(packed uint16 DN of {want}); make the ring with shape (B, {want[0]}, {want[1]})"
                   if self.as_dn else "(a ring needs as_dn=True)")
            )

    def _get_store(self) -> ImageSource:
        if self._store is None:
            assert self._path is not None
            self._store = _open(self._path)
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._path is not None:
            state["_store"] = None  # each worker opens its own
        return state


def _open(path: Path) -> ImageSource:
    return open_store(path)


def _valid_for(store: ImageSource, bands: Sequence[str]) -> np.ndarray:
    """(N, T) bool: the dates usable for ``bands``: the S2 dates, the S1 dates (VV / VH only), or the dates that
    have both (bands of both sensors, so that no view of a drawn date is empty)."""
    used = sensors_of(bands)
    valid = np.asarray(store.valid_mask(), dtype=bool)
    if "s1" not in used:
        return valid
    s1 = getattr(store, "s1", None)
    if s1 is None:
        raise DatasetError("bands VV / VH need a store with a Sentinel-1 group (collect --s1, synth --s1, import "
                           "--with-s1)")
    radar = np.asarray(s1.valid_mask(), dtype=bool)
    return radar if used == ("s1",) else valid & radar


def _parse_key(key: int | tuple[int, int]) -> tuple[int | None, int]:
    """``i`` or ``(epoch, i)`` -> ``(epoch or None, i)``."""
    return (int(key[0]), int(key[1])) if isinstance(key, tuple) else (None, int(key))


def _each_date_once(read: Callable[[list[int], np.ndarray], Any], dates: list[int], out: np.ndarray) -> None:
    """``read(dates, out)`` with each date decoded once: ``out`` (n, ...) receives ``dates`` in draw order.

    With repeats (``replace=True``) the distinct dates are decoded into the first rows of ``out``, then spread
    out in draw order.
    """
    uniq = sorted(set(dates))
    if len(uniq) == len(dates):
        read(dates, out)
    else:
        read(uniq, out[: len(uniq)])
        out[:] = out[[uniq.index(d) for d in dates]]  # fancy indexing copies first: no overlap issue


def _batch_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor for one batch; in a DataLoader worker, in shared memory (as ``default_collate``
    allocates its stacked batch), so it reaches the main process without a copy."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    proto = torch.empty(0, dtype=dtype)
    storage = proto._typed_storage()._new_shared(math.prod(shape), device=proto.device)
    return proto.new(storage).resize_(shape)


class PretrainBatch(list):  # type: ignore[type-arg]
    """What ``PretrainDataset.__getitems__`` returns: the batch's item dicts (a list, as ``[ds[k] for k in
    keys]``) that also carries the already collated batch, which ``collate_pretrain`` returns unchanged.

    Attributes:
        collated: ``images`` (B, n, C, H, W), ``dates`` (B, n) int64, ``index`` and ``location`` (B,) int64;
            the items' ``images`` and ``dates`` are views of it (a ring batch: ``slot`` instead of ``images``,
            the items' ``packed`` (n, L) views of the slot, the small fields as numpy arrays). ``None`` for an
            empty batch.
    """

    def __init__(self, items: Sequence[dict[str, Any]], collated: dict[str, Any] | None):
        super().__init__(items)
        self.collated = collated


def collate_pretrain(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack samples into ``images`` (B, n, C, H, W), ``dates`` (B, n), ``index`` and ``location`` (B,).

    The dtype is kept (float32 reflectance, or uint16 DN with ``as_dn``); inside a worker the stacked batch is
    written straight into shared memory (``default_collate``), so it reaches the main process without a copy.
    A ``PretrainBatch`` (``PretrainDataset.__getitems__``, what the DataLoader hands over) is already one
    batch tensor and is returned as it is, without a copy.
    """
    if isinstance(samples, PretrainBatch) and samples.collated is not None:
        if samples.collated.get("failed"):  # a damaged sample in a worker: unpack_batch raises it
            return samples.collated
        if len(samples) != len(samples.collated["index"]):
            raise DatasetError(
                f"PretrainBatch holds {len(samples)} items but its batch has {len(samples.collated['index'])}; "
                "do not add or remove items of a PretrainBatch, or collate a plain list of them"
            )
        return samples.collated
    if not samples:
        raise ConfigError("cannot collate an empty batch")
    shapes = {tuple(s["images"].shape) for s in samples}
    if len(shapes) != 1:
        raise DatasetError(f"samples of one batch have different image shapes {sorted(shapes)}")
    return default_collate(list(samples))


def unpack_batch(batch: dict[str, Any], ring: BatchRing | None = None) -> dict[str, Any]:
    """The loader's batch as the loop uses it: raises a worker's ``StoreCorruptError`` (``on_corrupt="fail"``),
    takes ``packed`` (B, n, L) from the ring slot the batch was decoded into (no copy; the dataset's
    ``pack_spec.unpack`` makes it (B, n, C, H, W)) and makes tensors of the small fields a ring batch carries
    as numpy arrays. A batch without a slot keeps its ``images``.

    Raises:
        StoreCorruptError: naming the damaged location and its file.
    """
    if batch.get("failed"):
        raise error_from_record(batch["corrupt"][-1])
    if "slot" in batch:
        if ring is None:
            raise DatasetError("the batch was decoded into a ring slot but no ring was given to unpack_batch")
        for k in ("dates", "index", "location"):
            batch[k] = torch.as_tensor(batch[k])
        batch["packed"] = ring.view(batch.pop("slot"), len(batch["index"]))  # (B, n, L) uint16
    return batch

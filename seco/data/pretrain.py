"""Pre-training data: a store-backed dataset of drawn dates and a resumable, sharded batch sampler.

Workers only read and convert; the views (crops, augmentations, normalisation) are made in the training loop
on the whole batch, on its device (``seco.data.views``). Per step the loop does::

    dataset.set_epoch(sampler.epoch)          # before iterating the loader (workers are re-created)
    for batch in DataLoader(dataset, batch_sampler=sampler, num_workers=..., collate_fn=collate_pretrain):
        images = to_reflectance(batch["images"].to(device, non_blocking=True))  # (B, n, C, H, W)
        q, keys = recipe.make_views(images, gen, size, normalization)  # on the CPU: pass the DN batch as is
        ...  # optimiser step
        sampler.advance()                     # one batch consumed: what state_dict() will resume after
    sampler.next_epoch()                      # after a complete pass

The DataLoader fetches a batch with ``PretrainDataset.__getitems__``: every sample is decoded straight into
one batch tensor (``Store.read(..., out=)``) that ``collate_pretrain`` passes through, with no per-sample
arrays and no stacking copy.

Determinism: the sample order of an epoch is a function of ``(seed, epoch)``, the dates drawn for a
location of ``(seed, epoch, location)``, so a run resumed from ``sampler.state_dict()`` sees exactly the
samples and dates it would have seen.
"""

from __future__ import annotations

import inspect
import itertools
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, default_collate, get_worker_info

from seco.bands import REFLECTANCE_SCALE, parse_bands
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

__all__ = [
    "PretrainBatch", "PretrainDataset", "ResumableSampler", "check_batch_size", "collate_pretrain", "unpack_batch",
]


class PretrainDataset(Dataset):
    """Locations of a seco store, each sample ``num_dates`` randomly drawn valid dates.

    ``dataset[i]`` (or ``dataset[(epoch, i)]``, which ignores ``set_epoch``) is a dict:

    - ``images``: (num_dates, C, H, W) float32 reflectance ``DN / 10000`` in draw order (uint16 DN with
      ``as_dn=True``: half the bytes through workers and to the GPU; convert there with ``to_reflectance``);
    - ``dates``: (num_dates,) int64, the store date index of each image;
    - ``index``: ``i``; ``location``: the store location index.

    Only the drawn dates and the chosen bands are read. A store given by path is opened lazily in each worker
    (the open handle is not pickled); a ``Store`` object is used as given (stores are fork/pickle safe).

    Args:
        store: a store path or an open ``seco.store.Store``.
        bands: band specification, as ``seco.bands.parse_bands`` (``"all"`` = every band of the store).
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
        store: str | os.PathLike[str] | Any,
        bands: str | Sequence[str] = "all",
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
        self._store: Any = store
        if num_dates < 1:
            raise ConfigError(f"num_dates={num_dates} must be >= 1 (3 for SeCo, 1 for MoCo, 2 for MoCo+TP)")
        if seed < 0:
            raise ConfigError(f"seed {seed} must be >= 0")
        self.bands: tuple[str, ...] = parse_bands(bands, available=store.bands)
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
        self._reads_into = _has_out_argument(store)  # seco Stores decode into a caller's buffer (__getitems__)
        self._valid = np.asarray(store.valid_mask(), dtype=bool)  # (N, T)
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
        reflectance), so there are no per-sample arrays and no stacking copy. That tensor is the ring slot
        named by ``keys.slot`` (``seco.data.ring.SlotKeys``, with ``self.ring`` set): the collated batch then
        carries ``slot`` instead of ``images`` (take it with ``unpack_batch``); otherwise a fresh tensor (in a
        worker process in shared memory, as ``default_collate`` allocates). The items' ``images`` are views of
        it; ``collate_pretrain`` returns the collated batch (``PretrainBatch.collated``) as is.

        A sample that cannot be decoded raises ``StoreCorruptError`` (``on_corrupt="fail"``; inside a
        DataLoader worker the batch comes back with ``failed`` and ``unpack_batch`` raises it, so the message
        and attributes survive) or is replaced by a substitute (``"skip"``); the collated batch then has a
        ``corrupt`` list of the damaged locations met (records of ``seco.data.corrupt``).
        """
        store = self._get_store()
        parsed = [_parse_key(k) for k in keys]
        b, n, c = len(parsed), self.num_dates, len(self.bands)
        if b == 0:
            return PretrainBatch([], None)
        bands = list(self.bands)
        slot: int = int(getattr(keys, "slot", -1))
        ring = self.ring if slot >= 0 else None
        corrupt: list[dict[str, Any]] = []
        used: list[tuple[int, int, list[int]]] = []  # (dataset index, location, dates) of each sample
        if self._reads_into and isinstance(getattr(store, "patch_size", None), int):
            h = w = int(store.patch_size)
            if ring is not None:
                if not self.as_dn or ring.shape[1:] != (n, c, h, w) or ring.dtype != torch.uint16:
                    raise DatasetError(
                        f"ring buffers of {ring.shape} {ring.dtype} cannot hold uint16 DN samples of {(n, c, h, w)}"
                    )
                images = ring.view(slot, b)  # (B, n, C, H, W) uint16, shared with the main process
            else:
                images = _batch_tensor((b, n, c, h, w), torch.uint16 if self.as_dn else torch.float32)
            dn = images.numpy() if self.as_dn else None  # (B, n, C, H, W), shares memory with images
            scratch = None if self.as_dn else np.empty((n, c, h, w), dtype=np.uint16)
            for k, (epoch, i) in enumerate(parsed):
                target = dn[k] if dn is not None else scratch
                got = self._read_guarded(
                    store, epoch, i, corrupt, lambda loc, d, t=target: self._read_into(store, loc, d, bands, t)
                )
                if got is None:
                    return self._failed(corrupt)
                used.append(got)
                if scratch is not None:
                    images[k].copy_(torch.from_numpy(scratch)).div_(REFLECTANCE_SCALE)  # as __getitem__
        else:  # a store-like object without read(..., out=): read, then copy into the batch
            arrs: list[np.ndarray] = []
            for epoch, i in parsed:
                got = self._read_guarded(
                    store, epoch, i, corrupt, lambda loc, d: arrs.append(self._read_drawn(store, loc, d, bands))
                )
                if got is None:
                    return self._failed(corrupt)
                used.append(got)
            shapes = {a.shape for a in arrs}
            if len(shapes) != 1:
                raise DatasetError(f"samples of one batch have different image shapes {sorted(shapes)}")
            images = _batch_tensor((b, *arrs[0].shape), torch.uint16 if self.as_dn else torch.float32)
            for k, a in enumerate(arrs):
                t = torch.from_numpy(np.ascontiguousarray(a))
                if self.as_dn:
                    images[k].copy_(t)
                else:
                    images[k].copy_(t).div_(REFLECTANCE_SCALE)
        dates_t = torch.tensor([d for _, _, d in used], dtype=torch.long).reshape(b, n)  # (B, n)
        items = [
            {"images": images[k], "dates": dates_t[k], "index": i, "location": loc}
            for k, (i, loc, _) in enumerate(used)
        ]
        collated: dict[str, Any] = {
            "dates": dates_t,
            "index": torch.tensor([i for i, _, _ in used], dtype=torch.long),
            "location": torch.tensor([loc for _, loc, _ in used], dtype=torch.long),
        }
        if corrupt:
            collated["corrupt"] = corrupt  # damaged locations met (and substituted) in this batch
        if ring is not None:
            collated["slot"] = slot  # the main process views its own mapping of the slot: nothing is sent
            # small fields as numpy: pickled inline, where a tensor would cost a shared-memory file per batch
            for field in ("dates", "index", "location"):
                collated[field] = collated[field].numpy()
        else:
            collated["images"] = images
        return PretrainBatch(items, collated)

    def _read_guarded(
        self, store: Any, epoch: int | None, i: int, corrupt: list[dict[str, Any]], read: Any
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

    def _read_drawn(self, store: Any, loc: int, dates: list[int], bands: list[str]) -> np.ndarray:
        """(n, C, H, W) uint16 of ``dates`` in draw order, read as ``__getitem__`` reads (each date once)."""
        uniq = sorted(set(dates))
        arr = store.read(loc, dates=uniq, bands=bands)  # (t, C, H, W) uint16
        if arr.ndim != 4 or arr.shape[:2] != (len(uniq), len(bands)):
            raise DatasetError(
                f"store read of location {loc} gave shape {arr.shape}, expected ({len(uniq)}, {len(bands)}, H, W)"
            )
        return arr if uniq == dates else arr[[uniq.index(d) for d in dates]]

    @staticmethod
    def _read_into(store: Any, loc: int, dates: list[int], bands: list[str], out: np.ndarray) -> None:
        """Decode ``dates`` (draw order) of ``loc`` into ``out`` (n, C, H, W) uint16, each date once."""
        uniq = sorted(set(dates))
        if len(uniq) == len(dates):
            store.read(loc, dates=dates, bands=bands, out=out)
        else:  # repeats (replace=True): decode each date once, then spread them out in draw order
            store.read(loc, dates=uniq, bands=bands, out=out[: len(uniq)])
            out[:] = out[[uniq.index(d) for d in dates]]  # fancy indexing copies first: no overlap issue

    def _get_store(self) -> Any:
        if self._store is None:
            assert self._path is not None
            self._store = _open(self._path)
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._path is not None:
            state["_store"] = None  # each worker opens its own
        return state


def _open(path: Path) -> Any:
    from seco.store import open_store

    return open_store(path)


def _parse_key(key: int | tuple[int, int]) -> tuple[int | None, int]:
    """``i`` or ``(epoch, i)`` -> ``(epoch or None, i)``."""
    return (int(key[0]), int(key[1])) if isinstance(key, tuple) else (None, int(key))


def _has_out_argument(store: Any) -> bool:
    try:
        return "out" in inspect.signature(store.read).parameters
    except (AttributeError, TypeError, ValueError):
        return False


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
            the items' ``images`` and ``dates`` are views of it. ``None`` for an empty batch.
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
    takes ``images`` from the ring slot the batch was decoded into (no copy) and makes tensors of the small
    fields a ring batch carries as numpy arrays.

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
        batch["images"] = ring.view(batch.pop("slot"), len(batch["index"]))  # (B, n, C, H, W)
    return batch


def check_batch_size(n: int, batch_size: int, world_size: int = 1) -> None:
    """Raise before any work if ``n`` samples cannot fill one batch on every process.

    Raises:
        ConfigError: naming both numbers and the fix.
    """
    if n < batch_size * world_size:
        most = n // world_size
        raise ConfigError(
            f"the store has {n} usable locations, fewer than one batch of {batch_size}"
            + (f" per process x {world_size} processes" if world_size > 1 else "")
            + f"; lower the batch size to at most {most * world_size}"
            + (f" ({most} per process)" if world_size > 1 else "")
            + " or collect more locations"
        )


class ResumableSampler(Sampler[list[Any]]):
    """A batch sampler: a ``(seed, epoch)`` permutation, sharded over ranks, resumable mid-epoch.

    Rank ``r`` of ``world_size`` gets ``perm[r::world_size]`` (as ``DistributedSampler``). With ``drop_last``
    every rank gets the same number of full batches and the remainder of the permutation is dropped; without
    it, the permutation is padded by wrapping so every rank gets ``ceil(n / world_size)`` samples (the last
    batch may be short).

    The position is what the loop has *consumed*, counted by ``advance()`` after each step, not what the
    DataLoader has prefetched; ``state_dict()`` holds ``(epoch, position)`` and an iterator started after
    ``load_state_dict`` begins exactly at the next unconsumed batch. Use as ``DataLoader(batch_sampler=...)``.

    Args:
        n: dataset length.
        batch_size: samples per batch on this process.
        seed: permutation seed (the same on every rank).
        rank, world_size: this process and the number of processes.
        drop_last: drop samples that do not fill a batch on every rank.
        with_epoch: yield ``(epoch, i)`` pairs instead of ``i`` (``PretrainDataset`` accepts both), so
            persistent workers need no ``set_epoch``.

    Raises:
        ConfigError: on bad arguments, or fewer samples than one batch per process.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
        with_epoch: bool = False,
    ) -> None:
        if n < 1 or batch_size < 1 or world_size < 1:
            raise ConfigError(f"sampler needs n >= 1, batch_size >= 1, world_size >= 1; got {n}, {batch_size}, {world_size}")
        if seed < 0:
            raise ConfigError(f"seed {seed} must be >= 0")
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not in [0, {world_size}); check RANK and WORLD_SIZE")
        if drop_last:
            check_batch_size(n, batch_size, world_size)
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.drop_last, self.with_epoch = bool(drop_last), bool(with_epoch)
        self.epoch = 0
        self.position = 0

    @property
    def num_samples(self) -> int:
        """Samples of this rank in one epoch."""
        if self.drop_last:
            return (self.n // (self.batch_size * self.world_size)) * self.batch_size
        return math.ceil(self.n / self.world_size)

    @property
    def batches_per_epoch(self) -> int:
        """Batches of this rank in one full epoch."""
        return math.ceil(self.num_samples / self.batch_size)

    def indices(self, epoch: int | None = None) -> np.ndarray:
        """This rank's sample order for ``epoch`` (default: the current one): (num_samples,) int64."""
        e = self.epoch if epoch is None else int(epoch)
        perm = np.random.default_rng([self.seed, e]).permutation(self.n)  # (n,)
        total = self.num_samples * self.world_size
        if total > self.n:  # pad by wrapping, as DistributedSampler
            perm = np.resize(perm, total)
        return perm[self.rank : total : self.world_size]

    def __iter__(self):
        epoch, start = self.epoch, self.position
        idx = self.indices(epoch)
        for s in range(start, self.num_samples, self.batch_size):
            batch = idx[s : s + self.batch_size].tolist()
            yield [(epoch, i) for i in batch] if self.with_epoch else batch

    def __len__(self) -> int:
        """Batches left in the current epoch."""
        return math.ceil((self.num_samples - self.position) / self.batch_size)

    def advance(self, batches: int = 1) -> None:
        """Record that the loop consumed ``batches`` more batches of the current epoch."""
        if self.position >= self.num_samples:
            raise ConfigError(
                f"epoch {self.epoch} is already fully consumed ({self.num_samples} samples); call next_epoch()"
            )
        self.position = min(self.position + batches * self.batch_size, self.num_samples)

    def next_epoch(self) -> None:
        """Move to the start of the next epoch."""
        self.epoch += 1
        self.position = 0

    def set_epoch(self, epoch: int) -> None:
        """Go to ``epoch``; its start unless it is the current epoch (so a restored position survives)."""
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self.position = 0

    def state_dict(self) -> dict[str, Any]:
        """``epoch`` and ``position`` (samples consumed this epoch), with the settings they depend on."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "n": self.n,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "world_size": self.world_size,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state_dict()`` of the same run (any rank's: they are equal).

        Raises:
            ConfigError: if the saved settings differ (another dataset size, batch size, seed or world size
                would give another sample order).
        """
        missing = [k for k in ("epoch", "position") if k not in state]
        if missing:
            raise ConfigError(f"sampler state lacks {missing}; pass ResumableSampler.state_dict() of a run")
        for key in ("n", "batch_size", "seed", "world_size", "drop_last"):
            if key in state and state[key] != getattr(self, key):
                raise ConfigError(
                    f"sampler state has {key}={state[key]!r} but this run has {key}={getattr(self, key)!r}; "
                    f"resume with the same {key} (and the same store), or start a new run"
                )
        position = int(state["position"])
        if not 0 <= position <= self.num_samples:
            raise ConfigError(f"sampler state position {position} is outside [0, {self.num_samples}]")
        self.epoch, self.position = int(state["epoch"]), position

"""Batches from the DataLoader to the training device, the host-to-device copy overlapped with the steps.

On CUDA the copy of batch ``k + 1`` is issued on a side stream (from the pinned ring slot: an asynchronous
DMA) as soon as the loop asks for batch ``k``; the compute stream only waits on that copy's event right
before batch ``k + 1`` is used, so the host never blocks on the device here. On the CPU the batch is handed
over as it is (the ring slot itself: no copy).

A ring batch is *packed* (``seco.store.packing``): (B, n, L) uint16, each band at the grid the store keeps
it on, so the copy moves only those bytes (2.16x fewer for 12 bands of a native-resolution store). Right
before the batch is handed to the loop, ``PackSpec.unpack`` rebuilds (B, n, C, H, W) uint16 on the device,
on the compute stream (copies only: nearest upsampling of 20 m / 60 m bands; a view, no copy, for a store on
the 10 m grid). Unpacking the uint16 DN, before ``to_reflectance``, moves half the bytes of unpacking float.

Slot safety (see ``seco.data.ring``): before the loader is asked for batch ``m`` (which lets it dispatch the
batch that reuses the slot of batch ``m - 3``), the copy of batch ``m - 3`` must have finished; its event is
synchronised (a wait on that one copy, long done in steady state, never on the compute stream). On the CPU
(no copy) the images of a 10 m store are the slot itself, untouched for the next ``EXTRA_SLOTS - 1``
batches; those of a native store are unpacked into one of two reused buffers (a fresh 80 MB tensor per
batch of 16 would cost 3x the unpack itself in page faults), so a batch stays intact while the next one is
handed out, and is overwritten by the one after.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from seco.data.pretrain import unpack_batch
from seco.data.ring import EXTRA_SLOTS, BatchRing
from seco.errors import DatasetError
from seco.store.packing import PackSpec

__all__ = ["DevicePrefetcher", "teardown"]


class DevicePrefetcher:
    """Iterates one epoch of a loader at a time, yielding batches whose ``images`` are on ``device``.

    Args:
        device: the training device.
        ring: the batch ring the loader's workers decode into (``None``: batches carry their own ``images``).
        spec: the packed layout of the ring's samples (``PretrainDataset.pack_spec``); needed with a ring.

    Yields:
        the batch dict with ``images`` (B, n, C, H, W) on ``device`` (and, for a ring batch, ``packed``
        (B, n, L) there too), ``dates``, ``index``, ``location`` (and ``corrupt`` when met).

    Raises (while iterating):
        StoreCorruptError: a batch holds a damaged location and the dataset's ``on_corrupt`` is ``fail``.
        DatasetError: a packed batch without a ``spec`` to unpack it.
    """

    def __init__(self, device: torch.device, ring: BatchRing | None = None, spec: PackSpec | None = None) -> None:
        self.device = device
        self.ring = ring
        self.spec = spec
        self.cuda = device.type == "cuda"
        self.stream = torch.cuda.Stream(device=device) if self.cuda else None
        self._events: deque[Any] = deque(maxlen=EXTRA_SLOTS)  # copy events of the last batches, oldest first
        self._outs: list[torch.Tensor] = []  # CPU: the two unpack buffers, (B, n, C, H, W) uint16 each
        self._turn = 0
        self._it: Iterator[dict[str, Any]] | None = None  # the loader iterator of the current pass

    def _wait_slot(self) -> None:
        """Before the loader is asked for batch m: the copy of batch m - 3 is done, its slot may be refilled."""
        if len(self._events) == EXTRA_SLOTS:
            self._events[0].synchronize()  # a host wait on that one copy, long done in steady state

    def _copy(self, host: torch.Tensor) -> torch.Tensor:
        """The host-to-device copy of one batch tensor, issued on the side stream (current when called)."""
        return host.to(self.device, non_blocking=True)

    def _fetch(self, it: Iterator[dict[str, Any]]) -> dict[str, Any] | None:
        self._wait_slot()
        try:
            batch = next(it)
        except StopIteration:
            return None
        batch = unpack_batch(batch, self.ring)
        key = "packed" if "packed" in batch else "images"  # (B, n, L) packed or (B, n, C, H, W)
        if key == "packed" and self.spec is None:
            raise DatasetError("a packed ring batch reached DevicePrefetcher without the PackSpec to unpack it")
        if self.stream is not None:
            with torch.cuda.stream(self.stream):
                batch[key] = self._copy(batch[key])
                event = torch.cuda.Event()
                event.record(self.stream)
            batch["_copied"] = event
            self._events.append(event)
        else:  # the CPU: the same tensor, no copy (another device: a plain copy)
            batch[key] = batch[key].to(self.device)
        return batch

    def _ready(self, batch: dict[str, Any]) -> dict[str, Any]:
        key = "packed" if "packed" in batch else "images"
        event = batch.pop("_copied", None)
        if event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)  # the device waits for the copy; the host does not
            batch[key].record_stream(current)  # freed memory is not reused before the step is done
        if key == "packed":
            assert self.spec is not None  # checked in _fetch
            batch["images"] = self.spec.unpack(batch["packed"], out=self._out(batch["packed"]))  # (B, n, C, H, W)
        return batch

    def _out(self, packed: torch.Tensor) -> torch.Tensor | None:
        """Where to unpack ``packed`` (B, n, L): ``None`` (a new tensor; on CUDA from the caching allocator, on
        the compute stream; for a 10 m store a view of ``packed``) except on the CPU for a native store, where
        the two buffers take turns."""
        assert self.spec is not None
        if packed.device.type != "cpu" or self.spec.is_identity:
            return None
        b, n = packed.shape[0], packed.shape[1]
        P = self.spec.patch_size
        shape = (n, len(self.spec.bands), P, P)
        if not self._outs or self._outs[0].shape[0] < b or self._outs[0].shape[1:] != shape:
            self._outs = [torch.empty((b, *shape), dtype=packed.dtype) for _ in range(2)]
        self._turn ^= 1
        return self._outs[self._turn][:b]

    def epoch(self, loader: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """One pass over ``loader`` (``iter(loader)`` is taken here, after the previous pass ended)."""
        self._it = it = iter(loader)
        nxt = self._fetch(it)
        while nxt is not None:
            cur = nxt
            nxt = self._fetch(it)  # issue the next copy while the device still runs earlier steps
            yield self._ready(cur)

    def close(self) -> None:
        """End the loader's worker processes now (idempotent).

        Needed after an error: an exception raised inside ``epoch`` (a worker's ``StoreCorruptError``, a CUDA
        error in a copy) keeps the generator's frame, and with it the loader's iterator and its persistent
        workers, alive through the traceback for as long as the exception is; ``del loader`` alone ends
        nothing then.
        """
        it, self._it = self._it, None
        self._events.clear()
        shutdown = getattr(it, "_shutdown_workers", None)  # torch's multi-process loader iterator
        if shutdown is not None:
            shutdown()


def teardown(prefetcher: DevicePrefetcher | None, ring: BatchRing | None) -> None:
    """End a run's data path, safely inside ``finally``: workers first, then the ring's pinning.

    After an error (one is being handled when this is called), a second error while unpinning, e.g. the
    ``synchronize`` of a GPU that already failed, is reported on stderr and dropped, so the original error is
    the one that propagates. Without an error, it propagates.
    """
    failing = sys.exc_info()[1] is not None
    if prefetcher is not None:
        prefetcher.close()
    if ring is None:
        return
    try:
        ring.unpin()
    except Exception as e:
        if not failing:
            raise
        print(f"warning: could not unpin the batch ring after the error below: {type(e).__name__}: {e}",
              file=sys.stderr)

"""Batches from the DataLoader to the training device, the host-to-device copy overlapped with the steps.

On CUDA the copy of batch ``k + 1`` is issued on a side stream (from the pinned ring slot: an asynchronous
DMA) as soon as the loop asks for batch ``k``; the compute stream only waits on that copy's event right
before batch ``k + 1`` is used, so the host never blocks on the device here. On the CPU the batch is handed
over as it is (the ring slot itself: no copy).

Slot safety (see ``seco.data.ring``): before the loader is asked for batch ``m`` (which lets it dispatch the
batch that reuses the slot of batch ``m - 3``), the copy of batch ``m - 3`` must have finished; its event is
synchronised (a wait on that one copy, long done in steady state, never on the compute stream).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from seco.data.pretrain import unpack_batch
from seco.data.ring import EXTRA_SLOTS, BatchRing

__all__ = ["DevicePrefetcher"]


class DevicePrefetcher:
    """Iterates one epoch of a loader at a time, yielding batches whose ``images`` are on ``device``.

    Args:
        device: the training device.
        ring: the batch ring the loader's workers decode into (``None``: batches carry their own ``images``).

    Raises (while iterating):
        StoreCorruptError: a batch holds a damaged location and the dataset's ``on_corrupt`` is ``fail``.
    """

    def __init__(self, device: torch.device, ring: BatchRing | None = None) -> None:
        self.device = device
        self.ring = ring
        self.cuda = device.type == "cuda"
        self.stream = torch.cuda.Stream(device=device) if self.cuda else None
        self._events: deque[Any] = deque(maxlen=EXTRA_SLOTS)  # copy events of the last batches, oldest first

    def _fetch(self, it: Iterator[dict[str, Any]]) -> dict[str, Any] | None:
        if len(self._events) == EXTRA_SLOTS:
            self._events[0].synchronize()  # the copy of batch m - 3: its slot may be refilled from now on
        try:
            batch = next(it)
        except StopIteration:
            return None
        batch = unpack_batch(batch, self.ring)
        if self.stream is not None:
            with torch.cuda.stream(self.stream):
                batch["images"] = batch["images"].to(self.device, non_blocking=True)  # (B, n, C, H, W)
                event = torch.cuda.Event()
                event.record(self.stream)
            batch["_copied"] = event
            self._events.append(event)
        else:  # the CPU: the same tensor, no copy (another device: a plain copy)
            batch["images"] = batch["images"].to(self.device)
        return batch

    def _ready(self, batch: dict[str, Any]) -> dict[str, Any]:
        event = batch.pop("_copied", None)
        if event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)  # the device waits for the copy; the host does not
            batch["images"].record_stream(current)  # freed memory is not reused before the step is done
        return batch

    def epoch(self, loader: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """One pass over ``loader`` (``iter(loader)`` is taken here, after the previous pass ended)."""
        it = iter(loader)
        nxt = self._fetch(it)
        while nxt is not None:
            cur = nxt
            nxt = self._fetch(it)  # issue the next copy while the device still runs earlier steps
            yield self._ready(cur)

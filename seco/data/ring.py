"""A ring of reusable batch buffers in shared memory that DataLoader workers decode into.

Without it, every worker allocates a fresh shared-memory tensor per batch (256 x 3 x 12 x 264 x 264 uint16 is
1.28 GB: page faults and zeroing every time), the main process maps it again, and on CUDA the pin-memory
thread copies it once more into pinned memory. With the ring:

- the main process allocates ``slots`` batch buffers once, in shared memory, before the workers start (they
  inherit them, or receive them through torch's shared-memory pickling);
- ``RingBatches`` wraps the batch sampler and tags each batch's keys with the slot it goes to (``SlotKeys``);
- a worker's ``PretrainDataset.__getitems__`` decodes into that slot and sends back only the slot number
  and the small per-sample tensors;
- the main process takes ``ring.view(slot, B)``: its own mapping of the same memory, pinned once
  (``cudaHostRegister``) when training on CUDA, so the host-to-device copy is a true asynchronous DMA.

A slot holds one batch *packed* (``seco.store.packing``): (B, n, L) uint16, ``L = store.pack_spec(bands)
.length``, each band at the grid the store keeps it on. For a store on the 10 m grid ``L = C x H x W`` (the
image flattened); for a native-resolution store of 12 bands ``L`` is 2.16x smaller, and so are the ring,
``/dev/shm`` and every host-to-device copy (256 x 3 x 12 bands x 264 px: 1.28 GB a slot on the 10 m grid,
0.59 GB native; the 33 slots of 15 workers: 39.5 GiB against 18.3 GiB).

Slot reuse is safe by counting: the DataLoader keeps at most ``num_workers * prefetch_factor`` batches
outstanding and dispatches batch ``m + num_workers * prefetch_factor`` when batch ``m`` is handed over, so
with ``slots = num_workers * prefetch_factor + 3`` the slot of batch ``m - 3`` is the one overwritten next;
the consumer (``seco.train.prefetch.DevicePrefetcher``) makes sure it is done with batch ``m - 3`` (its
host-to-device copy finished) before it asks for batch ``m``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Sampler

from seco.errors import ConfigError

__all__ = ["BatchRing", "RingBatches", "SlotKeys", "ring_slots"]

#: Slots beyond the DataLoader's outstanding batches: the batch in use, the one being copied, one spare.
EXTRA_SLOTS = 3


def ring_slots(num_workers: int, prefetch_factor: int = 2) -> int:
    """Slots needed so that no buffer is rewritten while the loop still uses it (see the module docstring)."""
    return max(0, num_workers) * prefetch_factor + EXTRA_SLOTS


def _shm_free_bytes() -> int | None:
    """Free bytes of ``/dev/shm`` (where torch's shared memory lives on Linux), ``None`` when unknown."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _mem_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class BatchRing:
    """``slots`` batch buffers of ``shape`` (B, n, L), one shared-memory allocation made once.

    Args:
        slots: number of buffers (``ring_slots(num_workers, prefetch_factor)``).
        shape: one batch: (B, n, L) packed samples (``seco pretrain``), or any other shape, e.g. (B, n, C, H, W).
        dtype: element type (uint16 DN for pre-training).

    Raises:
        ConfigError: before allocating, when the buffers do not fit in the free shared memory (``/dev/shm``)
            or the available RAM, naming the sizes and the fix.
    """

    def __init__(self, slots: int, shape: tuple[int, ...], dtype: torch.dtype = torch.uint16) -> None:
        if slots < 1 or len(shape) < 1 or min(shape) < 1:
            raise ConfigError(f"a batch ring needs slots >= 1 and a non-empty batch shape, got {slots}, {shape}")
        self.slots = int(slots)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        itemsize = torch.empty(0, dtype=dtype).element_size()
        self.nbytes = self.slots * math.prod(self.shape) * itemsize
        _check_fits(self.nbytes, self.slots, self.shape)
        proto = torch.empty(0, dtype=dtype)
        storage = proto._typed_storage()._new_shared(self.slots * math.prod(self.shape), device=proto.device)
        self.buffers = proto.new(storage).resize_((self.slots, *self.shape))  # (R, B, n, L), shared
        # touch every page once now: shared memory is really reserved (a full /dev/shm fails here, not as a
        # SIGBUS in a worker hours later) and no batch pays the first-touch page faults
        self.buffers.zero_()
        self._count = 0  # batches claimed so far (main process)
        self._pinned_ptr: int | None = None

    def claim(self) -> int:
        """The slot of the next batch (called by ``RingBatches`` in the main process, in dispatch order)."""
        slot = self._count % self.slots
        self._count += 1
        return slot

    def view(self, slot: int, batch: int | None = None) -> torch.Tensor:
        """Slot ``slot`` as a (batch, n, L) tensor (no copy; the first ``batch`` samples of a short batch)."""
        b = self.shape[0] if batch is None else int(batch)
        return self.buffers[int(slot), :b]

    @property
    def pinned(self) -> bool:
        return self._pinned_ptr is not None

    def pin(self) -> None:
        """Page-lock the whole ring once with ``cudaHostRegister`` (CUDA only), so copies from it are async DMA.

        Raises:
            ConfigError: when CUDA is absent or refuses to pin this much memory.
        """
        if self.pinned:
            return
        if not torch.cuda.is_available():
            raise ConfigError("pinned batch buffers need CUDA, and no GPU is visible; train with --device cpu")
        ptr = self.buffers.data_ptr()
        err = torch.cuda.cudart().cudaHostRegister(ptr, self.nbytes, 0)
        code = int(getattr(err, "value", err))
        if code != 0:
            raise ConfigError(
                f"cannot pin the {self.nbytes / 2**30:.2f} GiB of batch buffers ({self.slots} slots x batch "
                f"{self.shape}) for fast host-to-device copies (cudaHostRegister error {code}); lower "
                "--num-workers or --batch-size, or raise the locked-memory limit (ulimit -l)"
            )
        self._pinned_ptr = ptr

    def unpin(self) -> None:
        """Undo ``pin`` (at the end of a run), after every copy from it has finished."""
        if self._pinned_ptr is not None and torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.cudart().cudaHostUnregister(self._pinned_ptr)
        self._pinned_ptr = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pinned_ptr"] = None  # a worker (spawn) maps the memory elsewhere and never pins it
        return state


def _check_fits(nbytes: int, slots: int, shape: tuple[int, ...]) -> None:
    gib = nbytes / 2**30
    what = f"the batch ring needs {gib:.2f} GiB of shared memory ({slots} slots x one batch of {shape})"
    fix = (
        "lower --batch-size or --num-workers (slots = 2 x workers + 3), or train on a native-resolution store "
        "(20 m / 60 m bands at their own grid: a 2.16x smaller ring for 12 bands; docs/STORE.md)"
    )
    shm = _shm_free_bytes()
    if shm is not None and nbytes > shm:
        raise ConfigError(
            f"{what} but /dev/shm has {shm / 2**30:.2f} GiB free; {fix}, or give the machine more shared memory "
            "(e.g. docker run --shm-size)"
        )
    avail = _mem_available_bytes()
    if avail is not None and nbytes > 0.8 * avail:
        raise ConfigError(f"{what} but only {avail / 2**30:.2f} GiB of RAM is available; {fix}")


class SlotKeys(list):  # type: ignore[type-arg]
    """One batch's sample keys (a list, as the batch sampler yields) and the ring slot to decode them into."""

    def __init__(self, keys: list[Any], slot: int) -> None:
        super().__init__(keys)
        self.slot = int(slot)


class RingBatches(Sampler[list[Any]]):
    """Wraps a batch sampler: every batch's keys come out as ``SlotKeys`` with the next ring slot.

    The DataLoader draws from this iterator exactly when it dispatches a batch, so slots follow dispatch order.
    ``len`` and the position (``advance``, ``state_dict``) stay those of the wrapped sampler.
    """

    def __init__(self, batch_sampler: Any, ring: BatchRing) -> None:
        self.batch_sampler = batch_sampler
        self.ring = ring

    def __iter__(self) -> Iterator[list[Any]]:
        for keys in self.batch_sampler:
            if len(keys) > self.ring.shape[0]:
                raise ConfigError(f"a batch of {len(keys)} samples does not fit the ring's batch of {self.ring.shape[0]}")
            yield SlotKeys(list(keys), self.ring.claim())

    def __len__(self) -> int:
        return len(self.batch_sampler)

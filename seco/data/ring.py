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
0.59 GB native; the 18 slots of 15 workers on CUDA: 21.5 GiB against 10.0 GiB).

Slot reuse is safe by counting: the DataLoader keeps at most ``num_workers * prefetch_factor`` batches
outstanding and dispatches batch ``m + num_workers * prefetch_factor`` when batch ``m`` is handed over, so
with ``slots = num_workers * prefetch_factor + 3`` the slot of batch ``m - 3`` is the one overwritten next;
the consumer (``seco.train.prefetch.DevicePrefetcher``) makes sure it is done with batch ``m - 3`` (its
host-to-device copy finished) before it asks for batch ``m``.

How many slots (``plan_ring``). The GPU consumes one batch a step and the prefetcher holds three; the rest
only keeps the decoders busy. ``W`` workers decoding one batch each already keep ``W`` batches in flight, so
on CUDA with 4 or more workers the plan uses a prefetch factor of 1 (``W + 3`` slots: 18 instead of 33 for 15
workers, 21.5 instead of 39.5 GiB for batch 256 x 3 dates x 12 bands x 264 px on the 10 m grid). When the
rates are known (``gpu_samples_per_s``: what a step consumes; ``decode_samples_per_s``: what one worker
decodes), workers beyond what the GPU can consume are not started. Last, the ring takes at most half of the
free ``/dev/shm`` and of the available RAM (fewer workers past that), so a big box does not spend tens of
seconds zeroing and pinning buffers no step needs. ``BatchRing.startup`` reports what it cost.
"""

from __future__ import annotations

import ctypes
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Sampler

from seco.errors import ConfigError

__all__ = ["BatchRing", "RingBatches", "RingPlan", "SlotKeys", "plan_ring", "ring_slots"]

#: Slots beyond the DataLoader's outstanding batches: the batch in use, the one being copied, one spare.
EXTRA_SLOTS = 3
#: torch's default prefetch factor; what the ring plans for on the CPU and with few workers.
PREFETCH_FACTOR = 2
#: From this many workers on, CUDA runs use a prefetch factor of 1 (see the module docstring).
ONE_AHEAD_FROM = 4
#: The ring takes at most this fraction of the free /dev/shm and of the available RAM.
RING_MEMORY_FRACTION = 0.5
#: ``cudaHostRegisterPortable``: pinned for every CUDA context, as PyTorch's own pinned memory.
HOST_REGISTER_PORTABLE = 1


def ring_slots(num_workers: int, prefetch_factor: int = PREFETCH_FACTOR) -> int:
    """Slots needed so that no buffer is rewritten while the loop still uses it (see the module docstring)."""
    return max(0, num_workers) * prefetch_factor + EXTRA_SLOTS


@dataclass(frozen=True)
class RingPlan:
    """How many workers decode, how far ahead, and the ring that needs (``slots`` of ``slot_bytes``)."""

    workers: int
    prefetch_factor: int
    slot_bytes: int
    why: str

    @property
    def slots(self) -> int:
        return ring_slots(self.workers, self.prefetch_factor)

    @property
    def nbytes(self) -> int:
        return self.slots * self.slot_bytes


def plan_ring(
    num_workers: int,
    slot_bytes: int,
    *,
    cuda: bool,
    gpu_samples_per_s: float | None = None,
    decode_samples_per_s: float | None = None,
    budget_bytes: int | None = None,
) -> RingPlan:
    """Workers, prefetch factor and slots for a run (rules in the module docstring).

    Args:
        num_workers: the workers the run may start (``--num-workers``, settled).
        slot_bytes: bytes of one batch buffer.
        cuda: training on CUDA (the CPU keeps ``num_workers`` and torch's prefetch factor of 2).
        gpu_samples_per_s, decode_samples_per_s: what one step consumes and what one worker decodes, when
            known (e.g. measured): workers beyond ``ceil(gpu / decode) + 1`` are left out.
        budget_bytes: the most the ring may take; default ``RING_MEMORY_FRACTION`` of the free ``/dev/shm``
            and of the available RAM, divided among the processes of this node (``LOCAL_WORLD_SIZE``); no
            cap when neither is known.
    """
    workers, notes = max(0, int(num_workers)), []
    if not cuda or workers == 0:
        return RingPlan(workers, PREFETCH_FACTOR, slot_bytes, "the CPU: torch's prefetch factor")
    if gpu_samples_per_s and decode_samples_per_s:
        need = math.ceil(gpu_samples_per_s / decode_samples_per_s) + 1
        if need < workers:
            notes.append(f"{need} workers decode what the GPU consumes ({gpu_samples_per_s:.0f} samples/s at "
                         f"{decode_samples_per_s:.0f} a worker)")
            workers = need
    pf = 1 if workers >= ONE_AHEAD_FROM else PREFETCH_FACTOR
    if pf == 1:
        notes.append(f"{workers} batches decoding at once: one ahead per worker")
    budget = _default_budget() if budget_bytes is None else int(budget_bytes)
    if budget is not None and ring_slots(workers, pf) * slot_bytes > budget:
        fit = max(1, budget // max(slot_bytes, 1) - EXTRA_SLOTS) // pf
        if fit < workers:
            notes.append(f"{fit} workers: a ring of more would take over {budget / 2**30:.1f} GiB "
                         f"({RING_MEMORY_FRACTION:.0%} of the free shared memory / RAM)")
            workers = max(1, fit)
    return RingPlan(workers, pf, slot_bytes, "; ".join(notes) or "as asked")


def _default_budget() -> int | None:
    """``RING_MEMORY_FRACTION`` of the free /dev/shm and RAM, shared among torchrun's processes on this node
    (each builds its own ring, possibly at the same moment)."""
    known = [v for v in (_shm_free_bytes(), _mem_available_bytes()) if v is not None]
    local_world = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return int(RING_MEMORY_FRACTION * min(known)) // local_world if known else None


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
        t0 = time.perf_counter()
        self.buffers = proto.new(storage).resize_((self.slots, *self.shape))  # (R, B, n, L), shared
        # touch every page once now: shared memory is really reserved (a full /dev/shm fails here, not as a
        # SIGBUS in a worker hours later) and no batch pays the first-touch page faults
        self.buffers.zero_()
        self.alloc_s = time.perf_counter() - t0  # start-up cost: allocating and zeroing
        self.pin_s = 0.0  # start-up cost: page-locking (``pin``)
        self._count = 0  # batches claimed so far (main process)
        self._pinned_ptr: int | None = None
        self._pinned_device: int | None = None
        self.plan: RingPlan | None = None  # set by ``from_plan``: the workers and prefetch factor it is for

    @classmethod
    def from_plan(cls, plan: RingPlan, shape: tuple[int, ...], dtype: torch.dtype = torch.uint16) -> BatchRing:
        """The ring of ``plan`` (``plan.slots`` buffers of ``shape``); the loader must use ``plan.workers`` and
        ``plan.prefetch_factor``."""
        ring = cls(plan.slots, shape, dtype)
        ring.plan = plan
        return ring

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

    def pin(self, device: torch.device | int | None = None) -> None:
        """Page-lock the whole ring once (CUDA only), so copies from it are asynchronous DMA.

        ``cudaHostRegister`` with ``cudaHostRegisterPortable`` (pinned for every CUDA context, as PyTorch's own
        pinned memory), called with ``device`` (default: the current one) current. A refusal clears CUDA's
        last error before raising, so the next kernel does not fail with an unrelated-looking error.

        Raises:
            ConfigError: when CUDA is absent or refuses to pin this much memory.
        """
        if self.pinned:
            return
        if not torch.cuda.is_available():
            raise ConfigError("pinned batch buffers need CUDA, and no GPU is visible; train with --device cpu")
        index = _device_index(device)
        t0 = time.perf_counter()
        ptr = self.buffers.data_ptr()
        code = host_register(ptr, self.nbytes, index)
        if code != 0:
            raise ConfigError(
                f"cannot pin the {self.nbytes / 2**30:.2f} GiB of batch buffers ({self.slots} slots x batch "
                f"{self.shape}) for fast host-to-device copies (cudaHostRegister error {code}); lower "
                "--num-workers or --batch-size, or raise the locked-memory limit (ulimit -l)"
            )
        self.pin_s = time.perf_counter() - t0
        self._pinned_ptr, self._pinned_device = ptr, index

    def unpin(self) -> None:
        """Undo ``pin`` (at the end of a run), after every copy from it has finished.

        Synchronises the GPU the ring was pinned for (a copy on GPU N may still read it), not GPU 0. A CUDA
        error raised by that synchronisation (a failed kernel earlier) propagates, the ring staying pinned.
        """
        if self._pinned_ptr is not None and torch.cuda.is_available():
            torch.cuda.synchronize(self._pinned_device)
            code = _cudart_code(torch.cuda.cudart().cudaHostUnregister(self._pinned_ptr))
            if code != 0:
                clear_cuda_error(self._pinned_device)
        self._pinned_ptr = self._pinned_device = None

    def startup(self) -> str:
        """One log line: the ring's size and what it cost before the first step."""
        pinned = f", pinned in {self.pin_s:.1f} s" if self.pinned else ""
        plan = ""
        if self.plan is not None:
            p = self.plan
            plan = f" ({p.workers} workers x prefetch {p.prefetch_factor} + {EXTRA_SLOTS}: {p.why})"
        return (
            f"batch ring: {self.slots} slots x {_size(self.nbytes // self.slots)} = {_size(self.nbytes)} of shared "
            f"memory{plan}, allocated and zeroed in {self.alloc_s:.1f} s{pinned}"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pinned_ptr"] = None  # a worker (spawn) maps the memory elsewhere and never pins it
        return state


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"


def _device_index(device: torch.device | int | None) -> int:
    if device is None:
        return torch.cuda.current_device()
    if isinstance(device, int):
        return device
    if device.type != "cuda":
        raise ConfigError(f"pinning is for CUDA devices, got {device}; train with --device cuda or leave it unpinned")
    return device.index if device.index is not None else torch.cuda.current_device()


def _cudart_code(err: Any) -> int:
    return int(getattr(err, "value", err))


def host_register(ptr: int, nbytes: int, device: int) -> int:
    """``cudaHostRegister(ptr, nbytes, cudaHostRegisterPortable)`` with ``device`` current; the error code.

    On an error, CUDA's last error is cleared (``clear_cuda_error``) before returning.
    """
    with torch.cuda.device(device):
        code = _cudart_code(torch.cuda.cudart().cudaHostRegister(ptr, nbytes, HOST_REGISTER_PORTABLE))
    if code != 0:
        clear_cuda_error(device)
    return code


def clear_cuda_error(device: int | None = None) -> None:
    """Reset CUDA's last error after a refused runtime call (e.g. ``cudaHostRegister``).

    A failed runtime call leaves its error as the thread's last error, and PyTorch's check after the next
    kernel launch (``cudaGetLastError``) would raise it there, as if that kernel had failed. torch's cudart
    bindings have no ``cudaGetLastError``, so it is called from the libcudart this process already loaded;
    when that library cannot be found, a one-element kernel consumes the error instead (its launch check
    reads and resets it; the error it raises is the stale one and is dropped).
    """
    fn = _cuda_get_last_error()
    if fn is not None:
        fn()
        return
    if not torch.cuda.is_available():
        return
    try:
        with torch.cuda.device(device if device is not None else torch.cuda.current_device()):
            torch.ones(1, device="cuda").add_(1)
    except RuntimeError:
        pass


def _cuda_get_last_error() -> Any:
    """``cudaGetLastError`` of the libcudart loaded in this process (``None`` when not found)."""
    paths: set[str] = set()
    try:
        with open("/proc/self/maps") as f:  # lines end with the mapped file's path
            for line in f:
                path = line.split()[-1]
                if path.startswith("/") and os.path.basename(path).startswith("libcudart.so"):
                    paths.add(path)
    except OSError:
        pass
    for path in sorted(paths):
        try:
            fn = ctypes.CDLL(path).cudaGetLastError
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_int
        return fn
    return None


def _check_fits(nbytes: int, slots: int, shape: tuple[int, ...]) -> None:
    gib = nbytes / 2**30
    what = f"the batch ring needs {gib:.2f} GiB of shared memory ({slots} slots x one batch of {shape})"
    fix = (
        "lower --batch-size or --num-workers (slots = workers x prefetch + 3), or train on a native-resolution store "
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

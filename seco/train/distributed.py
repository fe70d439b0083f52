"""Process-group set-up for ``torchrun`` (DDP): gloo on CPU, nccl on CUDA."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from seco.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> the local CUDA device when there is one, else CPU; ``cpu``/``cuda``/``cuda:N`` as given."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name!r} asks for CUDA but no GPU is visible; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{local_rank}")
    return dev


def cpus_per_process() -> int:
    """CPUs this process may use: its affinity set (``os.sched_getaffinity``, which honours taskset and
    container CPU sets, unlike ``os.cpu_count``) divided among torchrun's processes on this node."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    local_world = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, cpus // local_world)


def init_from_env(device_name: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1), else run single-process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    info = DistInfo(rank=rank, world_size=world, local_rank=local)
    device = resolve_device(device_name, local)
    if device.type == "cuda":
        # always, not only under DDP: with --device cuda:N the current device is what streams, events, the
        # caching allocator's defaults and the pinning of the batch ring use; it must be the run's GPU
        torch.cuda.set_device(device)
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 autocast: always on the CPU; on CUDA asked of that GPU (not GPU 0)."""
    if device.type != "cuda":
        return True
    with torch.cuda.device(device):
        return bool(torch.cuda.is_bf16_supported())


def wrap_ddp(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """``model`` itself on one process; under DDP, wrapped with ``broadcast_buffers=False``.

    DDP's default broadcasts every buffer from rank 0 before each forward pass. Nothing here needs it:

    - the negative queues (``queue.bank``, 3 heads x 16,384 x 128 fp32 = 25 MB a step) are already identical
      on every rank, because every rank enqueues the keys gathered from all ranks, starting from the same
      seeded initialisation (the queue pointers are host integers, not buffers);
    - BatchNorm running statistics are per rank by design: each rank normalises its own (for the key encoder,
      shuffled) batch, as with shuffle-BN in the paper's code; they are used only in eval mode, never by a
      training step. Rank 0's are the ones saved in the checkpoint, and they are the same as with the
      broadcast (the broadcast sends rank 0's to the others and leaves rank 0's own unchanged).

    ``tests/train/test_ddp_buffers.py`` checks both on 2 CPU ranks (gloo).
    """
    if not info.enabled:
        return model
    return torch.nn.parallel.DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        broadcast_buffers=False,
    )


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(value: float, info: DistInfo, device: torch.device) -> float:
    """Mean of a scalar over ranks (for logging)."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size

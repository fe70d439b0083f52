"""The memory bank of negatives: one FIFO queue of normalized keys per embedding subspace."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seco.errors import ConfigError


class NegativeQueue(nn.Module):
    """``num_heads`` queues of ``size`` L2-normalized keys of dimension ``dim``.

    Both the bank and the write pointers are registered buffers, so they live in ``state_dict()`` and a
    resumed run continues with the same negatives.

    Buffers:
        bank: (num_heads, dim, size) float, columns are keys (initially random unit vectors).
        ptr: (num_heads,) int64, the next column to overwrite in each queue.
    """

    bank: Tensor
    ptr: Tensor

    def __init__(self, num_heads: int, dim: int, size: int):
        super().__init__()
        for label, v in (("num_heads", num_heads), ("dim", dim), ("size", size)):
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"queue {label} must be a positive integer, got {v!r}")
        self.num_heads, self.dim, self.size = num_heads, dim, size
        self.register_buffer("bank", F.normalize(torch.randn(num_heads, dim, size), dim=1))
        self.register_buffer("ptr", torch.zeros(num_heads, dtype=torch.long))

    def check_batch_size(self, global_batch: int) -> None:
        """Raise ConfigError unless ``size`` is a multiple of the global (all-rank) batch size."""
        if global_batch < 1 or self.size % global_batch != 0:
            hint = max(global_batch, (self.size // max(global_batch, 1)) * global_batch)
            raise ConfigError(
                f"queue size {self.size} is not divisible by the global batch size {global_batch} "
                f"(per-GPU batch x world size); use a queue size that is a multiple of {global_batch}, "
                f"e.g. {hint}, or change the batch size"
            )

    def negatives(self, head: int) -> Tensor:
        """A detached copy of queue ``head``: (dim, size)."""
        return self.bank[head].clone().detach()

    @torch.no_grad()
    def enqueue(self, head: int, keys: Tensor) -> None:
        """Overwrite the oldest entries of queue ``head`` with ``keys`` (N, dim) and advance its pointer.

        ``keys`` must already be gathered from every rank (N = global batch) and normalized.
        """
        if keys.ndim != 2 or keys.shape[1] != self.dim:
            raise ConfigError(f"keys must be (N, {self.dim}), got {tuple(keys.shape)}")
        n = keys.shape[0]
        self.check_batch_size(n)
        p = int(self.ptr[head])
        self.bank[head, :, p : p + n] = keys.T.to(self.bank.dtype)  # (dim, N)
        self.ptr[head] = (p + n) % self.size

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, dim={self.dim}, size={self.size}"

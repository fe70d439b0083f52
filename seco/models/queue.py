"""The memory bank of negatives: one FIFO queue of normalized keys per embedding subspace."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seco.errors import ConfigError


class NegativeQueue(nn.Module):
    """``num_heads`` queues of ``size`` L2-normalized keys of dimension ``dim``.

    The bank is a registered buffer (it moves with the model to its device). The write pointers are host
    integers: a CPU int64 tensor that stays on the CPU whatever the model's device (``.to(device)`` does not
    move it, DDP does not broadcast it), so advancing a queue never waits on the device. Both are in
    ``state_dict()`` under ``bank`` and ``ptr``, as when ``ptr`` was a buffer, so old and new checkpoints load
    either way and a resumed run continues with the same negatives.

    Attributes:
        bank: (num_heads, dim, size) float buffer, columns are keys (initially random unit vectors).
        ptr: (num_heads,) int64 on the CPU, the next column to overwrite in each queue.
    """

    bank: Tensor

    def __init__(self, num_heads: int, dim: int, size: int):
        super().__init__()
        for label, v in (("num_heads", num_heads), ("dim", dim), ("size", size)):
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"queue {label} must be a positive integer, got {v!r}")
        self.num_heads, self.dim, self.size = num_heads, dim, size
        self.register_buffer("bank", F.normalize(torch.randn(num_heads, dim, size), dim=1))
        self.ptr = torch.zeros(num_heads, dtype=torch.long, device="cpu")  # (H,) host ints, not a buffer

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

        ``keys`` must already be gathered from every rank (N = global batch) and normalized. No host-device
        synchronisation: the pointer is read on the host, the write is queued on the bank's device.
        """
        if keys.ndim != 2 or keys.shape[1] != self.dim:
            raise ConfigError(f"keys must be (N, {self.dim}), got {tuple(keys.shape)}")
        n = keys.shape[0]
        self.check_batch_size(n)
        p = int(self.ptr[head])  # a CPU tensor: no device read
        self.bank[head, :, p : p + n] = keys.T.to(self.bank.dtype)  # (dim, N)
        self.ptr[head] = (p + n) % self.size

    # ``ptr`` is not a buffer (it must stay on the host) but keeps its ``state_dict`` entry: saved as a CPU
    # int64 (num_heads,) tensor after ``bank``, loaded from any device (old checkpoints saved it as a buffer).

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "ptr"] = self.ptr.clone()

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        key = prefix + "ptr"
        if key in state_dict:
            value = state_dict.pop(key)
            if not isinstance(value, Tensor) or tuple(value.shape) != (self.num_heads,):
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {shape} from checkpoint, "
                    f"the shape in current model is {(self.num_heads,)}."
                )
            elif value.device.type != "meta":  # a shape-only (meta) model keeps its zeros
                self.ptr.copy_(value.detach().to("cpu", torch.long))
        elif strict:
            missing_keys.append(key)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, dim={self.dim}, size={self.size}"

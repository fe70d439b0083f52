"""A stand-in GPU on the CPU that counts what would make the host wait for a real one.

``FakeCuda`` is a ``TorchFunctionMode``. Tensors marked as "on the device" (the model's parameters and
buffers, the batch) and everything computed from them report ``device`` ``cuda:0``, so code that branches
on ``x.device.type`` takes its GPU path; device arguments naming CUDA (``.to(x.device)``, ``device=`` of a
factory) are rewritten to the CPU, where everything really runs. Counted, as ``(kind, what, file:line)``:

- ``sync``: reading a device tensor on the host (``item``, ``bool``, ``int``, ``float``, ``tolist``,
  ``numpy``, ``cpu``, ``.to("cpu")`` without ``non_blocking``) and the ops whose output size depends on
  device data (``nonzero``, ``masked_select``, ``unique``, boolean-mask indexing): each waits for the GPU;
- ``blocking copy``: a host tensor copied to the device with ``non_blocking=False`` (``.to(cuda)``,
  ``copy_``, ``torch.tensor(..., device=cuda)``): PyTorch synchronises the stream after such a copy;
- ``mixed``: a host tensor with elements used in an op with device tensors (an error on a real GPU, or a
  hidden blocking copy for an index).

What it cannot see: syncs inside C++ (none in the ops seco uses) and copies that a real device would make
asynchronous only from pinned memory (the stand-in treats every ``non_blocking=True`` copy as free).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

FAKE = torch.device("cuda", 0)
_CPU = torch.device("cpu")
_MARK = "_fake_cuda"
_DEVICE_STR = re.compile(r"^cuda(:\d+)?$")
_INTERNAL = re.compile(r"sync_standin|/torch/|/contextlib\.py$")

_READS = {
    Tensor.item, Tensor.__bool__, Tensor.__int__, Tensor.__float__, Tensor.__index__, Tensor.tolist,
    Tensor.numpy, Tensor.cpu,
}
_DATA_DEPENDENT = {
    Tensor.nonzero, torch.nonzero, Tensor.masked_select, torch.masked_select, Tensor.unique, torch.unique,
    torch.argwhere, Tensor.argwhere,
}
_GETTERS = {Tensor.device.__get__: FAKE, Tensor.is_cuda.__get__: True, Tensor.is_cpu.__get__: False}


def _is_device_arg(v: Any) -> bool:
    return (isinstance(v, torch.device) and v.type == "cuda") or (isinstance(v, str) and bool(_DEVICE_STR.match(v)))


def marked(t: Any) -> bool:
    return isinstance(t, Tensor) and getattr(t, _MARK, False)


def mark(t: Tensor) -> Tensor:
    setattr(t, _MARK, True)
    return t


class FakeCuda(TorchFunctionMode):
    """Run code as on a GPU, on the CPU, and record every host-device synchronisation it would make."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str, str]] = []
        self._params: list[Tensor] = []

    def put(self, module: nn.Module) -> nn.Module:
        """Mark ``module``'s parameters and buffers as on the device (their gradients too, after backward)."""
        for p in module.parameters():
            mark(p)
            self._params.append(p)
        for b in module.buffers():
            mark(b)
        return module

    def count(self, kind: str | None = None) -> int:
        return sum(1 for e in self.events if kind is None or e[0] == kind)

    def _record(self, kind: str, what: str) -> None:
        frames = [f for f in traceback.extract_stack() if not _INTERNAL.search(f.filename)]
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        self.events.append((kind, what, where))

    def __torch_function__(self, func: Any, types: Iterable[type], args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is torch.device:  # naming a device is not using it
            return func(*args, **kwargs)
        if func in _GETTERS and marked(args[0]):
            return _GETTERS[func]
        leaves = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, Tensor)]
        on_dev = any(marked(t) for t in leaves)
        name = getattr(func, "__name__", str(func))
        to_device = _is_device_arg(kwargs.get("device")) or (
            name in ("to", "cuda") and (name == "cuda" or any(_is_device_arg(a) for a in args[1:]))
        )
        non_blocking = bool(kwargs.get("non_blocking", False))
        if on_dev and func in _READS:
            self._record("sync", name)
        elif on_dev and func in _DATA_DEPENDENT:
            self._record("sync", name)
        elif on_dev and name == "__getitem__" and _bool_index(args[1]):
            self._record("sync", "boolean-mask indexing")
        elif name == "to" and marked(args[0]) and _names_cpu(args[1:], kwargs) and not non_blocking:
            self._record("sync", "to(cpu)")
        if to_device and not non_blocking and (
            name in ("tensor", "as_tensor") or (name in ("to", "cuda") and not marked(args[0]))
        ):
            self._record("blocking copy", name)
        elif name == "copy_" and marked(args[0]) and not marked(args[1]) and not non_blocking:
            self._record("blocking copy", "copy_")
        elif on_dev and name not in ("to", "cuda", "copy_", "__setitem__") and _host_operand(leaves):
            self._record("mixed", name)
        elif on_dev and name == "__setitem__" and _host_operand(leaves[1:]):
            self._record("mixed", name)
        args, kwargs = tree_map(_to_cpu, args), tree_map(_to_cpu, kwargs)
        if name == "cuda":
            out = args[0]
        else:
            out = func(*args, **kwargs)
        if to_device and name in ("to", "cuda") and out is args[0] and not marked(out):
            out = out.clone()  # the device copy is its own tensor: the host one stays a host tensor
        if on_dev or to_device:
            for t in tree_flatten(out)[0]:
                if isinstance(t, Tensor):
                    mark(t)
        if name == "backward":
            for p in self._params:
                if p.grad is not None:
                    mark(p.grad)
        return out


def _to_cpu(v: Any) -> Any:
    return _CPU if _is_device_arg(v) else v


def _names_cpu(args: tuple, kwargs: dict) -> bool:
    vals = [*args, kwargs.get("device")]
    return any((isinstance(v, torch.device) and v.type == "cpu") or (isinstance(v, str) and v == "cpu") for v in vals)


def _bool_index(idx: Any) -> bool:
    items = idx if isinstance(idx, tuple) else (idx,)
    return any(isinstance(i, Tensor) and i.dtype == torch.bool and marked(i) for i in items)


def _host_operand(leaves: list[Tensor]) -> bool:
    """A host tensor with elements (0-d host tensors are allowed next to device tensors, as on CUDA)."""
    return any(not marked(t) and t.ndim > 0 for t in leaves)

"""The exponential moving average that keeps the key side a slow copy of the query side."""

from __future__ import annotations

import copy
from typing import TypeVar

import torch
from torch import Tensor, nn

from seco.errors import ConfigError

M = TypeVar("M", bound=nn.Module)


def frozen_copy(module: M) -> M:
    """A deep copy of ``module`` (parameters and buffers) whose parameters never receive gradients."""
    key = copy.deepcopy(module)
    for p in key.parameters():
        p.requires_grad_(False)
    return key


@torch.no_grad()
def momentum_update(key: nn.Module, query: nn.Module, momentum: float) -> None:
    """EMA of parameters: ``key <- m * key + (1 - m) * query``.

    Buffers (BatchNorm running statistics) are not averaged: the key side keeps its own, updated by its own
    forward passes, as in MoCo and the official SeCo code.

    Args:
        key: the momentum module, updated in place.
        query: the module trained by gradient descent; same parameter names and shapes as ``key``.
        momentum: m in [0, 1]; 1 freezes the key side, 0 copies the query side.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ConfigError(f"momentum must be in [0, 1], got {momentum!r}; the paper uses 0.999")
    kp = dict(key.named_parameters())
    qp = dict(query.named_parameters())
    if kp.keys() != qp.keys():
        diff = sorted(set(kp) ^ set(qp))[:5]
        raise ConfigError(f"key and query modules differ in parameters (e.g. {diff}); build one as a copy")
    if not kp:
        return
    ks: list[Tensor] = list(kp.values())
    qs: list[Tensor] = [qp[n].detach() for n in kp]
    torch._foreach_mul_(ks, momentum)
    torch._foreach_add_(ks, list(torch._foreach_mul(qs, 1.0 - momentum)))

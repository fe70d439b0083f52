"""InfoNCE on a positive key and a bank of negatives (MoCo formulation)."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F
from torch import Tensor

from seco.errors import ConfigError


def contrastive_logits(q: Tensor, k_pos: Tensor, negatives: Tensor, temperature: float = 0.07) -> Tensor:
    """Logits of each query against its positive key (column 0) and the shared negatives, in float32.

    The similarities are computed in float32 with autocast off, whatever the inputs' dtype and the caller's
    autocast: in bf16 (8 bits of mantissa) a cosine near 1 divided by T = 0.07 lands on a grid of ~0.056 in
    logit units, which the float32 cross-entropy would then see.

    Args:
        q: (N, E) normalized queries.
        k_pos: (N, E) normalized positive keys, row i pairs with query i.
        negatives: (E, K) normalized negatives (queue columns, optionally with extra keys appended).
        temperature: softmax temperature tau.

    Returns:
        (N, 1 + K) float32 cosine similarities divided by tau.
    """
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0, got {temperature!r}; the paper uses 0.07")
    with _autocast_off(q.device.type):
        q, k_pos, negatives = q.float(), k_pos.float(), negatives.float()
        l_pos = torch.einsum("nc,nc->n", q, k_pos).unsqueeze(-1)  # (N, 1)
        l_neg = torch.einsum("nc,ck->nk", q, negatives)  # (N, K)
        return torch.cat([l_pos, l_neg], dim=1) / temperature  # (N, 1 + K)


def _autocast_off(device_type: str) -> AbstractContextManager[object]:
    """Autocast disabled for ``device_type`` (nothing to disable where autocast does not exist, e.g. meta)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


def info_nce(logits: Tensor) -> Tensor:
    """Cross-entropy with the positive in column 0, averaged over the batch; computed in float32.

    Args:
        logits: (N, 1 + K), already divided by the temperature.
    """
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)  # (N,)
    return F.cross_entropy(logits.float(), target)


@torch.no_grad()
def top1_accuracy(logits: Tensor) -> Tensor:
    """Fraction (0..1) of rows whose largest logit is the positive (column 0)."""
    return (logits.argmax(dim=1) == 0).float().mean()

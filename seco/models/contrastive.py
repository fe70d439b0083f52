"""The contrastive model: Seasonal Contrast (SeCo) and, with one subspace, MoCo-v2.

One query encoder and ``num_heads`` projection heads map the query view into ``num_heads`` embedding
subspaces. A key side (encoder + heads) is an EMA of the query side. Subspace i takes key view i as its
positive and a queue of past keys as negatives; the subspaces listed in ``extra_negatives_heads`` also take
the batch's other key views (projected by head i) as negatives, which makes subspace i sensitive to the
augmentation those views differ in. SeCo (Mañas et al., 2021): 3 heads, key views
``k0 = aug(t1), k1 = t2, k2 = aug(t0)`` and extra negatives in heads 1 and 2. MoCo-v2: 1 head, no extras.

Distributed training (``torch.distributed`` initialised, world size > 1): key views are shuffled across
ranks before the key encoder and unshuffled after (shuffle-BN), and keys are gathered from every rank before
they enter the queues. Every rank must pass the same per-rank batch size (use ``drop_last=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from seco.backbones import build_backbone, get_backbone
from seco.errors import ConfigError
from seco.models.heads import ProjectionHead
from seco.models.losses import contrastive_logits, info_nce, top1_accuracy
from seco.models.momentum import frozen_copy, momentum_update
from seco.models.queue import NegativeQueue
from seco.models.resnet import ResNet


@dataclass(frozen=True)
class ContrastiveConfig:
    """The constructor arguments of :class:`ContrastiveModel` (saved with every checkpoint)."""

    backbone: str = "resnet18"
    in_chans: int = 12
    num_heads: int = 3
    emb_dim: int = 128
    queue_size: int = 16384
    temperature: float = 0.07
    momentum: float = 0.999
    extra_negatives_heads: tuple[int, ...] = (1, 2)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_negatives_heads", tuple(self.extra_negatives_heads))
        get_backbone(self.backbone)  # ConfigError naming the registered ones
        for label in ("in_chans", "num_heads", "emb_dim", "queue_size"):
            v = getattr(self, label)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{label} must be a positive integer, got {v!r}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature!r}; the paper uses 0.07")
        if not 0.0 <= self.momentum <= 1.0:
            raise ConfigError(f"momentum must be in [0, 1], got {self.momentum!r}; the paper uses 0.999")
        bad = [h for h in self.extra_negatives_heads if not isinstance(h, int) or not 0 <= h < self.num_heads]
        if bad or len(set(self.extra_negatives_heads)) != len(self.extra_negatives_heads):
            raise ConfigError(
                f"extra_negatives_heads={self.extra_negatives_heads!r} must list distinct heads in "
                f"0..{self.num_heads - 1}; SeCo uses (1, 2) with 3 heads, MoCo-v2 uses () with 1 head"
            )
        if self.extra_negatives_heads and self.num_heads < 2:
            raise ConfigError(
                f"extra_negatives_heads={self.extra_negatives_heads!r} needs other key views, but num_heads=1; "
                "pass extra_negatives_heads=() for MoCo-v2"
            )

    def to_dict(self) -> dict:
        """Plain JSON/YAML-friendly dict (tuples become lists)."""
        d = asdict(self)
        d["extra_negatives_heads"] = list(self.extra_negatives_heads)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ContrastiveConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ConfigError."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown model option(s) {unknown}; valid options are {sorted(known)}")
        d = dict(d)
        if "extra_negatives_heads" in d:
            d["extra_negatives_heads"] = tuple(d["extra_negatives_heads"])
        return cls(**d)


@dataclass(frozen=True)
class ContrastiveOutput:
    """What one forward pass returns.

    Attributes:
        loss: scalar, the sum of the per-head InfoNCE losses (differentiable).
        loss_per_head: one scalar per head.
        logits: one (N, 1 + K_h) tensor per head, positive in column 0, already divided by the temperature;
            K_h = queue_size, plus (num_heads - 1) * N for heads in ``extra_negatives_heads``.
        acc_per_head: top-1 accuracy (fraction 0..1) of the positive per head, detached.
    """

    loss: Tensor
    loss_per_head: list[Tensor]
    logits: list[Tensor]
    acc_per_head: list[Tensor]


# ---------------------------------------------------------------- distributed helpers (no-ops on one process)


def world_size() -> int:
    """Number of processes in the default group, 1 when torch.distributed is not initialised."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@torch.no_grad()
def concat_all_gather(x: Tensor) -> Tensor:
    """Concatenate ``x`` (N, ...) from every rank in rank order: (world * N, ...). No gradient flows."""
    if world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


@torch.no_grad()
def batch_shuffle(x: Tensor) -> tuple[Tensor, Tensor]:
    """Shuffle a batch across ranks (shuffle-BN): returns this rank's slice of the shuffled global batch
    and the permutation that undoes it. Rank 0 draws the permutation and broadcasts it."""
    n = x.shape[0]
    x_all = concat_all_gather(x)  # (W * N, ...)
    perm = torch.randperm(x_all.shape[0], device=x.device)
    if world_size() > 1:
        dist.broadcast(perm, src=0)
    rank = dist.get_rank() if world_size() > 1 else 0
    this = perm.view(-1, n)[rank]  # (N,)
    return x_all[this], torch.argsort(perm)


@torch.no_grad()
def batch_unshuffle(x: Tensor, idx_unshuffle: Tensor) -> Tensor:
    """Undo :func:`batch_shuffle` on features ``x`` (N, ...) computed from the shuffled batch."""
    n = x.shape[0]
    x_all = concat_all_gather(x)  # (W * N, ...)
    rank = dist.get_rank() if world_size() > 1 else 0
    return x_all[idx_unshuffle.view(-1, n)[rank]]


# ---------------------------------------------------------------- the model


class ContrastiveModel(nn.Module):
    """SeCo / MoCo-v2 with a ResNet encoder.

    Args:
        backbone: ``"resnet18"`` or ``"resnet50"``.
        in_chans: input bands.
        num_heads: embedding subspaces, one per key view (SeCo 3, MoCo-v2 1).
        emb_dim: embedding size of each subspace.
        queue_size: negatives per subspace; a multiple of the global batch size.
        temperature: InfoNCE temperature.
        momentum: EMA coefficient of the key side.
        extra_negatives_heads: subspaces that also take the other key views of the batch as negatives.

    Modules and buffers (all in ``state_dict()``):
        backbone: the query encoder (:class:`ResNet` without ``fc``), the part that is exported.
        heads_q: ``num_heads`` :class:`ProjectionHead`.
        backbone_k, heads_k: the key side, EMA copies that never receive gradients.
        queue: :class:`NegativeQueue` with ``bank`` (num_heads, emb_dim, queue_size) and ``ptr`` (num_heads,).

    Calling the model in ``train()`` mode updates the key side (EMA, first) and the queues (last); in
    ``eval()`` mode a forward pass changes nothing.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        in_chans: int = 12,
        num_heads: int = 3,
        emb_dim: int = 128,
        queue_size: int = 16384,
        temperature: float = 0.07,
        momentum: float = 0.999,
        extra_negatives_heads: tuple[int, ...] = (1, 2),
    ):
        super().__init__()
        self.config = ContrastiveConfig(
            backbone, in_chans, num_heads, emb_dim, queue_size, temperature, momentum, extra_negatives_heads
        )
        self.backbone: ResNet = build_backbone(backbone, in_chans, num_classes=0)
        dim = self.backbone.feature_dim
        self.heads_q = nn.ModuleList([ProjectionHead(dim, emb_dim) for _ in range(num_heads)])
        self.backbone_k = frozen_copy(self.backbone)
        self.heads_k = frozen_copy(self.heads_q)
        self.queue = NegativeQueue(num_heads, emb_dim, queue_size)

    @classmethod
    def from_config(cls, config: ContrastiveConfig) -> ContrastiveModel:
        """Build from a :class:`ContrastiveConfig`."""
        return cls(**asdict(config))

    @property
    def num_heads(self) -> int:
        return self.config.num_heads

    def query_parameters(self) -> list[nn.Parameter]:
        """The parameters the optimizer trains: query encoder and query heads."""
        return [*self.backbone.parameters(), *self.heads_q.parameters()]

    @torch.no_grad()
    def update_key_side(self) -> None:
        """EMA step of the key encoder and key heads towards the query side."""
        momentum_update(self.backbone_k, self.backbone, self.config.momentum)
        momentum_update(self.heads_k, self.heads_q, self.config.momentum)

    @torch.no_grad()
    def _key_features(self, x: Tensor) -> Tensor:
        """Key-encoder features (N, D) of one key view, with shuffle-BN across ranks when distributed."""
        if world_size() > 1:
            x, idx_unshuffle = batch_shuffle(x)
            return batch_unshuffle(self.backbone_k.forward_features(x), idx_unshuffle)
        return self.backbone_k.forward_features(x)

    def _check_inputs(self, q: Tensor, keys: Sequence[Tensor] | Tensor) -> list[Tensor]:
        views = list(keys.unbind(0)) if isinstance(keys, Tensor) else list(keys)
        if len(views) != self.num_heads:
            raise ConfigError(
                f"got {len(views)} key view(s) for a model with num_heads={self.num_heads}; pass one key view "
                "per subspace (SeCo: 3, MoCo-v2: 1) and build the views with the matching method"
            )
        for i, k in enumerate(views):
            if k.ndim != 4 or q.ndim != 4 or k.shape[:2] != q.shape[:2]:
                raise ConfigError(
                    f"key view {i} has shape {tuple(k.shape)} but the query is {tuple(q.shape)}; "
                    "every view must be (N, C, H, W) with the query's N and C"
                )
        return views

    def forward(self, q: Tensor, keys: Sequence[Tensor] | Tensor) -> ContrastiveOutput:
        """One contrastive step's forward pass.

        Args:
            q: (N, C, H, W) query view.
            keys: ``num_heads`` key views, each (N, C, H, W) (a list, or a tensor (num_heads, N, C, H, W)).

        Returns:
            :class:`ContrastiveOutput`; call ``out.loss.backward()`` and step an optimizer over
            :meth:`query_parameters`.
        """
        views = self._check_inputs(q, keys)
        train = self.training
        if train:
            self.update_key_side()

        v_q = self.backbone.forward_features(q)  # (N, D)
        with torch.no_grad():
            v_k = [self._key_features(x) for x in views]  # num_heads x (N, D)

        logits, losses, accs = [], [], []
        for i in range(self.num_heads):
            z_q = F.normalize(self.heads_q[i](v_q), dim=1)  # (N, E)
            extra = i in self.config.extra_negatives_heads
            with torch.no_grad():
                # keys of every needed view through head i: (N, E) each
                z_k = {
                    j: F.normalize(self.heads_k[i](v_k[j]), dim=1)
                    for j in range(self.num_heads)
                    if j == i or extra
                }
                neg = self.queue.negatives(i)  # (E, K)
                if extra:  # other views of the batch, in view order, after the queue: (E, K + (H-1) N)
                    neg = torch.cat([neg, *[z_k[j].T for j in range(self.num_heads) if j != i]], dim=1)
            l_i = contrastive_logits(z_q, z_k[i], neg, self.config.temperature)  # (N, 1 + K_i)
            logits.append(l_i)
            losses.append(info_nce(l_i))
            accs.append(top1_accuracy(l_i))
            if train:
                self.queue.enqueue(i, concat_all_gather(z_k[i]))

        return ContrastiveOutput(
            loss=torch.stack(losses).sum(), loss_per_head=losses, logits=logits, acc_per_head=accs
        )

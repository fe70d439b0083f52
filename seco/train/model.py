"""What a run trains: the contrastive model of its method and backbone, the optimiser and the schedule.

The model is built from the run's config and the method's registry record (:mod:`seco.methods`): one
projection head per key view, extra negatives where the record says. ``seco.train.run_checkpoint`` builds
the same model (on the meta device) to check a checkpoint against its own config.
"""

from __future__ import annotations

import math

import torch

from seco.methods import get_method
from seco.models.contrastive import ContrastiveModel
from seco.train.config import PretrainConfig

__all__ = ["build_model", "build_optimizer", "build_scheduler", "lr_factor"]


def build_model(cfg: PretrainConfig, in_chans: int) -> ContrastiveModel:
    """The run's model, randomly initialised from the current torch seed (the caller seeds it)."""
    method = get_method(cfg.method)
    return ContrastiveModel(
        backbone=cfg.backbone,
        in_chans=in_chans,
        num_heads=method.num_heads,
        emb_dim=cfg.emb_dim,
        queue_size=cfg.queue_size,
        temperature=cfg.temperature,
        momentum=cfg.key_momentum,
        extra_negatives_heads=method.extra_negatives_heads,
    )


def build_optimizer(cfg: PretrainConfig, model: ContrastiveModel) -> torch.optim.SGD:
    """SGD over the query side (encoder and heads), as the paper's code."""
    return torch.optim.SGD(
        model.query_parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


def lr_factor(cfg: PretrainConfig, step: int, total: int) -> float:
    """The learning-rate multiplier at ``step`` of ``total``: constant, cosine, or /10 at each milestone."""
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    return 0.1 ** sum(step >= int(m * total) for m in cfg.lr_milestones)


def build_scheduler(cfg: PretrainConfig, optimizer: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-step schedule of :func:`lr_factor` over ``total`` steps."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(cfg, s, total))

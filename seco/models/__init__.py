"""Models: ResNet backbones, projection heads, the negative queue, the EMA key side and the SeCo/MoCo model.

Imports torch only (never ``seco.data``, ``seco.store`` or ``seco.collect``).
"""

from seco.models.heads import ProjectionHead
from seco.models.losses import contrastive_logits, info_nce, top1_accuracy
from seco.models.momentum import frozen_copy, momentum_update
from seco.models.queue import NegativeQueue
from seco.models.resnet import ResNet, build_backbone
from seco.models.seco import ContrastiveConfig, ContrastiveModel, ContrastiveOutput

__all__ = [
    "ContrastiveConfig",
    "ContrastiveModel",
    "ContrastiveOutput",
    "NegativeQueue",
    "ProjectionHead",
    "ResNet",
    "build_backbone",
    "contrastive_logits",
    "frozen_copy",
    "info_nce",
    "momentum_update",
    "top1_accuracy",
]

"""The backbones: one :class:`Backbone` record per encoder architecture, in one registry.

A record says what the rest of seco needs to know of an encoder without building it: its feature size (the
projection heads' and linear probes' input), the channels of the feature pyramid the change-detection U-Net
takes, and how to build it. Configs, the command line, the contrastive model, evaluation and export read the
registry. The builder is named as ``"module:function"`` and imported on first use, so this module stays free
of torch (the command line reads it to list choices). A builder takes ``(name, in_chans, num_classes)`` and
returns an ``nn.Module`` with ``forward_features(x) -> (N, feature_dim)`` (and ``forward_pyramid`` for change
detection); ``num_classes=0`` means no classifier. ResNet-18 and ResNet-50 (torchvision's exact state-dict
keys) are registered here; a non-ResNet encoder is one more :func:`register_backbone` call.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seco.errors import ConfigError
from seco.methods import load_plugins

__all__ = ["Backbone", "backbone_names", "build_backbone", "get_backbone", "register_backbone"]


@dataclass(frozen=True)
class Backbone:
    """One encoder architecture.

    Attributes:
        name: the key in configs and on the command line (``--backbone``); also its name in torchvision/timm
            where the weights load there.
        feature_dim: size of the pooled features.
        pyramid_channels: channels of the five features ``forward_pyramid`` returns (conv1, then each stage).
        build: ``"module:function"`` or a callable ``(name, in_chans, num_classes) -> nn.Module``.
    """

    name: str
    feature_dim: int
    pyramid_channels: tuple[int, ...]
    build: str | Callable[[str, int, int], Any] = "seco.models.resnet:ResNet"

    def builder(self) -> Callable[[str, int, int], Any]:
        """The build function (imported on first use)."""
        if callable(self.build):
            return self.build
        module, _, attr = self.build.partition(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


_REGISTRY: dict[str, Backbone] = {}


def register_backbone(backbone: Backbone, *, replace: bool = False) -> Backbone:
    """Add ``backbone`` to the registry.

    Raises:
        ConfigError: the name is taken and ``replace`` is False.
    """
    if backbone.name in _REGISTRY and not replace:
        raise ConfigError(f"a backbone named {backbone.name!r} is already registered; pass replace=True")
    _REGISTRY[backbone.name] = backbone
    return backbone


def backbone_names() -> tuple[str, ...]:
    """The registered backbones' names, in registration order (plugins loaded first, see ``seco.methods``)."""
    load_plugins()
    return tuple(_REGISTRY)


def get_backbone(name: str) -> Backbone:
    """The record of a backbone name.

    Raises:
        ConfigError: the name is not registered (the message lists the registered ones).
    """
    load_plugins()
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown backbone {name!r}; choose one of {', '.join(_REGISTRY)} (one of your own: name the module "
            "that registers it in SECO_PLUGINS)"
        )
    return _REGISTRY[name]


def build_backbone(name: str, in_chans: int, num_classes: int = 1000) -> Any:
    """A randomly initialised encoder of a registered architecture.

    Args:
        name: a registered backbone (``resnet18``, ``resnet50``).
        in_chans: number of input bands (e.g. 12 for the L2A bands, 3 for RGB).
        num_classes: classifier size; 1000 matches torchvision's default, 0 builds no classifier.

    Raises:
        ConfigError: on an unknown name or a non-positive ``in_chans``.
    """
    return get_backbone(name).builder()(name, in_chans, num_classes)


register_backbone(Backbone("resnet18", 512, (64, 64, 128, 256, 512)))
register_backbone(Backbone("resnet50", 2048, (64, 256, 512, 1024, 2048)))

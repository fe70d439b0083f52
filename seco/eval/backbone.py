"""Load a backbone for evaluation: a seco export, an official SeCo checkpoint, or random init."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from seco.data.normalize import Normalization
from seco.errors import ConfigError
from seco.models.checkpoint import load_exported, load_official_checkpoint
from seco.models.resnet import ResNet, build_backbone


@dataclass
class LoadedBackbone:
    """A frozen-ready backbone with the band list and normalisation its weights expect."""

    model: ResNet
    bands: tuple[str, ...]
    normalization: Normalization | None
    name: str
    source: str


def load_backbone(
    weights: str,
    bands: tuple[str, ...],
    backbone: str = "resnet18",
    normalization: Normalization | None = None,
) -> LoadedBackbone:
    """Resolve ``--weights``: a seco export path, ``official:CKPT``, or ``random``.

    Args:
        weights: what to load.
        bands: the bands the evaluation data provides, in its order; a seco export must have been trained
            on exactly these bands (matched by name; the data is reordered by the caller if needed).
        backbone: architecture for ``random``.
        normalization: used for ``random`` and official weights (their own statistics are unknown).
    """
    if weights == "random":
        torch.manual_seed(0)
        return LoadedBackbone(build_backbone(backbone, len(bands)), bands, normalization, backbone, "random")
    if weights.startswith("official:"):
        model, hp = load_official_checkpoint(Path(weights.split(":", 1)[1]))
        name = str(hp.get("base_encoder", backbone))
        net = build_backbone(name, len(bands))
        net.load_state_dict(model.backbone.state_dict())
        return LoadedBackbone(net, bands, normalization, name, weights)
    state, meta = load_exported(Path(weights))
    wb = tuple(meta["bands"])
    if set(wb) != set(bands):
        raise ConfigError(
            f"weights {weights!r} were trained on bands {', '.join(wb)} but the data has {', '.join(bands)}; "
            "evaluate on data with those bands (select them with --bands) or use other weights"
        )
    net = build_backbone(meta["backbone"], len(wb))
    missing, unexpected = net.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.startswith("fc.")] + list(unexpected)
    if bad:
        raise ConfigError(f"weights {weights!r} do not fit a {meta['backbone']}: mismatched keys {bad[:5]}")
    norm = Normalization.from_dict(meta["normalization"]) if meta.get("normalization") else normalization
    return LoadedBackbone(net, wb, norm, meta["backbone"], weights)

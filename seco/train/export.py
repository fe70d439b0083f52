"""``seco export``: a training checkpoint (or an official SeCo one) -> torchvision/timm-loadable backbone."""

from __future__ import annotations

from pathlib import Path

from seco import __version__
from seco.bands import parse_bands
from seco.models.checkpoint import export_backbone, load_official_checkpoint
from seco.train.loop import load_checkpoint

BACKBONE_PREFIX = "backbone."


def export_run(checkpoint: str | Path, out: str | Path) -> list[Path]:
    """Export the query encoder of a ``seco pretrain`` checkpoint with its bands and normalisation."""
    ckpt = load_checkpoint(Path(checkpoint))
    cfg = ckpt["config"]
    state = {
        k[len(BACKBONE_PREFIX):]: v for k, v in ckpt["model"].items() if k.startswith(BACKBONE_PREFIX)
    }
    meta = {
        "bands": list(ckpt["bands"]),
        "normalization": ckpt["normalization"],
        "input_size": int(cfg["crop"]),
        "method": cfg["method"],
        "backbone": cfg["backbone"],
        "training_steps": int(ckpt["step"]),
        "source": str(checkpoint),
        "seco_version": __version__,
    }
    return export_backbone(state, Path(out), meta)


def export_official(checkpoint: str | Path, out: str | Path, bands: str | None = None) -> list[Path]:
    """Convert a checkpoint of the paper's code (RGB, ImageNet-style normalisation unknown: recorded as None)."""
    model, hparams = load_official_checkpoint(Path(checkpoint))
    band_list = list(parse_bands(bands or "RGB"))
    meta = {
        "bands": band_list,
        "normalization": None,
        "input_size": 224,
        "method": "seco-official",
        "backbone": str(hparams.get("base_encoder", "resnet18")),
        "training_steps": None,
        "source": str(checkpoint),
        "seco_version": __version__,
    }
    return export_backbone(model.backbone.state_dict(), Path(out), meta)

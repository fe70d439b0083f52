"""``seco export``: a training checkpoint (or an official SeCo one) -> torchvision/timm-loadable backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seco import __version__
from seco.bands import parse_bands
from seco.errors import CheckpointError
from seco.models.export import export_backbone
from seco.models.official import backbone_from_official
from seco.train.run_checkpoint import CKPT_FORMAT, CKPT_VERSION, read_run_checkpoint

BACKBONE_PREFIX = "backbone."


def export_run(checkpoint: str | Path, out: str | Path) -> list[Path]:
    """Export the query encoder of a ``seco pretrain`` checkpoint with its bands and normalisation.

    The checkpoint is read without executing code and its entries validated
    (:func:`seco.train.run_checkpoint.read_run_checkpoint`); of the model only the query encoder is used, and
    :func:`seco.models.export.backbone_arch` checks its keys and shapes exactly (the key side, heads and
    optimizer state that ``--resume`` also checks do not matter here).

    Raises:
        CheckpointError: a missing, damaged or foreign checkpoint, naming the file.
    """
    ckpt, _ = read_run_checkpoint(Path(checkpoint), CKPT_FORMAT, CKPT_VERSION)
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
    try:
        return export_backbone(state, Path(out), meta)
    except CheckpointError as e:
        raise CheckpointError(f"checkpoint {str(checkpoint)!r}: {e}") from e


def export_official(checkpoint: str | Path, out: str | Path, bands: str | None = None) -> list[Path]:
    """Convert a checkpoint of the paper's code.

    The paper's weights take RGB (B04, B03, B02) with its quantile stretch and ImageNet statistics, which
    are recorded in the sidecar. ``bands`` only needs giving for a checkpoint trained on other bands.
    """
    overrides: dict[str, Any] = {"source": str(checkpoint)}
    if bands is not None:
        names = list(parse_bands(bands))
        if names != ["B04", "B03", "B02"]:
            overrides.update({"bands": names, "normalization": None})
    return backbone_from_official(Path(checkpoint), Path(out), overrides)

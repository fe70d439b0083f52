"""Helpers shared by the evaluation tests (importable; fixtures live in conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

try:  # tests/ as a package, or pytest's rootless import mode
    from tests.data import fakes
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
    import fakes  # type: ignore[no-redef]

from seco.backbones import build_backbone
from seco.data.normalize import Normalization
from seco.models.export import export_backbone

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

__all__ = ["SHARED", "fakes", "make_export"]


def make_export(out: Path, bands: tuple[str, ...], seed: int = 0, backbone: str = "resnet18") -> Path:
    """A seco export of a seeded random ResNet with a made-up normalisation; returns the .safetensors path."""
    torch.manual_seed(seed)
    net = build_backbone(backbone, len(bands), num_classes=0)
    norm = Normalization(bands, tuple(0.1 + 0.01 * i for i in range(len(bands))), (0.05,) * len(bands))
    meta = {"bands": list(bands), "normalization": norm.to_dict(), "input_size": 64, "method": "seco",
            "training_steps": 0}
    paths = export_backbone(net.state_dict(), out, meta)
    return next(p for p in paths if p.suffix == ".safetensors")

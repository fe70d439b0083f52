"""``seco export``: a training checkpoint (or an official SeCo one) -> torchvision/timm-loadable backbone.

The step from a run to weights; the format of the weights written is :mod:`seco.models.export`'s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from seco import __version__
from seco.bands import parse_bands
from seco.errors import CheckpointError, ConfigError, OutputError
from seco.models.export import EXPORT_SUFFIXES, export_backbone, sensor_statistics
from seco.models.official import backbone_from_official
from seco.train.run_checkpoint import CKPT_FORMAT, CKPT_VERSION, read_run_checkpoint

BACKBONE_PREFIX = "backbone."
__all__ = ["EXPORT_SUFFIXES", "export_official", "export_run", "export_stem"]


def export_stem(out: str | os.PathLike[str], checkpoint: str | os.PathLike[str], *, official: bool) -> Path:
    """The stem ``seco export --out`` names: ``out`` without a ``.safetensors`` / ``.pth`` / ``.json`` suffix, or,
    when ``out`` is an existing folder or ends in ``/``, a file inside it named after the run folder of
    ``checkpoint`` (``runs/seco/last.ckpt`` -> ``<out>/seco``), or after an official checkpoint's file name."""
    text = os.fspath(out)
    p = Path(text).expanduser()
    if text.endswith(("/", os.sep)) or p.is_dir():
        ck = Path(checkpoint).expanduser()
        name = ck.stem if official else (ck.absolute().parent.name or ck.stem)
        return p / name
    return p.with_suffix("") if p.suffix in EXPORT_SUFFIXES else p


def _writing(stem: Path, write: Callable[[], list[Path]]) -> list[Path]:
    """Run ``write``, turning a ``SafetensorError`` (which wraps the OS error of a failed write) into the
    ``OSError`` it stands for, so the CLI prints one line naming the file."""
    try:
        return write()
    except SafetensorError as e:
        target = f"{stem}.safetensors"
        m = re.search(r"(?:code: |os error )(\d+)", str(e))
        if m:
            code = int(m.group(1))
            raise OSError(code, os.strerror(code), target) from None
        raise OutputError(f"cannot write {target}: {e}; choose a writable --out with free space") from None


def _check_bands(bands: str | None, trained: list[str], checkpoint: str | Path) -> None:
    """``--bands`` with a seco checkpoint: only its own bands (in any spelling) are accepted."""
    if bands is None:
        return
    names = list(parse_bands(bands, available=None))
    if names != trained:
        raise ConfigError(
            f"--bands {bands} ({','.join(names)}): {checkpoint} was trained on {','.join(trained)}, and its first "
            f"convolution takes exactly these {len(trained)} channels; exporting a subset would change what every "
            "feature means. Leave --bands out, or pre-train on the bands you want (`seco pretrain --bands`)")


def export_run(checkpoint: str | Path, out: str | Path, *, bands: str | None = None) -> list[Path]:
    """Export the query encoder of a ``seco pretrain`` checkpoint with its bands and normalisation.

    The checkpoint is read without executing code and its entries validated
    (:func:`seco.train.run_checkpoint.read_run_checkpoint`); of the model only the query encoder is used, and
    :func:`seco.models.export.backbone_arch` checks its keys and shapes exactly (the key side, heads and
    optimizer state that ``--resume`` also checks do not matter here).

    Args:
        checkpoint: the run's checkpoint (``last.ckpt``).
        out: the output stem (see :func:`export_stem`).
        bands: ``seco export --bands``: must name the checkpoint's own bands (a subset is refused).

    Raises:
        CheckpointError: a missing, damaged or foreign checkpoint, naming the file.
        ConfigError: ``bands`` other than the checkpoint's.
    """
    ckpt, _ = read_run_checkpoint(Path(checkpoint), CKPT_FORMAT, CKPT_VERSION)
    _check_bands(bands, list(ckpt["bands"]), checkpoint)
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
    meta["statistics"] = sensor_statistics(meta)  # per sensor: s2 (and s1 when the run's store had it)
    if not meta["statistics"]:
        meta.pop("statistics")
    try:
        return _writing(Path(out), lambda: export_backbone(state, Path(out), meta))
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
    return _writing(Path(out), lambda: backbone_from_official(Path(checkpoint), Path(out), overrides))

"""``seco export``: a training checkpoint (or an official SeCo one) -> torchvision/timm-loadable backbone.

The step from a run to weights; the format of the weights written is :mod:`seco.models.export`'s.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from seco import __version__
from seco.bands import parse_bands, sensor_of, sensors_of
from seco.data.normalize import Normalization
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


def export_run(checkpoint: str | Path, out: str | Path, *, bands: str | None = None,
               per_sensor: bool = False) -> list[Path]:
    """Export the query encoder of a ``seco pretrain`` checkpoint with its bands and normalisation.

    The checkpoint is read without executing code and its entries validated
    (:func:`seco.train.run_checkpoint.read_run_checkpoint`); of the model only the query encoder is used, and
    :func:`seco.models.export.backbone_arch` checks its keys and shapes exactly (the key side, heads and
    optimizer state that ``--resume`` also checks do not matter here).

    Args:
        checkpoint: the run's checkpoint (``last.ckpt``).
        out: the output stem (see :func:`export_stem`).
        bands: ``seco export --bands``: must name the checkpoint's own bands (a subset is refused).
        per_sensor: (a run on bands of both sensors) also write one backbone per sensor, ``<out>-s2.*`` and
            ``<out>-s1.*``: the first convolution cut to that sensor's channels, which computes exactly what the
            fused backbone computes with the other sensor's channels at their normalised mean (0), the input its
            single-sensor views were trained with. Every sidecar says which it is (``layout``).

    Raises:
        CheckpointError: a missing, damaged or foreign checkpoint, naming the file.
        ConfigError: ``bands`` other than the checkpoint's, or ``per_sensor`` for a single-sensor run.
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
    sensors = sensors_of(meta["bands"])
    if per_sensor and len(sensors) < 2:
        raise ConfigError(f"--per-sensor: {checkpoint} was trained on {'/'.join(sensors)} bands only "
                          f"({','.join(meta['bands'])}); its export is already one backbone for one sensor")
    meta["layout"] = "fused" if len(sensors) > 1 else "single-sensor"
    parts = [(Path(out), state, meta)]
    if per_sensor:
        parts += [(Path(f"{out}-{s}"), *_sensor_part(state, meta, s, Path(out).name)) for s in sensors]
    try:
        written: list[Path] = []
        for stem, sd, m in parts:
            written += _writing(stem, functools.partial(export_backbone, sd, stem, m))
        return written
    except CheckpointError as e:
        raise CheckpointError(f"checkpoint {str(checkpoint)!r}: {e}") from e


def per_sensor_stems(out: str | Path, bands: list[str]) -> list[Path]:
    """The extra stems ``export_run(..., per_sensor=True)`` writes for a run on ``bands``."""
    return [Path(f"{out}-{s}") for s in sensors_of(bands)]


def _sensor_part(state: dict[str, Any], meta: dict[str, Any], sensor: str,
                 fused: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The backbone of one sensor of a fused run: ``conv1`` cut to its channels, its bands, normalisation and
    statistics (the trunk is shared, so the rest of the weights are the same tensors)."""
    keep = [k for k, b in enumerate(meta["bands"]) if sensor_of(b) == sensor]
    sd = dict(state)
    sd["conv1.weight"] = state["conv1.weight"][:, keep].clone()
    norm = Normalization.from_dict(meta["normalization"]).select([meta["bands"][k] for k in keep])
    part = {**meta, "bands": [meta["bands"][k] for k in keep], "normalization": norm.to_dict(),
            "layout": "per-sensor", "sensor": sensor, "fused_export": fused}
    if "statistics" in meta:
        part["statistics"] = {k: v for k, v in meta["statistics"].items() if k == sensor}
    return sd, part


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

"""Export of a pre-trained backbone, and loading of an export (never executing code).

An exported backbone is three files sharing a stem:

- ``<out>.safetensors``: the ResNet state dict without ``fc`` (keys as torchvision's ``resnet18/50()``).
- ``<out>.pth``: the same tensors as a plain ``torch.save``d dict (tensors only: ``weights_only=True`` reads it).
- ``<out>.json``: metadata (bands in order, normalisation mean/std, input size, method, training steps,
  backbone, seco version, format version, sha256 of the two weight files) and ``statistics``: the input
  statistics **per sensor** (``s2``: bands, units, mean, std, the normalisation method and over which pixels they
  were computed; ``s1`` when the pre-training store had Sentinel-1: VV/VH in dB). :func:`sensor_statistics`
  gives them for older sidecars too.

Loading elsewhere: ``torchvision.models.resnet18()`` (after replacing ``conv1`` when the band count is not 3)
and ``timm.create_model("resnet18", in_chans=C)`` take it with ``load_state_dict(sd, strict=False)``, whose
only missing keys are ``fc.weight`` / ``fc.bias``; ``timm.create_model(..., num_classes=0)`` takes it strictly.

:func:`load_exported` reads the safetensors file (a format without code) or the ``.pth`` through
:func:`seco.models.safe_load.read_torch_file`, verifies the sha256 recorded in the sidecar and validates every
sidecar field it uses, so a damaged or hand-edited export is one :class:`CheckpointError`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as st_load_file
from safetensors.torch import save_file as st_save_file
from torch import Tensor

import seco
from seco.backbones import get_backbone
from seco.bands import S1_BANDS, parse_bands
from seco.errors import CheckpointError, SecoError
from seco.fileutil import atomic_open, atomic_write, file_sha256
from seco.models.resnet import ARCHS, ResNet
from seco.models.safe_load import read_torch_file

#: Version of the exported-backbone format (``<out>.json`` ``format_version``).
FORMAT_VERSION = 1
EXPORT_FORMAT = "seco-backbone"
EXPORT_SUFFIXES = (".safetensors", ".pth", ".json")
#: Keys the caller's ``meta`` must give to :func:`export_backbone`.
REQUIRED_META = ("bands", "normalization", "input_size", "method", "training_steps")


def _stem(path: str | Path) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in EXPORT_SUFFIXES else p


def _with(stem: Path, suffix: str) -> Path:
    return stem.parent / (stem.name + suffix)


def backbone_arch(sd: Mapping[str, Tensor]) -> tuple[str, int]:
    """(name, in_chans) of a torchvision-layout ResNet state dict without ``fc``.

    Raises:
        CheckpointError: when the keys or shapes match neither ResNet-18 nor ResNet-50.
    """
    if "conv1.weight" not in sd or sd["conv1.weight"].ndim != 4:
        sample = sorted(sd)[:3]
        raise CheckpointError(
            f"not a ResNet backbone state dict (no 'conv1.weight'; keys start {sample}); pass "
            "model.backbone.state_dict(), not the whole model's"
        )
    in_chans = int(sd["conv1.weight"].shape[1])
    detail = ""
    for name in ARCHS:
        with torch.device("meta"):
            ref = ResNet(name, in_chans, num_classes=0).state_dict()
        if ref.keys() != sd.keys():
            continue
        wrong = [k for k in ref if tuple(ref[k].shape) != tuple(getattr(sd[k], "shape", ()))]
        if not wrong:
            return name, in_chans
        k = wrong[0]
        detail = (f"; it has the keys of a {name} but {k!r} has shape {tuple(getattr(sd[k], 'shape', ()))}, "
                  f"a {name} takes {tuple(ref[k].shape)}")
    raise CheckpointError(
        f"state dict with {len(sd)} tensors matches neither resnet18 nor resnet50 (keys or shapes differ{detail}); "
        "export the query encoder ContrastiveModel.backbone"
    )


def _numbers(values: Any, what: str, n: int) -> list[float]:
    """``n`` finite floats from a list, or a CheckpointError naming ``what``."""
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{what} must be a list of {n} numbers, got {values!r}") from e
    if len(out) != n or not all(math.isfinite(v) for v in out):
        raise CheckpointError(f"{what} must be {n} finite numbers (one per band), got {values!r}")
    return out


def _model_bands(bands: list[str]) -> list[str]:
    """Canonical input bands of a model: Sentinel-2 names, then Sentinel-1 polarisations (``VV``, ``VH``)."""
    upper = [b.strip().upper() for b in bands]
    first_s1 = next((i for i, b in enumerate(upper) if b in S1_BANDS), len(bands))
    s1 = upper[first_s1:]
    if any(b not in S1_BANDS for b in s1) or len(set(s1)) != len(s1):
        raise CheckpointError(f"bands {bands!r} must list Sentinel-2 bands first, then each of {S1_BANDS} at most once")
    return list(parse_bands(bands[:first_s1])) + s1 if first_s1 else s1


def _check_meta(meta: Mapping[str, Any], name: str, in_chans: int) -> dict[str, Any]:
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(f"export metadata lacks {missing}; give {list(REQUIRED_META)}")
    m = dict(meta)
    bands = m["bands"]
    if not isinstance(bands, (list, tuple)) or not all(isinstance(b, str) for b in bands):
        raise CheckpointError(f"export metadata bands must be a list of band names, got {bands!r}")
    try:
        m["bands"] = _model_bands(list(bands))
    except SecoError as e:
        raise CheckpointError(f"export metadata bands {bands!r}: {e}") from e
    if len(m["bands"]) != in_chans:
        raise CheckpointError(
            f"export metadata lists {len(m['bands'])} bands but the backbone takes {in_chans}"
        )
    norm = m["normalization"]
    if norm is not None:
        if not isinstance(norm, Mapping) or "mean" not in norm or "std" not in norm:
            raise CheckpointError(
                f"export metadata normalization must be None or a dict with mean and std, got {norm!r}; "
                "pass Normalization.to_dict()"
            )
        norm = dict(norm)
        nb = norm.get("bands", m["bands"])
        if not isinstance(nb, (list, tuple)) or list(nb) != m["bands"]:
            raise CheckpointError(f"normalization bands {nb!r} differ from the model's bands {m['bands']}")
        for k in ("mean", "std"):
            norm[k] = _numbers(norm[k], f"normalization {k}", in_chans)
        if any(v <= 0 for v in norm["std"]):
            raise CheckpointError(f"normalization std {norm['std']} must be > 0 for every band")
        if "clip_dn" in norm:
            clip = norm["clip_dn"]
            if not isinstance(clip, (list, tuple)) or len(clip) != in_chans:
                raise CheckpointError(f"normalization clip_dn must be one [low, high] per band, got {clip!r}")
            norm["clip_dn"] = [_numbers(c, "normalization clip_dn entry", 2) for c in clip]
        m["normalization"] = norm
    size = m["input_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise CheckpointError(f"export metadata input_size must be a positive int, got {size!r}")
    steps = m["training_steps"]
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 0):
        raise CheckpointError(f"export metadata training_steps must be an int >= 0 or None, got {steps!r}")
    if m.get("backbone", name) != name:
        raise CheckpointError(f"export metadata says backbone {m['backbone']!r} but the weights are a {name}")
    if not isinstance(m["method"], str):
        raise CheckpointError(f"export metadata method must be a string, got {m['method']!r}")
    if "statistics" in m:
        m["statistics"] = _check_statistics(m["statistics"])
    return m


#: ``pixels`` of statistics whose pixels were not recorded (sidecars and runs from before seco recorded them).
PIXELS_UNKNOWN = "not recorded (statistics computed before seco recorded it: every valid pixel of the store)"


def sensor_statistics(meta: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-sensor input statistics of an export's metadata (or of a run's, before export).

    Returns ``meta["statistics"]`` when recorded, else derives the ``s2`` entry from ``meta["normalization"]``
    (the sidecars of older seco): ``{"s2": {bands, units, mean, std, method, pixels}[, "s1": {...}]}``; empty
    when the export has no normalisation.
    """
    given = meta.get("statistics")
    if isinstance(given, Mapping):
        return {str(k): dict(v) for k, v in given.items()}
    norm = meta.get("normalization")
    if not isinstance(norm, Mapping):
        return {}
    bands = list(norm.get("bands", meta.get("bands", [])))
    pos = {s: [k for k, b in enumerate(bands) if (b in S1_BANDS) == (s == "s1")] for s in ("s2", "s1")}
    out: dict[str, dict[str, Any]] = {}
    if pos["s2"]:
        out["s2"] = {"bands": [bands[k] for k in pos["s2"]], "units": "DN" if "clip_dn" in norm else "reflectance",
                     "mean": [norm["mean"][k] for k in pos["s2"]], "std": [norm["std"][k] for k in pos["s2"]],
                     "method": norm.get("method", "custom"), "pixels": norm.get("pixels") or PIXELS_UNKNOWN}
    s1 = dict(norm["s1"]) if isinstance(norm.get("s1"), Mapping) else None
    if pos["s1"]:  # the model takes radar channels: the statistics it was fed with, in dB
        out["s1"] = {"bands": [bands[k] for k in pos["s1"]], "units": "dB",
                     "mean": [norm["mean"][k] for k in pos["s1"]], "std": [norm["std"][k] for k in pos["s1"]],
                     "method": norm.get("method", "custom"),
                     "pixels": (s1 or {}).get("pixels", "valid S1 pixels of valid dates (dB)")}
    elif s1 is not None:  # an optical model: the store's S1 statistics, for a user who adds radar
        out["s1"] = s1
    return out


def _check_statistics(stats: Any) -> dict[str, dict[str, Any]]:
    """Validate a sidecar's ``statistics``: per sensor, bands and as many finite means and positive stds."""
    if not isinstance(stats, Mapping) or not stats:
        raise CheckpointError(f"export metadata statistics must be a dict per sensor ('s2', 's1'), got {stats!r}")
    out = {}
    for sensor, st in stats.items():
        if sensor not in ("s2", "s1") or not isinstance(st, Mapping) or not isinstance(st.get("bands"), list):
            raise CheckpointError(f"export metadata statistics[{sensor!r}] must be a dict with bands, units, mean "
                                  f"and std for sensor 's2' or 's1', got {st!r}")
        n = len(st["bands"])
        d = dict(st)
        for k in ("mean", "std"):
            d[k] = _numbers(st.get(k), f"statistics {sensor} {k}", n)
        if any(v <= 0 for v in d["std"]):
            raise CheckpointError(f"statistics {sensor} std {d['std']} must be > 0 for every band")
        if not isinstance(st.get("units"), str):
            raise CheckpointError(f"statistics {sensor} units {st.get('units')!r} must be a string, e.g. 'dB'")
        out[str(sensor)] = d
    return out


def export_backbone(
    backbone_state_dict: Mapping[str, Tensor], out: str | Path, meta: Mapping[str, Any]
) -> list[Path]:
    """Write a backbone as ``<out>.safetensors``, ``<out>.pth`` and ``<out>.json``.

    Args:
        backbone_state_dict: ``ContrastiveModel.backbone.state_dict()`` (``fc.*`` keys, if any, are dropped).
        out: the stem; a given ``.safetensors`` / ``.pth`` / ``.json`` suffix is stripped.
        meta: must hold ``bands`` (names in input order), ``normalization`` (``Normalization.to_dict()``:
            ``mean`` / ``std`` per band in the units the model was fed: reflectance for seco runs, DN with a
            ``clip_dn`` entry for official imports; or None when unknown),
            ``input_size``, ``method`` and ``training_steps`` (int or None); optionally ``statistics`` per
            sensor (:func:`sensor_statistics`); extra JSON-serialisable keys are kept. ``format``, ``format_version``, ``seco_version``, ``backbone`` (checked against the weights
            when given), ``in_chans`` and ``feature_dim`` are filled in.

    Returns:
        The three paths written, in the order above.

    Raises:
        CheckpointError: on a state dict that is not a supported ResNet or on incomplete metadata.
    """
    sd = {
        k: v.detach().cpu().contiguous().clone()
        for k, v in backbone_state_dict.items()
        if not k.startswith("fc.")
    }
    name, in_chans = backbone_arch(sd)
    full = {
        "format": EXPORT_FORMAT,
        "format_version": FORMAT_VERSION,
        "seco_version": seco.__version__,
        "backbone": name,
        "in_chans": in_chans,
        "feature_dim": get_backbone(name).feature_dim,
    }
    full.update({k: v for k, v in _check_meta(meta, name, in_chans).items() if k not in full})
    try:
        meta_json = json.dumps(full, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise CheckpointError(
            f"export metadata is not JSON-serialisable ({e}); pass plain numbers/strings"
        ) from e

    stem = _stem(out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    st_path, pth_path, json_path = (_with(stem, s) for s in EXPORT_SUFFIXES)
    atomic_write(st_path, lambda tmp: st_save_file(sd, str(tmp), metadata={"format": "pt", "seco_meta": meta_json}))
    with atomic_open(pth_path, "wb") as f:
        torch.save(sd, f)
    full["files"] = {
        "safetensors": {"name": st_path.name, "sha256": file_sha256(st_path)},
        "pth": {"name": pth_path.name, "sha256": file_sha256(pth_path)},
    }
    atomic_write(json_path, json.dumps(full, indent=2, sort_keys=True) + "\n")
    return [st_path, pth_path, json_path]


def load_exported(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read an exported backbone from any of its three files (or their common stem).

    ``.pth`` reads the torch file, ``.safetensors`` or ``.json`` (or the stem) the safetensors file; the
    checksum recorded in the JSON sidecar is verified.

    Returns:
        (state dict without ``fc``, metadata dict).

    Raises:
        CheckpointError: missing files, a checksum mismatch, a damaged file or a newer format version.
    """
    p = Path(path)
    stem = _stem(p)
    json_path = _with(stem, ".json")
    use = "pth" if p.suffix == ".pth" else "safetensors"
    w_path = _with(stem, "." + use)
    if not w_path.is_file():
        raise CheckpointError(
            f"exported weights {str(w_path)!r} not found; export writes "
            f"{stem.name}.safetensors/.pth/.json side by side"
        )
    if not json_path.is_file():
        raise CheckpointError(
            f"metadata sidecar {str(json_path)!r} not found; keep the .json next to the weights"
        )
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read metadata {str(json_path)!r}: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{str(json_path)!r} is not a seco backbone sidecar (format {EXPORT_FORMAT!r})")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{str(json_path)!r} has format_version {version!r}, not an int; export again")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{str(json_path)!r} has format_version {meta['format_version']}, newer than "
            f"this seco ({FORMAT_VERSION}); upgrade seco"
        )
    files = meta.get("files", {})
    entry = files.get(use, {}) if isinstance(files, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256", ""), str):
        raise CheckpointError(f"{str(json_path)!r} has a malformed 'files' entry {files!r}; export again")
    expected = entry.get("sha256")
    if expected is not None and file_sha256(w_path) != expected:
        raise CheckpointError(
            f"{str(w_path)!r} does not match the sha256 in {json_path.name}; the file is "
            "damaged or was replaced, export again"
        )
    if use == "pth":
        sd = read_torch_file(w_path, fix="export again")
        if not isinstance(sd, Mapping) or not all(
            isinstance(k, str) and isinstance(v, Tensor) for k, v in sd.items()
        ):
            raise CheckpointError(f"{str(w_path)!r} is not a state dict of tensors; export again")
        sd = dict(sd)
    else:
        try:
            sd = st_load_file(str(w_path))
        except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as e:  # damaged or foreign
            raise CheckpointError(f"cannot read {str(w_path)!r} as safetensors ({e}); export again") from e
    try:
        name, in_chans = backbone_arch(sd)
    except CheckpointError as e:
        raise CheckpointError(f"{str(w_path)!r}: {e}; export again") from e
    with torch.device("meta"):
        order = list(ResNet(name, in_chans, num_classes=0).state_dict())
    sd = {k: sd[k] for k in order}  # torchvision's order (safetensors stores keys sorted)
    if (name, in_chans) != (meta.get("backbone"), meta.get("in_chans")):
        raise CheckpointError(
            f"{str(w_path)!r} holds a {name} with {in_chans} bands but the sidecar says "
            f"{meta.get('backbone')} with {meta.get('in_chans')}"
        )
    try:
        checked = _check_meta(meta, name, in_chans)
    except CheckpointError as e:
        raise CheckpointError(f"sidecar {str(json_path)!r}: {e}; export again") from e
    return sd, checked

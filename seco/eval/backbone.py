"""Load a backbone for evaluation, match its bands to the data by name, and guard that it stays frozen.

``--weights`` takes four kinds of value:

- a **seco export** (``<stem>.safetensors`` / ``.pth`` / ``.json`` or the stem): bands and normalisation come
  from the JSON sidecar;
- ``official:CKPT``: a checkpoint of the paper's code (ServiceNow/seasonal-contrast). RGB checkpoints get
  the official pre-processing (per-band clip to the official quantiles, then ImageNet statistics, expressed
  on reflectance); other band counts need ``weights_bands``;
- a **torchvision / timm ResNet state dict** (``.pth``, ``.pt``, ``.safetensors`` without a seco sidecar)
  given with ``weights_bands`` (its input bands in order); its normalisation is unknown, so the caller
  derives one from the data;
- ``random``: a seeded random init of ``backbone``.

Bands are matched by name: the data is read in the weights' band order (the loaders select and reorder
bands by name), and a band set that differs from the weights' is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seco.backbones import build_backbone
from seco.bands import BAND_SETS, parse_bands, sensor_of
from seco.data.normalize import Normalization
from seco.data.sar import s1_name, split_model_bands
from seco.errors import BandError, CheckpointError, ConfigError, SecoError
from seco.fileutil import file_sha256
from seco.models.export import EXPORT_FORMAT, EXPORT_SUFFIXES, backbone_arch, load_exported
from seco.models.official import load_official_checkpoint, official_normalization
from seco.models.resnet import ResNet
from seco.models.safe_load import read_torch_file

#: Keys under which training scripts nest a state dict.
_NESTING_KEYS = ("state_dict", "model", "backbone", "encoder")
#: Prefixes stripped from plain state-dict keys (DDP, Lightning modules, timm/torchvision wrappers).
_PREFIXES = ("module.", "model.", "backbone.", "encoder.")
#: Units of a normalisation in DN rather than reflectance (what ``official_normalization`` records).
_DN_SCALE = 10000.0


class FrozenBackboneError(SecoError):
    """The backbone of a frozen-backbone protocol changed during evaluation."""


@dataclass(frozen=True)
class InputTransform:
    """Data -> model input: optional per-band clip, then ``(x - mean) / std``; with radar channels, no data
    (NaN) -> 0 (the band's mean, as pre-training fills it); with ``positions``, the channels are placed among
    ``channels`` model channels and the others are zeros (a sensor the data lacks, fed at its mean).

    Attributes:
        normalization: per-band statistics of the data's channels (S2 reflectance, S1 dB), or None for identity.
        clip: per-band ``(low, high)`` in reflectance applied first (the official SeCo pre-processing).
        fill_nan: replace NaN by 0 after the normalisation (S1 no data).
        positions: per data channel, its position among the model's channels (None: the same channels).
        channels: the model's input channel count (with ``positions``).
    """

    normalization: Normalization | None
    clip: tuple[tuple[float, float], ...] | None = None
    fill_nan: bool = False
    positions: tuple[int, ...] | None = None
    channels: int | None = None

    def apply(self, x: Tensor) -> Tensor:
        """(..., C, H, W) float -> (..., C or ``channels``, H, W), on x's device."""
        if self.clip is not None:
            lo = torch.tensor([c[0] for c in self.clip], device=x.device, dtype=x.dtype)[:, None, None]
            hi = torch.tensor([c[1] for c in self.clip], device=x.device, dtype=x.dtype)[:, None, None]
            x = torch.minimum(torch.maximum(x, lo), hi)
        x = self.normalization.apply(x) if self.normalization is not None else x
        if self.fill_nan:
            x = torch.nan_to_num(x, nan=0.0)
        if self.positions is None:
            return x
        if self.channels is None or len(self.positions) != x.shape[-3]:
            raise BandError(f"input has {x.shape[-3]} channel(s) but the transform places {len(self.positions)} "
                            f"among {self.channels}; build it from the same input plan as the data")
        out = x.new_zeros((*x.shape[:-3], self.channels, *x.shape[-2:]))
        out[..., list(self.positions), :, :] = x
        return out

    def placed(self, read: Sequence[str], model: Sequence[str]) -> InputTransform:
        """This transform for data of bands ``read`` feeding a backbone of bands ``model`` (one sensor of a
        multi-sensor backbone): the read channels at their model positions, the others 0, radar no data 0."""
        return dataclasses.replace(self, positions=tuple(list(model).index(b) for b in read), channels=len(model),
                                   fill_nan=self.fill_nan or any(sensor_of(b) == "s1" for b in read))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "normalization": self.normalization.to_dict() if self.normalization is not None else None,
            "clip": [list(c) for c in self.clip] if self.clip is not None else None,
        }
        if self.fill_nan:
            d["fill_nan"] = True
        if self.positions is not None:
            d["positions"] = list(self.positions)
            d["channels"] = self.channels
        return d


@dataclass
class LoadedBackbone:
    """A backbone with the band list and normalisation its weights expect.

    Attributes:
        model: the ResNet (input bands in ``bands`` order).
        bands: canonical band names, in input order.
        normalization: what the weights were trained with, or the caller's fallback; None when unknown.
        name: ``resnet18`` or ``resnet50``.
        source: the ``--weights`` value.
        kind: ``export``, ``official``, ``state_dict`` or ``random``.
        sha256: of the weights file (``random``: a description of the init), for cache keys.
        clip: per-band reflectance clip applied before the normalisation (official weights).
    """

    model: ResNet
    bands: tuple[str, ...]
    normalization: Normalization | None
    name: str
    source: str
    kind: str = "random"
    sha256: str = ""
    clip: tuple[tuple[float, float], ...] | None = None

    @property
    def transform(self) -> InputTransform:
        return InputTransform(self.normalization, self.clip)


@dataclass
class WeightsSpec:
    """Resolved ``--weights`` before the band list of the data is known (see :func:`load_weights`)."""

    kind: str
    source: str
    name: str
    bands: tuple[str, ...] | None
    state_dict: dict[str, Tensor] | None
    normalization: Normalization | None
    clip: tuple[tuple[float, float], ...] | None
    sha256: str
    seed: int = 0

    def build(self, bands: Sequence[str]) -> LoadedBackbone:
        """The backbone for data with ``bands`` (canonical names, the weights' order for trained weights).

        Raises:
            BandError: when ``bands`` is not the weights' band set.
            CheckpointError: when the weights do not fit the architecture.
        """
        bands = tuple(bands)
        if self.bands is None:  # random init
            gen_state = torch.random.get_rng_state()
            torch.manual_seed(self.seed)
            model = build_backbone(self.name, len(bands), num_classes=0)
            torch.random.set_rng_state(gen_state)
            return LoadedBackbone(model, bands, None, self.name, self.source, "random", self.sha256)
        check_band_set(self.bands, bands, self.source)
        if bands != self.bands:
            raise BandError(
                f"the data bands are in the order {', '.join(bands)} but weights {self.source!r} take "
                f"{', '.join(self.bands)}; read the data in the weights' order (pass bands=weights.bands)"
            )
        model = build_backbone(self.name, len(self.bands), num_classes=0)
        assert self.state_dict is not None
        try:
            missing, unexpected = model.load_state_dict(self.state_dict, strict=False)
        except RuntimeError as e:
            raise CheckpointError(f"weights {self.source!r} do not fit a {self.name}: {e}") from e
        if missing or unexpected:
            raise CheckpointError(
                f"weights {self.source!r} do not fit a {self.name}: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        return LoadedBackbone(
            model, self.bands, self.normalization, self.name, self.source, self.kind, self.sha256, self.clip
        )




def _export_sidecar(path: Path) -> Path | None:
    """The seco sidecar JSON of an export path or stem, if there is one."""
    stem = path.with_suffix("") if path.suffix in EXPORT_SUFFIXES else path
    side = stem.parent / (stem.name + ".json")
    if not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(
            f"sidecar {str(side)!r} beside the weights is not readable JSON ({e}); export the weights again "
            "(or move that file away to load a plain state dict)"
        ) from e
    return side if isinstance(meta, dict) and meta.get("format") == EXPORT_FORMAT else None


def normalization_from_meta(
    d: Mapping[str, Any] | None,
) -> tuple[Normalization | None, tuple | None]:
    """A normalisation dict from export metadata -> (reflectance Normalization, reflectance clip).

    seco exports record reflectance statistics (``Normalization.to_dict()``); the official pre-processing
    (:func:`seco.models.checkpoint.official_normalization`) is recorded in DN with a ``clip_dn`` entry, and
    is converted here (``/ 10000``).
    """
    if not d:
        return None, None
    if any(s1_name(str(b)) for b in d.get("bands", ())):  # S1 channels (dB) beside S2 (reflectance)
        return Normalization.from_dict(d), None
    in_dn = "clip_dn" in d or str(d.get("units", "")).lower() == "dn"
    k = _DN_SCALE if in_dn else 1.0
    norm = Normalization(
        tuple(d["bands"]),
        tuple(float(v) / k for v in d["mean"]),
        tuple(float(v) / k for v in d["std"]),
        method=str(d.get("method", "custom")) if d.get("method") in ("meanstd", "percentile") else "custom",
    )
    clip = tuple((float(a) / k, float(b) / k) for a, b in d["clip_dn"]) if "clip_dn" in d else None
    return norm, clip


def _from_statistics(meta: Mapping[str, Any], bands: Sequence[str]) -> dict[str, Any] | None:
    """A normalisation dict over ``bands`` from a sidecar's per-sensor ``statistics`` (S2 reflectance, S1 dB), for
    an export without ``normalization``; None unless every band has statistics."""
    per: dict[str, tuple[float, float]] = {}
    for st in (meta.get("statistics") or {}).values():
        if isinstance(st, Mapping) and str(st.get("units", "reflectance")).lower() != "dn":
            per |= {str(b): (float(m), float(v)) for b, m, v in zip(st["bands"], st["mean"], st["std"], strict=True)}
    if not bands or any(b not in per for b in bands):
        return None
    return {"bands": list(bands), "mean": [per[b][0] for b in bands], "std": [per[b][1] for b in bands],
            "method": "meanstd"}


def _unwrap_state_dict(obj: Any, source: str) -> dict[str, Tensor]:
    for _ in range(3):
        if isinstance(obj, Mapping) and not any(isinstance(v, Tensor) for v in obj.values()):
            nested = next((obj[k] for k in _NESTING_KEYS if isinstance(obj.get(k), Mapping)), None)
            if nested is None:
                break
            obj = nested
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source!r} holds no state dict of tensors; save model.state_dict() of a ResNet")
    sd = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    for prefix in _PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix) :]: v for k, v in sd.items()}
    return {k: v for k, v in sd.items() if not k.startswith("fc.")}


def load_weights(
    weights: str, backbone: str = "resnet18", weights_bands: str | Sequence[str] | None = None, seed: int = 0
) -> WeightsSpec:
    """Resolve ``--weights`` (see the module docstring) without building the model yet.

    Raises:
        CheckpointError: unreadable weights, or a plain state dict without ``weights_bands``.
        BandError: ``weights_bands`` that do not fit the weights.
    """
    if weights == "random":
        desc = f"random:{backbone}:seed={seed}:torch={torch.__version__}"
        return WeightsSpec("random", weights, backbone, None, None, None, None, desc, seed)
    wb = parse_bands(weights_bands) if weights_bands is not None else None
    if weights.startswith("official:"):
        path = Path(weights.split(":", 1)[1])
        model, hp = load_official_checkpoint(path)
        sd = {k: v for k, v in model.backbone.state_dict().items() if not k.startswith("fc.")}
        name, in_chans = backbone_arch(sd)
        norm = clip = None
        if wb is None:
            if in_chans != len(BAND_SETS["rgb"]):
                raise CheckpointError(
                    f"official checkpoint {str(path)!r} takes {in_chans} bands; name them with --weights-bands"
                )
            wb = parse_bands(BAND_SETS["rgb"])
            norm, clip = normalization_from_meta(official_normalization())
        _check_count(wb, in_chans, weights)
        return WeightsSpec("official", weights, name, wb, sd, norm, clip, file_sha256(path), seed)
    path = Path(weights)
    sidecar = _export_sidecar(path)
    if sidecar is not None:
        sd, meta = load_exported(path)
        used = path if path.suffix in (".pth", ".safetensors") else sidecar.with_suffix(".safetensors")
        ebands = split_model_bands(list(meta["bands"])).names
        if wb is not None and wb != ebands:
            raise BandError(
                f"--weights-bands {', '.join(wb)} contradict the export's own bands {', '.join(ebands)}; "
                "drop --weights-bands for seco exports"
            )
        norm, clip = normalization_from_meta(meta.get("normalization") or _from_statistics(meta, ebands))
        return WeightsSpec("export", weights, str(meta["backbone"]), ebands, sd, norm, clip, file_sha256(used), seed)
    if path.is_dir():
        raise CheckpointError(
            f"weights {weights!r} is a directory; give a file: a seco export, official:CKPT, a ResNet state dict"
        )
    if not path.is_file():
        raise CheckpointError(
            f"weights {weights!r} not found; give a seco export, official:CKPT, a ResNet state dict or 'random'"
        )
    if wb is None:
        raise CheckpointError(
            f"{weights!r} is not a seco export (no {EXPORT_FORMAT} JSON sidecar beside it); for a torchvision/timm "
            "state dict name its input bands with --weights-bands, e.g. --weights-bands B04,B03,B02"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            raw: Any = load_file(str(path))
        except Exception as e:  # safetensors raises several types on a damaged file
            raise CheckpointError(f"cannot read {weights!r} as safetensors: {e}") from e
    else:
        raw = read_torch_file(path)
    sd = _unwrap_state_dict(raw, weights)
    try:
        name, in_chans = backbone_arch(sd)
    except CheckpointError as e:
        raise CheckpointError(f"weights {weights!r}: {e}") from e
    _check_count(wb, in_chans, weights)
    return WeightsSpec("state_dict", weights, name, wb, sd, None, None, file_sha256(path), seed)


def _check_count(bands: Sequence[str], in_chans: int, source: str) -> None:
    if len(bands) != in_chans:
        raise BandError(
            f"--weights-bands lists {len(bands)} band(s) ({', '.join(bands)}) but {source!r} takes {in_chans}; "
            "name every input band of the weights, in order"
        )


def check_band_set(weight_bands: Sequence[str], data_bands: Sequence[str], source: str) -> None:
    """Refuse data whose band set differs from the weights'.

    Raises:
        BandError: naming the bands missing on either side.
    """
    if set(weight_bands) == set(data_bands):
        return
    lack = [b for b in weight_bands if b not in data_bands]
    extra = [b for b in data_bands if b not in weight_bands]
    raise BandError(
        f"weights {source!r} were trained on bands {', '.join(weight_bands)} but the data bands are "
        f"{', '.join(data_bands)} (missing {', '.join(lack) or 'none'}, extra {', '.join(extra) or 'none'}); "
        "drop --bands to use the weights' bands, or use weights trained on these bands"
    )


def resolve_bands(
    weight_bands: Sequence[str] | None, requested: str | None, available: Sequence[str], source: str
) -> tuple[str, ...]:
    """The bands to read from a dataset, in the order the model takes them.

    Args:
        weight_bands: the weights' bands (None for random init).
        requested: ``--bands`` (None: the weights' bands, or every band of the data for random init).
        available: the bands the dataset holds.
        source: the ``--weights`` value, for messages.

    Raises:
        BandError: a requested band set that differs from the weights', or weights bands the data lacks.
    """
    if weight_bands is None:
        return parse_bands(requested or "all", available)
    if requested is not None:
        check_band_set(weight_bands, parse_bands(requested, available), source)
    missing = [b for b in weight_bands if b not in available]
    if missing:
        raise BandError(
            f"weights {source!r} need band(s) {', '.join(missing)} that this dataset does not have (it has "
            f"{', '.join(available)}); evaluate them on data with those bands"
        )
    return tuple(weight_bands)


def load_backbone(
    weights: str,
    bands: tuple[str, ...],
    backbone: str = "resnet18",
    normalization: Normalization | None = None,
    weights_bands: str | Sequence[str] | None = None,
    seed: int = 0,
) -> LoadedBackbone:
    """Resolve ``--weights`` for data with ``bands`` (see the module docstring).

    Args:
        weights: what to load.
        bands: the bands the evaluation data provides; trained weights must have exactly this band set
            (matched by name; the returned ``.bands`` is the weights' order, in which to read the data).
        backbone: architecture for ``random``.
        normalization: fallback when the weights carry none (random, plain state dicts).
        weights_bands: input bands of a plain state dict (or of a non-RGB official checkpoint).
        seed: seed of the random init.

    Raises:
        BandError: on a band mismatch; CheckpointError: on unreadable weights.
    """
    spec = load_weights(weights, backbone, weights_bands, seed)
    if spec.bands is not None:
        check_band_set(spec.bands, bands, weights)
        lb = spec.build(spec.bands)
    else:
        lb = spec.build(bands)
    if lb.normalization is None and normalization is not None:
        lb.normalization = normalization.select(lb.bands) if normalization.bands != lb.bands else normalization
    return lb


# ---------------------------------------------------------------- the frozen-backbone guard


def snapshot(model: torch.nn.Module) -> dict[str, Tensor]:
    """A CPU copy of every parameter and buffer (BatchNorm statistics included)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def check_unchanged(before: Mapping[str, Tensor], model: torch.nn.Module, where: str = "evaluation") -> None:
    """Assert that ``model`` still equals its :func:`snapshot` ``before``, bit for bit.

    Raises:
        FrozenBackboneError: listing the tensors that changed.
    """
    after = model.state_dict()
    changed = sorted(set(before) ^ set(after))
    changed += [k for k in before if k in after and not torch.equal(before[k], after[k].detach().cpu())]
    if changed:
        raise FrozenBackboneError(
            f"the frozen backbone changed during {where}: {len(changed)} tensor(s) differ ({', '.join(changed[:4])}"
            f"{', ...' if len(changed) > 4 else ''}); the results are invalid. Something trained or put the "
            "backbone in train mode (BatchNorm statistics); keep it in eval mode with requires_grad=False"
        )


def resolve_device(device: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else as given.

    Raises:
        ConfigError: an unknown device or CUDA asked for where there is none.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"--device {device!r} is not a torch device; use auto, cpu, cuda or cuda:N") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device!r} but CUDA is not available here; use --device cpu or auto")
    return dev


def autocast_for(bf16: bool, device: torch.device) -> Callable[[], AbstractContextManager[Any]]:
    """A factory of the forward passes' precision context: bfloat16 autocast on ``device``, or nothing."""

    def autocast() -> AbstractContextManager[Any]:
        if bf16:
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    return autocast

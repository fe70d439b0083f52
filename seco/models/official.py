"""Import of the official SeCo checkpoints (ServiceNow/seasonal-contrast), read without executing code.

Official checkpoints (PyTorch Lightning 1.1) are ``torch.save``d dicts
``{"state_dict": ..., "hyper_parameters": ..., "global_step": ...}`` whose state dict names the query encoder
``encoder_q.<i>.*`` with ``encoder_q = nn.Sequential(conv1, bn1, relu, maxpool, layer1, layer2, layer3,
layer4, avgpool, Flatten)`` of a torchvision ResNet (so index 0 = conv1, 1 = bn1, 4..7 = layer1..layer4),
the heads ``heads_q.<h>.{0,2}.*``, the key side ``encoder_k.*`` / ``heads_k.*``, and ``queue``
(heads, dim, K) / ``queue_ptr`` (heads, 1). They are read by :func:`seco.models.safe_load.read_torch_file`:
first with ``torch.load(weights_only=True)``; when Lightning objects (callback classes, ``AttributeDict``)
stop that, with a restricted unpickler that replaces every class outside a small allow-list by an inert
placeholder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seco.errors import CheckpointError, SecoError
from seco.methods import get_method, method_names
from seco.models.contrastive import ContrastiveConfig, ContrastiveModel
from seco.models.export import export_backbone
from seco.models.resnet import ARCHS
from seco.models.safe_load import plain, read_torch_file

# index in the official nn.Sequential encoder -> torchvision ResNet attribute
_OFFICIAL_ENCODER_INDEX = {
    "0": "conv1",
    "1": "bn1",
    "4": "layer1",
    "5": "layer2",
    "6": "layer3",
    "7": "layer4",
}
_OFFICIAL_PREFIX = {
    "encoder_q": "backbone",
    "encoder_k": "backbone_k",
    "heads_q": "heads_q",
    "heads_k": "heads_k",
}

# The official SeCo pre-processing (datasets/seco_dataset.py + seco_downloader.py): reflectance DN/10000 is
# scaled to uint8 (x255), clipped to these per-band quantiles, rescaled to [0, 1], then ImageNet-normalised.
_OFFICIAL_RGB = ("B04", "B03", "B02")
_OFFICIAL_QUANTILES = {"B04": (0.0, 129.0), "B03": (2.0, 103.0), "B02": (3.0, 88.0)}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def map_official_key(name: str) -> str:
    """Official state-dict key -> :class:`ContrastiveModel` key.

    ``encoder_q.4.0.conv1.weight`` -> ``backbone.layer1.0.conv1.weight``; ``encoder_k.*`` -> ``backbone_k.*``;
    ``heads_q.*`` / ``heads_k.*`` unchanged; ``queue`` -> ``queue.bank``; ``queue_ptr`` -> ``queue.ptr``.

    Raises:
        CheckpointError: for a key that is not part of the official MocoV2 module.
    """
    if name == "queue":
        return "queue.bank"
    if name == "queue_ptr":
        return "queue.ptr"
    head, _, rest = name.partition(".")
    if head in ("encoder_q", "encoder_k"):
        idx, _, tail = rest.partition(".")
        if idx in _OFFICIAL_ENCODER_INDEX and tail:
            return f"{_OFFICIAL_PREFIX[head]}.{_OFFICIAL_ENCODER_INDEX[idx]}.{tail}"
    elif head in ("heads_q", "heads_k") and rest:
        return f"{head}.{rest}"
    raise CheckpointError(
        f"unexpected key {name!r} in an official SeCo state dict; expected encoder_q.*, encoder_k.*, heads_q.*, "
        "heads_k.*, queue, queue_ptr (the MocoV2 module of ServiceNow/seasonal-contrast)"
    )


def to_official_state_dict(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Inverse of :func:`load_official_state_dict`: :class:`ContrastiveModel` keys -> official MocoV2 keys.

    ``num_batches_tracked`` counters are kept; ``queue.ptr`` (H,) becomes ``queue_ptr`` (H, 1).
    """
    inv_index = {v: k for k, v in _OFFICIAL_ENCODER_INDEX.items()}
    inv_prefix = {"backbone": "encoder_q", "backbone_k": "encoder_k"}
    out: dict[str, Tensor] = {}
    for k, v in sd.items():
        head, _, rest = k.partition(".")
        if k == "queue.bank":
            out["queue"] = v
        elif k == "queue.ptr":
            out["queue_ptr"] = v.reshape(-1, 1)
        elif head in inv_prefix:
            attr, _, tail = rest.partition(".")
            if attr not in inv_index:
                raise CheckpointError(f"{k!r} has no counterpart in the official encoder (a classifier?)")
            out[f"{inv_prefix[head]}.{inv_index[attr]}.{tail}"] = v
        elif head in ("heads_q", "heads_k"):
            out[k] = v
        else:
            raise CheckpointError(f"{k!r} is not a ContrastiveModel state-dict key")
    return out


def load_official_state_dict(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official MocoV2 state dict to :class:`ContrastiveModel` keys.

    A missing key side (``encoder_k`` / ``heads_k``) is copied from the query side, as the official code
    initialises it; missing BatchNorm ``num_batches_tracked`` counters are set to 0; ``queue_ptr`` (H, 1)
    becomes ``queue.ptr`` (H,). The queue is passed through only when present.

    Raises:
        CheckpointError: on foreign keys or a missing query encoder / heads.
    """
    if not isinstance(sd, Mapping) or not sd:
        raise CheckpointError(f"expected a non-empty state dict of tensors, got {type(sd).__name__}")
    items = dict(sd)
    odd = [k for k in items if not isinstance(k, str)]
    if odd:
        raise CheckpointError(f"state dict keys {odd[:3]!r} are not strings; it is not a SeCo/MoCo checkpoint")
    if all(k.startswith("module.") for k in items):  # saved from a DDP wrapper
        items = {k[len("module.") :]: v for k, v in items.items()}
    out: dict[str, Tensor] = {}
    for k, v in items.items():
        if not isinstance(v, Tensor):
            raise CheckpointError(f"state dict entry {k!r} is a {type(v).__name__}, expected a tensor")
        out[map_official_key(k)] = v
    for needed in ("backbone.conv1.weight", "heads_q.0.0.weight", "heads_q.0.2.weight"):
        if needed not in out:
            official = next(
                k
                for k in ("encoder_q.0.weight", "heads_q.0.0.weight", "heads_q.0.2.weight")
                if map_official_key(k) == needed
            )
            raise CheckpointError(f"official state dict lacks {official!r}; it is not a SeCo/MoCo checkpoint")
    for q, k in (("backbone.", "backbone_k."), ("heads_q.", "heads_k.")):
        if not any(n.startswith(k) for n in out):
            out.update({k + n[len(q) :]: v.clone() for n, v in list(out.items()) if n.startswith(q)})
    if "queue.ptr" in out:
        out["queue.ptr"] = out["queue.ptr"].reshape(-1).long()
    for n in [n for n in out if n.endswith(".running_var")]:
        nbt = n[: -len("running_var")] + "num_batches_tracked"
        out.setdefault(nbt, torch.tensor(0, dtype=torch.long))
    return out


def _infer_backbone(sd: Mapping[str, Tensor]) -> str:
    """resnet18 / resnet50 from the mapped query-encoder keys."""
    bottleneck = "backbone.layer1.0.conv3.weight" in sd
    name = "resnet50" if bottleneck else "resnet18"
    blocks = ARCHS[name][1]
    for li, n in enumerate(blocks, start=1):
        if (
            f"backbone.layer{li}.{n - 1}.conv1.weight" not in sd
            or f"backbone.layer{li}.{n}.conv1.weight" in sd
        ):
            raise CheckpointError(
                "the checkpoint's encoder is neither torchvision resnet18 nor resnet50 (layer "
                f"{li} does not have {n} blocks); only those two architectures are supported"
            )
    return name


def official_config(sd: Mapping[str, Tensor], hparams: Mapping[str, Any] | None = None) -> ContrastiveConfig:
    """The :class:`ContrastiveConfig` of a mapped official state dict (shapes first, hparams for the rest).

    Raises:
        CheckpointError: when the hyper-parameters contradict the weights.
    """
    hp = dict(hparams or {})
    backbone = _infer_backbone(sd)
    if str(hp.get("base_encoder", backbone)) != backbone:
        raise CheckpointError(
            f"hyper_parameters say base_encoder={hp['base_encoder']!r} but the weights are a {backbone}"
        )
    num_heads = len({n.split(".")[1] for n in sd if n.startswith("heads_q.")})
    if hp.get("emb_spaces", num_heads) != num_heads:
        raise CheckpointError(
            f"hyper_parameters say emb_spaces={hp['emb_spaces']} but there are {num_heads} heads"
        )
    emb_dim = int(sd["heads_q.0.2.weight"].shape[0])
    if "queue.bank" in sd:
        queue_size = int(sd["queue.bank"].shape[-1])
        if tuple(sd["queue.bank"].shape) != (num_heads, emb_dim, queue_size):
            raise CheckpointError(
                f"queue has shape {tuple(sd['queue.bank'].shape)}, expected ({num_heads}, {emb_dim}, K)"
            )
    try:
        if "queue.bank" not in sd:
            queue_size = int(hp.get("num_negatives", 16384))  # the official default
        return ContrastiveConfig(
            backbone=backbone,
            in_chans=int(sd["backbone.conv1.weight"].shape[1]),
            num_heads=num_heads,
            emb_dim=emb_dim,
            queue_size=queue_size,
            temperature=float(hp.get("softmax_temperature", 0.07)),
            momentum=float(hp.get("encoder_momentum", 0.999)),
            # the official code gives every subspace but the first the other views as negatives
            extra_negatives_heads=tuple(range(1, num_heads)),
        )
    except (SecoError, TypeError, ValueError) as e:
        raise CheckpointError(f"the checkpoint's hyper-parameters are invalid: {e}") from e


def model_from_official(
    sd: Mapping[str, Tensor], hparams: Mapping[str, Any] | None = None
) -> ContrastiveModel:
    """A :class:`ContrastiveModel` holding an official MocoV2 state dict (query, key side and queue).

    Raises:
        CheckpointError: on foreign keys, missing tensors or shapes that do not fit.
    """
    mapped = load_official_state_dict(sd)
    model = ContrastiveModel.from_config(official_config(mapped, hparams))
    try:
        missing, unexpected = model.load_state_dict(mapped, strict=False)
    except RuntimeError as e:
        raise CheckpointError(f"official weights do not fit the model: {e}") from e
    missing = [k for k in missing if not k.startswith("queue.")]
    if missing or unexpected:
        raise CheckpointError(
            f"official state dict does not match a {model.config.backbone} SeCo model: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return model


def load_official_checkpoint(path: str | Path) -> tuple[ContrastiveModel, dict[str, Any]]:
    """Load an official SeCo Lightning checkpoint (e.g. ``seco_resnet18_1m.ckpt``).

    Returns:
        The model (train mode; call ``.eval()`` for inference) and the checkpoint's hyper-parameters as a
        plain dict, with ``global_step`` added when the file records it.

    Raises:
        CheckpointError: a missing/corrupt file, or one without ``state_dict`` / with foreign keys.
    """
    ckpt = read_torch_file(path)
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("state_dict"), Mapping):
        keys = sorted(map(str, ckpt))[:8] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise CheckpointError(
            f"{str(path)!r} is not an official SeCo checkpoint: expected a dict with 'state_dict' and "
            f"'hyper_parameters', found {keys}"
        )
    try:
        hp = plain(ckpt.get("hyper_parameters", ckpt.get("hparams", {})))
    except RecursionError as e:
        raise CheckpointError(f"{str(path)!r} has self-referencing hyper_parameters; it is not an official "
                              "SeCo checkpoint") from e
    hp = dict(hp) if isinstance(hp, Mapping) else {}
    if isinstance(ckpt.get("global_step"), int):
        hp.setdefault("global_step", ckpt["global_step"])
    try:
        model = model_from_official(ckpt["state_dict"], hp)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from e
    except (IndexError, TypeError, ValueError, RuntimeError) as e:  # tensors of impossible shapes or types
        raise CheckpointError(
            f"{path}: malformed official state dict ({type(e).__name__}: {e}); it is not a SeCo/MoCo checkpoint"
        ) from e
    return model, hp


def official_normalization() -> dict[str, Any]:
    """The official RGB pre-processing expressed as a ``Normalization.to_dict()`` in L2A DN.

    The official pipeline maps ``u = clip(DN / 10000, 0, 1) * 255`` (uint8), clips ``u`` to per-band
    quantiles ``[lo, hi]``, rescales to [0, 1] and applies the ImageNet mean/std ``(m, s)``. Apart from the
    clip (recorded as ``clip_dn``) and uint8 rounding, that is ``(DN - mean) / std`` with
    ``mean = (lo + m (hi - lo)) 10000 / 255`` and ``std = s (hi - lo) 10000 / 255``.
    """
    k = 10000.0 / 255.0
    mean, std, clip = [], [], []
    for b, m, s in zip(_OFFICIAL_RGB, _IMAGENET_MEAN, _IMAGENET_STD, strict=True):
        lo, hi = _OFFICIAL_QUANTILES[b]
        mean.append((lo + m * (hi - lo)) * k)
        std.append(s * (hi - lo) * k)
        clip.append([lo * k, hi * k])
    return {
        "bands": list(_OFFICIAL_RGB),
        "mean": mean,
        "std": std,
        "method": "custom",
        "clip_dn": clip,
        "note": "official SeCo: uint8 = clip(DN/10000,0,1)*255, clip to per-band quantiles, /255, ImageNet "
        "mean/std; clip each band to clip_dn, then (DN - mean) / std",
    }


def _official_method(data_mode: Any, num_heads: int) -> str:
    """The registered method whose ``official_data_mode`` is ``data_mode``; without one, the registered method
    with that many heads that the official code has (SeCo for 3, MoCo-v2 for 1)."""
    methods = [get_method(n) for n in method_names()]
    for m in methods:
        if m.official_data_mode is not None and m.official_data_mode == str(data_mode):
            return m.name
    same = [m.name for m in methods if m.official_data_mode is not None and m.num_heads == num_heads]
    return same[0] if same else "seco"


def official_meta(hparams: Mapping[str, Any], in_chans: int) -> dict[str, Any]:
    """Export metadata of an official checkpoint (RGB bands, official normalisation, 224 px crops).

    Raises:
        CheckpointError: when the checkpoint does not take 3 bands (its pre-processing is then unknown).
    """
    if in_chans != len(_OFFICIAL_RGB):
        raise CheckpointError(
            f"the official checkpoint takes {in_chans} bands; only the RGB (3-band) pre-processing of the "
            "official code is known. Pass meta with bands and normalization to backbone_from_official"
        )
    num_heads = hparams.get("emb_spaces", 3)
    steps = hparams.get("global_step")
    return {
        "bands": list(_OFFICIAL_RGB),
        "normalization": official_normalization(),
        "input_size": 224,
        "method": _official_method(hparams.get("data_mode"), num_heads),
        "training_steps": steps if isinstance(steps, int) and not isinstance(steps, bool) else None,
        "source": "official SeCo checkpoint (ServiceNow/seasonal-contrast)",
    }


def backbone_from_official(
    path: str | Path, out: str | Path, meta: Mapping[str, Any] | None = None
) -> list[Path]:
    """``seco export --from-official CKPT``: export an official checkpoint's query encoder.

    Args:
        path: the official Lightning ``.ckpt``.
        out: output stem (see :func:`export_backbone`).
        meta: entries that replace the derived metadata; required (bands, normalization) when the
            checkpoint does not take the 3 RGB bands.

    Returns:
        The three written paths.

    Raises:
        CheckpointError: see :func:`load_official_checkpoint` and :func:`export_backbone`.
    """
    model, hp = load_official_checkpoint(path)
    overrides = dict(meta or {})
    if model.config.in_chans == len(_OFFICIAL_RGB) or not {"bands", "normalization"} <= overrides.keys():
        derived = official_meta(hp, model.config.in_chans)
    else:
        derived = {
            "input_size": 224,
            "training_steps": None,
            "method": _official_method(hp.get("data_mode"), model.config.num_heads),
        }
    full = {**derived, **overrides, "source_checkpoint": Path(path).name}
    return export_backbone(model.backbone.state_dict(), out, full)

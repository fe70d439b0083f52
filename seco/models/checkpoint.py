"""Import of the official SeCo checkpoints, and export of a pre-trained backbone.

Official checkpoints (``ServiceNow/seasonal-contrast``, PyTorch Lightning 1.1) are ``torch.save``d dicts
``{"state_dict": ..., "hyper_parameters": ..., "global_step": ...}`` whose state dict names the query encoder
``encoder_q.<i>.*`` with ``encoder_q = nn.Sequential(conv1, bn1, relu, maxpool, layer1, layer2, layer3,
layer4, avgpool, Flatten)`` of a torchvision ResNet (so index 0 = conv1, 1 = bn1, 4..7 = layer1..layer4),
the heads ``heads_q.<h>.{0,2}.*``, the key side ``encoder_k.*`` / ``heads_k.*``, and ``queue``
(heads, dim, K) / ``queue_ptr`` (heads, 1). They are read without executing pickled code: first with
``torch.load(weights_only=True)``; when Lightning objects (callback classes, ``AttributeDict``) stop that, with
a restricted unpickler that replaces every class outside a small allow-list by an inert placeholder.

An exported backbone is three files sharing a stem:

- ``<out>.safetensors``: the ResNet state dict without ``fc`` (keys as torchvision's ``resnet18/50()``).
- ``<out>.pth``: the same tensors as a plain ``torch.save``d dict.
- ``<out>.json``: metadata (bands in order, normalisation mean/std, input size, method, training steps,
  backbone, seco version, format version, sha256 of the two weight files).

Loading elsewhere: ``torchvision.models.resnet18()`` (after replacing ``conv1`` when the band count is not 3)
and ``timm.create_model("resnet18", in_chans=C)`` take it with ``load_state_dict(sd, strict=False)``, whose
only missing keys are ``fc.weight`` / ``fc.bias``; ``timm.create_model(..., num_classes=0)`` takes it strictly.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as st_load_file
from safetensors.torch import save_file as st_save_file
from torch import Tensor

import seco
from seco.bands import parse_bands
from seco.errors import CheckpointError, SecoError
from seco.fileutil import file_sha256
from seco.models.resnet import ARCHS, ResNet
from seco.models.seco import ContrastiveConfig, ContrastiveModel

#: Version of the exported-backbone format (``<out>.json`` ``format_version``).
FORMAT_VERSION = 1
EXPORT_FORMAT = "seco-backbone"
EXPORT_SUFFIXES = (".safetensors", ".pth", ".json")
#: Keys the caller's ``meta`` must give to :func:`export_backbone`.
REQUIRED_META = ("bands", "normalization", "input_size", "method", "training_steps")

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
_OFFICIAL_METHOD = {"seco": "seco", "moco": "moco", "moco_tp": "moco-tp"}


# ---------------------------------------------------------------- reading torch files safely


def _placeholder(qualname: str) -> type:
    """An inert stand-in for a class that is not on the allow-list (it never runs the original code)."""
    module, _, name = qualname.rpartition(".")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_args"] = args
        self.__dict__.update(kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = state[0] if isinstance(state[0], dict) else state[1]
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("_items", {})[key] = value

    return type(
        name or qualname,
        (),
        {
            "__module__": module,
            "__init__": __init__,
            "__setstate__": __setstate__,
            "__setitem__": __setitem__,
            "_seco_placeholder": qualname,
        },
    )


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"),
    ("torch", "device"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals; anything else becomes an inert placeholder class."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return _placeholder(f"{module}.{name}")


_restricted_pickle = types.ModuleType("seco_restricted_pickle")
_restricted_pickle.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
_restricted_pickle.load = lambda f, **kw: _RestrictedUnpickler(f, **kw).load()  # type: ignore[attr-defined]
_restricted_pickle.__dict__["UnpicklingError"] = pickle.UnpicklingError


def _plain(obj: Any) -> Any:
    """Placeholders -> dicts of their state, recursively (for hparams made of Lightning/argparse objects)."""
    if hasattr(type(obj), "_seco_placeholder"):
        d = {k: v for k, v in obj.__dict__.items() if k not in ("_args", "_items", "_state")}
        d.update(obj.__dict__.get("_items", {}))
        return {k: _plain(v) for k, v in d.items()}
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def read_torch_file(path: str | Path) -> Any:
    """``torch.load`` on CPU without executing pickled code.

    Raises:
        CheckpointError: the file is missing, truncated or not a torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; check the path")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # objects beyond plain tensors/containers (Lightning callbacks, AttributeDict): try restricted
    except Exception as e:  # torch raises many types for a damaged file
        raise CheckpointError(
            f"cannot read {str(path)!r} as a torch file ({type(e).__name__}: {e}); "
            "the file is truncated or not a checkpoint, download it again"
        ) from e
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle)
    except Exception as e:
        raise CheckpointError(
            f"cannot read {str(path)!r} as a torch file ({type(e).__name__}: {e}); "
            "the file is truncated or not a checkpoint, download it again"
        ) from e


# ---------------------------------------------------------------- official checkpoint -> ContrastiveModel


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
    if hp.get("base_encoder", backbone) != backbone:
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
    else:
        queue_size = int(hp.get("num_negatives", 16384))  # the official default
    try:
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
    except SecoError as e:
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
    hp = _plain(ckpt.get("hyper_parameters", ckpt.get("hparams", {})))
    hp = dict(hp) if isinstance(hp, Mapping) else {}
    if isinstance(ckpt.get("global_step"), int):
        hp.setdefault("global_step", ckpt["global_step"])
    try:
        model = model_from_official(ckpt["state_dict"], hp)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from e
    return model, hp


# ---------------------------------------------------------------- export


def _stem(path: str | Path) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in EXPORT_SUFFIXES else p


def _with(stem: Path, suffix: str) -> Path:
    return stem.parent / (stem.name + suffix)




def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    tmp.write_bytes(data)
    os.replace(tmp, path)


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
    for name in ARCHS:
        with torch.device("meta"):
            ref = ResNet(name, in_chans, num_classes=0).state_dict()
        if ref.keys() == sd.keys() and all(tuple(ref[k].shape) == tuple(sd[k].shape) for k in ref):
            return name, in_chans
    raise CheckpointError(
        f"state dict with {len(sd)} tensors matches neither resnet18 nor resnet50 (keys or shapes differ); "
        "export the query encoder ContrastiveModel.backbone"
    )


def _check_meta(meta: Mapping[str, Any], name: str, in_chans: int) -> dict[str, Any]:
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(f"export metadata lacks {missing}; give {list(REQUIRED_META)}")
    m = dict(meta)
    try:
        m["bands"] = list(parse_bands(list(m["bands"])))
    except SecoError as e:
        raise CheckpointError(f"export metadata bands {meta['bands']!r}: {e}") from e
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
        if list(norm.get("bands", m["bands"])) != m["bands"]:
            raise CheckpointError(
                f"normalization bands {norm['bands']} differ from the model's bands {m['bands']}"
            )
        for k in ("mean", "std"):
            vals = [float(v) for v in norm[k]]
            if len(vals) != in_chans:
                raise CheckpointError(
                    f"normalization {k} has {len(vals)} values, expected {in_chans} (one per band)"
                )
            norm[k] = vals
        if any(v <= 0 for v in norm["std"]):
            raise CheckpointError(f"normalization std {norm['std']} must be > 0 for every band")
        m["normalization"] = norm
    if not isinstance(m["input_size"], int) or m["input_size"] < 1:
        raise CheckpointError(f"export metadata input_size must be a positive int, got {m['input_size']!r}")
    steps = m["training_steps"]
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 0):
        raise CheckpointError(f"export metadata training_steps must be an int >= 0 or None, got {steps!r}")
    if m.get("backbone", name) != name:
        raise CheckpointError(f"export metadata says backbone {m['backbone']!r} but the weights are a {name}")
    return m


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
            ``input_size``, ``method`` and ``training_steps`` (int or None); extra JSON-serialisable keys are
            kept. ``format``, ``format_version``, ``seco_version``, ``backbone`` (checked against the weights
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
        "feature_dim": 512 * (4 if name == "resnet50" else 1),
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
    tmp = st_path.parent / f".{st_path.name}.tmp-{os.getpid()}"
    st_save_file(sd, str(tmp), metadata={"format": "pt", "seco_meta": meta_json})
    os.replace(tmp, st_path)
    buf = io.BytesIO()
    torch.save(sd, buf)
    _atomic_write(pth_path, buf.getvalue())
    full["files"] = {
        "safetensors": {"name": st_path.name, "sha256": file_sha256(st_path)},
        "pth": {"name": pth_path.name, "sha256": file_sha256(pth_path)},
    }
    _atomic_write(json_path, (json.dumps(full, indent=2, sort_keys=True) + "\n").encode())
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
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{str(json_path)!r} has format_version {meta['format_version']}, newer than "
            f"this seco ({FORMAT_VERSION}); upgrade seco"
        )
    expected = meta.get("files", {}).get(use, {}).get("sha256")
    if expected is not None and file_sha256(w_path) != expected:
        raise CheckpointError(
            f"{str(w_path)!r} does not match the sha256 in {json_path.name}; the file is "
            "damaged or was replaced, export again"
        )
    if use == "pth":
        sd = read_torch_file(w_path)
        if not isinstance(sd, Mapping) or not all(isinstance(v, Tensor) for v in sd.values()):
            raise CheckpointError(f"{str(w_path)!r} is not a state dict of tensors")
        sd = dict(sd)
    else:
        try:
            sd = st_load_file(str(w_path))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"cannot read {str(w_path)!r}: {e}") from e
    name, in_chans = backbone_arch(sd)
    with torch.device("meta"):
        order = list(ResNet(name, in_chans, num_classes=0).state_dict())
    sd = {k: sd[k] for k in order}  # torchvision's order (safetensors stores keys sorted)
    if (name, in_chans) != (meta.get("backbone"), meta.get("in_chans")):
        raise CheckpointError(
            f"{str(w_path)!r} holds a {name} with {in_chans} bands but the sidecar says "
            f"{meta.get('backbone')} with {meta.get('in_chans')}"
        )
    return sd, meta


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
        "method": _OFFICIAL_METHOD.get(str(hparams.get("data_mode")), "seco" if num_heads == 3 else "moco"),
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
            "method": "seco" if model.config.num_heads == 3 else "moco",
        }
    full = {**derived, **overrides, "source_checkpoint": Path(path).name}
    return export_backbone(model.backbone.state_dict(), out, full)

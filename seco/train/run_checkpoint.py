"""The ``<run>/last.ckpt`` of ``seco pretrain``: its schema, written as plain types, read without executing code,
validated.

Schema (:func:`run_state` builds it, :func:`read_run_checkpoint` checks it): ``format`` (``seco-pretrain``),
``version`` (1), ``seco_version``, ``config`` (the settled :class:`PretrainConfig`), ``step``, ``model``,
``optimizer``, ``scheduler``, ``sampler`` (state dicts), ``bands``, ``normalization``, ``num_locations``,
``loss`` (the last step's), ``corrupt_locations`` (skipped damaged locations, run state) and ``store`` (the
identity of the data it trains on, :func:`seco.store.identity.store_identity`; absent in checkpoints of
earlier releases).

Writing (:func:`save_run_checkpoint`): the dict is passed through :func:`seco.models.safe_load.to_safe`
(only tensors, dicts, lists, tuples, sets, numbers, strings, bytes), so ``torch.load(weights_only=True)``
reads it; the file is written through :func:`seco.fileutil.atomic_open` (a temporary file beside it, fsynced
and renamed), so a kill leaves the previous one.

Reading (:func:`read_run_checkpoint`): :func:`seco.models.safe_load.read_torch_file` (``weights_only=True``;
the restricted unpickler for older files holding other objects; never full pickle), then every entry that
``--resume`` and ``seco export`` use is checked for presence and type, so a damaged or hand-made file is one
:class:`CheckpointError` naming the file, the entry and what to do -- never a ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seco import __version__
from seco.backbones import backbone_names
from seco.bands import parse_bands
from seco.errors import CheckpointError, SecoError
from seco.fileutil import atomic_open
from seco.methods import method_names
from seco.models.contrastive import ContrastiveModel
from seco.models.safe_load import read_torch_file, to_safe
from seco.train.config import PretrainConfig
from seco.train.model import build_model

CKPT_FORMAT = "seco-pretrain"
CKPT_VERSION = 1

#: What the user can do about a run checkpoint that is damaged or not one.
FIX = "use an intact copy of the run's last.ckpt, or start a new run with another --out"


def save_run_checkpoint(obj: Mapping[str, Any], path: Path) -> None:
    """Write ``obj`` atomically so that the safe loader reads it back.

    Raises:
        CheckpointError: an entry of a type the safe loader could not read (named by its key).
    """
    safe = to_safe(obj, "checkpoint")
    with atomic_open(path, "wb") as f:
        torch.save(safe, f)


def run_state(
    cfg: PretrainConfig,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    sampler: Any,
    bands: tuple[str, ...],
    normalization: Mapping[str, Any],
    num_locations: int,
    loss: float,
    corrupt_locations: list[dict[str, Any]],
    store: Mapping[str, Any],
) -> dict[str, Any]:
    """The checkpoint dict of a run at ``step`` (everything ``--resume`` and ``seco export`` need)."""
    return {
        "format": CKPT_FORMAT,
        "version": CKPT_VERSION,
        "seco_version": __version__,
        "config": cfg.to_dict(),
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "sampler": sampler.state_dict(),
        "bands": list(bands),
        "normalization": dict(normalization),
        "num_locations": num_locations,
        "loss": loss,
        "corrupt_locations": corrupt_locations,
        "store": dict(store),
    }


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training checkpoint without executing code, and check it is whole and fits its own config.

    Raises:
        CheckpointError: naming the file, what is wrong with it and what to do.
    """
    ckpt, cfg = read_run_checkpoint(path, CKPT_FORMAT, CKPT_VERSION)
    with torch.device("meta"):  # shapes only: the model the run builds from this config
        reference = build_model(cfg, len(ckpt["bands"]))
    check_model_fits(ckpt, path, reference)
    return ckpt


def _bad(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {str(path)!r} is damaged: {what}; {FIX}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def read_run_checkpoint(
    path: Path, fmt: str = CKPT_FORMAT, version: int = CKPT_VERSION
) -> tuple[dict[str, Any], PretrainConfig]:
    """Read and validate a pre-training checkpoint.

    Args:
        path: the ``last.ckpt``.
        fmt: the expected ``format`` entry.
        version: the checkpoint version this seco reads.

    Returns:
        The checkpoint dict and its parsed configuration.

    Raises:
        CheckpointError: a missing/unreadable file, another kind of file or checkpoint, another version, or a
            missing or mistyped entry.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"checkpoint {str(path)!r} is a directory; pass the last.ckpt file inside a seco pretrain run"
        )
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not exist; pass the last.ckpt of a seco pretrain run"
        )
    ckpt = read_torch_file(path, fix=FIX)
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        found = sorted(map(str, ckpt))[:6] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise CheckpointError(
            f"{str(path)!r} is not a seco pre-training checkpoint (no format={fmt!r}; found {found}); pass "
            "the last.ckpt of a seco pretrain run, and for the paper's checkpoints use `seco export --from-official`"
        )
    if ckpt.get("version") != version:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has version {ckpt.get('version')!r}, this seco reads version {version}; "
            "use the seco version that wrote it"
        )
    need = ("config", "step", "model", "optimizer", "scheduler", "sampler", "bands", "normalization")
    missing = [k for k in need if k not in ckpt]
    if missing:
        raise _bad(path, f"it lacks {missing}")
    if not isinstance(ckpt["config"], dict):
        raise _bad(path, f"'config' is a {type(ckpt['config']).__name__}, not a dict")
    _check_registered(ckpt["config"], path)
    try:
        cfg = PretrainConfig.from_dict(dict(ckpt["config"]))
    except (SecoError, TypeError, ValueError) as e:
        raise _bad(path, f"its 'config' is invalid ({e})") from e
    _check_entries(ckpt, path)
    return ckpt, cfg


def _check_registered(config: Mapping[str, Any], path: Path) -> None:
    """A checkpoint of a method or backbone this process does not know is not damaged: say what to register."""
    for key, known in (("method", method_names()), ("backbone", backbone_names())):
        name = config.get(key)
        if isinstance(name, str) and name not in known:
            raise CheckpointError(
                f"checkpoint {str(path)!r} was trained with {key} {name!r}, which is not registered here (known: "
                f"{', '.join(known)}); name the module that registers it in SECO_PLUGINS (see docs/PRETRAINING.md)"
            )


def _check_entries(ckpt: Mapping[str, Any], path: Path) -> None:
    """Every entry ``--resume`` and ``seco export`` use has the type they expect (CheckpointError if not)."""
    step = ckpt["step"]
    if not _is_int(step) or step < 0:
        raise _bad(path, f"'step' is {step!r}, not an int >= 0")
    model = ckpt["model"]
    if not isinstance(model, Mapping) or not model:
        raise _bad(path, f"'model' is a {type(model).__name__}, not a state dict")
    wrong = [str(k) for k, v in model.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if wrong:
        raise _bad(path, f"'model' entries {wrong[:3]} are not tensors")
    bands = ckpt["bands"]
    if not isinstance(bands, list) or not all(isinstance(b, str) for b in bands):
        raise _bad(path, f"'bands' is {bands!r}, not a list of band names")
    try:
        parse_bands(bands)
    except SecoError as e:
        raise _bad(path, f"'bands' {bands!r} are invalid ({e})") from e
    norm = ckpt["normalization"]
    if not isinstance(norm, Mapping) or not all(
        isinstance(norm.get(k), list) and len(norm[k]) == len(bands) for k in ("mean", "std")
    ):
        raise _bad(path, f"'normalization' is not a dict with a mean and a std per band ({len(bands)})")
    opt = ckpt["optimizer"]
    if (
        not isinstance(opt, Mapping)
        or not isinstance(opt.get("state"), Mapping)
        or not isinstance(opt.get("param_groups"), list)
        or not all(isinstance(g, Mapping) and isinstance(g.get("params"), list) for g in opt["param_groups"])
    ):
        raise _bad(path, "'optimizer' is not an optimizer state dict (state, param_groups with params)")
    if not isinstance(ckpt["scheduler"], Mapping):
        raise _bad(path, f"'scheduler' is a {type(ckpt['scheduler']).__name__}, not a dict")
    sampler = ckpt["sampler"]
    if not isinstance(sampler, Mapping) or not all(_is_int(sampler.get(k)) for k in ("epoch", "position")):
        raise _bad(path, "'sampler' is not a sampler state (int epoch and position)")
    bad = ckpt.get("corrupt_locations", [])  # locations skipped with --on-corrupt skip (run state)
    if not isinstance(bad, list) or not all(isinstance(r, Mapping) and _is_int(r.get("location")) for r in bad):
        raise _bad(path, "'corrupt_locations' is not a list of records with an int 'location'")


def check_model_fits(ckpt: Mapping[str, Any], path: Path, reference: ContrastiveModel) -> None:
    """Check the checkpoint's model and optimizer state against the model its config builds.

    Args:
        ckpt: a checkpoint from :func:`read_run_checkpoint`.
        path: its file, for messages.
        reference: the model the run builds from the checkpoint's config (on the meta device: shapes only).

    Raises:
        CheckpointError: missing/unexpected keys, tensors of another shape, or optimizer state for another
            number of parameters.
    """
    want = reference.state_dict()
    got = ckpt["model"]
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    if missing or extra:
        raise _bad(path, f"its model does not match its config: missing {missing[:3]}, unexpected {extra[:3]}")
    shape = [k for k in want if tuple(got[k].shape) != tuple(want[k].shape)]
    if shape:
        k = shape[0]
        raise _bad(
            path, f"model entry {k!r} has shape {tuple(got[k].shape)}, its config gives {tuple(want[k].shape)}"
        )
    params = reference.query_parameters()  # what the loop's optimizer trains, in its order
    groups = ckpt["optimizer"]["param_groups"]
    n = sum(len(g["params"]) for g in groups)
    if n != len(params):
        raise _bad(path, f"its optimizer state is for {n} parameters, the model has {len(params)}")
    ids = [i for g in groups for i in g["params"]]
    for i, st in ckpt["optimizer"]["state"].items():
        if i not in ids or not isinstance(st, Mapping):
            raise _bad(path, f"its optimizer state has an entry {i!r} that is no parameter of the model")
        buf = st.get("momentum_buffer")
        p = params[ids.index(i)]
        if buf is not None and (not isinstance(buf, Tensor) or tuple(buf.shape) != tuple(p.shape)):
            raise _bad(path, f"its optimizer momentum for parameter {i} does not have the parameter's shape")

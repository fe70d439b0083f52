"""Reading torch files that may come from elsewhere, without ever executing pickled code.

A ``torch.save`` file is a pickle: loading it with ``torch.load(weights_only=False)`` runs whatever callables
the pickle names (``os.system`` included). seco never does that. :func:`read_torch_file` reads

1. with ``torch.load(weights_only=True)``: tensors, dicts, lists, tuples, sets, numbers, strings, bytes,
   dtypes, devices and ``torch.Size`` only (everything seco writes itself since checkpoint version 1 is made
   of these, see :func:`to_safe`);
2. when that refuses the file (an older seco checkpoint, a PyTorch Lightning checkpoint with callback
   classes or ``AttributeDict`` hyper-parameters), with a restricted unpickler: the globals in
   :data:`ALLOWED_GLOBALS` resolve to the real thing, every other class or function becomes an inert
   placeholder whose construction only records its arguments. Nothing named in the pickle is ever called.
   Only the zip format of PyTorch >= 1.6 gets this second chance (never TorchScript archives, legacy tar
   files or bare pickles).

Anything else -- a missing, empty, truncated or foreign file, a directory -- is a :class:`CheckpointError`
that names the file, what it looks like and what to do.
"""

from __future__ import annotations

import dataclasses
import pickle
import types
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from seco.errors import CheckpointError

#: Globals the restricted unpickler resolves to the real object; everything else becomes a placeholder.
ALLOWED_GLOBALS = frozenset(
    {
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
)
#: Leaf types :func:`to_safe` keeps as they are (``torch.load(weights_only=True)`` reads each of them).
SAFE_LEAVES = (str, bytes, bytearray, bool, int, float, complex, type(None), torch.Tensor, torch.dtype,
               torch.device, torch.Size)
_MSG_MAX = 160  # characters of a library's own error message quoted in ours


def _placeholder(qualname: str) -> type:
    """An inert stand-in for a class that is not on the allow-list (it never runs the original code)."""
    module, _, name = qualname.rpartition(".")

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_args"] = args
        self.__dict__.update(kwargs)

    def __setstate__(self: Any, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = state[0] if isinstance(state[0], dict) else state[1]
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __setitem__(self: Any, key: Any, value: Any) -> None:
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


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals; anything else becomes an inert placeholder class."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return _placeholder(f"{module}.{name}")


_restricted_pickle = types.ModuleType("seco_restricted_pickle")
_restricted_pickle.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
_restricted_pickle.load = lambda f, **kw: _RestrictedUnpickler(f, **kw).load()  # type: ignore[attr-defined]
_restricted_pickle.__dict__["UnpicklingError"] = pickle.UnpicklingError


def is_placeholder(obj: Any) -> bool:
    """True for an object the restricted unpickler made in place of a class it would not import."""
    return hasattr(type(obj), "_seco_placeholder")


def plain(obj: Any) -> Any:
    """Placeholders -> dicts of their state, recursively (for hparams made of Lightning/argparse objects)."""
    if is_placeholder(obj):
        d = {k: v for k, v in obj.__dict__.items() if k not in ("_args", "_items", "_state")}
        d.update(obj.__dict__.get("_items", {}))
        return {k: plain(v) for k, v in d.items()}
    if isinstance(obj, Mapping):
        return {k: plain(v) for k, v in obj.items()}
    return obj


def _short(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    msg = msg if len(msg) <= _MSG_MAX else msg[: _MSG_MAX - 3] + "..."
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def describe_file(path: Path) -> str | None:
    """What a file that is not a torch checkpoint looks like, from its first bytes; None when it may be one."""
    if path.is_dir():
        return "a directory"
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as e:
        return f"unreadable ({_short(e)})"
    if not head:
        return "an empty file (0 bytes)"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return None  # a damaged zip: torch's own error says more
        if any(n.endswith("constants.pkl") for n in names):
            return "a TorchScript archive (torch.jit.save), which seco does not load"
        if not any(n.endswith("data.pkl") for n in names):
            if names and all(n.endswith(".npy") for n in names):
                return "a NumPy .npz archive"
            return f"a zip archive without a torch data.pkl (it holds {names[:3]})"
        return None
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (e.g. Keras weights)"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return "a safetensors file (load it with safetensors, or give it where a .safetensors is expected)"
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON/text file"
    if head[:1] == b"\x80" or head[:1] in (b"(", b"]", b"}"):
        return None  # a pickle (legacy torch.save or bare pickle.dump)
    if all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        return "a text file"
    return None


def read_torch_file(path: str | Path, fix: str = "download or copy it again") -> Any:
    """``torch.load`` on CPU without executing pickled code (see the module docstring).

    Args:
        path: the file.
        fix: what the user should do about a damaged or foreign file (ends every error message).

    Raises:
        CheckpointError: the file is missing, a directory, empty, truncated, another format, or a pickle that
            needs more than the restricted unpickler allows.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; check the path")
    looks = describe_file(path)
    if looks is not None:
        raise CheckpointError(f"{str(path)!r} is not a torch checkpoint: it is {looks}; {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = e  # objects beyond plain tensors/containers (old seco, Lightning): maybe restricted
    except Exception as e:  # noqa: BLE001 - torch raises many types (OSError, EOFError, RuntimeError) on damage
        raise CheckpointError(
            f"cannot read {str(path)!r} as a torch file ({_short(e)}); "
            f"it is corrupt, truncated or not a checkpoint; {fix}"
        ) from e
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{str(path)!r} is a bare or pre-1.6 pickle holding objects beyond tensors and containers "
            f"({_short(refused)}); seco loads such objects only from torch zip files and never runs pickled "
            f"code. Re-save the tensors with torch.save(state_dict) in a trusted environment, or {fix}"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle)
    except Exception as e:  # noqa: BLE001 - any failure here is a damaged or hostile file
        raise CheckpointError(
            f"cannot read {str(path)!r} as a torch file ({_short(e)}); "
            f"it is corrupt, truncated or not a checkpoint; {fix}"
        ) from e


def to_safe(obj: Any, where: str = "checkpoint") -> Any:
    """A copy of ``obj`` made only of types ``torch.load(weights_only=True)`` reads.

    Dicts, lists, tuples and sets are rebuilt recursively; NumPy scalars become Python numbers, NumPy arrays
    tensors, paths strings and dataclass instances dicts. Tensors are kept as they are (not copied).

    Args:
        obj: what is about to be ``torch.save``d.
        where: the name of ``obj`` in error messages (keys are appended, e.g. ``checkpoint.config.extra``).

    Raises:
        CheckpointError: for any other type (naming where it is), since a safe loader could not read it back.
    """
    if isinstance(obj, SAFE_LEAVES):
        return obj
    if isinstance(obj, Mapping):
        pairs = [(k, to_safe(v, f"{where}.{k}")) for k, v in obj.items()]
        if not isinstance(obj, OrderedDict):
            return dict(pairs)
        out = OrderedDict(pairs)
        if hasattr(obj, "_metadata"):  # a module state dict's per-module versions (used by load_state_dict)
            out._metadata = to_safe(obj._metadata, f"{where}._metadata")  # type: ignore[attr-defined]
        return out
    if isinstance(obj, (list, tuple)):
        items = [to_safe(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, (set, frozenset)):
        return {to_safe(v, f"{where}{{}}") for v in obj}
    if type(obj).__module__.partition(".")[0] == "numpy":  # without importing numpy here (models: torch only)
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return torch.from_numpy(np.array(obj, copy=True))
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_safe(dataclasses.asdict(obj), where)
    raise CheckpointError(
        f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}, which a safe loader cannot read back; "
        "store it as numbers, strings, lists, dicts or tensors"
    )

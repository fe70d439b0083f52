"""One way to save and load the configurations of seco's runs (frozen dataclasses). No torch here.

Every configuration class (pre-training, experiment, evaluation, collect) mixes in :class:`ConfigIO`:

- ``to_dict()``: plain types (tuples as lists), what YAML, JSON and checkpoints hold;
- ``from_dict(d, source=...)``: unknown keys refused in one message that names them and the valid ones;
  every value checked against its field's annotation, with the words a command-line flag uses
  (``batch_size: 'eight' is not an integer (in config.yaml)``); lists become tuples where the field is one;
- ``save(path)`` / ``load(path)``: YAML, written through :func:`seco.fileutil.atomic_write`.

Annotations understood: ``int``, ``float`` (ints accepted, made floats), ``str``, ``bool``, ``None`` in
unions (``int | None``, ``int | str``), ``tuple[X, ...]``, ``dict[K, V]``, ``Any`` and plain classes.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import re
import reprlib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

import yaml

from seco.errors import ConfigError
from seco.fileutil import atomic_write

#: What a value of each type is called in messages.
_NAMES: dict[Any, tuple[str, str]] = {
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
    bool: ("true or false", "true/false values"),
    type(None): ("null", "nulls"),
}
#: A number with an exponent and no dot (``1e-4``), which YAML 1.1 (PyYAML) reads as text.
_EXPONENT = re.compile(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+")
_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60


class _Mismatch(Exception):
    def __init__(self, name: str, value: Any, tp: Any):
        super().__init__(name)
        self.name, self.value, self.tp = name, value, tp

    def message(self, source: str | None) -> str:
        where = f" (in {source})" if source else ""
        return f"{self.name}: {_repr.repr(self.value)} is not {describe(self.tp)}{where}"


def describe(tp: Any, plural: bool = False) -> str:
    """What values of annotation ``tp`` are, in words: ``int | None`` -> ``"an integer or null"``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a, plural) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        of = f" of {describe(args[0], True)}" if args and args[-1] is ... else f" of {len(args)} values"
        return ("lists" if plural else "a list") + of
    if origin is dict or tp is dict:
        return "mappings" if plural else "a mapping"
    if tp in _NAMES:
        return _NAMES[tp][plural]
    name = getattr(tp, "__name__", str(tp))
    return f"{name} values" if plural else f"a {name}"


def _convert(tp: Any, value: Any, name: str) -> Any:
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _convert(arg, value, name)
            except _Mismatch:
                continue
        raise _Mismatch(name, value, tp)
    if origin is tuple:
        return _tuple(tp, value, name)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch(name, value, tp)
        kt, vt = typing.get_args(tp) or (Any, Any)
        return {_convert(kt, k, f"{name}.{k}"): _convert(vt, v, f"{name}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
            return float(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch(name, value, tp)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch(name, value, tp)
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch(name, value, tp)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise _Mismatch(name, value, tp)
    return value


def _tuple(tp: Any, value: Any, name: str) -> tuple[Any, ...]:
    args = typing.get_args(tp)
    if not isinstance(value, list | tuple) or (args and args[-1] is not ... and len(args) != len(value)):
        raise _Mismatch(name, value, tp)
    kinds = [args[0]] * len(value) if args and args[-1] is ... else list(args or [Any] * len(value))
    return tuple(_convert(t, v, f"{name}[{i}]") for i, (t, v) in enumerate(zip(kinds, value, strict=True)))


def plain(value: Any) -> Any:
    """``value`` with tuples as lists and mapping keys as strings, recursively (YAML / JSON ready)."""
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    return value


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of every field of a dataclass (do not modify the returned dict)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def check_dict(cls: type, d: Any, *, source: str | None = None, partial: bool = False) -> dict[str, Any]:
    """The keyword arguments of ``cls`` in ``d``, every key known and every value of its field's type.

    Args:
        cls: a dataclass.
        d: a mapping of field names to values (from YAML, JSON, a checkpoint).
        source: where ``d`` was read, named in messages (``"config.yaml"``).
        partial: ``d`` need not give the fields without defaults (a file that the command line completes).

    Raises:
        ConfigError: ``d`` not a mapping, an unknown key, a missing required key or a value of the wrong type.
    """
    where = f" (in {source})" if source else ""
    if not isinstance(d, Mapping):
        raise ConfigError(f"settings{where} must be a mapping of keys to values, got {type(d).__name__}")
    kinds = field_types(cls)
    unknown = sorted(str(k) for k in d if k not in kinds)
    if unknown:
        raise ConfigError(f"unknown configuration key(s) {', '.join(unknown)}{where}; valid keys are "
                          f"{', '.join(sorted(kinds))}")
    if not partial:
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING and f.name not in d]
        if required:
            raise ConfigError(f"missing configuration key(s) {', '.join(required)}{where}")
    try:
        return {k: _convert(kinds[k], v, k) for k, v in d.items()}
    except _Mismatch as e:
        raise ConfigError(e.message(source)) from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file of settings as a dict (keys with dashes or underscores; ``{}`` for an empty file).

    Raises:
        ConfigError: a missing file, invalid YAML, or a document that is not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist; pass an existing YAML file to --config")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of options, got {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def parse_text(tp: Any, text: str) -> Any:
    """A command-line string as a value of annotation ``tp`` (``"none"`` for None where allowed).

    Raises:
        ConfigError: ``'eight' is not an integer``.
    """
    options = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    if type(None) in options and text.strip().lower() in ("none", "null"):
        return None
    for t in options:
        try:
            if t is bool and text.strip().lower() in ("1", "true", "yes", "0", "false", "no"):
                return text.strip().lower() in ("1", "true", "yes")
            if t in (int, float):
                return t(text)
            if t is str:
                return text
        except ValueError:
            continue
    raise ConfigError(f"{text!r} is not {describe(tp)}")


def flag_type(tp: Any) -> Callable[[str], Any]:
    """An argparse ``type=`` for annotation ``tp`` whose message is the one a config file gets:
    ``argument --batch-size: 'eight' is not an integer``."""

    def parse(text: str) -> Any:
        try:
            return parse_text(tp, text)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = describe(tp)
    return parse


class ConfigIO:
    """Mixin of a frozen configuration dataclass: ``to_dict``, ``from_dict``, ``save``, ``load``."""

    def to_dict(self) -> dict[str, Any]:
        """Plain types (tuples as lists): what ``save`` writes and checkpoints hold."""
        return {k: plain(v) for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str | None = None) -> Self:
        """Inverse of :meth:`to_dict`, with the checks of :func:`check_dict` (``source`` names the file)."""
        return cls(**check_dict(cls, d, source=source))

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as YAML, atomically."""
        return atomic_write(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a file that :meth:`save` wrote (or a hand-written one), with the checks of :meth:`from_dict`."""
        return cls.from_dict(load_yaml(path), source=str(path))

"""The pre-training methods: one :class:`Method` record per method, in one registry.

A record names everything a method is: its views (which dates a sample draws, which view each embedding
subspace contrasts with the query, and which views are augmented), the subspaces that take the batch's other
key views as extra negatives, its display name, its name in the official SeCo code's checkpoints, and what the
experiment report shows beside it. The CLI, configs, the training run, the model, the official-checkpoint import
and the experiment report read the registry; none of them spells a method out. Adding a method is one
:func:`register_method` call::

    from seco.methods import Method, View, ViewRecipe, register_method

    register_method(Method(
        name="moco-3d", display="MoCo-v2 (3 dates)",
        views=ViewRecipe(num_dates=3, query=View(0, True), keys=(View(2, True),)),
    ))

A method registered in your own module reaches every ``seco`` command (``seco export`` of its checkpoint,
``seco experiment compare --methods``) when the module is named in ``SECO_PLUGINS`` (comma-separated module
names, imported on first use of the registry) or is an entry point of the ``seco.plugins`` group of an installed
package.

This module is plain data (no torch, no numpy), so everything may import it: the views are *made* by
:func:`seco.data.views.make_views` from a record's :class:`ViewRecipe`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from seco.errors import ConfigError

__all__ = [
    "MOCO",
    "MOCO_TP",
    "Method",
    "SECO",
    "SECO_S12",
    "View",
    "ViewRecipe",
    "get_method",
    "method_names",
    "register_method",
    "unregister_method",
]


@dataclass(frozen=True)
class View:
    """One view: the position of its date among the drawn dates, and its transform.

    Attributes:
        date: index into the drawn dates (0 = t0).
        augmented: True for the full augmentation, False for a random resized crop only.
        sensor: ``"all"`` (every channel of the run's bands), ``"s2"`` or ``"s1"``: the view shows that sensor's
            channels only, the others set to 0 after normalisation (their mean), so one encoder sees the optical
            and the radar image of a place as two views (multi-sensor methods).
    """

    date: int
    augmented: bool
    sensor: str = "all"

    def __post_init__(self) -> None:
        if self.sensor not in ("all", "s2", "s1"):
            raise ConfigError(f"view sensor {self.sensor!r} must be 'all', 's2' or 's1'")


@dataclass(frozen=True)
class ViewRecipe:
    """Which dates a method draws and which views it makes of them.

    Attributes:
        num_dates: dates drawn per sample.
        query: the query view.
        keys: the key views, one per embedding subspace / head.
        name: the method's name (set by :class:`Method`; used in messages).
    """

    num_dates: int
    query: View
    keys: tuple[View, ...]
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(self.keys))
        if self.num_dates < 1 or not self.keys:
            raise ConfigError(f"recipe {self.name!r} needs at least one date and one key view")
        for v in (self.query, *self.keys):
            if not 0 <= v.date < self.num_dates:
                raise ConfigError(
                    f"recipe {self.name!r}: a view uses date {v.date} but only {self.num_dates} are drawn"
                )

    @property
    def num_keys(self) -> int:
        """Number of key views (= embedding subspaces)."""
        return len(self.keys)


@dataclass(frozen=True)
class Method:
    """Everything that defines one pre-training method.

    Attributes:
        name: the key in configs and on the command line (``--method``), lower case.
        display: the name in reports and plots (the paper's).
        views: the view recipe; one embedding subspace (projection head) per key view.
        extra_negatives_heads: subspaces that also take the batch's other key views as negatives (SeCo's heads
            1 and 2, which makes them variant to what those views differ in).
        help: one line for ``seco pretrain --help``.
        official_data_mode: the method's ``data_mode`` in the official code's checkpoints (``None``: not there).
        paper_oscd_f1: the paper's OSCD F1 (Table 4), shown beside the experiment's results (``None``: none).
        colour: its colour in plots (a matplotlib colour).
        sensors: the sensors whose bands the method needs in ``--bands`` (a multi-sensor method: ``("s2", "s1")``);
            empty: any bands.
    """

    name: str
    display: str
    views: ViewRecipe
    extra_negatives_heads: tuple[int, ...] = ()
    help: str = ""
    official_data_mode: str | None = None
    paper_oscd_f1: float | None = None
    colour: str = "tab:olive"
    aliases: tuple[str, ...] = field(default=())
    sensors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip().lower() or "," in self.name:
            raise ConfigError(f"method name {self.name!r} must be non-empty lower case without commas or spaces")
        object.__setattr__(self, "extra_negatives_heads", tuple(self.extra_negatives_heads))
        object.__setattr__(self, "views", ViewRecipe(self.views.num_dates, self.views.query, self.views.keys,
                                                     self.name))
        object.__setattr__(self, "sensors", tuple(self.sensors))
        need = {v.sensor for v in (self.views.query, *self.views.keys)} - {"all"}
        if not need <= set(self.sensors):
            raise ConfigError(f"method {self.name!r}: its views show sensors {sorted(need)}; list them in sensors=")
        bad = [h for h in self.extra_negatives_heads if not 0 <= h < self.num_heads]
        if bad:
            raise ConfigError(
                f"method {self.name!r}: extra_negatives_heads {self.extra_negatives_heads} name heads outside "
                f"0..{self.num_heads - 1} (one head per key view)"
            )

    @property
    def num_heads(self) -> int:
        """Embedding subspaces (projection heads): one per key view."""
        return self.views.num_keys

    @property
    def num_dates(self) -> int:
        """Dates a sample draws (a location needs this many valid dates)."""
        return self.views.num_dates


#: SeCo: q = crop(t0), k0 = aug(t1), k1 = crop(t2), k2 = aug(t0); heads 1 and 2 take extra negatives.
SECO = Method(
    name="seco", display="SeCo",
    views=ViewRecipe(3, View(0, False), (View(1, True), View(2, False), View(0, True))),
    extra_negatives_heads=(1, 2),
    help="Seasonal Contrast: 3 subspaces, invariant to season and augmentation, season, augmentation",
    official_data_mode="seco", paper_oscd_f1=46.94, colour="tab:green",
)
#: MoCo-v2: two augmentations of one date.
MOCO = Method(
    name="moco", display="MoCo-v2", views=ViewRecipe(1, View(0, True), (View(0, True),)),
    help="MoCo-v2: two augmentations of one date", official_data_mode="moco", paper_oscd_f1=40.71,
    colour="tab:blue",
)
#: MoCo-v2 + temporal positives: an augmentation of each of two dates.
MOCO_TP = Method(
    name="moco-tp", display="MoCo-v2+TP", views=ViewRecipe(2, View(0, True), (View(1, True),)),
    help="MoCo-v2 with temporal positives: an augmentation of each of two dates", official_data_mode="moco_tp",
    paper_oscd_f1=40.12, colour="tab:purple", aliases=("moco_tp",),
)

#: Multi-sensor SeCo (docs/PRETRAINING.md, "Multi-sensor SeCo"): SeCo's three subspaces plus one for the sensor.
#: q = optical crop(t0); k0 = radar aug(t1) (differs in season, augmentation and sensor: the invariant subspace),
#: k1 = optical crop(t2) (season), k2 = optical aug(t0) (augmentation), k3 = radar crop(t0) (sensor only: S1 and
#: S2 of the same place and date are positives there). Heads 1-3 take the other keys as extra negatives, so each
#: is invariant to its factor and variant to the others, as SeCo's heads are.
SECO_S12 = Method(
    name="seco-s12", display="SeCo-S12",
    views=ViewRecipe(3, View(0, False, "s2"), (View(1, True, "s1"), View(2, False, "s2"), View(0, True, "s2"),
                                                View(0, False, "s1"))),
    extra_negatives_heads=(1, 2, 3),
    help="multi-sensor SeCo (needs --bands s1+s2): SeCo's subspaces plus a sensor subspace where S1 and S2 of "
         "one place and date are positives",
    colour="tab:red", sensors=("s2", "s1"),
)

_REGISTRY: dict[str, Method] = {}
_ALIASES: dict[str, str] = {}


_plugins_loaded = False


def load_plugins() -> None:
    """Import the modules named in ``SECO_PLUGINS`` and the ``seco.plugins`` entry points (once per process):
    they register their methods and backbones on import.

    Raises:
        ConfigError: a module that cannot be imported (named, with the error).
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import importlib
    import os
    from importlib.metadata import entry_points

    names = [n.strip() for n in os.environ.get("SECO_PLUGINS", "").split(",") if n.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ConfigError(f"SECO_PLUGINS names {name!r}, which cannot be imported ({e}); fix the name or "
                              "PYTHONPATH") from e
    for ep in entry_points(group="seco.plugins"):
        ep.load()


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the registry (every command, config and report then knows it).

    Raises:
        ConfigError: a method of that name (or alias) is registered and ``replace`` is False.
    """
    taken = [n for n in (method.name, *method.aliases) if (n in _REGISTRY or n in _ALIASES)
             and _ALIASES.get(n, n) != method.name]
    if not replace and (method.name in _REGISTRY or taken):
        raise ConfigError(f"a method named {method.name!r} is already registered; pass replace=True to redefine it")
    _REGISTRY[method.name] = method
    for a in method.aliases:
        _ALIASES[a] = method.name
    return method


def unregister_method(name: str) -> None:
    """Remove a registered method (tests that register their own)."""
    m = _REGISTRY.pop(name, None)
    for a in m.aliases if m is not None else ():
        _ALIASES.pop(a, None)


def method_names() -> tuple[str, ...]:
    """The registered methods' names, in registration order."""
    load_plugins()
    return tuple(_REGISTRY)


def get_method(name: str) -> Method:
    """The record of a method name (case-insensitive; aliases such as ``moco_tp`` accepted).

    Raises:
        ConfigError: the name is not registered (the message lists the registered ones).
    """
    load_plugins()
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ConfigError(
            f"unknown pre-training method {name!r}; choose one of {', '.join(_REGISTRY)} (a method of your own: "
            "name the module that registers it in SECO_PLUGINS)"
        )
    return _REGISTRY[key]


for _m in (SECO, MOCO, MOCO_TP, SECO_S12):
    register_method(_m)

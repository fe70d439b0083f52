"""The configuration of ``seco experiment compare``: one store, one budget, every method, several seeds.

A :class:`CompareConfig` is saved as ``<out>/experiment.yaml``; a rerun into the same folder must give the
same settings (or it is refused), and then continues: finished (method, seed) cells are not redone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seco.configio import ConfigIO
from seco.errors import ConfigError
from seco.methods import get_method, method_names

#: The random-initialisation baseline a comparison can include beside the registered pre-training methods.
RANDOM = "random"
#: ``--sensors``: ``s2`` (the paper's comparison) or ``s1+s2`` (:mod:`seco.experiment.multisensor`).
SENSOR_MODES = ("s2", "s1+s2")
#: The arms (``method@bands``) of ``--sensors s1+s2`` when ``--methods`` is not given.
S12_METHODS = ("seco@s2", "seco@s1", "seco@s1+s2", "seco-s12@s1+s2", RANDOM)


def compared_methods() -> tuple[str, ...]:
    """What an experiment can compare: every registered pre-training method, then the random-init baseline."""
    return (*method_names(), RANDOM)


def default_methods() -> tuple[str, ...]:
    """What a comparison runs when ``--methods`` is not given: the single-sensor methods (they train on any
    bands) and the random-init baseline; multi-sensor methods (``Method.sensors``) are named explicitly."""
    return (*(m for m in method_names() if not get_method(m).sensors), RANDOM)


def display_name(method: str) -> str:
    """A method's name in reports (the paper's: SeCo, MoCo-v2, MoCo-v2+TP; "random init"); an arm
    ``method@bands`` of ``--sensors s1+s2`` adds its bands: "SeCo (S1+S2)"."""
    name, _, bands = method.partition("@")
    base = "random init" if name == RANDOM else get_method(name).display
    return f"{base} ({bands.upper()})" if bands else base


def colour(method: str) -> str:
    """A method's colour in plots."""
    name = method.partition("@")[0]
    return "tab:gray" if name == RANDOM else get_method(name).colour


@dataclass(frozen=True)
class CompareConfig(ConfigIO):
    """Everything that defines one comparison (the ``--scale`` presets fill the sizes).

    Attributes:
        out: the experiment folder.
        store: the pre-training store; None: a simulated store ``<out>/store`` of ``synth_locations`` x
            ``synth_patch`` px (L2A bands), made once.
        methods: any of :func:`compared_methods` (default: :func:`default_methods`, the single-sensor ones and
            random init).
        seeds: number of seeds per method (seeds ``seed0 .. seed0 + seeds - 1``).
        seed0: the first seed.
        steps, batch_size, crop, bands, queue_size, lr: the one pre-training budget every method gets
            (ResNet-18, cosine schedule, the paper's other hyper-parameters).
        synth_locations, synth_patch: the simulated pre-training store when ``store`` is None.
        probe_locations, probe_patch: the labelled simulated land-cover store of the linear probe.
        cd_cities, cd_size, cd_epochs, cd_patch, cd_batch: the simulated change-detection data and schedule.
        eurosat: EuroSAT MS folder for a real land-cover probe ("" : none).
        oscd: OSCD folder for real change detection ("" : none).
        oscd_test: the labelled OSCD city held out for testing; the other labelled cities train.
        oscd_epochs: the decoder epochs on OSCD (paper: 100; the sample's two train cities make one step of
            32 patches per epoch).
        normalization: the one policy for every backbone in every task: ``data`` (statistics of the
            evaluation data's training part, the only policy random init can have).
        subspaces: also score the backbone and each projection head of the pre-trained methods
            (:mod:`seco.experiment.subspaces`).
        device: ``auto``, ``cpu``, ``cuda``.
        progress: progress bars.
        sensors: ``s2`` (the paper's comparison) or ``s1+s2`` (:mod:`seco.experiment.multisensor`: an S1 + S2
            store, ``method@bands`` arms, land-cover probes on S2-only, S1-only and S1 + S2 inputs and the
            cloudy-optics task instead of change detection, EuroSAT, OSCD and the subspaces).
        s12_change: with ``s1+s2``, also change detection on simulated S1 + S2 city pairs with floods, with
            0 %, 50 % and 100 % of the cities' second S2 date overcast (``cd_*`` sizes; about 3x a probe
            run's time, so off by default); a rerun with it adds the task to finished cells.
    """

    out: str
    store: str | None = None
    methods: tuple[str, ...] = field(default_factory=default_methods)
    seeds: int = 3
    seed0: int = 0
    steps: int = 40
    batch_size: int = 16
    crop: int = 64
    bands: str = "all"
    queue_size: int = 512
    lr: float = 0.03
    synth_locations: int = 192
    synth_patch: int = 64
    probe_locations: int = 384
    probe_patch: int = 64
    cd_cities: int = 6
    cd_size: int = 160
    cd_epochs: int = 10
    cd_patch: int = 64
    cd_batch: int = 16
    eurosat: str = ""
    oscd: str = ""
    oscd_test: str = "rennes"
    oscd_epochs: int = 20
    normalization: str = "data"
    subspaces: bool = True
    device: str = "auto"
    progress: bool = True
    sensors: str = "s2"
    s12_change: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(str(m).strip().lower() for m in self.methods))
        known = compared_methods()
        unknown = [m for m in self.methods if m.partition("@")[0] not in known]
        checks: list[tuple[bool, str]] = [
            (not unknown, f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(known)}"),
            (len(self.methods) > 0, f"--methods is empty; choose some of {', '.join(known)}"),
            (len(set(self.methods)) == len(self.methods), f"--methods {','.join(self.methods)} lists one twice"),
            (_int(self.seeds) and self.seeds >= 1, f"--seeds {self.seeds!r} must be an integer >= 1 (default 3)"),
            (_int(self.steps) and self.steps >= 1, f"--steps {self.steps!r} must be an integer >= 1"),
            (_int(self.batch_size) and self.batch_size >= 2, f"--batch-size {self.batch_size!r} must be >= 2"),
            (_int(self.crop) and self.crop >= 32, f"--crop {self.crop!r} must be >= 32 px"),
            (_int(self.queue_size) and self.queue_size >= self.batch_size and self.queue_size % self.batch_size == 0,
             f"--queue-size {self.queue_size!r} must be a multiple of --batch-size {self.batch_size}"),
            (self.lr > 0, f"--lr {self.lr} must be positive"),
            (self.synth_patch >= self.crop, f"synth_patch {self.synth_patch} must be >= --crop {self.crop}"),
            (self.probe_patch >= 32, f"probe_patch {self.probe_patch} must be >= 32"),
            (self.probe_locations >= 30, f"probe_locations {self.probe_locations} must be >= 30 (6 classes, 3 splits)"),
            (self.cd_cities >= 2, f"cd_cities {self.cd_cities} must be >= 2"),
            (self.cd_patch >= 32 and self.cd_patch % 32 == 0, f"cd_patch {self.cd_patch} must be a multiple of 32"),
            (self.cd_epochs >= 1 and self.oscd_epochs >= 1, "cd_epochs and oscd_epochs must be >= 1"),
            (self.normalization == "data",
             f"normalization {self.normalization!r}: only 'data' (one policy for every backbone) is supported"),
            (self.sensors in SENSOR_MODES, f"--sensors {self.sensors!r}: choose one of {', '.join(SENSOR_MODES)}"),
            (self.sensors == "s2" or not (self.eurosat or self.oscd),
             "--eurosat and --oscd are Sentinel-2 tasks; with --sensors s1+s2 give --eurosat none --oscd none"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)

    @property
    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.seed0, self.seed0 + self.seeds))

    def cells(self) -> list[tuple[str, int]]:
        """Every (method, seed) of the experiment, method-major."""
        return [(m, s) for m in self.methods for s in self.seed_list]

    def to_dict(self) -> dict[str, Any]:
        """As :meth:`ConfigIO.to_dict`, without the multi-sensor settings at their defaults (so the
        ``experiment.yaml`` of an optical comparison is the file it always was)."""
        d = super().to_dict()
        for key, default in (("sensors", "s2"), ("s12_change", False)):
            if d.get(key) == default:
                d.pop(key)
        return d

    def comparable(self) -> dict[str, Any]:
        """The settings a resumed experiment must share (not the output-only ones)."""
        d = self.to_dict()
        for k in ("out", "progress", "device", "methods", "seeds", "subspaces", "s12_change"):
            d.pop(k, None)
        if not self.oscd:  # the OSCD schedule matters only when OSCD is evaluated
            d.pop("oscd_test")
            d.pop("oscd_epochs")
        return d


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


#: Size presets of ``--scale``: ``tiny`` (tests, seconds per cell), ``cpu`` (the dataclass defaults: the 2-core run,
#: 4 methods x 3 seeds measured at 46 min of cells on a shared machine, docs/FIDELITY.md), ``gpu`` (a single GPU,
#: larger store, budget and evaluation).
SCALES: dict[str, dict[str, Any]] = {
    "tiny": dict(steps=2, batch_size=8, crop=32, queue_size=32, synth_locations=16, synth_patch=32,
                 probe_locations=60, probe_patch=32, cd_cities=2, cd_size=64, cd_epochs=1, cd_patch=32,
                 cd_batch=4, oscd_epochs=1),
    "cpu": {},
    "gpu": dict(steps=3000, batch_size=128, crop=96, queue_size=8192, synth_locations=4096, synth_patch=128,
                probe_locations=2048, probe_patch=64, cd_cities=24, cd_size=256, cd_epochs=30, cd_patch=96,
                cd_batch=32, oscd_epochs=100),
}

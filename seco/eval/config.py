"""Configurations of evaluation runs: frozen dataclasses, validated on construction, saved as ``config.yaml``.

Every run folder holds the resolved configuration it was made with, so a result can be reproduced from its
own folder (``seco eval ... `` with the same values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seco.backbones import backbone_names
from seco.configio import ConfigIO
from seco.errors import ConfigError

TASKS = ("eurosat", "bigearthnet")
PROTOCOLS = ("fast", "paper", "finetune")
SPLIT_NAMES = ("train", "val", "test")
#: L2 strengths (inverse, sklearn ``C``) searched on validation by the fast probe.
DEFAULT_CS: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
#: Where the input normalisation of a classification run comes from (``--normalization``).
NORMALIZATIONS = ("auto", "weights", "data")
#: Units ``seco embed`` takes Sentinel-1 values in (``--s1-units``).
S1_UNITS = ("db", "linear")


def _check(checks: list[tuple[bool, str]]) -> None:
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)


@dataclass(frozen=True)
class ClassifyConfig(ConfigIO):
    """A scene-classification evaluation (EuroSAT: multi-class; BigEarthNet: multi-label).

    Attributes:
        task: ``"eurosat"`` or ``"bigearthnet"``.
        root: dataset folder in its official layout (the Sentinel-2 release; a reBEN folder holds both sensors);
            None when only Sentinel-1 is read from ``s1_root``.
        weights: a seco export (any of its files), ``official:CKPT``, a torchvision/timm ResNet state dict
            (with ``weights_bands``) or ``"random"``.
        out: run folder (metrics.json, report.md, config.yaml, PNGs).
        weights_bands: band names of a plain state dict, in its input order.
        backbone: architecture for ``random`` (others read it from the weights).
        bands: bands to evaluate on (default: the weights' bands; every band of the data for ``random``).
        protocol: ``fast`` (cached features + logistic regression), ``paper`` (linear layer trained through
            the frozen backbone, the paper's schedule) or ``finetune`` (whole network, early stopping on val).
        fractions: label fractions in percent of the train split (seeded, stratified, nested).
        split_files: published lists per split (``{"train": path, "val": path, "test": path}``); without a
            test list the val list is also the test set (the SeCo paper's EuroSAT protocol).
        seed: seed of the splits, label fractions, random init and training.
        batch_size: images per forward pass when extracting features / evaluating.
        train_batch_size: mini-batch of the paper / finetune protocols (None: 32 EuroSAT, 256 BigEarthNet,
            as the official scripts).
        epochs: epochs of the paper / finetune protocols (paper: 100).
        lr: Adam learning rate (None: 1e-3 for ``paper``, as the official scripts; 1e-4 for ``finetune``).
        patience: finetune early stopping: epochs without a better val score before stopping.
        cs: inverse L2 strengths searched by the fast probe.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        bf16: autocast the backbone to bfloat16.
        num_workers: DataLoader worker processes.
        cache_dir: feature / statistics cache (None: ``$SECO_CACHE_DIR`` or ``~/.cache/seco``).
        use_cache: read and write the cache.
        size: BigEarthNet grid side in pixels.
        num_classes: BigEarthNet 19 or 43.
        exclude: BigEarthNet lists of patches to leave out (snow, cloud and shadow).
        stats_max: images sampled for the dataset normalisation (used when the weights carry none).
        progress: progress bars.
        s1_root: the Sentinel-1 release: EuroSAT-SAR (``eurosat``) or BigEarthNet-S1 v1.0 (``bigearthnet``), read
            beside ``root`` (same patch names); None: no S1 (reBEN: S1 comes with ``root``).
        normalization: ``auto`` (the weights' own when they carry one, else the train split's per-band
            statistics), ``weights`` (the weights' own, else an error) or ``data`` (the train split's, per sensor
            in its own units: S2 reflectance, S1 dB).
    """

    task: str
    root: str | None
    weights: str
    out: str
    weights_bands: str | None = None
    backbone: str = "resnet18"
    bands: str | None = None
    protocol: str = "fast"
    fractions: tuple[float, ...] = (100.0,)
    split_files: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    batch_size: int = 64
    train_batch_size: int | None = None
    epochs: int = 100
    lr: float | None = None
    patience: int = 10
    cs: tuple[float, ...] = DEFAULT_CS
    device: str = "auto"
    bf16: bool = False
    num_workers: int = 0
    cache_dir: str | None = None
    use_cache: bool = True
    size: int = 120
    num_classes: int = 19
    exclude: tuple[str, ...] = ()
    stats_max: int = 2000
    progress: bool = True
    s1_root: str | None = None
    normalization: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "fractions", tuple(float(f) for f in self.fractions))
        object.__setattr__(self, "cs", tuple(float(c) for c in self.cs))
        object.__setattr__(self, "exclude", tuple(str(e) for e in self.exclude))
        object.__setattr__(self, "split_files", {str(k): str(v) for k, v in dict(self.split_files).items()})
        bad_splits = sorted(set(self.split_files) - set(SPLIT_NAMES))
        _check(
            [
                (self.task in TASKS, f"task {self.task!r} is not one of {', '.join(TASKS)}"),
                (self.root is not None or self.s1_root is not None,
                 "give the dataset with --root (and/or the Sentinel-1 release with --s1-root)"),
                (self.normalization in NORMALIZATIONS,
                 f"--normalization {self.normalization!r} is not one of {', '.join(NORMALIZATIONS)}"),
                (self.protocol in PROTOCOLS, f"--protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}"),
                (self.backbone in backbone_names(), f"--backbone {self.backbone!r} is not one of {', '.join(backbone_names())}"),
                (
                    bool(self.fractions) and all(0 < f <= 100 for f in self.fractions),
                    f"--fractions {list(self.fractions)} must be percentages in (0, 100], e.g. 1,10,50,100",
                ),
                (len(set(self.fractions)) == len(self.fractions), f"--fractions {list(self.fractions)} repeat a value"),
                (not bad_splits, f"--split-file names split(s) {bad_splits}; use train=PATH, val=PATH, test=PATH"),
                (
                    not self.split_files or {"train", "val"} <= set(self.split_files),
                    f"--split-file gives {sorted(self.split_files)}; give at least train=PATH and val=PATH",
                ),
                (self.batch_size >= 1, f"--batch-size {self.batch_size} must be >= 1"),
                (
                    self.train_batch_size is None or self.train_batch_size >= 1,
                    f"--train-batch-size {self.train_batch_size} must be >= 1",
                ),
                (self.epochs >= 1, f"--epochs {self.epochs} must be >= 1"),
                (self.lr is None or self.lr > 0, f"--lr {self.lr} must be positive"),
                (self.patience >= 1, f"--patience {self.patience} must be >= 1"),
                (bool(self.cs) and all(c > 0 for c in self.cs), f"--cs {list(self.cs)} must be positive numbers"),
                (self.num_workers >= 0, f"--num-workers {self.num_workers} must be >= 0"),
                (self.num_classes in (19, 43), f"--num-classes {self.num_classes} must be 19 or 43"),
                (self.size >= 32, f"--size {self.size} must be at least 32 px (a ResNet downsamples by 32)"),
                (self.stats_max >= 1, f"--stats-max {self.stats_max} must be >= 1"),
            ]
        )

    @property
    def headline_metric(self) -> str:
        return "accuracy" if self.task == "eurosat" else "micro_map"

    def to_dict(self) -> dict[str, Any]:
        """As :meth:`ConfigIO.to_dict`, without the Sentinel-1 settings at their defaults (so the ``config.yaml`` of
        an optical run is the file it always was)."""
        d = super().to_dict()
        for key, default in (("s1_root", None), ("normalization", "auto")):
            if d.get(key) == default:
                d.pop(key)
        return d


@dataclass(frozen=True)
class ChangeConfig(ConfigIO):
    """OSCD change detection as in the SeCo paper (frozen encoder, feature differences, U-Net decoder).

    Attributes:
        root: the folder holding the unpacked OSCD archives.
        weights, weights_bands, backbone, bands: as :class:`ClassifyConfig`.
        out: run folder.
        train_cities: cities to train on (None: ``train.txt``).
        test_cities: cities to test on (None: ``test.txt``; their labels must be unpacked).
        patch: side of the random training patches and of the test tiles (paper: 96).
        epochs: training epochs (paper: 100); an epoch is as many patches as the grid tiles of the train cities.
        batch_size: patches per step (paper: 32).
        lr, weight_decay: Adam (paper: 1e-3, 1e-4).
        gamma: ExponentialLR decay per epoch (paper: 0.95).
        dropout: Dropout2d rate in the decoder (paper: 0.3).
        threshold: probability above which a pixel is called changed.
        seed, device, bf16, stats_max, progress: as :class:`ClassifyConfig`.
    """

    root: str
    weights: str
    out: str
    weights_bands: str | None = None
    backbone: str = "resnet18"
    bands: str | None = None
    train_cities: tuple[str, ...] | None = None
    test_cities: tuple[str, ...] | None = None
    patch: int = 96
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    gamma: float = 0.95
    dropout: float = 0.3
    threshold: float = 0.5
    seed: int = 0
    device: str = "auto"
    bf16: bool = False
    stats_max: int = 2000
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("train_cities", "test_cities"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, tuple(str(c) for c in v))
        _check(
            [
                (self.backbone in backbone_names(), f"--backbone {self.backbone!r} is not one of {', '.join(backbone_names())}"),
                (self.patch >= 32 and self.patch % 32 == 0, f"--patch {self.patch} must be a multiple of 32 (>= 32)"),
                (self.epochs >= 1, f"--epochs {self.epochs} must be >= 1"),
                (self.batch_size >= 1, f"--batch-size {self.batch_size} must be >= 1"),
                (self.lr > 0, f"--lr {self.lr} must be positive"),
                (self.weight_decay >= 0, f"--weight-decay {self.weight_decay} must be >= 0"),
                (0 < self.gamma <= 1, f"--gamma {self.gamma} must be in (0, 1]"),
                (0 <= self.dropout < 1, f"--dropout {self.dropout} must be in [0, 1)"),
                (0 < self.threshold < 1, f"--threshold {self.threshold} must be in (0, 1)"),
                (
                    self.train_cities is None or len(self.train_cities) > 0,
                    "--train-cities is empty; give e.g. bercy,paris",
                ),
                (self.test_cities is None or len(self.test_cities) > 0, "--test-cities is empty; give e.g. rennes"),
            ]
        )
        if self.train_cities and self.test_cities:
            both = sorted(set(self.train_cities) & set(self.test_cities))
            if both:
                raise ConfigError(f"city(ies) {', '.join(both)} are in both --train-cities and --test-cities")


@dataclass(frozen=True)
class EmbedConfig(ConfigIO):
    """``seco embed``: one embedding per patch of a GeoTIFF (or a folder of them).

    Attributes:
        weights, weights_bands, backbone: as :class:`ClassifyConfig`.
        input: a GeoTIFF or a folder of ``*.tif`` / ``*.tiff``.
        out: GeoParquet output (None when only ``dense`` is wanted).
        dense: per-patch-cell feature GeoTIFF (a folder when ``input`` is a folder).
        bands: names of the file's bands in file order, when its band descriptions do not name them.
        patch: patch side in pixels.
        stride: step between patches (None: ``patch``, i.e. non-overlapping).
        batch_size: patches per forward pass.
        scale, offset: ``reflectance = (DN + offset) / scale``; ``scale=None`` means 10000 for integer
            files and 1 (already reflectance) for float files.
        s1_input: a Sentinel-1 GeoTIFF (VV / VH) on the grid of ``input`` (an S2 GeoTIFF): the pair is
            embedded together, S2 channels first. An S1 file alone is given as ``input``.
        s1_units: units of the S1 values: ``"db"`` (default; what the weights take) or ``"linear"`` power,
            converted with ``10 log10`` (non-positive values -> no data).
        device, bf16, progress: as :class:`ClassifyConfig`.
    """

    weights: str
    input: str
    out: str | None = None
    dense: str | None = None
    weights_bands: str | None = None
    backbone: str = "resnet18"
    bands: str | None = None
    patch: int = 64
    stride: int | None = None
    batch_size: int = 64
    scale: float | None = None
    offset: float = 0.0
    s1_input: str | None = None
    s1_units: str = "db"
    device: str = "auto"
    bf16: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "s1_units", str(self.s1_units).lower())
        _check(
            [
                (self.out is not None or self.dense is not None, "give --out FILE.parquet and/or --dense OUT.tif"),
                (self.s1_units in S1_UNITS, f"--s1-units {self.s1_units!r} is not one of {', '.join(S1_UNITS)}"),
                (self.backbone in backbone_names(), f"--backbone {self.backbone!r} is not one of {', '.join(backbone_names())}"),
                (self.patch >= 32, f"--patch {self.patch} must be at least 32 px (a ResNet downsamples by 32)"),
                (self.stride is None or self.stride >= 1, f"--stride {self.stride} must be >= 1"),
                (self.batch_size >= 1, f"--batch-size {self.batch_size} must be >= 1"),
                (self.scale is None or self.scale > 0, f"--scale {self.scale} must be positive"),
            ]
        )

    @property
    def step(self) -> int:
        return self.stride or self.patch

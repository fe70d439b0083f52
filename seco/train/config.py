"""Pre-training configuration: dataclass defaults <- YAML file <- command-line flags.

The resolved configuration is saved as ``config.yaml`` beside every checkpoint so a run can be
reproduced (and resumed) from its own folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from seco.backbones import backbone_names
from seco.configio import ConfigIO, check_dict, load_yaml
from seco.data.corrupt import ON_CORRUPT
from seco.data.transforms import Augment
from seco.errors import ConfigError
from seco.methods import method_names

PRECISIONS = ("auto", "fp32", "bf16")
SCHEDULES = ("step", "cosine", "constant")


@dataclass(frozen=True)
class PretrainConfig(ConfigIO):
    """Everything that defines a pre-training run.

    Defaults follow the SeCo paper's code: SGD lr 0.03, momentum 0.9, weight decay 1e-4, batch 256,
    queue 16384 per subspace, temperature 0.07, key momentum 0.999, 200 epochs with the learning rate
    divided by 10 at 60 % and 80 % of training (the paper's epochs 120 and 160).

    ``num_workers="auto"``, ``precision="auto"`` and ``channels_last=None`` are settled for the device by
    :func:`for_device` before a run starts (and saved settled): on CUDA bf16 autocast + channels-last and one
    worker per CPU left to the process; on the CPU fp32, contiguous, no worker process.
    """

    store: str
    out: str
    method: str = "seco"
    backbone: str = "resnet18"
    bands: str = "all"
    crop: int = 224
    batch_size: int = 256
    epochs: int = 200
    max_steps: int | None = None
    max_minutes: float | None = None
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "step"
    lr_milestones: tuple[float, ...] = (0.6, 0.8)
    queue_size: int = 16384
    emb_dim: int = 128
    temperature: float = 0.07
    key_momentum: float = 0.999
    num_workers: int | str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None
    on_corrupt: str = "fail"
    device: str = "auto"
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 200
    plot_every: int = 500
    tensorboard: bool = True
    progress: bool = True
    augment: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.method in method_names(), f"--method {self.method!r} is not one of {', '.join(method_names())}"),
            (
                self.backbone in backbone_names(),
                f"--backbone {self.backbone!r} is not one of {', '.join(backbone_names())}",
            ),
            (self.precision in PRECISIONS, f"--precision {self.precision!r} is not one of {', '.join(PRECISIONS)}"),
            (self.schedule in SCHEDULES, f"--schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}"),
            (self.crop >= 32, f"--crop {self.crop} is too small; use at least 32 px (the paper uses 224)"),
            (self.batch_size >= 2, f"--batch-size {self.batch_size} must be at least 2 for contrastive learning"),
            (self.epochs >= 1, f"--epochs {self.epochs} must be at least 1"),
            (self.max_steps is None or self.max_steps >= 1, f"--max-steps {self.max_steps} must be at least 1"),
            (self.max_minutes is None or self.max_minutes > 0, f"--max-minutes {self.max_minutes} must be positive"),
            (self.lr > 0, f"--lr {self.lr} must be positive"),
            (self.queue_size >= 1, f"--queue-size {self.queue_size} must be positive"),
            (0.0 <= self.key_momentum < 1.0, f"--key-momentum {self.key_momentum} must be in [0, 1)"),
            (self.temperature > 0, f"--temperature {self.temperature} must be positive"),
            (
                self.num_workers == "auto" or (isinstance(self.num_workers, int) and self.num_workers >= 0),
                f"--num-workers {self.num_workers!r} must be 'auto' or an integer >= 0",
            ),
            (self.channels_last in (None, True, False), f"channels_last {self.channels_last!r} must be true or false"),
            (self.on_corrupt in ON_CORRUPT, f"--on-corrupt {self.on_corrupt!r} is not one of {', '.join(ON_CORRUPT)}"),
            (self.ckpt_every >= 1, f"--ckpt-every {self.ckpt_every} must be >= 1"),
            (self.log_every >= 1, f"--log-every {self.log_every} must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        self.augment_config()  # unknown or out-of-range augmentation settings fail here, before any work

    def augment_config(self) -> Augment:
        """The view augmentation: MoCo-v2's defaults at ``crop`` px, with the ``augment`` overrides.

        ``augment`` takes the fields of :class:`seco.data.transforms.Augment` except ``size``, e.g. in YAML
        ``augment: {jitter_p: 0.5, scale: [0.4, 1.0]}``.
        """
        known = {f.name for f in fields(Augment)} - {"size"}
        unknown = sorted(set(self.augment) - known)
        if unknown:
            raise ConfigError(
                f"unknown augment setting(s) {', '.join(unknown)}; valid ones are {', '.join(sorted(known))}"
            )
        kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in self.augment.items()}
        return Augment(size=self.crop, **kw)


def for_device(cfg: PretrainConfig, device_type: str, cpus: int, bf16_ok: bool = True) -> PretrainConfig:
    """``cfg`` with its automatic settings settled for a device (what the run saves and a resume keeps).

    Args:
        cfg: the configuration.
        device_type: ``"cuda"`` or ``"cpu"`` (the training device of this process).
        cpus: CPUs this process may use (``len(os.sched_getaffinity(0))`` divided by the processes per node).
        bf16_ok: the device supports bfloat16 autocast.

    Raises:
        ConfigError: ``--num-workers`` larger than ``cpus``, or bf16 asked on a device without it.
    """
    cuda = device_type == "cuda"
    workers = cfg.num_workers
    if workers == "auto":
        # CUDA: every CPU but the one driving the GPU decodes. CPU: the step already uses every core
        # (intra-op threads) and a worker only competes with it (docs/BENCHMARKS.md, "Pipeline").
        workers = max(1, cpus - 1) if cuda else 0
    elif int(workers) > cpus:
        raise ConfigError(
            f"--num-workers {workers} is more than the {cpus} CPUs this process may use; "
            f"use --num-workers auto or at most {cpus}"
        )
    precision = cfg.precision
    if precision == "auto":
        precision = "bf16" if cuda and bf16_ok else "fp32"
    elif precision == "bf16" and cuda and not bf16_ok:
        raise ConfigError("--precision bf16 is not supported by this GPU; use --precision fp32")
    channels_last = cuda if cfg.channels_last is None else cfg.channels_last
    return dataclasses.replace(cfg, num_workers=int(workers), precision=precision, channels_last=channels_last)


def resolve(cli: dict[str, Any], config_file: str | Path | None = None) -> PretrainConfig:
    """Merge defaults <- YAML <- explicit CLI values (``None`` in ``cli`` means 'not given').

    The YAML file's keys and value types are checked first, so a mistake there is named with the file.
    """
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged.update(check_dict(PretrainConfig, load_yaml(config_file), source=str(config_file), partial=True))
    merged.update({k: v for k, v in cli.items() if v is not None})
    for required in ("store", "out"):
        if not merged.get(required):
            raise ConfigError(f"--{required} is required (on the command line or in the --config file)")
    return PretrainConfig.from_dict(merged)

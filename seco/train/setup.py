"""Settle a pre-training run before its first step: config and resume, data, model, optimiser, run folder.

:func:`settle_run` does every check that can fail before any work (a resumed run's settings and data, the store,
the bands, batch and queue sizes, the memory of the batch ring) and returns a :class:`Run`: everything the
steps use. Nothing here runs a training step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from seco.bands import BandSelection, parse_bands, sensor_of, sensors_of
from seco.data.normalize import Normalization
from seco.data.pretrain import PretrainDataset
from seco.data.ring import BatchRing, plan_ring
from seco.data.sampler import ResumableSampler
from seco.data.transforms import Augment
from seco.data.units import has_radar
from seco.errors import ConfigError
from seco.fileutil import atomic_write, exclusive_lock
from seco.methods import ViewRecipe, get_method
from seco.models.contrastive import ContrastiveModel
from seco.store import open_store
from seco.store.reader import Store
from seco.train.config import PretrainConfig, for_device
from seco.train.distributed import DistInfo, barrier, bf16_supported, cpus_per_process, wrap_ddp
from seco.train.model import build_model, build_optimizer, build_scheduler
from seco.train.run_checkpoint import load_checkpoint

__all__ = ["PREFETCH_FACTOR", "RESUMABLE_CHANGES", "Run", "prepare", "run_lock", "settle_run"]

#: Options that may change when resuming; everything else must match the saved run.
RESUMABLE_CHANGES = {
    "epochs", "max_steps", "max_minutes", "num_workers", "device", "progress", "log_every", "ckpt_every", "plot_every",
    "tensorboard", "out", "store", "on_corrupt",
}
#: Batches each DataLoader worker keeps in flight (torch's default); the ring's plan may choose 1 on CUDA.
PREFETCH_FACTOR = 2
#: The lock file a run holds in its folder while it runs (rank 0 only).
LOCK_NAME = ".seco-pretrain.lock"


@dataclass
class Run:
    """Everything a settled run's steps use (built by :func:`settle_run`)."""

    cfg: PretrainConfig
    info: DistInfo
    device: torch.device
    out: Path
    store: Store
    bands: BandSelection
    dataset: PretrainDataset
    ring: BatchRing
    norm: Normalization
    recipe: ViewRecipe
    aug: Augment
    model: ContrastiveModel
    ddp_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    sampler: ResumableSampler
    total: int
    step: int = 0
    #: damaged locations met so far (--on-corrupt skip), by store location: part of the run state
    damaged: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: the store's identity (``Store.identity``), saved in every checkpoint
    store_id: dict[str, Any] = field(default_factory=dict)
    #: the step this process started (or resumed) at
    start_step: int = 0
    #: the loss saved in the checkpoint resumed from (nan for a new run)
    last_loss: float = float("nan")

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "last.ckpt"

    @property
    def local_batch(self) -> int:
        return self.cfg.batch_size // self.info.world_size


@contextlib.contextmanager
def run_lock(out: Path, info: DistInfo) -> Iterator[None]:
    """Hold the run folder for this run (rank 0; other ranks follow rank 0's folder).

    A second ``seco pretrain`` into the same ``--out`` stops with one line naming the holder's pid. A folder this
    call created is removed again when the run fails before writing anything into it.

    Raises:
        ConfigError: another process holds the folder, or ``--out`` names a file.
    """
    if not info.is_main:
        yield
        return
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; pass a folder for the run (a new or an existing run's)")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)

    def busy(pid: str) -> ConfigError:
        return ConfigError(
            f"another seco pretrain is running in {str(out)!r} (pid {pid}); wait for it to end, or choose another --out"
        )

    try:
        with exclusive_lock(out / LOCK_NAME, busy):
            yield
    except BaseException:
        if created and [p.name for p in out.iterdir()] == [LOCK_NAME]:
            shutil.rmtree(out, ignore_errors=True)  # nothing of this run was written: leave no empty folder
        raise


def _resume_config(saved: PretrainConfig, asked: PretrainConfig, given: set[str]) -> PretrainConfig:
    """The saved run's config, with the allowed changes the user asked for."""
    changes = {}
    for key in given:
        old, new = getattr(saved, key), getattr(asked, key)
        if old == new:
            continue
        if key not in RESUMABLE_CHANGES:
            raise ConfigError(
                f"--resume: --{key.replace('_', '-')} {new!r} differs from the saved run's {old!r}; "
                f"a resumed run keeps its settings (only {', '.join(sorted(RESUMABLE_CHANGES))} may change). "
                "Drop the flag or start a new run with another --out"
            )
        changes[key] = new
    d = saved.to_dict()
    d.update(changes)
    return PretrainConfig.from_dict(d)


def settle_config(
    cfg: PretrainConfig, resume: bool, given: set[str], device: torch.device
) -> tuple[PretrainConfig, dict[str, Any] | None]:
    """The run's settled config (a resumed run's own, with the allowed changes) and its checkpoint, if any.

    Raises:
        ConfigError: ``--out`` holds a run and ``--resume`` is not given; ``--resume`` of a folder without a run;
            a setting a resumed run cannot change.
        CheckpointError: a damaged checkpoint.
    """
    out = Path(cfg.out)
    ckpt_path, saved_cfg = out / "last.ckpt", out / "config.yaml"
    if (ckpt_path.exists() or saved_cfg.exists()) and not resume:
        raise ConfigError(
            f"--out {str(out)!r} already holds a run; pass --resume to continue it, or choose another --out"
        )
    if resume and not (ckpt_path.exists() or saved_cfg.exists()):
        raise ConfigError(
            f"--resume: {str(out)!r} holds no run (no last.ckpt, no config.yaml); check --out, or drop --resume "
            "to start a new run there"
        )
    bf16_ok = bf16_supported(device)
    cfg = for_device(cfg, device.type, cpus_per_process(), bf16_ok)  # automatic settings settled (and saved)
    ckpt = None
    if resume:
        if ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path)
            saved = PretrainConfig.from_dict(ckpt["config"])
        else:  # stopped before its first checkpoint: the run starts over, with the settings it was started with
            saved = PretrainConfig.load(saved_cfg)
            print(f"note: {str(out)!r} has no checkpoint yet; the run starts over from step 0 with its saved settings")
        # the worker count is operational: a resumed run uses this machine's, whether given or automatic
        cfg = _resume_config(saved, cfg, given | {"num_workers"})
        cfg = for_device(cfg, device.type, cpus_per_process(), bf16_ok)
    return cfg, ckpt


def prepare(cfg: PretrainConfig, world_size: int = 1) -> tuple[Store, BandSelection, PretrainDataset]:
    """All the checks that must pass before any work: store, bands, batch size, queue size.

    Locations with fewer valid dates than the method needs (SeCo 3, MoCo-v2+TP 2) are left out.
    """
    store = open_store(cfg.store)
    bands = parse_bands(cfg.bands, store.readable_bands)  # VV / VH too where the store has Sentinel-1
    method = get_method(cfg.method)
    missing = [s for s in method.sensors if s not in sensors_of(bands)]
    if missing:
        raise ConfigError(f"--method {cfg.method} needs bands of {' and '.join(method.sensors)}, --bands "
                          f"{cfg.bands!r} has none of {', '.join(missing)}; use --bands s1+s2 on a store with "
                          "Sentinel-1 (collect --s1, synth --s1, import --with-s1)")
    if cfg.batch_size % world_size:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} (the global batch) is not divisible by {world_size} processes; "
            f"use a multiple of {world_size}"
        )
    if cfg.queue_size % cfg.batch_size:
        raise ConfigError(
            f"--queue-size {cfg.queue_size} is not divisible by the global batch {cfg.batch_size}; "
            f"use e.g. --queue-size {max(1, cfg.queue_size // cfg.batch_size) * cfg.batch_size}"
        )
    if cfg.crop > store.patch_size:
        raise ConfigError(
            f"--crop {cfg.crop} is larger than the store's {store.patch_size} px patches; "
            f"use --crop {store.patch_size} or less"
        )
    dataset = PretrainDataset(
        store, bands, num_dates=get_method(cfg.method).num_dates, seed=cfg.seed, drop_incomplete=True, as_dn=True,
        on_corrupt=cfg.on_corrupt,
    )
    if cfg.batch_size > len(dataset):
        raise ConfigError(
            f"--batch-size {cfg.batch_size} is larger than the store's {len(dataset)} usable locations "
            f"({cfg.store}); use --batch-size {len(dataset)} or less, or collect more locations"
        )
    return store, bands, dataset


def _augment(cfg: PretrainConfig, bands: BandSelection) -> Augment:
    """The run's augmentation; with radar channels it knows which channels are which (``Augment.sensors``)."""
    aug = cfg.augment_config()
    if not has_radar(bands):
        return aug
    return dataclasses.replace(aug, sensors=tuple(sensor_of(b) for b in bands))


def _check_same_data(ckpt: dict[str, Any], store: Store, cfg: PretrainConfig) -> None:
    """A resumed run goes on with the data it was trained on (a moved or migrated copy is the same data)."""
    saved = ckpt.get("store")
    if not saved:
        return  # a checkpoint of an earlier release: it does not record its data
    now = store.identity()
    diff = [k for k in saved if now.get(k) != saved[k]]
    if diff:
        show = ", ".join(f"{k} {saved[k]!r} -> {now.get(k)!r}" for k in diff if k != "keys_sha256")
        keys = "its locations differ" if "keys_sha256" in diff else ""
        raise ConfigError(
            f"--resume: the store {cfg.store!r} is not the data this run was trained on ("
            f"{'; '.join(x for x in (show, keys) if x)}); pass --store with the run's own store (a moved or "
            "migrated copy is fine), or start a new run with another --out"
        )


def _make_ring(cfg: PretrainConfig, dataset: PretrainDataset, local_batch: int, device: torch.device) -> BatchRing:
    """The reusable batch buffers the workers decode packed samples into (``L = dataset.pack_spec.length``
    each: the store decides, 2.16x less than the 10 m grid for 12 bands of a native-resolution store), pinned
    once on CUDA.

    Raises:
        ConfigError: the buffers do not fit in shared memory / RAM, or CUDA cannot pin them.
    """
    shape = (local_batch, dataset.num_dates, dataset.pack_spec.length)
    plan = plan_ring(int(cfg.num_workers), math.prod(shape) * 2, cuda=device.type == "cuda")  # uint16
    ring = BatchRing.from_plan(plan, shape)  # (R, B, n, L) uint16; the loader uses plan's workers and prefetch
    if device.type == "cuda":
        ring.pin(device)
    dataset.ring = ring
    return ring


def _restore(run: Run, ckpt: dict[str, Any]) -> None:
    """Load a checkpoint's state into a freshly built run."""
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    run.sampler.load_state_dict(ckpt["sampler"])
    run.step = run.start_step = int(ckpt["step"])
    loss = ckpt.get("loss")
    run.last_loss = float(loss) if isinstance(loss, int | float) else float("nan")
    run.damaged = {int(r["location"]): dict(r) for r in ckpt.get("corrupt_locations", [])}
    run.dataset.known_bad = set(run.damaged)  # read by the workers, which start after this


def _write_run_files(run: Run) -> None:
    """config.yaml and normalization.json of the run folder (rank 0), and the note on left-out locations."""
    cfg, store, dataset = run.cfg, run.store, run.dataset
    if dataset.skipped:
        print(
            f"note: {len(dataset.skipped)} of {len(store)} locations have fewer than {run.recipe.num_dates} valid "
            f"dates and are left out of {cfg.method} pre-training"
        )
    print(run.ring.startup(), flush=True)  # the ring's size and what it cost before the first step
    run.out.mkdir(parents=True, exist_ok=True)
    cfg.save(run.out / "config.yaml")
    atomic_write(run.out / "normalization.json", json.dumps(run.norm.to_dict(), indent=2))


def settle_run(
    cfg: PretrainConfig, resume: bool, given: set[str], info: DistInfo, device: torch.device
) -> Run:
    """Everything a run needs, checked, built and (when resuming) restored; the run folder's files written.

    Args:
        cfg: the configuration as the user gave it.
        resume: continue the run in ``cfg.out``.
        given: the option names the user set explicitly (for the resume consistency check).
        info: this process's place in the job.
        device: the training device.
    """
    cfg, ckpt = settle_config(cfg, resume, given, device)
    store, bands, dataset = prepare(cfg, info.world_size)
    if ckpt is not None:
        _check_same_data(ckpt, store, cfg)
    local_batch = cfg.batch_size // info.world_size
    ring = _make_ring(cfg, dataset, local_batch, device)  # refuses what memory cannot hold, before work
    norm = Normalization.from_store(store, bands)

    torch.manual_seed(cfg.seed)  # identical initialisation on every rank
    model = build_model(cfg, len(bands)).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = build_optimizer(cfg, model)
    # (epoch, i) keys: persistent workers need no set_epoch, and what they prefetch never moves the position
    sampler = ResumableSampler(
        len(dataset), local_batch, seed=cfg.seed, rank=info.rank, world_size=info.world_size, with_epoch=True
    )
    total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * sampler.batches_per_epoch
    run = Run(
        cfg=cfg, info=info, device=device, out=Path(cfg.out), store=store, bands=bands, dataset=dataset, ring=ring,
        norm=norm, recipe=get_method(cfg.method).views, aug=_augment(cfg, bands), model=model, ddp_model=model,
        optimizer=optimizer, scheduler=build_scheduler(cfg, optimizer, total), sampler=sampler, total=total,
        store_id=store.identity(),
    )
    if ckpt is not None:
        _restore(run, ckpt)
    run.ddp_model = wrap_ddp(model, info, device)  # broadcast_buffers=False: see wrap_ddp
    if info.is_main:
        _write_run_files(run)
    barrier(info)
    return run

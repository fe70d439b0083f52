"""The pre-training loop: SeCo, MoCo-v2 and MoCo-v2+TP on a seco store, single process or DDP.

Every piece of state a run needs lives in ``<out>/last.ckpt`` (model with its key side and queues,
optimiser, scheduler, sampler position, step), and all randomness is derived from
``(seed, epoch, sample index)`` for the data and ``(seed, rank, step)`` for augmentation, so a run
killed at any moment and restarted with ``--resume`` continues the same run bit for bit on CPU.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from seco import __version__
from seco.bands import parse_bands
from seco.data.normalize import Normalization, to_reflectance
from seco.data.pretrain import PretrainDataset, ResumableSampler, collate_pretrain
from seco.data.ring import BatchRing, RingBatches, plan_ring
from seco.data.views import recipe_for
from seco.errors import ConfigError
from seco.models.seco import ContrastiveModel
from seco.store import open_store
from seco.train.config import PretrainConfig, for_device
from seco.train.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    bf16_supported,
    cpus_per_process,
    init_from_env,
    shutdown,
    wrap_ddp,
)
from seco.train.logs import MetricsLog
from seco.train.prefetch import DevicePrefetcher, teardown
from seco.train.run_checkpoint import check_model_fits, read_run_checkpoint, save_run_checkpoint

CKPT_FORMAT = "seco-pretrain"
CKPT_VERSION = 1
#: Options that may change when resuming; everything else must match the saved run.
RESUMABLE_CHANGES = {
    "epochs", "max_steps", "max_minutes", "num_workers", "device", "progress", "log_every", "ckpt_every", "plot_every",
    "tensorboard", "out", "store", "on_corrupt",
}
#: Batches each DataLoader worker keeps in flight without a ring (torch's default); with one, the ring's plan decides.
PREFETCH_FACTOR = 2
NUM_HEADS = {"seco": 3, "moco": 1, "moco-tp": 1}


@dataclass(frozen=True)
class PretrainResult:
    """What a finished (or stopped) run leaves behind."""

    out_dir: Path
    checkpoint: Path
    steps: int
    final_loss: float


def _flag_any(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when it is true on any rank (so all ranks stop at the same step)."""
    return all_reduce_mean(float(flag), info, device) > 0


def _record_sync(model: torch.nn.Module, step: int, info: DistInfo, device: torch.device, path: Path) -> None:
    """Gather a fingerprint of every rank's model (parameters of both sides, queues) into ``path``.

    All ranks must hold the same model after every step; the file lets users (and the tests) check it.
    """
    import json

    import torch.distributed as dist

    # BatchNorm running statistics are per rank by design (each rank normalises its own batch, as in the
    # paper's code); everything that defines the model -- both encoders, heads, queues -- must agree.
    tensors = [p.detach() for p in model.parameters()] + [b for n, b in model.named_buffers() if n.startswith("queue.")]
    fp = torch.tensor(
        [sum(float(v.double().sum()) for v in tensors), sum(float(v.double().pow(2).sum()) for v in tensors)],
        dtype=torch.float64, device=device,
    )
    gathered = [torch.zeros_like(fp) for _ in range(info.world_size)]
    dist.all_gather(gathered, fp)
    if info.is_main:
        rows = [g.tolist() for g in gathered]
        path.write_text(json.dumps({"step": step, "fingerprints": rows, "in_sync": all(r == rows[0] for r in rows)}))


def _lr_factor(cfg: PretrainConfig, step: int, total: int) -> float:
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    return 0.1 ** sum(step >= int(m * total) for m in cfg.lr_milestones)


def _step_seed(seed: int, rank: int, step: int) -> int:
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % (2**63 - 1)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training checkpoint without executing code, and check it is whole and fits its own config.

    Raises:
        CheckpointError: naming the file, what is wrong with it and what to do (see
            :mod:`seco.train.run_checkpoint`).
    """
    ckpt, cfg = read_run_checkpoint(path, CKPT_FORMAT, CKPT_VERSION)
    with torch.device("meta"):  # shapes only: the model _pretrain builds from this config
        reference = ContrastiveModel(
            backbone=cfg.backbone,
            in_chans=len(ckpt["bands"]),
            num_heads=NUM_HEADS[cfg.method],
            emb_dim=cfg.emb_dim,
            queue_size=cfg.queue_size,
            extra_negatives_heads=(1, 2) if cfg.method == "seco" else (),
        )
    check_model_fits(ckpt, path, reference)
    return ckpt


def _save_atomic(obj: dict[str, Any], path: Path) -> None:
    """Write a checkpoint that ``torch.load(weights_only=True)`` reads (plain types only), atomically."""
    save_run_checkpoint(obj, path)


def _check_resume_config(saved: PretrainConfig, asked: PretrainConfig, given: set[str]) -> PretrainConfig:
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


def prepare(cfg: PretrainConfig, world_size: int = 1) -> tuple[Any, tuple[str, ...], PretrainDataset]:
    """All the checks that must pass before any work: store, bands, batch size, queue size.

    Locations with fewer valid dates than the method needs (SeCo 3, MoCo-v2+TP 2) are left out.
    """
    store = open_store(cfg.store)
    bands = parse_bands(cfg.bands, store.bands)
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
        raise ConfigError(f"--crop {cfg.crop} is larger than the store's {store.patch_size} px patches")
    dataset = PretrainDataset(
        store, bands, num_dates=recipe_for(cfg.method).num_dates, seed=cfg.seed, drop_incomplete=True, as_dn=True,
        on_corrupt=cfg.on_corrupt,
    )
    if cfg.batch_size > len(dataset):
        raise ConfigError(
            f"--batch-size {cfg.batch_size} is larger than the store's {len(dataset)} usable locations "
            f"({cfg.store}); use --batch-size {len(dataset)} or less, or collect more locations"
        )
    return store, bands, dataset


def _make_ring(
    cfg: PretrainConfig, store: Any, dataset: PretrainDataset, local_batch: int, device: torch.device
) -> BatchRing | None:
    """The reusable batch buffers the workers decode packed samples into (``L = dataset.pack_spec.length``
    each: the store decides, 2.16x less than the 10 m grid for 12 bands of a native-resolution store), pinned
    once on CUDA (``None`` for a store that cannot decode into a caller's buffer).

    Raises:
        ConfigError: the buffers do not fit in shared memory / RAM, or CUDA cannot pin them.
    """
    if dataset.pack_spec is None:
        return None
    shape = (local_batch, dataset.num_dates, dataset.pack_spec.length)
    plan = plan_ring(int(cfg.num_workers), math.prod(shape) * 2, cuda=device.type == "cuda")  # uint16
    ring = BatchRing.from_plan(plan, shape)  # (R, B, n, L) uint16
    if device.type == "cuda":
        ring.pin(device)
    dataset.ring = ring
    return ring


def pretrain(cfg: PretrainConfig, resume: bool = False, given: set[str] | None = None) -> PretrainResult:
    """Run (or continue) one pre-training run; see the module docstring.

    Args:
        cfg: the resolved configuration.
        resume: continue the run in ``cfg.out`` from ``last.ckpt`` (a fresh start when none exists yet).
        given: the option names the user set explicitly (for the resume consistency check).
    """
    info, device = init_from_env(cfg.device)
    try:
        return _pretrain(cfg, resume, given or set(), info, device)
    finally:
        shutdown(info)


def _pretrain(
    cfg: PretrainConfig, resume: bool, given: set[str], info: DistInfo, device: torch.device
) -> PretrainResult:
    out = Path(cfg.out)
    ckpt_path = out / "last.ckpt"
    ckpt: dict[str, Any] | None = None
    if ckpt_path.exists() or (out / "config.yaml").exists():
        if not resume:
            raise ConfigError(
                f"--out {str(out)!r} already holds a run; pass --resume to continue it, or choose another --out"
            )
    bf16_ok = bf16_supported(device)
    cfg = for_device(cfg, device.type, cpus_per_process(), bf16_ok)  # automatic settings settled (and saved)
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        # the worker count is operational: a resumed run uses this machine's, whether given or automatic
        cfg = _check_resume_config(PretrainConfig.from_dict(ckpt["config"]), cfg, given | {"num_workers"})
        cfg = for_device(cfg, device.type, cpus_per_process(), bf16_ok)

    store, bands, dataset = prepare(cfg, info.world_size)
    local_batch = cfg.batch_size // info.world_size
    ring = _make_ring(cfg, store, dataset, local_batch, device)  # refuses what memory cannot hold, before work
    norm = Normalization.from_store(store, bands)
    recipe = recipe_for(cfg.method)
    aug = cfg.augment_config()

    torch.manual_seed(cfg.seed)  # identical initialisation on every rank
    model = ContrastiveModel(
        backbone=cfg.backbone,
        in_chans=len(bands),
        num_heads=NUM_HEADS[cfg.method],
        emb_dim=cfg.emb_dim,
        queue_size=cfg.queue_size,
        temperature=cfg.temperature,
        momentum=cfg.key_momentum,
        extra_negatives_heads=(1, 2) if cfg.method == "seco" else (),
    ).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    params = model.query_parameters()
    optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    # (epoch, i) keys: persistent workers need no set_epoch, and what they prefetch never moves the position
    sampler = ResumableSampler(
        len(dataset), local_batch, seed=cfg.seed, rank=info.rank, world_size=info.world_size, with_epoch=True
    )
    steps_per_epoch = sampler.batches_per_epoch
    total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(cfg, s, total))

    step = 0
    # damaged locations met so far (--on-corrupt skip), by store location: part of the run state
    damaged: dict[int, dict[str, Any]] = {}
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        sampler.load_state_dict(ckpt["sampler"])
        step = int(ckpt["step"])
        damaged = {int(r["location"]): dict(r) for r in ckpt.get("corrupt_locations", [])}
        dataset.known_bad = set(damaged)  # read by the workers, which start after this
    ddp_model = wrap_ddp(model, info, device)  # broadcast_buffers=False: see wrap_ddp

    if info.is_main:
        if dataset.skipped:
            print(
                f"note: {len(dataset.skipped)} of {len(store)} locations have fewer than {recipe.num_dates} valid "
                f"dates and are left out of {cfg.method} pre-training"
            )
        if ring is not None:
            print(ring.startup(), flush=True)
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / "config.yaml")
        norm_file = out / "normalization.json"
        norm_file.write_text(__import__("json").dumps(norm.to_dict(), indent=2))
    barrier(info)
    log = MetricsLog(out, tensorboard=cfg.tensorboard, resume_step=step) if info.is_main else None

    workers = ring.plan.workers if ring is not None and ring.plan is not None else int(cfg.num_workers)
    prefetch = ring.plan.prefetch_factor if ring is not None and ring.plan is not None else PREFETCH_FACTOR
    loader = DataLoader(
        dataset,
        batch_sampler=RingBatches(sampler, ring) if ring is not None else sampler,
        collate_fn=collate_pretrain,
        num_workers=workers,
        pin_memory=device.type == "cuda" and ring is None,  # the ring is pinned once instead
        persistent_workers=workers > 0,
        prefetch_factor=prefetch if workers > 0 else None,
    )
    # copies the packed (B, n, L) batch to the device and unpacks it there to (B, n, C, H, W) uint16
    prefetcher = DevicePrefetcher(device, ring, dataset.pack_spec)
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if cfg.precision == "bf16"
        else contextlib.nullcontext()
    )
    bar = None
    if info.is_main and cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=step, desc=f"{cfg.method} {cfg.backbone}", unit="step", dynamic_ncols=True)

    gen = torch.Generator()
    deadline = time.monotonic() + 60.0 * cfg.max_minutes if cfg.max_minutes else None
    # the last step's outputs stay on the device; the host reads them only every log_every steps (no sync)
    loss_dev: torch.Tensor | None = None
    t_last = time.perf_counter()
    seen_since = 0

    def last_loss() -> float:
        return float(loss_dev) if loss_dev is not None else float("nan")

    def save() -> None:
        if info.enabled:
            _record_sync(model, step, info, device, out / "ddp_sync.json")
        if not info.is_main:
            return
        _save_atomic(
            {
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
                "normalization": norm.to_dict(),
                "num_locations": len(dataset),
                "loss": last_loss(),
                "corrupt_locations": [damaged[k] for k in sorted(damaged)],
            },
            ckpt_path,
        )

    stopping = False
    try:
        while step < total and not stopping:
            dataset.set_epoch(sampler.epoch)
            for batch in prefetcher.epoch(loader):
                images = batch["images"]  # (B, n_dates, C, H, W) uint16 DN on the device (copied packed, unpacked)
                for rec in batch.get("corrupt", ()):
                    if int(rec["location"]) not in damaged:
                        damaged[int(rec["location"])] = rec
                        rank = f"rank {info.rank}: " if info.enabled else ""
                        print(
                            f"warning: {rank}skipped damaged location {rec['location']} ({rec['key']}), file "
                            f"{rec['path']}; --on-corrupt skip: training goes on without it", file=sys.stderr
                        )
                if device.type != "cpu":  # on the CPU make_views converts only the crop boxes (bitwise the same)
                    images = to_reflectance(images)
                gen.manual_seed(_step_seed(cfg.seed, info.rank, step))
                torch.manual_seed(_step_seed(cfg.seed, 0, step))  # shuffle-BN permutation, same on all ranks
                q, keys = recipe.make_views(images, gen=gen, size=cfg.crop, normalization=norm, augment_cfg=aug)
                if cfg.channels_last:
                    q = q.contiguous(memory_format=torch.channels_last)
                    keys = [k.contiguous(memory_format=torch.channels_last) for k in keys]
                with autocast:
                    res = ddp_model(q, keys)
                optimizer.zero_grad(set_to_none=True)
                res.loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                sampler.advance()
                seen_since += cfg.batch_size
                loss_dev = res.loss.detach()

                logging = step % cfg.log_every == 0 or step == total or step == 1
                if logging:
                    heads = len(res.loss_per_head)
                    # one device -> host read for every logged value
                    vals = torch.stack([loss_dev, *res.loss_per_head, *res.acc_per_head]).detach().float().tolist()
                    now = time.perf_counter()
                    sps = seen_since / max(now - t_last, 1e-9)
                    t_last, seen_since = now, 0
                    loss_mean = all_reduce_mean(vals[0], info, device)
                    if log is not None:
                        row: dict[str, Any] = {
                            "step": step,
                            "epoch": sampler.epoch,
                            "loss": loss_mean,
                            "lr": optimizer.param_groups[0]["lr"],
                            "samples_per_s": sps,
                        }
                        for h in range(heads):
                            row[f"loss/head{h}"] = vals[1 + h]
                            row[f"acc/head{h}"] = 100.0 * vals[1 + heads + h]
                        if cfg.on_corrupt == "skip":
                            row["skipped_locations"] = len(damaged)
                        log.log(row)
                    if bar is not None:
                        bar.set_postfix(loss=f"{loss_mean:.3f}", samples_s=f"{sps:.1f}")
                if bar is not None:
                    bar.update(1)
                # a time-limited run ends at this step on every rank, with a checkpoint and closed logs (under
                # DDP the ranks agree on it at logged steps only: the vote is a collective, i.e. a host sync)
                stopping = step >= total or (
                    deadline is not None
                    and (not info.enabled or logging)
                    and _flag_any(time.monotonic() > deadline, info, device)
                )
                if step % cfg.ckpt_every == 0 or stopping:
                    save()
                if log is not None and (step % cfg.plot_every == 0 or stopping):
                    log.plot(out / "curves.png", title=f"{cfg.method} / {cfg.backbone} / {len(bands)} bands")
                if stopping:
                    break
            else:
                sampler.next_epoch()
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
        teardown(prefetcher, ring)  # workers end (even when an error holds the loader), then the ring is unpinned
        del loader
    return PretrainResult(out_dir=out, checkpoint=ckpt_path, steps=step, final_loss=last_loss())

"""The pre-training loop: SeCo, MoCo-v2, MoCo-v2+TP (any registered method) on a seco store, one process or DDP.

A run is three named parts, as the MoCo reference code's ``main_worker`` and ``train()``:

- :func:`seco.train.setup.settle_run`: config and resume, data, model, optimiser, the run folder;
- :class:`seco.train.step.StepRunner`: one training step;
- :class:`seco.train.progress.RunReporter`: logging, the progress bar, checkpoints and when to stop;

and :func:`train` here, the loop over the loader's batches that ties them together.

Every piece of state a run needs lives in ``<out>/last.ckpt`` (model with its key side and queues,
optimiser, scheduler, sampler position, step; schema in :mod:`seco.train.run_checkpoint`), and all randomness is
derived from ``(seed, epoch, sample index)`` for the data and ``(seed, rank, step)`` for augmentation, so a run
killed at any moment and restarted with ``--resume`` continues the same run bit for bit on CPU.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader

from seco.data.pretrain import collate_pretrain
from seco.data.ring import RingBatches
from seco.train.config import PretrainConfig
from seco.train.distributed import init_from_env, shutdown
from seco.train.prefetch import DevicePrefetcher, teardown
from seco.train.progress import PretrainResult, RunReporter
from seco.train.setup import PREFETCH_FACTOR, Run, run_lock, settle_run
from seco.train.step import StepRunner

__all__ = ["make_loader", "pretrain", "train"]


def pretrain(cfg: PretrainConfig, resume: bool = False, given: set[str] | None = None) -> PretrainResult:
    """Run (or continue) one pre-training run; see the module docstring.

    Args:
        cfg: the resolved configuration.
        resume: continue the run in ``cfg.out`` from ``last.ckpt`` (a run stopped before its first checkpoint
            starts over with its saved settings).
        given: the option names the user set explicitly (for the resume consistency check).

    Raises:
        ConfigError: bad settings, ``--out`` held by another run, a resumed run on other data, ...
    """
    info, device = init_from_env(cfg.device)
    try:
        with run_lock(Path(cfg.out), info):
            run = settle_run(cfg, resume, given or set(), info, device)
            return train(run)
    finally:
        shutdown(info)


def make_loader(run: Run) -> DataLoader:
    """The run's DataLoader: ring batches, the ring plan's workers and prefetch, persistent workers."""
    plan = run.ring.plan  # the workers and prefetch factor the ring was sized for
    workers = plan.workers if plan is not None else int(run.cfg.num_workers)
    return DataLoader(
        run.dataset,
        batch_sampler=RingBatches(run.sampler, run.ring),
        collate_fn=collate_pretrain,
        num_workers=workers,
        pin_memory=False,  # the ring is pinned once instead
        persistent_workers=workers > 0,
        prefetch_factor=(plan.prefetch_factor if plan is not None else PREFETCH_FACTOR) if workers > 0 else None,
    )


def train(run: Run) -> PretrainResult:
    """Train a settled run to its step total or time limit, checkpointing as it goes."""
    reporter = RunReporter(run, last_loss=run.last_loss)
    step_once = StepRunner(run)
    loader = make_loader(run)
    # copies the packed (B, n, L) batch to the device and unpacks it there to (B, n, C, H, W) uint16
    prefetcher = DevicePrefetcher(run.device, run.ring, run.dataset.pack_spec)
    stopping = False
    try:
        while run.step < run.total and not stopping:
            run.dataset.set_epoch(run.sampler.epoch)
            for batch in prefetcher.epoch(loader):
                reporter.note_damaged(batch)
                # (B, n_dates, C, H, W) uint16 DN on the device (copied packed, unpacked)
                stopping = reporter.after_step(step_once(batch["images"]))
                if stopping:
                    break
            else:
                run.sampler.next_epoch()
    finally:
        result = reporter.close()
        teardown(prefetcher, run.ring)  # workers end (even when an error holds the loader), then the ring is unpinned
        del loader
    return result

"""What a run reports and keeps between steps: metric rows, the progress bar, curves, checkpoints, when to stop.

The host reads the device only at logged steps (one transfer of every logged value); checkpoints are written
every ``ckpt_every`` steps and at the last step; a time-limited run ends at the same step on every rank (under
DDP the ranks vote at logged steps only, since the vote is a collective).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seco.fileutil import atomic_write
from seco.models.contrastive import ContrastiveOutput
from seco.train.distributed import DistInfo, all_reduce_mean
from seco.train.logs import MetricsLog
from seco.train.run_checkpoint import run_state, save_run_checkpoint
from seco.train.setup import Run

__all__ = ["PretrainResult", "RunReporter"]


@dataclass(frozen=True)
class PretrainResult:
    """What a finished (or stopped) run leaves behind, and what this invocation did."""

    out_dir: Path
    checkpoint: Path
    steps: int
    final_loss: float
    #: steps this invocation ran (0 for a resumed run that had already finished)
    steps_run: int = 0
    #: wall time of this invocation's steps, seconds
    wall_s: float = 0.0
    #: mean throughput of this invocation, samples per second over all processes
    samples_per_s: float = float("nan")

    def summary(self) -> str:
        """One line for the end of ``seco pretrain``."""
        where = f"checkpoint {self.checkpoint}; curves {self.out_dir / 'curves.png'}, metrics {self.out_dir / 'metrics.csv'}"
        if self.steps_run == 0:
            return f"nothing to do: the run in {self.out_dir} had already finished at step {self.steps}; {where}"
        loss = f", final loss {self.final_loss:.4f}" if self.final_loss == self.final_loss else ""
        return (
            f"done: step {self.steps} ({self.steps_run} in this run, {self.wall_s / 60:.1f} min, "
            f"{self.samples_per_s:.1f} samples/s){loss}; {where}"
        )


def _flag_any(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when it is true on any rank (so all ranks stop at the same step)."""
    return all_reduce_mean(float(flag), info, device) > 0


def record_sync(model: torch.nn.Module, step: int, info: DistInfo, device: torch.device, path: Path) -> None:
    """Gather a fingerprint of every rank's model (parameters of both sides, queues) into ``path``.

    All ranks must hold the same model after every step; the file lets users (and the tests) check it.
    """
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
        atomic_write(path, json.dumps({"step": step, "fingerprints": rows, "in_sync": all(r == rows[0] for r in rows)}))


class RunReporter:
    """Logging, the progress bar, checkpoints and the stop decision of one run (see the module docstring)."""

    def __init__(self, run: Run, last_loss: float = float("nan")) -> None:
        self.run = run
        cfg = run.cfg
        self.log = MetricsLog(run.out, tensorboard=cfg.tensorboard, resume_step=run.step) if run.info.is_main else None
        self.deadline = time.monotonic() + 60.0 * cfg.max_minutes if cfg.max_minutes else None
        self.loss_dev: torch.Tensor | None = None  # the last step's loss, on the device until read
        self.saved_loss = last_loss
        self.t_start = self.t_last = time.perf_counter()
        self.seen_since = 0
        self.timed_bar = bool(cfg.max_minutes and cfg.max_steps is None)
        self.bar = self._make_bar() if run.info.is_main and cfg.progress else None

    def _make_bar(self) -> Any:
        """Steps toward the step total; a run limited by time alone shows its time instead (its step total,
        from ``--epochs``, is a bound it will not reach)."""
        from tqdm import tqdm

        run, cfg = self.run, self.run.cfg
        desc = f"{cfg.method} {cfg.backbone}"
        if self.timed_bar and cfg.max_minutes:
            return tqdm(total=round(60 * cfg.max_minutes), desc=desc, unit="s", dynamic_ncols=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} of "
                                   f"{cfg.max_minutes:g} min{{postfix}}")
        return tqdm(total=run.total, initial=run.step, desc=desc, unit="step", dynamic_ncols=True)

    def last_loss(self) -> float:
        """The last step's loss (one device read), or the checkpoint's for a run that ran no step."""
        return float(self.loss_dev) if self.loss_dev is not None else self.saved_loss

    def note_damaged(self, batch: dict[str, Any]) -> None:
        """Record the damaged locations a batch met (``--on-corrupt skip``), warning once for each."""
        run = self.run
        for rec in batch.get("corrupt", ()):
            if int(rec["location"]) not in run.damaged:
                run.damaged[int(rec["location"])] = rec
                rank = f"rank {run.info.rank}: " if run.info.enabled else ""
                print(
                    f"warning: {rank}skipped damaged location {rec['location']} ({rec['key']}), file "
                    f"{rec['path']}; --on-corrupt skip: training goes on without it", file=sys.stderr
                )

    def after_step(self, res: ContrastiveOutput) -> bool:
        """Log, checkpoint and plot as due after the step just run; True when the run stops at this step."""
        run, cfg = self.run, self.run.cfg
        step = run.step
        self.seen_since += cfg.batch_size
        self.loss_dev = res.loss.detach()
        logging = step % cfg.log_every == 0 or step == run.total or step == 1
        if logging:
            self._log_row(res)
        self._advance_bar()
        stopping = step >= run.total or (
            self.deadline is not None
            and (not run.info.enabled or logging)
            and _flag_any(time.monotonic() > self.deadline, run.info, run.device)
        )
        if step % cfg.ckpt_every == 0 or stopping:
            self.save()
        if self.log is not None and (step % cfg.plot_every == 0 or stopping):
            self.log.plot(run.out / "curves.png", title=f"{cfg.method} / {cfg.backbone} / {len(run.bands)} bands")
        return stopping

    def _advance_bar(self) -> None:
        if self.bar is None:
            return
        if self.timed_bar:
            self.bar.update(max(0, min(self.bar.total, round(time.perf_counter() - self.t_start)) - self.bar.n))
            self.bar.set_postfix_str(f"step {self.run.step}", refresh=False)
        else:
            self.bar.update(1)

    def _log_row(self, res: ContrastiveOutput) -> None:
        run, cfg = self.run, self.run.cfg
        heads = len(res.loss_per_head)
        assert self.loss_dev is not None
        # one device -> host read for every logged value
        vals = torch.stack([self.loss_dev, *res.loss_per_head, *res.acc_per_head]).detach().float().tolist()
        now = time.perf_counter()
        sps = self.seen_since / max(now - self.t_last, 1e-9)
        self.t_last, self.seen_since = now, 0
        loss_mean = all_reduce_mean(vals[0], run.info, run.device)
        if self.log is not None:
            row: dict[str, Any] = {
                "step": run.step,
                "epoch": run.sampler.epoch,
                "loss": loss_mean,
                "lr": run.optimizer.param_groups[0]["lr"],
                "samples_per_s": sps,
            }
            for h in range(heads):
                row[f"loss/head{h}"] = vals[1 + h]
                row[f"acc/head{h}"] = 100.0 * vals[1 + heads + h]
            if cfg.on_corrupt == "skip":
                row["skipped_locations"] = len(run.damaged)
            self.log.log(row)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss_mean:.3f}", samples_s=f"{sps:.1f}")

    def save(self) -> None:
        """Write ``last.ckpt`` (rank 0; under DDP every rank first records its model fingerprint)."""
        run = self.run
        if run.info.enabled:
            record_sync(run.model, run.step, run.info, run.device, run.out / "ddp_sync.json")
        if not run.info.is_main:
            return
        state = run_state(
            run.cfg, run.step, run.model, run.optimizer, run.scheduler, run.sampler, run.bands, run.norm.to_dict(),
            len(run.dataset), self.last_loss(), [run.damaged[k] for k in sorted(run.damaged)], run.store_id,
        )
        save_run_checkpoint(state, run.checkpoint_path)

    def close(self) -> PretrainResult:
        """Close the bar and the logs; the result of this invocation."""
        if self.bar is not None:
            self.bar.close()
        if self.log is not None:
            self.log.close()
        run = self.run
        wall = time.perf_counter() - self.t_start
        ran = run.step - run.start_step
        return PretrainResult(
            out_dir=run.out, checkpoint=run.checkpoint_path, steps=run.step, final_loss=self.last_loss(),
            steps_run=ran, wall_s=wall, samples_per_s=ran * run.cfg.batch_size / wall if ran else float("nan"),
        )

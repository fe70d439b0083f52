"""One training step of a settled run: views of the batch, the contrastive forward pass, the optimiser step.

Randomness is derived from ``(seed, rank, step)`` (the views) and ``(seed, step)`` (shuffle-BN's permutation,
the same on every rank), never from state carried between steps, so a resumed run repeats the same steps.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from seco.data.normalize import to_reflectance
from seco.data.units import has_radar, to_units
from seco.data.views import make_views
from seco.models.contrastive import ContrastiveOutput
from seco.train.setup import Run

__all__ = ["StepRunner", "step_seed"]


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of a step's random draws on one rank."""
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % (2**63 - 1)


class StepRunner:
    """Runs the steps of one run (the generator and autocast context are made once)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.gen = torch.Generator()
        self.autocast: Any = (
            torch.autocast(device_type=run.device.type, dtype=torch.bfloat16)
            if run.cfg.precision == "bf16"
            else contextlib.nullcontext()
        )
        self.radar = has_radar(run.bands)

    def __call__(self, images: torch.Tensor) -> ContrastiveOutput:
        """One optimiser step on a batch; advances ``run.step`` and the sampler position.

        Args:
            images: (B, n_dates, C, H, W) uint16 on the training device: DN, and S1 codes for VV / VH.

        Returns:
            The model's output (loss and per-head values stay on the device: nothing here waits on it).
        """
        run, cfg = self.run, self.run.cfg
        if self.radar:  # reflectance and dB, radar no data at the band's mean (normalised to 0)
            images = to_units(images, run.bands, fill=run.norm.mean)
        elif run.device.type != "cpu":  # on the CPU make_views converts only the crop boxes (bitwise the same)
            images = to_reflectance(images)
        self.gen.manual_seed(step_seed(cfg.seed, run.info.rank, run.step))
        torch.manual_seed(step_seed(cfg.seed, 0, run.step))  # shuffle-BN permutation, same on all ranks
        q, keys = make_views(images, run.recipe, gen=self.gen, size=cfg.crop, normalization=run.norm,
                             augment_cfg=run.aug)
        if cfg.channels_last:
            q = q.contiguous(memory_format=torch.channels_last)
            keys = [k.contiguous(memory_format=torch.channels_last) for k in keys]
        with self.autocast:
            res: ContrastiveOutput = run.ddp_model(q, keys)
        run.optimizer.zero_grad(set_to_none=True)
        res.loss.backward()
        run.optimizer.step()
        run.scheduler.step()
        run.step += 1
        run.sampler.advance()
        return res

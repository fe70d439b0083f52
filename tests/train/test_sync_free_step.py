"""A training step makes the host wait for the GPU zero times (issue 19 item 2).

On the CPU, ``tests/train/sync_standin.FakeCuda`` plays the GPU: the batch and the model report ``cuda:0``,
so the code takes its GPU branches (``grid_sample`` crops, device-side ``to_reflectance``, parameter copies),
and every host read of device data, blocking host-to-device copy or host tensor mixed into a device op is
recorded with its file and line. Where CUDA is present, the same step runs under
``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from bench.gpu_check import TINY, settled_run
from seco.data import normalize
from seco.data.transforms import Augment, augment, crop_only
from seco.models.queue import NegativeQueue
from seco.train.step import StepRunner
from tests.train.sync_standin import FakeCuda, mark

BANDS, PATCH, CROP, BATCH = 12, 48, 32, 4


def _dn_batch(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 5000, (BATCH, 3, BANDS, PATCH, PATCH), generator=g, dtype=torch.int32).to(torch.uint16)


def _report(fake: FakeCuda) -> str:
    return "\n".join(f"{kind}: {what} at {where}" for kind, what, where in fake.events)


def test_augmentations_on_the_device_copy_parameters_without_syncs() -> None:
    """Every op's per-sample parameters (boxes, flips, gains, blur kernels, clamp bounds, indices) go to the
    device with non-blocking copies, whatever the coins decide (two generator seeds cover all branches)."""
    fake = FakeCuda()
    with fake:
        x = mark(_dn_batch()[:, 0])  # (B, C, H, W) uint16 "on the GPU"
        for seed in range(6):
            gen = torch.Generator().manual_seed(seed)
            y = augment(x, gen, Augment(size=CROP, grayscale_p=0.5))
            z = crop_only(x, gen, CROP)
            assert y.device.type == "cuda" and z.shape == (BATCH, BANDS, CROP, CROP)
    assert fake.count() == 0, _report(fake)


def test_the_stand_in_sees_what_a_gpu_would_wait_for() -> None:
    """The counter itself: a blocking copy, a host read and a host operand are each recorded once."""
    fake = FakeCuda()
    with fake:
        x = mark(torch.ones(3))
        _ = x + torch.ones(3).to(x.device)  # blocking copy
        _ = float(x.sum())  # host read
        _ = x + torch.ones(3)  # host operand
        _ = x + torch.ones(3).to(x.device, non_blocking=True)  # fine
        q = NegativeQueue(1, 2, 4)
        fake.put(q)
        q.enqueue(0, mark(torch.ones(2, 2)))  # the pointer is a host int: fine
    assert [e[0] for e in fake.events] == ["blocking copy", "sync", "mixed"], _report(fake)


def test_one_training_step_makes_no_host_device_sync(tiny_store: Path, tmp_path: Path) -> None:
    """The run's own step (``seco.train.step.StepRunner`` on a run settled by ``settle_run``: to_reflectance,
    the SeCo views, channels-last, forward, backward, SGD, scheduler) after a warm-up step (the normalisation
    constants are copied once and cached): zero synchronisations. fp32: the stand-in has no CUDA autocast; the
    bf16 step is the GPU test below and ``bench/gpu_check.py``."""
    run = settled_run(tiny_store, tmp_path / "run", torch.device("cpu"), dataclasses.replace(TINY, batch=BATCH))
    run.cfg = dataclasses.replace(run.cfg, channels_last=True)
    run.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    fake = FakeCuda()
    normalize._cached_tensors.cache_clear()
    try:
        with fake:
            run.device = torch.device("cuda", 0)  # the stand-in's device: StepRunner takes its GPU branches
            fake.put(run.model)
            step_once = StepRunner(run)
            step_once(mark(_dn_batch(0)))  # warm-up
            warm = fake.count()
            res = step_once(mark(_dn_batch(1)))
            assert res.loss.device.type == "cuda"
        assert fake.events[warm:] == [], _report(fake)
        assert run.step == 2 and run.model.queue.ptr.tolist() == [2 * BATCH] * 3
    finally:
        normalize._cached_tensors.cache_clear()  # entries keyed by the stand-in's device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_one_training_step_on_cuda_raises_no_sync_error(
    tiny_store: Path, tmp_path: Path
) -> None:  # pragma: no cover - GPU only
    dev = torch.device("cuda")
    run = settled_run(tiny_store, tmp_path / "run", dev, dataclasses.replace(TINY, batch=BATCH))  # bf16, channels-last
    step_once = StepRunner(run)
    step_once(_dn_batch(0).to(dev))
    images = _dn_batch(1).to(dev)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step_once(images)
    finally:
        torch.cuda.set_sync_debug_mode("default")
        run.ring.unpin()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_to_reflectance_on_cuda_is_bitwise_the_cpus() -> None:  # pragma: no cover - GPU only
    every = torch.arange(2**16, dtype=torch.int32).to(torch.uint16)
    assert torch.equal(normalize.to_reflectance(every.cuda()).cpu(), normalize.to_reflectance(every))

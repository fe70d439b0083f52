"""Ring sizing (``plan_ring``), the start-up report, and pinning on the run's GPU (CUDA calls stood in)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest
import torch

import seco.data.ring as ring_mod
from seco.data.ring import EXTRA_SLOTS, BatchRing, plan_ring, ring_slots
from seco.errors import ConfigError

GIB = 2**30
SLOT_10M = 256 * 3 * 12 * 264 * 264 * 2  # batch 256 x 3 dates x 12 bands x 264 px uint16: 1.28 GB
BIG = 10**15  # a memory budget that never binds


def test_cpu_plan_is_torchs_prefetch_factor() -> None:
    for workers in (0, 1, 2, 15):
        plan = plan_ring(workers, SLOT_10M, cuda=False, budget_bytes=1)
        assert (plan.workers, plan.prefetch_factor) == (workers, 2)
        assert plan.slots == ring_slots(workers, 2)


def test_cuda_plan_keeps_one_batch_ahead_per_worker_from_four_workers() -> None:
    few = plan_ring(2, SLOT_10M, cuda=True, budget_bytes=BIG)
    assert (few.workers, few.prefetch_factor, few.slots) == (2, 2, 7)
    many = plan_ring(15, SLOT_10M, cuda=True, budget_bytes=BIG)
    assert (many.workers, many.prefetch_factor, many.slots) == (15, 1, 15 + EXTRA_SLOTS)
    assert many.nbytes / GIB == pytest.approx(21.5, abs=0.05)  # issue 19: 39.5 GiB with 33 slots
    assert ring_slots(15, 2) * SLOT_10M / GIB == pytest.approx(39.5, abs=0.05)


def test_cuda_plan_starts_only_the_workers_the_gpu_can_use() -> None:
    plan = plan_ring(15, SLOT_10M, cuda=True, gpu_samples_per_s=3700, decode_samples_per_s=800, budget_bytes=BIG)
    assert plan.workers == 6  # ceil(3700 / 800) + 1
    assert "GPU consumes" in plan.why
    fast_cpu = plan_ring(4, SLOT_10M, cuda=True, gpu_samples_per_s=3700, decode_samples_per_s=100, budget_bytes=BIG)
    assert fast_cpu.workers == 4  # never more than the run may start


def test_cuda_plan_fits_the_memory_budget() -> None:
    budget = 10 * SLOT_10M
    plan = plan_ring(15, SLOT_10M, cuda=True, budget_bytes=budget)
    assert plan.nbytes <= budget and plan.workers == 10 - EXTRA_SLOTS
    assert "GiB" in plan.why
    tiny = plan_ring(15, SLOT_10M, cuda=True, budget_bytes=1)
    assert tiny.workers == 1  # at least one worker: the ring's own check refuses what cannot fit at all


def test_default_budget_is_half_of_free_shared_memory_and_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ring_mod, "_shm_free_bytes", lambda: 64 * GIB)
    monkeypatch.setattr(ring_mod, "_mem_available_bytes", lambda: 120 * GIB)
    plan = plan_ring(15, SLOT_10M, cuda=True)  # 18 slots: 21.5 GiB, within 32 GiB
    assert plan.workers == 15 and plan.slots == 18
    monkeypatch.setattr(ring_mod, "_shm_free_bytes", lambda: 16 * GIB)
    plan = plan_ring(15, SLOT_10M, cuda=True)
    assert plan.nbytes <= 8 * GIB and plan.workers == 8 * GIB // SLOT_10M - EXTRA_SLOTS
    monkeypatch.setattr(ring_mod, "_shm_free_bytes", lambda: 32 * GIB)
    alone = plan_ring(15, SLOT_10M, cuda=True)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two torchrun processes on the node: half the budget each
    shared = plan_ring(15, SLOT_10M, cuda=True)
    assert (alone.workers, shared.workers) == (16 * GIB // SLOT_10M - EXTRA_SLOTS, 8 * GIB // SLOT_10M - EXTRA_SLOTS)


def test_startup_line_reports_size_plan_and_cost() -> None:
    plan = plan_ring(6, 2 * 3 * 100 * 2, cuda=True, budget_bytes=BIG)
    ring = BatchRing.from_plan(plan, (2, 3, 100))
    assert ring.slots == plan.slots == 9 and ring.plan is plan
    line = ring.startup()
    assert line.startswith("batch ring: 9 slots") and "6 workers x prefetch 1" in line
    assert "allocated and zeroed in" in line and ring.alloc_s >= 0.0 and "pinned" not in line


class _Cudart:
    def __init__(self, register_code: int) -> None:
        self.register_code = register_code
        self.calls: list[tuple[Any, ...]] = []

    def cudaHostRegister(self, ptr: int, size: int, flags: int) -> int:  # noqa: N802 - CUDA's name
        self.calls.append(("register", size, flags, _current[0]))
        return self.register_code

    def cudaHostUnregister(self, ptr: int) -> int:  # noqa: N802
        self.calls.append(("unregister",))
        return 0


_current = [0]


def _fake_cuda(monkeypatch: pytest.MonkeyPatch, cudart: _Cudart) -> list[Any]:
    """CUDA stand-ins: one ``cudart``, ``torch.cuda.device`` that records which GPU is current."""
    events: list[Any] = []

    def device(i: int) -> Any:
        _current[0] = i
        return nullcontext()

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "cudart", lambda: cudart)
    monkeypatch.setattr(torch.cuda, "device", device)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: events.append(("synchronize", d)))
    monkeypatch.setattr(ring_mod, "clear_cuda_error", lambda d=None: events.append(("clear", d)))
    return events


def test_pin_is_portable_on_the_runs_gpu_and_unpin_syncs_that_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    cudart = _Cudart(0)
    events = _fake_cuda(monkeypatch, cudart)
    ring = BatchRing(2, (2, 3))
    ring.pin(torch.device("cuda", 1))
    assert ring.pinned and cudart.calls == [("register", ring.nbytes, 1, 1)]  # portable flag, GPU 1 current
    assert "pinned in" in ring.startup()
    ring.unpin()
    assert events == [("synchronize", 1)] and cudart.calls[-1] == ("unregister",) and not ring.pinned


def test_refused_pin_clears_cudas_last_error_then_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _fake_cuda(monkeypatch, _Cudart(2))  # cudaErrorMemoryAllocation
    ring = BatchRing(2, (2, 3))
    with pytest.raises(ConfigError, match=r"cudaHostRegister error 2.*ulimit -l"):
        ring.pin(torch.device("cuda", 1))
    assert events == [("clear", 1)] and not ring.pinned


def test_pin_without_cuda_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(ConfigError, match="no GPU is visible"):
        BatchRing(1, (2, 3)).pin()
    ring_mod.clear_cuda_error()  # no libcudart, no GPU: a harmless no-op

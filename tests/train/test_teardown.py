"""Ending the data path after an error: no worker left behind, and the original error is the one raised."""

from __future__ import annotations

from typing import Any

import psutil
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from seco.data.ring import BatchRing
from seco.train.prefetch import DevicePrefetcher, teardown

FAIL_AT = 5


class _Failing(Dataset):  # type: ignore[type-arg]
    """Sample ``FAIL_AT`` raises inside a worker (as a damaged location does with ``--on-corrupt fail``)."""

    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> dict[str, Any]:
        if i == FAIL_AT:
            raise ValueError(f"sample {i} cannot be read")
        return {"images": torch.full((1, 1, 2, 2), i, dtype=torch.uint16)}


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _run_until_error(pre: DevicePrefetcher, loader: DataLoader, ring: BatchRing | None) -> list[int]:
    """The loop's shape: iterate, and tear down in ``finally``; returns the worker pids seen."""
    pids: list[int] = []
    try:
        for _batch in pre.epoch(loader):
            it: Any = getattr(loader, "_iterator", None)
            pids = pids or [w.pid for w in getattr(it, "_workers", [])]
    finally:
        teardown(pre, ring)
    return pids


def test_error_inside_the_prefetch_generator_leaves_no_worker() -> None:
    """The worker's error surfaces from inside ``DevicePrefetcher.epoch``; while that exception is alive its
    traceback holds the generator and the loader's iterator, so only an explicit shutdown ends the workers."""
    loader = DataLoader(_Failing(), batch_size=2, num_workers=2, persistent_workers=True, prefetch_factor=2)
    pre = DevicePrefetcher(torch.device("cpu"))
    with pytest.raises(ValueError, match=f"sample {FAIL_AT} cannot be read") as err:
        _run_until_error(pre, loader, None)
    workers = [w.pid for w in loader._iterator._workers]  # type: ignore[union-attr]
    assert len(workers) == 2
    assert err.value.__traceback__ is not None  # the exception (and its frames) still alive here
    assert _alive(workers) == [], "workers outlived the run's teardown"


class _Ring(BatchRing):
    """A ring whose unpin fails as ``torch.cuda.synchronize`` does after a CUDA error."""

    def unpin(self) -> None:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


def test_unpin_error_after_an_error_does_not_hide_it(capsys: pytest.CaptureFixture[str]) -> None:
    ring = _Ring(1, (2, 2))
    pre = DevicePrefetcher(torch.device("cpu"))
    with pytest.raises(KeyError, match="the original error"):
        try:
            raise KeyError("the original error")
        finally:
            teardown(pre, ring)
    assert "could not unpin the batch ring" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="illegal memory access"):  # no error before: it is the error
        teardown(pre, ring)

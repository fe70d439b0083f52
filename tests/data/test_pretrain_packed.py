"""Packed ring batches: decoded with ``Store.read_packed``, unpacked on the device to the 10 m grid.

A native-resolution store and a 10 m store of the same (block-constant) synth data must give the same
(B, n, C, H, W) batches through every path, at a patch size divisible by 6 (48) and one that is not (50).
"""

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from seco.data.pretrain import PretrainDataset, ResumableSampler, collate_pretrain, unpack_batch
from seco.data.ring import BatchRing, RingBatches, SlotKeys, ring_slots
from seco.errors import ConfigError, DatasetError
from seco.store import open_store
from seco.store.source import GridSource
from seco.train.prefetch import DevicePrefetcher


@pytest.fixture(scope="module", params=[48, 50])
def stores(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> tuple[Path, Path]:
    """(10 m grid store, native-resolution store) of the same 10 synth locations x 4 dates."""
    from seco.synth import make_store

    d = tmp_path_factory.mktemp(f"packed{request.param}")
    kw = {"num_locations": 10, "num_dates": 4, "patch_size": request.param, "seed": 7, "progress": False}
    return make_store(d / "m10.zarr", grid="10m", **kw), make_store(d / "native.zarr", grid="native", **kw)


def _dataset(path: Path, **kw: Any) -> PretrainDataset:
    return PretrainDataset(path, "all", num_dates=3, seed=4, as_dn=True, drop_incomplete=True, **kw)


def _ring(ds: PretrainDataset, batch: int, workers: int = 0) -> BatchRing:
    assert ds.pack_spec is not None
    ds.ring = BatchRing(ring_slots(workers), (batch, ds.num_dates, ds.pack_spec.length))
    return ds.ring


def test_native_store_packs_fewer_elements(stores: tuple[Path, Path]) -> None:
    m10, native = (_dataset(p) for p in stores)
    assert m10.pack_spec is not None and native.pack_spec is not None
    P = open_store(stores[0]).patch_size
    assert m10.pack_spec.length == 12 * P * P and m10.pack_spec.is_identity
    # 4 bands at 10 m, 6 at 20 m, 2 at 60 m (ceil: the 50 px patch keeps partial blocks at the far edges)
    n20, n60 = -(-P // 2), -(-P // 6)
    assert native.pack_spec.length == 4 * P * P + 6 * n20 * n20 + 2 * n60 * n60
    assert native.pack_spec.length < m10.pack_spec.length / 2


@pytest.mark.parametrize("replace", [False, True])
def test_packed_slot_unpacks_to_the_plain_batch(stores: tuple[Path, Path], replace: bool) -> None:
    m10, native = (_dataset(p, replace=replace) for p in stores)
    keys = [(0, 0), (2, 3), (1, len(native) - 1), (2, 5)]
    if replace:  # some sample of these draws repeats a date: the repeated-dates path is exercised
        assert any(len(set(native.draw(i, e))) < 3 for e in range(3) for i in range(len(native)))
        keys = [(e, i) for e in range(3) for i in range(len(native)) if len(set(native.draw(i, e))) < 3][:2] + keys
    want = collate_pretrain(m10.__getitems__(keys))  # no ring: (B, n, C, H, W) on the 10 m grid
    want_native = collate_pretrain(native.__getitems__(keys))  # no ring on the native store: the same
    assert torch.equal(want_native["images"], want["images"])
    for ds in (m10, native):
        ring = _ring(ds, len(keys))
        got = unpack_batch(collate_pretrain(ds.__getitems__(SlotKeys(keys, 1))), ring)
        assert "images" not in got and got["packed"].shape == (len(keys), 3, ds.pack_spec.length)
        assert got["packed"].data_ptr() == ring.view(1).data_ptr()  # decoded into the slot itself
        assert ds.pack_spec is not None
        assert torch.equal(ds.pack_spec.unpack(got["packed"]), want["images"])
        assert torch.equal(got["dates"], want["dates"]) and torch.equal(got["index"], want["index"])


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_and_prefetcher_give_the_10m_batches(stores: tuple[Path, Path], workers: int) -> None:
    ref = _dataset(stores[0])
    ds = _dataset(stores[1])
    ring = _ring(ds, 3, workers)
    sampler = ResumableSampler(len(ds), 3, seed=2, with_epoch=True)
    loader = DataLoader(
        ds, batch_sampler=RingBatches(sampler, ring), collate_fn=collate_pretrain, num_workers=workers,
        persistent_workers=workers > 0,
    )
    pre = DevicePrefetcher(torch.device("cpu"), ring, ds.pack_spec)
    seen, prev, ptrs = 0, None, set()
    for _ in range(2):  # persistent workers across epochs
        for batch in pre.epoch(loader):
            want = collate_pretrain(ref.__getitems__([(sampler.epoch, int(i)) for i in batch["index"]]))
            assert batch["images"].dtype == torch.uint16
            assert torch.equal(batch["images"], want["images"]) and torch.equal(batch["dates"], want["dates"])
            if prev is not None:  # the batch before is still intact (the unpack buffers take turns)
                assert torch.equal(prev[0], prev[1])
            prev = (batch["images"], want["images"])
            ptrs.add(batch["images"].data_ptr())
            sampler.advance()
            seen += 1
        sampler.next_epoch()
    assert seen == 2 * sampler.batches_per_epoch
    assert len(ptrs) == 2  # two reused unpack buffers on the CPU, no allocation per batch


def test_prefetcher_on_another_device_copies_packed_and_unpacks_there(stores: tuple[Path, Path]) -> None:
    """The non-CPU path without CUDA streams, on the ``meta`` device: the packed batch is what moves."""
    ds = _dataset(stores[1])
    ring = _ring(ds, 2)
    sampler = ResumableSampler(len(ds), 2, seed=0, with_epoch=True)
    loader = DataLoader(ds, batch_sampler=RingBatches(sampler, ring), collate_fn=collate_pretrain)
    batch = next(iter(DevicePrefetcher(torch.device("meta"), ring, ds.pack_spec).epoch(loader)))
    P = open_store(stores[1]).patch_size
    assert batch["packed"].device.type == "meta" and batch["packed"].shape == (2, 3, ds.pack_spec.length)
    assert batch["images"].device.type == "meta" and batch["images"].shape == (2, 3, 12, P, P)
    assert batch["images"].dtype == torch.uint16


class _Event:
    def __init__(self, log: list[str]) -> None:
        self.log, self.done = log, False

    def record(self, stream: Any) -> None:
        self.log.append("record")

    def synchronize(self) -> None:
        self.log.append("synchronize")
        self.done = True


class _Stream:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def wait_event(self, event: _Event) -> None:
        self.log.append("wait")


def test_cuda_branch_logic_with_stand_in_streams(stores: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA path of ``DevicePrefetcher`` (side-stream copy, events, slot-reuse waits, unpack after the
    wait), run on the CPU with stand-ins for the CUDA stream API: same batches, and every slot's copy event is
    synchronised before the loader may refill that slot."""
    log: list[str] = []
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: _Stream(log))
    monkeypatch.setattr(torch.cuda, "stream", lambda s: nullcontext())
    monkeypatch.setattr(torch.cuda, "Event", lambda: _Event(log))
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: _Stream(log))
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda self, s: log.append("record_stream"), raising=False)
    ref = _dataset(stores[0])
    ds = _dataset(stores[1])
    ring = _ring(ds, 2)
    sampler = ResumableSampler(len(ds), 2, seed=3, with_epoch=True)
    loader = DataLoader(ds, batch_sampler=RingBatches(sampler, ring), collate_fn=collate_pretrain)
    pre = DevicePrefetcher(torch.device("cpu"), ring, ds.pack_spec)
    pre.cuda, pre.stream = True, _Stream(log)  # the CUDA branch
    n = 0
    for batch in pre.epoch(loader):
        assert log[-2:] == ["wait", "record_stream"]  # the compute stream waited before the batch is used
        want = collate_pretrain(ref.__getitems__([(0, int(i)) for i in batch["index"]]))
        assert torch.equal(batch["images"], want["images"])
        n += 1
    assert n == sampler.batches_per_epoch == 5
    assert log.count("record") == 5 and log.count("wait") == 5
    # before asking the loader for batch m >= 3 the copy of batch m - 3 is waited for: m = 3, 4 and the ask
    # for m = 5 that ends the epoch
    assert log.count("synchronize") == 3


def test_grid_source_with_read_only_fills_the_ring_on_the_10m_grid(stores: tuple[Path, Path]) -> None:
    class Plain(GridSource):  # implements read(..., out=) only; read_packed / pack_spec come from GridSource
        def __init__(self, store: Any) -> None:
            self.s = store
            self.bands, self.num_dates, self.patch_size = store.bands, store.num_dates, store.patch_size

        def __len__(self) -> int:
            return len(self.s)

        def valid_mask(self) -> np.ndarray:
            return self.s.valid_mask()

        def stats(self, bands: Any = None) -> dict[str, np.ndarray]:
            return self.s.stats(bands)

        def read(self, i: int, dates: Any = None, bands: Any = None, *, out: np.ndarray | None = None) -> np.ndarray:
            return self.s.read(i, dates, bands, out=out)

    ds = _dataset(stores[1])
    plain = PretrainDataset(Plain(open_store(stores[1])), "all", num_dates=3, seed=4, as_dn=True,
                            drop_incomplete=True)
    assert plain.pack_spec.is_identity
    keys = [(0, 1), (0, 2)]
    ring = _ring(plain, 2)
    got = unpack_batch(collate_pretrain(plain.__getitems__(SlotKeys(keys, 0))), ring)
    want = collate_pretrain(ds.__getitems__(keys))
    assert torch.equal(plain.pack_spec.unpack(got["packed"]), want["images"])
    plain.ring = None  # without a ring: (B, n, C, H, W) as before
    assert torch.equal(collate_pretrain(plain.__getitems__(keys))["images"], want["images"])


def test_an_object_that_is_no_store_is_refused() -> None:
    class NotAStore:  # read() but none of the rest of ImageSource
        bands = ("B02",)

        def read(self, i: int) -> np.ndarray:
            return np.zeros((1, 1, 4, 4), np.uint16)

    with pytest.raises(ConfigError, match="NotAStore is not a store"):
        PretrainDataset(NotAStore())  # type: ignore[arg-type]


def test_mismatched_ring_and_missing_spec_are_refused(stores: tuple[Path, Path]) -> None:
    m10, native = (_dataset(p) for p in stores)
    assert m10.pack_spec is not None
    native.ring = BatchRing(1, (2, 3, m10.pack_spec.length))  # a 10 m ring for a native store
    with pytest.raises(DatasetError, match=r"make the ring with shape \(B, 3, \d+\)"):
        native.__getitems__(SlotKeys([0, 1], 0))
    as_float = _dataset(stores[1])
    as_float.as_dn = False
    _ring(as_float, 2)
    with pytest.raises(DatasetError, match="as_dn=True"):
        as_float.__getitems__(SlotKeys([0, 1], 0))
    ring = _ring(native, 2)
    sampler = ResumableSampler(len(native), 2, seed=0, with_epoch=True)
    loader = DataLoader(native, batch_sampler=RingBatches(sampler, ring), collate_fn=collate_pretrain)
    with pytest.raises(DatasetError, match="PackSpec"):
        next(iter(DevicePrefetcher(torch.device("cpu"), ring).epoch(loader)))

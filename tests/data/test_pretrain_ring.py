"""The batch ring (workers decode into reusable shared buffers) and damaged locations in the pre-training data."""

import shutil
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from seco.data.pretrain import PretrainDataset, collate_pretrain, unpack_batch
from seco.data.ring import BatchRing, RingBatches, ring_slots
from seco.data.sampler import ResumableSampler
from seco.errors import ConfigError, StoreCorruptError
from seco.train.prefetch import DevicePrefetcher

BAD = 3  # the damaged store location


def damage(store: Path, loc: int, out: Path) -> Path:
    """A copy of ``store`` whose location ``loc`` has every data byte of its shard inverted (index kept)."""
    shutil.copytree(store, out)
    files = [p for p in (out / "images" / "c" / str(loc)).rglob("*") if p.is_file()]
    assert len(files) == 1, files
    data = bytearray(files[0].read_bytes())
    for k in range(len(data) - 2000):  # the shard index (~1 kB) sits at the end
        data[k] ^= 0xFF
    files[0].write_bytes(bytes(data))
    return out


@pytest.fixture(scope="module")
def bad_store(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    tiny = request.getfixturevalue("tiny_store")
    return damage(tiny, BAD, tmp_path_factory.mktemp("bad") / "bad.zarr")


def _ring_for(ds: PretrainDataset, batch: int, workers: int) -> BatchRing:
    assert ds.pack_spec is not None
    ring = BatchRing(ring_slots(workers), (batch, ds.num_dates, ds.pack_spec.length))  # (R, B, n, L) packed
    ds.ring = ring
    return ring


@pytest.mark.parametrize("workers", [0, 2])
def test_ring_batches_equal_plain_reads_across_epochs(tiny_store: Path, workers: int) -> None:
    ds = PretrainDataset(tiny_store, "all", num_dates=3, seed=5, as_dn=True, drop_incomplete=True)
    ref = PretrainDataset(tiny_store, "all", num_dates=3, seed=5, as_dn=True, drop_incomplete=True)
    ring = _ring_for(ds, 4, workers)
    sampler = ResumableSampler(len(ds), 4, seed=1, with_epoch=True)
    loader = DataLoader(
        ds, batch_sampler=RingBatches(sampler, ring), collate_fn=collate_pretrain, num_workers=workers,
        persistent_workers=workers > 0,
    )
    pre = DevicePrefetcher(torch.device("cpu"), ring, ds.pack_spec)
    lo, hi = ring.buffers.data_ptr(), ring.buffers.data_ptr() + ring.nbytes
    seen, prev = 0, None
    for _ in range(3):  # persistent workers across epochs: (epoch, i) keys, no set_epoch needed
        for batch in pre.epoch(loader):
            want = collate_pretrain(ref.__getitems__([(sampler.epoch, int(i)) for i in batch["index"]]))
            assert torch.equal(batch["images"], want["images"]) and torch.equal(batch["dates"], want["dates"])
            assert lo <= batch["images"].data_ptr() < hi  # the ring slot itself: no copy on the way
            if prev is not None:  # the batch the loop held while the next one was fetched was not overwritten
                assert torch.equal(prev[0], prev[1])
            prev = (batch["images"], want["images"])
            sampler.advance()
            seen += 1
        sampler.next_epoch()
    assert seen == 3 * sampler.batches_per_epoch
    assert ring._count == seen  # one slot claimed per batch dispatched, cycling through the ring


def test_ring_refuses_what_memory_cannot_hold() -> None:
    with pytest.raises(ConfigError, match="GiB") as e:
        BatchRing(ring_slots(64), (4096, 3, 12, 1024, 1024))  # ~ 19 TiB: checked before allocating
    assert "--batch-size" in str(e.value) and "--num-workers" in str(e.value)


def test_damaged_location_fails_with_location_and_file(bad_store: Path) -> None:
    ds = PretrainDataset(bad_store, "all", num_dates=3, seed=0, as_dn=True, drop_incomplete=True)
    i = int((ds.locations == BAD).nonzero()[0][0])
    with pytest.raises(StoreCorruptError) as e:
        ds.__getitems__([0, i])
    assert e.value.location == BAD and e.value.path and f"/c/{BAD}/" in e.value.path
    assert str(BAD) in str(e.value) and "bad.zarr" in str(e.value)
    with pytest.raises(StoreCorruptError):
        ds[i]
    # through a worker process: the typed error with its attributes reaches the main process intact
    ring = _ring_for(ds, 2, 1)
    sampler = ResumableSampler(len(ds), 2, seed=0, with_epoch=True)
    loader = DataLoader(ds, batch_sampler=RingBatches(sampler, ring), collate_fn=collate_pretrain, num_workers=1)
    with pytest.raises(StoreCorruptError) as e:
        for batch in loader:
            unpack_batch(batch, ring)
    assert e.value.location == BAD and "Traceback" not in str(e.value) and "\n" not in str(e.value)


def test_skip_substitutes_deterministically(bad_store: Path, tiny_store: Path) -> None:
    ds = PretrainDataset(bad_store, "all", num_dates=3, seed=0, as_dn=True, drop_incomplete=True, on_corrupt="skip")
    clean = PretrainDataset(tiny_store, "all", num_dates=3, seed=0, as_dn=True, drop_incomplete=True)
    i = int((ds.locations == BAD).nonzero()[0][0])
    keys = [(1, 0), (1, i), (1, 5)]
    got = collate_pretrain(ds.__getitems__(keys))
    assert [r["location"] for r in got["corrupt"]] == [BAD] and ds.known_bad == {BAD}
    j = int(got["index"][1])
    assert j != i and int(got["location"][1]) != BAD
    # the substitute is the sample j of the clean data, with j's own date draw
    want = collate_pretrain(clean.__getitems__([(1, 0), (1, j), (1, 5)]))
    assert torch.equal(got["images"], want["images"]) and torch.equal(got["dates"], want["dates"])
    # a dataset that already knows the damaged location (a resumed run) picks the same, without reading it
    again = PretrainDataset(bad_store, "all", num_dates=3, seed=0, as_dn=True, drop_incomplete=True, on_corrupt="skip")
    again.known_bad = {BAD}
    got2 = collate_pretrain(again.__getitems__(keys))
    assert torch.equal(got2["images"], got["images"]) and torch.equal(got2["index"], got["index"])
    assert "corrupt" not in got2
    # another epoch may pick another substitute, still deterministic
    assert collate_pretrain(ds.__getitems__([(2, i)]))["index"].tolist() == \
        collate_pretrain(again.__getitems__([(2, i)]))["index"].tolist()
    with pytest.raises(ConfigError, match="on_corrupt"):
        PretrainDataset(bad_store, "all", on_corrupt="ignore")

"""Pre-training dataset and resumable sampler: date draws, reads, collate, resume, DDP sharding."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, default_collate

from seco.data.normalize import to_reflectance
from seco.data.pretrain import (
    PretrainBatch,
    PretrainDataset,
    ResumableSampler,
    check_batch_size,
    collate_pretrain,
)
from seco.errors import BandError, ConfigError, DatasetError
from seco.store.source import GridSource

BANDS = ("B02", "B03", "B04", "B08")


class FakeStore(GridSource):
    """The ``seco.store.Store`` reading API over an in-memory array.

    Pixel value ``DN = 1000 * (date + 1) + 100 * band + location`` (uint16), so a read reveals which
    location, date and band it came from; ``reads`` records every ``read`` call.
    """

    def __init__(self, n: int = 10, num_dates: int = 5, patch_size: int = 6, valid: np.ndarray | None = None):
        self.bands = BANDS
        self.num_dates = num_dates
        self.patch_size = patch_size
        loc = np.arange(n)[:, None, None]
        date = np.arange(num_dates)[None, :, None]
        band = np.arange(len(BANDS))[None, None, :]
        dn = (1000 * (date + 1) + 100 * band + loc).astype(np.uint16)  # (N, T, C)
        self._images = np.broadcast_to(dn[..., None, None], (*dn.shape, patch_size, patch_size))
        self._valid = np.ones((n, num_dates), bool) if valid is None else valid
        self.reads: list[tuple[int, list[int], list[str]]] = []

    def __len__(self) -> int:
        return len(self._valid)

    def read(self, i, dates=None, bands=None, *, out=None):
        dates = list(range(self.num_dates)) if dates is None else [int(d) for d in dates]
        bands = list(self.bands) if bands is None else list(bands)
        self.reads.append((i, dates, bands))
        b = [self.bands.index(x) for x in bands]
        arr = np.ascontiguousarray(self._images[i][dates][:, b])
        if out is None:
            return arr
        out[...] = arr
        return out

    def valid(self, i):
        return self._valid[i].copy()

    def valid_mask(self):
        return self._valid.copy()

    def stats(self, bands=None):
        c = len(bands or self.bands)
        return {"mean": np.full(c, 1000.0), "std": np.full(c, 100.0), "p2": np.zeros(c), "p98": np.full(c, 2e3)}


def decode(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, C, H, W) reflectance -> (date, band, location) per (n, C)."""
    dn = np.rint(images[..., 0, 0].numpy() * 10000).astype(int)
    return dn // 1000 - 1, (dn % 1000) // 100, dn % 100


# --- dataset ------------------------------------------------------------------------------------------


def test_item_reads_only_the_drawn_dates_and_asked_bands() -> None:
    store = FakeStore()
    ds = PretrainDataset(store, "B08,B03", num_dates=3, seed=1)
    item = ds[4]
    assert set(item) == {"images", "dates", "index", "location"}
    assert item["images"].shape == (3, 2, 6, 6) and item["images"].dtype == torch.float32
    assert item["dates"].dtype == torch.long and item["index"] == 4 and item["location"] == 4
    dates = item["dates"].tolist()
    assert len(set(dates)) == 3
    date, band, loc = decode(item["images"])
    assert (date == np.array(dates)[:, None]).all()  # images in draw order
    assert (band == [[3, 1]] * 3).all() and (loc == 4).all()
    (i, read_dates, read_bands), = store.reads
    assert i == 4 and sorted(read_dates) == sorted(dates) and read_bands == ["B08", "B03"]


def test_draw_is_a_function_of_seed_epoch_index() -> None:
    a = PretrainDataset(FakeStore(), num_dates=3, seed=5)
    b = PretrainDataset(FakeStore(), num_dates=3, seed=5)
    c = PretrainDataset(FakeStore(), num_dates=3, seed=6)
    for i in range(len(a)):
        assert torch.equal(a[i]["dates"], b[i]["dates"])
    assert any(a.draw(i) != c.draw(i) for i in range(len(a)))
    draws0 = [a.draw(i) for i in range(len(a))]
    a.set_epoch(1)
    draws1 = [a[i]["dates"].tolist() for i in range(len(a))]
    assert draws0 != draws1
    assert draws1 == [a.draw(i, epoch=1) for i in range(len(a))]
    # an (epoch, i) key ignores the dataset's epoch (for persistent workers)
    a.set_epoch(7)
    assert a[(0, 3)]["dates"].tolist() == draws0[3] and a[(0, 3)]["index"] == 3


def test_invalid_dates_are_never_drawn() -> None:
    valid = np.ones((6, 5), bool)
    valid[:, [1, 3]] = False
    ds = PretrainDataset(FakeStore(n=6, valid=valid), num_dates=3, seed=0)
    for e in range(5):
        ds.set_epoch(e)
        for i in range(len(ds)):
            assert sorted(ds[i]["dates"].tolist()) == [0, 2, 4]


def test_locations_with_too_few_valid_dates() -> None:
    valid = np.ones((8, 5), bool)
    valid[[2, 6], 2:] = False  # two valid dates
    with pytest.raises(DatasetError, match=r"2 of 8 locations have fewer than 3 valid dates.*2 \(2\), 6 \(2\)"):
        PretrainDataset(FakeStore(n=8, valid=valid), num_dates=3)
    ds = PretrainDataset(FakeStore(n=8, valid=valid), num_dates=3, drop_incomplete=True)
    assert len(ds) == 6 and ds.skipped == (2, 6)
    assert [ds[i]["location"] for i in range(6)] == [0, 1, 3, 4, 5, 7]
    assert len(PretrainDataset(FakeStore(n=8, valid=valid), num_dates=2)) == 8
    with pytest.raises(DatasetError, match="no location"):
        PretrainDataset(FakeStore(n=2, valid=np.zeros((2, 5), bool)), num_dates=1, drop_incomplete=True)


def test_replace_reproduces_official_draw_with_repeats() -> None:
    valid = np.zeros((3, 5), bool)
    valid[:, 2] = True  # one valid date: every draw repeats it
    store = FakeStore(n=3, valid=valid)
    item = PretrainDataset(store, num_dates=3, replace=True)[1]
    assert item["dates"].tolist() == [2, 2, 2]
    assert store.reads[-1][1] == [2]  # read once
    date, _, _ = decode(item["images"])
    assert (date == 2).all()


def test_bad_arguments() -> None:
    with pytest.raises(BandError, match="B11"):
        PretrainDataset(FakeStore(), "B02,B11")
    with pytest.raises(ConfigError, match="num_dates"):
        PretrainDataset(FakeStore(), num_dates=0)
    with pytest.raises(ConfigError, match="seed -1"):
        PretrainDataset(FakeStore(), seed=-1)
    with pytest.raises(ConfigError, match="seed -1"):
        ResumableSampler(10, 2, seed=-1)


def test_dn_output_collate_and_loader() -> None:
    ds = PretrainDataset(FakeStore(), num_dates=2, as_dn=True)
    item = ds[0]
    assert item["images"].dtype == torch.uint16
    loader = DataLoader(ds, batch_sampler=ResumableSampler(len(ds), 4, seed=0), collate_fn=collate_pretrain)
    batch = next(iter(loader))
    assert batch["images"].shape == (4, 2, 4, 6, 6) and batch["images"].dtype == torch.uint16
    assert batch["dates"].shape == (4, 2) and batch["index"].shape == (4,)
    ref = to_reflectance(batch["images"])
    floats = torch.stack([PretrainDataset(FakeStore(), num_dates=2)[i]["images"] for i in batch["index"].tolist()])
    torch.testing.assert_close(ref, floats)


def assert_same_batch(ds: PretrainDataset, keys: list) -> None:
    """``ds.__getitems__(keys)`` equals ``[ds[k] for k in keys]`` item by item, and collates to the same batch."""
    got = ds.__getitems__(keys)
    want = [ds[k] for k in keys]
    assert isinstance(got, PretrainBatch) and len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert set(g) == set(w) == {"images", "dates", "index", "location"}
        assert g["images"].dtype == w["images"].dtype and torch.equal(g["images"], w["images"])
        assert g["dates"].dtype == w["dates"].dtype and torch.equal(g["dates"], w["dates"])
        assert (g["index"], g["location"]) == (w["index"], w["location"])
    fast, ref = collate_pretrain(got), default_collate(want)
    assert fast["images"] is got.collated["images"]  # passed through, not stacked again
    assert set(fast) == set(ref)
    for k in ref:
        assert fast[k].dtype == ref[k].dtype and torch.equal(fast[k], ref[k]), k
    plain = default_collate(got)  # still a list of items for any other collate function
    assert torch.equal(plain["images"], ref["images"])


@pytest.mark.parametrize("as_dn", [True, False])
@pytest.mark.parametrize("replace", [False, True])
def test_getitems_equals_per_item_reads(as_dn: bool, replace: bool) -> None:
    valid = np.ones((10, 5), bool)
    valid[3, :3] = False  # 2 valid dates: repeats with replace=True
    ds = PretrainDataset(FakeStore(valid=valid), "B08,B02,B03", num_dates=3, seed=3, replace=replace,
                         drop_incomplete=True, as_dn=as_dn)
    assert replace == any(len(set(ds.draw(i))) < 3 for i in range(len(ds)))
    assert_same_batch(ds, [4, 0, 2, 2, len(ds) - 1])
    assert_same_batch(ds, [(2, 1), (0, 1), (5, 3)])  # (epoch, i) keys ignore set_epoch
    ds.set_epoch(7)
    assert_same_batch(ds, list(range(len(ds))))
    with pytest.raises(ConfigError, match="empty"):
        collate_pretrain(ds.__getitems__([]))


def test_dataset_pickles() -> None:
    ds = PretrainDataset(FakeStore(), num_dates=3, seed=2)
    ds.set_epoch(3)
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[5]["images"], ds[5]["images"])


# --- sampler ------------------------------------------------------------------------------------------


def run(sampler: ResumableSampler, batches: int, ds: PretrainDataset | None = None) -> list[list[int]]:
    """Consume ``batches`` batches through a DataLoader as the training loop does (advance after each)."""
    out: list[list[int]] = []
    while len(out) < batches:
        if ds is not None:
            ds.set_epoch(sampler.epoch)
        loader = DataLoader(ds if ds is not None else range(sampler.n), batch_sampler=sampler,
                            collate_fn=collate_pretrain if ds is not None else None)
        for batch in loader:
            out.append(batch["index"].tolist() if ds is not None else batch.tolist())
            sampler.advance()
            if len(out) == batches:
                return out
        sampler.next_epoch()
    return out


@pytest.mark.parametrize("n_batches", [6, 7, 13])
def test_resume_mid_epoch_continues_with_the_exact_next_sample(n_batches: int) -> None:
    n, bs = 23, 4  # 5 batches per epoch (3 samples dropped): the runs cross epoch boundaries
    straight = run(ResumableSampler(n, bs, seed=3), n_batches)
    first = ResumableSampler(n, bs, seed=3)
    a = run(first, n_batches // 2)
    state = first.state_dict()
    second = ResumableSampler(n, bs, seed=3)  # a fresh process
    second.load_state_dict(state)
    b = run(second, n_batches - n_batches // 2)
    assert a + b == straight
    assert all(len(x) == bs for x in straight)


def test_resume_reproduces_dates_too() -> None:
    ds = PretrainDataset(FakeStore(n=12), num_dates=3, seed=4)
    straight_s = ResumableSampler(len(ds), 3, seed=4)
    dates_straight = []
    for batch in run_batches(straight_s, ds, 7):
        dates_straight.append(batch)
    s = ResumableSampler(len(ds), 3, seed=4)
    part = run_batches(s, ds, 3)
    s2 = ResumableSampler(len(ds), 3, seed=4)
    s2.load_state_dict(s.state_dict())
    ds2 = PretrainDataset(FakeStore(n=12), num_dates=3, seed=4)
    part += run_batches(s2, ds2, 4)
    assert part == dates_straight


def run_batches(sampler: ResumableSampler, ds: PretrainDataset, batches: int) -> list[list[list[int]]]:
    out = []
    while len(out) < batches:
        ds.set_epoch(sampler.epoch)
        for batch in DataLoader(ds, batch_sampler=sampler, collate_fn=collate_pretrain):
            out.append(batch["dates"].tolist())
            sampler.advance()
            if len(out) == batches:
                return out
        sampler.next_epoch()
    return out


def test_prefetch_does_not_move_the_position() -> None:
    s = ResumableSampler(20, 2, seed=0)
    it = iter(s)
    got = [next(it) for _ in range(4)]  # prefetched 4 batches, trained on 1
    s.advance()
    s2 = ResumableSampler(20, 2, seed=0)
    s2.load_state_dict(s.state_dict())
    assert next(iter(s2)) == got[1]


def test_epochs_are_different_permutations() -> None:
    s = ResumableSampler(50, 5, seed=1)
    e0, e1 = s.indices(0), s.indices(1)
    assert sorted(e0) == sorted(e1) == list(range(50)) and not np.array_equal(e0, e1)
    assert np.array_equal(e0, ResumableSampler(50, 5, seed=1).indices(0))


@pytest.mark.parametrize("world_size", [2, 3])
def test_ddp_shards_are_disjoint(world_size: int) -> None:
    n, bs = 50, 4
    shards = [ResumableSampler(n, bs, seed=9, rank=r, world_size=world_size) for r in range(world_size)]
    per = [[i for b in s for i in b] for s in shards]
    sets = [set(p) for p in per]
    assert all(len(p) == len(set(p)) == shards[0].num_samples for p in per)
    assert shards[0].num_samples % bs == 0 and shards[0].num_samples == (n // (bs * world_size)) * bs
    for a in range(world_size):
        for b in range(a + 1, world_size):
            assert not sets[a] & sets[b]
    # every rank has the same number of full batches (lockstep DDP)
    assert len({len(list(s)) for s in shards}) == 1
    # without drop_last the shards cover every sample (padded by wrapping)
    padded = [ResumableSampler(n, bs, seed=9, rank=r, world_size=world_size, drop_last=False) for r in range(world_size)]
    covered = {i for s in padded for b in s for i in b}
    assert covered == set(range(n))
    assert len({s.num_samples for s in padded}) == 1


def test_too_few_locations_for_a_batch() -> None:
    with pytest.raises(ConfigError, match=r"7 usable locations.*batch of 8.*at most 7"):
        ResumableSampler(7, 8)
    with pytest.raises(ConfigError, match=r"10 usable locations.*4 per process x 3 processes.*at most 9 \(3 per"):
        check_batch_size(10, 4, world_size=3)
    check_batch_size(12, 4, world_size=3)


def test_state_validation_and_epoch_controls() -> None:
    s = ResumableSampler(20, 4, seed=1)
    with pytest.raises(ConfigError, match="batch_size=5"):
        ResumableSampler(20, 5, seed=1).load_state_dict(s.state_dict())
    with pytest.raises(ConfigError, match="seed"):
        ResumableSampler(20, 4, seed=2).load_state_dict(s.state_dict())
    with pytest.raises(ConfigError, match="rank 2"):
        ResumableSampler(20, 4, rank=2, world_size=2)
    s.advance(2)
    assert s.position == 8 and len(s) == 3
    s.set_epoch(0)  # the current epoch: the restored position is kept
    assert s.position == 8
    s.set_epoch(1)
    assert (s.epoch, s.position) == (1, 0) and len(s) == s.batches_per_epoch == 5
    s.advance(5)
    assert list(s) == []  # a fully consumed epoch yields nothing until next_epoch()
    with pytest.raises(ConfigError, match="next_epoch"):
        s.advance()


def test_with_epoch_yields_keys_the_dataset_understands() -> None:
    ds = PretrainDataset(FakeStore(), num_dates=3, seed=0)
    s = ResumableSampler(len(ds), 5, seed=0, with_epoch=True)
    s.set_epoch(2)
    batch = next(iter(s))
    assert all(k[0] == 2 for k in batch)
    ds.set_epoch(0)  # ignored for (epoch, i) keys
    assert ds[batch[0]]["dates"].tolist() == ds.draw(batch[0][1], epoch=2)


# --- with the real store ----------------------------------------------------------------------------


def test_real_store_by_path_opens_lazily_in_workers(tmp_path) -> None:
    import seco.store as store_mod

    rng = np.random.default_rng(0)
    path = tmp_path / "s.zarr"
    w = store_mod.create_store(path, bands=BANDS, num_dates=4, patch_size=8)
    meta = {"item_id": "x", "datetime": "2020-06-14T10:36:29Z", "cloud_fraction": 0.0, "nodata_fraction": 0.0, "crs": "EPSG:32631",
            "transform": (10.0, 0.0, 0.0, 0.0, -10.0, 0.0), "lat": 0.0, "lon": 0.0}
    for k in range(5):
        images = rng.integers(1, 5000, size=(4, len(BANDS), 8, 8), dtype=np.uint16)
        valid = np.array([True, True, k != 2, True])
        w.append(f"loc{k}", images, valid, [meta if v else None for v in valid])
    w.close()
    store = store_mod.open_store(path)
    ds = PretrainDataset(path, "B04,B02", num_dates=3, seed=1)
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._store is None  # reopened in the worker, not pickled
    for i in range(len(ds)):
        item = clone[i]
        want = store.read(i, dates=item["dates"].tolist(), bands=["B04", "B02"]).astype(np.float32) / 10000
        np.testing.assert_allclose(item["images"].numpy(), want)
        assert bool(store.valid(i)[item["dates"].numpy()].all())
    # through a worker process: same batches as in-process, and set_epoch reaches the (re-created) worker
    ds.set_epoch(1)
    sampler = ResumableSampler(len(ds), 2, seed=0)
    kw = {"batch_sampler": sampler, "collate_fn": collate_pretrain}
    inproc = [b["dates"] for b in DataLoader(ds, **kw)]
    worker = [b["dates"] for b in DataLoader(ds, num_workers=1, **kw)]
    assert len(inproc) == 2 and all(torch.equal(a, b) for a, b in zip(inproc, worker, strict=True))
    assert [d.tolist() for d in inproc[0]] == [ds.draw(i, epoch=1) for i in sampler.indices(0)[:2]]


@pytest.mark.parametrize("as_dn", [True, False])
@pytest.mark.parametrize("replace", [False, True])
def test_getitems_reads_a_real_store_into_one_buffer(tmp_path, as_dn: bool, replace: bool) -> None:
    import seco.store as store_mod

    rng = np.random.default_rng(1)
    path = tmp_path / "s.zarr"
    w = store_mod.create_store(path, bands=BANDS, num_dates=4, patch_size=8)
    meta = {"item_id": "x", "datetime": "2020-06-14T10:36:29Z", "cloud_fraction": 0.0, "nodata_fraction": 0.0,
            "crs": "EPSG:32631", "transform": (10.0, 0.0, 0.0, 0.0, -10.0, 0.0), "lat": 0.0, "lon": 0.0}
    for k in range(7):
        images = rng.integers(1, 12000, size=(4, len(BANDS), 8, 8), dtype=np.uint16)
        valid = np.array([True, True, k % 3 != 2, k != 4])
        w.append(f"loc{k}", images, valid, [meta if v else None for v in valid])
    w.close()
    ds = PretrainDataset(path, "B04,B08,B02", num_dates=3, seed=2, replace=replace, drop_incomplete=True,
                         as_dn=as_dn)
    assert replace == any(len(set(ds.draw(i))) < 3 for i in range(len(ds)))  # repeats are read too
    assert_same_batch(ds, list(range(len(ds))))
    assert_same_batch(ds, [(3, 0), (1, 0), (3, len(ds) - 1)])
    # in a worker the batch is decoded into shared memory; the same batches as item by item
    sampler = ResumableSampler(len(ds), 2, seed=5, with_epoch=True)
    for b in DataLoader(ds, batch_sampler=sampler, collate_fn=collate_pretrain, num_workers=1):
        ref = default_collate([ds[(0, int(i))] for i in b["index"]])
        assert b["images"].dtype == ref["images"].dtype and torch.equal(b["images"], ref["images"])
        assert torch.equal(b["dates"], ref["dates"]) and torch.equal(b["location"], ref["location"])

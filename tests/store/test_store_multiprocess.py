"""A Store pickles to its path and reopens lazily, so DataLoader workers (fork or spawn) can read it."""

from __future__ import annotations

import multiprocessing as mp
import pickle

import numpy as np
import pytest
from store_helpers import BANDS, P, T, location, stored

from seco.store import create_store, open_store


def _digest(args):
    store, i = args
    x = store.read(i, [0, 2], ["B04", "B08"])
    return i, int(x.astype(np.int64).sum()), store.meta(i)[0]["item_id"]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("mp") / "s.zarr"
    with create_store(path, BANDS, T, P) as w:
        for i in range(6):
            loc = location(i)
            w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    return path


def _expected(i):
    loc = location(i)
    return i, int(stored(loc)[[0, 2]][:, [2, 3]].astype(np.int64).sum()), loc["dates_meta"][0]["item_id"]


def test_pickle_roundtrip_reopens_lazily(store_path):
    s = open_store(store_path)
    s.read(0)
    s.valid_mask()
    blob = pickle.dumps(s)
    assert len(blob) < 10_000  # path and snapshot only, no array handles or pixels
    t = pickle.loads(blob)
    assert t._root is None and len(t) == 6 and t.bands == BANDS
    assert _digest((t, 3)) == _expected(3)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_worker_processes_read_the_same(store_path, method):
    if method not in mp.get_all_start_methods():
        pytest.skip(f"{method} not available on this platform")
    s = open_store(store_path)
    s.read(1)  # handles opened in the parent before the workers start (the fork hazard)
    ctx = mp.get_context(method)
    with ctx.Pool(2) as pool:
        got = pool.map(_digest, [(s, i) for i in range(6)])
    assert got == [_expected(i) for i in range(6)]
    assert _digest((s, 5)) == _expected(5)  # the parent still works after forking

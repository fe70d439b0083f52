"""Writing and reading a store: pixels, metadata, labels, statistics, layouts, plain-zarr access."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import zarr
from store_helpers import BANDS, P, T, location, reference_stats, stored

from seco.errors import StoreError
from seco.store import SCHEMA_VERSION, StoreLayout, create_store, open_store, open_writer
from seco.store.shard import ShardLayout
from seco.store.stats import percentile


def _write(path, n=7, layout=None, **kw):
    locs = [location(i) for i in range(n)]
    with create_store(path, BANDS, T, P, attrs={"source": "test"}, label_names=["a", "b", "c", "d"],
                      layout=layout, **kw) as w:
        for loc in locs:
            assert w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], label=loc["label"]) >= 0
    return locs


def test_roundtrip_pixels_metadata_labels(tmp_path):
    locs = _write(tmp_path / "s.zarr")
    s = open_store(tmp_path / "s.zarr")
    assert len(s) == 7 and s.bands == BANDS and s.num_dates == T and s.patch_size == P
    assert s.label_names == ["a", "b", "c", "d"] and s.attrs == {"source": "test"}
    assert s.keys() == [loc["key"] for loc in locs]
    np.testing.assert_array_equal(s.labels(), [loc["label"] for loc in locs])
    np.testing.assert_array_equal(s.valid_mask(), np.stack([loc["valid"] for loc in locs]))
    for i, loc in enumerate(locs):
        np.testing.assert_array_equal(s.read(i), stored(loc))
        np.testing.assert_array_equal(s.valid(i), loc["valid"])
        meta = s.meta(i)
        assert len(meta) == T
        for t, m in enumerate(meta):
            want = loc["dates_meta"][t]
            assert m["valid"] == bool(loc["valid"][t])
            if want is None:
                assert all(m[k] is None for k in m if k != "valid")
                continue
            assert m["item_id"] == want["item_id"]
            assert m["datetime"] == want["datetime"].replace("+00:00", "Z")
            assert m["cloud_fraction"] == want["cloud_fraction"]
            assert m["crs"] == "EPSG:32633"
            assert m["transform"] == want["transform"]
            assert (m["lat"], m["lon"]) == (want["lat"], want["lon"])
    # one column for all locations
    dt = s.meta_array("datetime")
    assert dt.dtype == np.dtype("datetime64[us]") and dt.shape == (7, T)
    assert np.isnat(dt[1, 1]) and str(dt[0, 0]) == "2020-01-01T10:30:00.123456"
    assert s.meta_array("transform").shape == (7, T, 6)


def test_read_selects_dates_and_bands_in_any_order(tmp_path):
    locs = _write(tmp_path / "s.zarr", n=3)
    s = open_store(tmp_path / "s.zarr")
    x = stored(locs[2])
    np.testing.assert_array_equal(s.read(2, [2, 0], ["B08", "B02"]), x[[2, 0]][:, [3, 0]])
    np.testing.assert_array_equal(s.read(2, [1, 1], "RGB"), x[[1, 1]][:, [2, 1, 0]])
    np.testing.assert_array_equal(s.read(-1, np.array([0])), x[[0]])
    assert s.read(0, [], None).shape == (0, 4, P, P)


@pytest.mark.parametrize(
    "layout",
    [
        StoreLayout(),
        StoreLayout(inner_chunk="date"),
        StoreLayout(codec="zstd", clevel=5),
        StoreLayout(codec="blosc-lz4", clevel=5, shuffle="shuffle"),
        StoreLayout(sharded=False),
    ],
    ids=["default", "chunk-per-date", "zstd", "lz4", "unsharded"],
)
def test_direct_shard_path_matches_zarr(tmp_path, layout):
    locs = _write(tmp_path / "s.zarr", n=5, layout=layout)
    s = open_store(tmp_path / "s.zarr")
    fast = s._fast_reader()
    assert (fast is not None) == layout.sharded  # every sharded layout seco writes has the direct path
    z = zarr.open_group(tmp_path / "s.zarr", mode="r")["images"]
    for i, loc in enumerate(locs):
        np.testing.assert_array_equal(z[i], stored(loc))  # what zarr itself decodes (ShardWriter output)
        np.testing.assert_array_equal(s.read(i, [2, 0], ["B04", "B08"]), z.oindex[i, [2, 0], [2, 3]])


def test_shard_reader_refuses_layouts_it_does_not_know(tmp_path):
    z = zarr.create_array(tmp_path / "a.zarr", shape=(2, 3, 4, 8, 8), chunks=(1, 1, 2, 8, 8),
                          shards=(1, 3, 4, 8, 8), dtype="uint16", fill_value=0)
    assert ShardLayout.of_array(tmp_path / "a.zarr") is None  # inner chunk of 2 bands
    z = zarr.create_array(tmp_path / "b.zarr", shape=(2, 3, 4, 8, 8), chunks=(1, 1, 1, 8, 8),
                          shards=(1, 3, 4, 8, 8), dtype="int16", fill_value=0)
    assert ShardLayout.of_array(tmp_path / "b.zarr") is None  # not uint16
    assert z.shape[0] == 2


def test_stats_are_exact(tmp_path):
    locs = _write(tmp_path / "s.zarr", n=6)
    s = open_store(tmp_path / "s.zarr")
    ref = reference_stats(locs)
    got = s.stats(pixels="valid")  # every valid pixel (tests/store/test_clear_stats.py: the clear ones)
    for k in ("mean", "std", "p2", "p98"):
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-12, err_msg=k)
    sub = s.stats(["B08", "B02"], pixels="valid")
    np.testing.assert_allclose(sub["mean"], ref["mean"][[3, 0]], rtol=1e-12)
    assert set(got) == {"mean", "std", "p2", "p98"}


def test_histogram_percentile_matches_numpy_on_awkward_data():
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 101):
        v = rng.integers(1, 20, n)
        h = np.bincount(v, minlength=65536)
        for q in (0, 2, 37.5, 50, 98, 100):
            assert percentile(h, q) == pytest.approx(np.percentile(v, q), rel=1e-12, abs=1e-12)


def test_stats_catch_up_when_histogram_saved_earlier(tmp_path):
    """A writer that dies between histogram saves: readers and the next writer recompute the rest."""
    locs = [location(i) for i in range(5)]
    w = create_store(tmp_path / "s.zarr", BANDS, T, P, hist_every=100)
    for loc in locs[:4]:
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    # no close(): the saved histogram covers no location yet, 4 are committed
    s = open_store(tmp_path / "s.zarr")
    assert len(s) == 4
    np.testing.assert_allclose(s.stats(pixels="valid")["mean"], reference_stats(locs[:4])["mean"], rtol=1e-12)
    w2 = open_writer(tmp_path / "s.zarr")
    w2.append(locs[4]["key"], locs[4]["images"], locs[4]["valid"], locs[4]["dates_meta"])
    w2.close()
    s = open_store(tmp_path / "s.zarr")
    man = zarr.open_group(tmp_path / "s.zarr", mode="r").attrs["seco_manifest"]
    assert man["hist_locations"] == 5
    np.testing.assert_allclose(s.stats(pixels="valid")["p98"], reference_stats(locs)["p98"], rtol=1e-12)


def test_commit_every_batches_visibility(tmp_path):
    locs = [location(i) for i in range(5)]
    w = create_store(tmp_path / "s.zarr", BANDS, T, P, commit_every=3)
    for loc in locs[:2]:
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    assert len(open_store(tmp_path / "s.zarr")) == 0 and w.has("loc-00001") and len(w) == 2
    w.append(locs[2]["key"], locs[2]["images"], locs[2]["valid"], locs[2]["dates_meta"])
    assert len(open_store(tmp_path / "s.zarr")) == 3
    s = open_store(tmp_path / "s.zarr")
    w.append(locs[3]["key"], locs[3]["images"], locs[3]["valid"], locs[3]["dates_meta"])
    w.flush()
    assert len(s) == 3 and len(s.refresh()) == 4  # a reader is a snapshot until refresh()
    w.close()


def test_reopen_continues_and_close_trims(tmp_path):
    locs = _write(tmp_path / "s.zarr", n=3)
    w = open_writer(tmp_path / "s.zarr")
    assert w.keys() == {loc["key"] for loc in locs} and w.has("loc-00002") and not w.has("loc-00003")
    more = location(3)
    assert w.append(more["key"], more["images"], more["valid"], more["dates_meta"], label=1) == 3
    w.close()
    g = zarr.open_group(tmp_path / "s.zarr", mode="r")
    assert g["images"].shape[0] == 4 and g["key"].shape == (4,) and g["meta/item_id"].shape == (4, T)
    np.testing.assert_array_equal(open_store(tmp_path / "s.zarr").read(3), stored(more))


def test_plain_zarr_can_read_a_store(tmp_path):
    """The snippet of docs/STORE.md: no seco needed to read a store."""
    locs = _write(tmp_path / "s.zarr", n=4)
    g = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    assert g.attrs["seco_store_version"] == 1 < SCHEMA_VERSION  # a 10 m grid store stays readable by older seco
    n = g.attrs["seco_manifest"]["num_locations"]
    bands = g.attrs["seco_store"]["bands"]
    x = g["images"][2]  # (T, C, H, W) uint16
    rgb = g["images"].oindex[2, [0, 2], [bands.index(b) for b in ("B04", "B03", "B02")]]
    valid = g["valid"][:n]
    item_ids = g["meta/item_id"][:n]
    when = g["meta/datetime"][:n].view("datetime64[us]")
    assert n == 4 and x.dtype == np.uint16
    assert str(when[0, 0]) == "2020-01-01T10:30:00.123456" and np.isnat(when[1, 1])
    np.testing.assert_array_equal(x, stored(locs[2]))
    np.testing.assert_array_equal(rgb, stored(locs[2])[[0, 2]][:, [2, 1, 0]])
    assert valid.shape == (4, T) and item_ids[0, 0] == locs[0]["dates_meta"][0]["item_id"]
    meta = json.loads((tmp_path / "s.zarr" / "images" / "zarr.json").read_text())
    assert meta["codecs"][0]["name"] == "sharding_indexed"


def test_fsspec_url_store(tmp_path):
    """Any fsspec URL goes through zarr's FsspecStore (memory:// here); reads use zarr, not the direct path."""
    url = "memory://seco-test/s.zarr"
    locs = [location(i) for i in range(3)]
    with create_store(url, BANDS, T, P, overwrite=True) as w:
        for loc in locs:
            w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    s = open_store(url)
    assert len(s) == 3 and s._fast_reader() is None
    for i, loc in enumerate(locs):
        np.testing.assert_array_equal(s.read(i, [2, 0], "B08,B02"), stored(loc)[[2, 0]][:, [3, 0]])
    np.testing.assert_allclose(s.stats(pixels="valid")["mean"], reference_stats(locs)["mean"], rtol=1e-12)
    w = open_writer(url)
    assert w.keys() == {loc["key"] for loc in locs}
    w.close()


def test_empty_store(tmp_path):
    create_store(tmp_path / "s.zarr", "rgb", 2, 8).close()
    s = open_store(tmp_path / "s.zarr")
    assert len(s) == 0 and s.labels() is None and s.valid_mask().shape == (0, 2)
    assert s.bands == ("B04", "B03", "B02")


def test_metadata_accepts_common_types(tmp_path):
    from datetime import datetime

    from affine import Affine
    from rasterio.crs import CRS

    loc = location(0)
    metas = [dict(m) for m in loc["dates_meta"]]
    metas[0].update(datetime=np.datetime64("2021-03-04T10:20:30.5"), crs=CRS.from_epsg(32631),
                    transform=Affine(10, 0, 300000, 0, -10, 5000000))
    metas[1].update(datetime=datetime(2021, 5, 6, 11, 0), crs=4326)  # naive = UTC
    with create_store(tmp_path / "s.zarr", BANDS, T, P) as w:
        w.append("k", loc["images"], loc["valid"], metas)
    m = open_store(tmp_path / "s.zarr").meta(0)
    assert m[0]["datetime"] == "2021-03-04T10:20:30.500000Z" and m[0]["crs"] == "EPSG:32631"
    assert m[0]["transform"] == (10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0)
    assert m[1]["datetime"] == "2021-05-06T11:00:00Z" and m[1]["crs"] == "EPSG:4326"


@pytest.mark.parametrize(
    "layout",
    [StoreLayout(), StoreLayout(inner_chunk="date"), StoreLayout(sharded=False)],
    ids=["default", "chunk-per-date", "unsharded"],
)
def test_read_into_a_callers_buffer(tmp_path, layout):
    locs = _write(tmp_path / "s.zarr", n=3, layout=layout)
    with open_writer(tmp_path / "s.zarr") as w:  # a location of zeros only: a shard of just its index
        w.append("zeros", np.zeros((T, len(BANDS), P, P), np.uint16), np.ones(T, bool), [locs[0]["dates_meta"][0]] * T)
    s = open_store(tmp_path / "s.zarr")
    fast = s._fast_reader()
    assert fast is None or os.path.getsize(fast.layout.shard_path(3)) == fast.layout.index_nbytes
    batch = np.full((4, 2, 3, P, P), 7, np.uint16)  # (B, dates, bands, H, W), as PretrainDataset fills it
    for k in range(4):
        got = s.read(k, [2, 0], ["B08", "B02", "B04"], out=batch[k])
        assert got is batch[k] or np.shares_memory(got, batch)
        np.testing.assert_array_equal(batch[k], s.read(k, [2, 0], ["B08", "B02", "B04"]))
    assert not batch[3].any()  # zeros written, not left as they were
    np.testing.assert_array_equal(batch[0], stored(locs[0])[[2, 0]][:, [3, 0, 2]])
    s.read(1, [1, 1], "RGB", out=batch[1])  # repeats
    np.testing.assert_array_equal(batch[1], stored(locs[1])[[1, 1]][:, [2, 1, 0]])


def test_read_into_rejects_unfit_buffers(tmp_path):
    _write(tmp_path / "s.zarr", n=1)
    s = open_store(tmp_path / "s.zarr")
    with pytest.raises(StoreError, match=r"shape \(2, 4, 24, 24\)"):
        s.read(0, [0, 1], out=np.empty((2, 3, P, P), np.uint16))
    with pytest.raises(StoreError, match="uint16"):
        s.read(0, [0, 1], out=np.empty((2, 4, P, P), np.float32))
    with pytest.raises(StoreError, match="C-contiguous"):
        s.read(0, [0, 1], out=np.empty((2, 4, P, 2 * P), np.uint16)[..., ::2])
    ro = np.empty((2, 4, P, P), np.uint16)
    ro.flags.writeable = False
    with pytest.raises(StoreError, match="read-only"):
        s.read(0, [0, 1], out=ro)


def test_a_store_copies_location_by_location(tmp_path):
    """What Store.meta() returns is accepted by append(): a store can be rewritten, e.g. with another codec."""
    from seco.store import create_store, open_store
    from seco.store.schema import StoreLayout
    from seco.synth import make_store

    src = open_store(make_store(tmp_path / "a.zarr", num_locations=3, patch_size=32, progress=False))
    with create_store(tmp_path / "b.zarr", src.bands, src.num_dates, src.patch_size,
                      layout=StoreLayout(codec="blosc-lz4", clevel=5, shuffle="shuffle"),
                      label_names=src.label_names) as w:
        for i in range(len(src)):
            w.append(src.key(i), src.read(i), src.valid(i), src.meta(i), int(src.labels()[i]))
    dst = open_store(tmp_path / "b.zarr")
    assert len(dst) == 3
    for i in range(3):
        assert (dst.read(i) == src.read(i)).all() and dst.meta(i) == src.meta(i)

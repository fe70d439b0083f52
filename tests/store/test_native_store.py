"""Native-resolution stores (schema version 2): 20 m / 60 m bands kept once per source pixel.

A native store of block-constant imagery must read exactly like a 10 m store of the same data: ``read`` (the
10 m grid), ``read_packed`` (+ ``PackSpec.unpack``), metadata, labels and statistics.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from store_helpers import T, native_location, stored

from seco.bands import L2A, RGB
from seco.errors import ConfigError, StoreCorruptError, StoreError, StoreVersionError
from seco.store import StoreLayout, create_store, open_store, open_writer
from seco.store.packing import NotNativeError

NATIVE = StoreLayout(grid="native")
MIXED = ("B12", "B02", "B01", "B05", "B04")  # factors 2, 1, 6, 2, 1: every group, bands out of order


def _write(path: Path | str, bands: tuple[str, ...], n: int, patch: int, layout: StoreLayout | None = None,
           **kw) -> list[dict]:
    locs = [native_location(i, bands, patch=patch) for i in range(n)]
    with create_store(path, bands, T, patch, label_names=["a", "b", "c", "d"], layout=layout, **kw) as w:
        for loc in locs:
            w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], label=loc["label"])
    return locs


@pytest.fixture(scope="module", params=[(L2A, 264, 2), (MIXED, 64, 4)], ids=["L2A-264", "mixed-64"])
def pair(request, tmp_path_factory):
    """The same locations in a 10 m store and a native store."""
    bands, patch, n = request.param
    root = tmp_path_factory.mktemp("native")
    locs = _write(root / "10m.zarr", bands, n, patch)
    _write(root / "native.zarr", bands, n, patch, layout=NATIVE)
    return open_store(root / "10m.zarr"), open_store(root / "native.zarr"), locs


def test_native_store_arrays_and_version(pair):
    ten, nat, _ = pair
    P, C = nat.patch_size, len(nat.bands)
    g = zarr.open_group(nat.path, mode="r")
    assert g.attrs["seco_store_version"] == 2 and zarr.open_group(ten.path, mode="r").attrs["seco_store_version"] == 1
    grid = g.attrs["seco_store"]["grid"]
    assert grid["kind"] == "native" and grid["factors"] == nat.grid_factors
    assert nat.grid == "native" and ten.grid == "10m" and set(ten.grid_factors.values()) == {1}
    by_factor: dict[int, list[str]] = {}
    for b in nat.bands:  # store order within each array
        by_factor.setdefault(nat.grid_factors[b], []).append(b)
    names = {1: "images", 2: "images_x2", 6: "images_x6"}
    assert nat.image_arrays == [names[f] for f in sorted(by_factor)]
    for f, bands in by_factor.items():
        a = g[names[f]]
        side = -(-P // f)
        assert a.shape == (len(nat), T, len(bands), side, side) and a.attrs["bands"] == bands
    assert sum(len(v) for v in by_factor.values()) == C
    # the disk holds fewer pixels: 12 L2A bands of 264 px are 2.16x fewer
    if nat.bands == L2A and P == 264:
        assert round(12 * P * P / nat.pack_spec().length, 2) == 2.16


def test_read_equals_the_10m_store(pair):
    ten, nat, locs = pair
    rng = np.random.default_rng(3)
    for i, loc in enumerate(locs):
        np.testing.assert_array_equal(nat.read(i), stored(loc))
        np.testing.assert_array_equal(nat.read(i), ten.read(i))
        for _ in range(3):  # subsets of bands in any order, dates in any order (with repeats, invalid dates)
            bands = list(rng.permutation(nat.bands)[: rng.integers(1, len(nat.bands) + 1)])
            dates = list(rng.integers(0, T, size=rng.integers(1, T + 2)))
            np.testing.assert_array_equal(nat.read(i, dates, bands), ten.read(i, dates, bands))
            out = np.full((len(dates), len(bands), nat.patch_size, nat.patch_size), 7, np.uint16)
            assert nat.read(i, dates, bands, out=out) is out
            np.testing.assert_array_equal(out, ten.read(i, dates, bands))
    np.testing.assert_array_equal(nat.read(-1, [1], "RGB" if set(RGB) <= set(nat.bands) else None),
                                  ten.read(-1, [1], "RGB" if set(RGB) <= set(nat.bands) else None))


def test_read_packed_unpacks_to_the_10m_store(pair):
    ten, nat, locs = pair
    rng = np.random.default_rng(4)
    for i in range(len(locs)):
        for bands in (None, list(rng.permutation(nat.bands)[:3]), [nat.bands[-1]]):
            dates = [2, 0, 2]
            spec = nat.pack_spec(bands)
            p = nat.read_packed(i, dates, bands)
            assert p.shape == (3, spec.length) and p.dtype == np.uint16
            want = ten.read(i, dates, bands)
            np.testing.assert_array_equal(spec.unpack_numpy(p), want)
            np.testing.assert_array_equal(spec.unpack(torch.from_numpy(p)).numpy(), want)
            np.testing.assert_array_equal(p, spec.pack(want))  # exactly the coarse pixels, nothing else
            out = np.zeros_like(p)
            assert nat.read_packed(i, dates, bands, out=out) is out and np.array_equal(out, p)
            assert spec.length < ten.pack_spec(bands).length or all(nat.grid_factors[b] == 1 for b in spec.bands)
    with pytest.raises(StoreError, match="C-contiguous uint16"):
        nat.read_packed(0, [0], None, out=np.zeros((1, 5), np.uint16))


def test_metadata_labels_and_statistics_equal_the_10m_store(pair):
    ten, nat, _ = pair
    assert nat.keys() == ten.keys()
    np.testing.assert_array_equal(nat.valid_mask(), ten.valid_mask())
    np.testing.assert_array_equal(nat.labels(), ten.labels())
    for i in range(len(nat)):
        assert nat.meta(i) == ten.meta(i)
    np.testing.assert_array_equal(nat.histogram(), ten.histogram())  # computed on the 10 m grid, as there
    for k, v in ten.stats().items():
        np.testing.assert_array_equal(nat.stats()[k], v)


def test_rgb_native_store_has_only_images(tmp_path):
    _write(tmp_path / "s.zarr", RGB, 2, 24, layout=NATIVE)
    s = open_store(tmp_path / "s.zarr")
    assert s.image_arrays == ["images"] and s.pack_spec().is_identity
    assert sorted(p.name for p in (tmp_path / "s.zarr").iterdir() if p.name.startswith("images")) == ["images"]


def test_bad_grid_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown store grid '20m'.*'native'"):
        StoreLayout(grid="20m")


def test_data_that_are_not_block_constant_are_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "s.zarr"
    loc = native_location(0, L2A, patch=24)
    loc["images"][0, L2A.index("B05"), 3, 4] += 1  # breaks one 2 x 2 block of a 20 m band
    w = create_store(path, L2A, T, 24, layout=NATIVE)
    with pytest.raises(NotNativeError, match=r"location 'loc-00000': band B05 .*--grid 10m"):
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    assert isinstance(NotNativeError("x"), StoreError)
    assert len(w) == 0 and not w.has(loc["key"])
    assert not [p for p in path.rglob("*") if p.is_file() and "/c/" in str(p)]  # no shard of any array
    good = native_location(1, L2A, patch=24)
    w.append(good["key"], good["images"], good["valid"], good["dates_meta"])
    w.close()
    np.testing.assert_array_equal(open_store(path).read(0), stored(good))


def test_resuming_a_store_with_another_grid_is_refused(tmp_path):
    path = tmp_path / "s.zarr"
    _write(path, L2A, 1, 24)
    with pytest.raises(StoreError, match=r"grid '10m' \(asked 'native'\)"):
        create_store(path, L2A, T, 24, label_names=["a", "b", "c", "d"], layout=NATIVE, exist_ok=True)


def test_a_version_this_seco_does_not_know_is_refused(tmp_path):
    """What this seco does with a store of the next schema version (as a seco that read only version 1 did with a
    version 2 store)."""
    path = tmp_path / "s.zarr"
    _write(path, L2A, 1, 24, layout=NATIVE)
    g = zarr.open_group(path, mode="r+")
    g.attrs["seco_store_version"] = 4
    with pytest.raises(StoreVersionError, match=r"schema version 4 .*reads versions 1, 2 and 3.*re-create"):
        open_store(path)


def test_uncommitted_shards_of_every_array_are_overwritten_and_trimmed(tmp_path):
    """A crash between the shard writes and the commit: orphan shards (of some arrays) and temp files."""
    path = tmp_path / "s.zarr"
    locs = [native_location(i, L2A, patch=24) for i in range(3)]
    w = create_store(path, L2A, T, 24, layout=NATIVE)
    w.append(locs[0]["key"], locs[0]["images"], locs[0]["valid"], locs[0]["dates_meta"])
    w._shard_writers["images_x2"].write(1, np.full((T, 6, 12, 12), 9, np.uint16))  # killed after this array
    x6 = path / "images_x6" / "c" / "1" / "0" / "0" / "0"
    x6.mkdir(parents=True)
    (x6 / "0.deadbeef.partial").write_bytes(b"torn")
    del w
    assert len(open_store(path)) == 1
    w = open_writer(path)
    assert not (x6 / "0.deadbeef.partial").exists()
    w.append(locs[1]["key"], locs[1]["images"], locs[1]["valid"], locs[1]["dates_meta"])
    w._shard_writers["images_x6"].write(2, np.full((T, 2, 4, 4), 9, np.uint16))  # never committed
    w.close()  # trims: the orphan of location 2 goes
    assert not (path / "images_x6" / "c" / "2").joinpath("0", "0", "0", "0").exists()
    s = open_store(path)
    assert len(s) == 2
    for i in range(2):
        np.testing.assert_array_equal(s.read(i), stored(locs[i]))


def test_a_damaged_images_x2_shard_is_named(tmp_path):
    path = tmp_path / "s.zarr"
    locs = _write(path, L2A, 3, 24, layout=NATIVE)
    shard = path / "images_x2" / "c" / "1" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[30] ^= 0x5A  # inside the first chunk's compressed bytes
    shard.write_bytes(bytes(data))
    s = open_store(path)
    np.testing.assert_array_equal(s.read(1, bands=["B02", "B01"]), stored(locs[1])[:, [1, 0]])  # other arrays
    for read in (s.read, s.read_packed):
        with pytest.raises(StoreCorruptError, match="location 1") as e:
            read(1)
        assert e.value.path == str(shard) and e.value.key == locs[1]["key"]
    np.testing.assert_array_equal(s.read(2), stored(locs[2]))


def test_zarr_path_reads_the_same(tmp_path, monkeypatch):
    """Layouts the direct reader does not take (and object stores) are read through zarr, with the same result."""
    import seco.store.reader as reader_mod

    path = tmp_path / "s.zarr"
    locs = _write(path, MIXED, 2, 20, layout=NATIVE)
    direct = open_store(path)
    monkeypatch.setattr(reader_mod.ShardReader, "for_array", classmethod(lambda cls, *a, **k: None))
    viaz = open_store(path)
    for i in range(2):
        np.testing.assert_array_equal(viaz.read(i, [1, 0], ["B01", "B04", "B12"]),
                                      stored(locs[i])[[1, 0]][:, [2, 4, 0]])
        np.testing.assert_array_equal(viaz.read_packed(i), direct.read_packed(i))


def test_native_store_on_an_object_store(tmp_path):
    """``memory://`` (no rename, whole-object writes, as S3): written and read through zarr, trimmed on close."""
    url = f"memory://seco-native-{uuid.uuid4().hex}/s.zarr"
    locs = _write(url, MIXED, 3, 20, layout=NATIVE)
    ref = tmp_path / "ref.zarr"
    _write(ref, MIXED, 3, 20, layout=NATIVE)
    s, r = open_store(url), open_store(ref)
    assert s.image_arrays == ["images", "images_x2", "images_x6"]
    for i in range(3):
        np.testing.assert_array_equal(s.read(i), stored(locs[i]))
        np.testing.assert_array_equal(s.read_packed(i, [2, 1], ["B05", "B01"]), r.read_packed(i, [2, 1], ["B05", "B01"]))
    np.testing.assert_array_equal(s.histogram(), r.histogram())
    g = zarr.open_group(store=zarr.storage.FsspecStore.from_url(url), mode="r")
    assert all(g[name].shape[0] == 3 for name in s.image_arrays)


def test_plain_zarr_can_read_a_native_store(tmp_path):
    """The snippet of docs/STORE.md for native stores: no seco needed."""
    path = tmp_path / "s.zarr"
    locs = _write(path, L2A, 2, 24, layout=NATIVE)
    # --- docs/STORE.md "Without seco", native grid
    g = zarr.open_group(str(path), mode="r")
    assert g.attrs["seco_store_version"] == 2 and g.attrs["seco_store"]["grid"]["kind"] == "native"
    b11 = g["images_x2"].attrs["bands"].index("B11")
    x = g["images_x2"][1, :, b11]                              # (T, 12, 12): B11 at 20 m
    full = np.repeat(np.repeat(x, 2, axis=-2), 2, axis=-1)    # (T, 24, 24) on the 10 m grid
    # ---
    np.testing.assert_array_equal(full, stored(locs[1])[:, L2A.index("B11")])
    meta = json.loads((path / "images_x6" / "zarr.json").read_text())
    assert meta["shape"][2:] == [2, 4, 4] and meta["dimension_names"] == ["location", "date", "band", "y", "x"]


# ---------------------------------------------------------------------------------- check, migrate, info


def _damage_x2(path: Path, i: int) -> Path:
    shard = path / "images_x2" / "c" / str(i) / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[30] ^= 0x5A
    shard.write_bytes(bytes(data))
    return shard


def test_store_check_finds_damage_in_every_array_and_names_the_file(tmp_path, capsys, monkeypatch):
    from seco.cli import main
    from seco.store.check import check_store

    path = tmp_path / "s.zarr"
    _write(path, L2A, 4, 24, layout=NATIVE)
    assert check_store(path, progress=False).ok
    x2 = _damage_x2(path, 1)
    x6 = path / "images_x6" / "c" / "3" / "0" / "0" / "0" / "0"
    x6.unlink()
    report = check_store(path, progress=False)
    assert report.bad_locations == [1, 3]
    assert [(f.location, f.path) for f in report.findings] == [(1, str(x2)), (3, str(x6))]
    assert "checksum mismatch" in report.findings[0].problem and "missing" in report.findings[1].problem
    assert main(["store", "check", str(path), "--no-progress", "--checks", "integrity"]) == 1
    assert f"file {x2}" in capsys.readouterr().out
    import seco.store.reader as reader_mod  # the zarr path (object stores) names the same files

    monkeypatch.setattr(reader_mod.ShardReader, "for_array", classmethod(lambda cls, *a, **k: None))
    report = check_store(path, progress=False)
    assert [(f.location, f.path) for f in report.findings] == [(1, str(x2)), (3, str(x6))]


def test_migrate_both_ways_gives_identical_reads(tmp_path, capsys):
    from seco.cli import main

    src = tmp_path / "10m.zarr"
    _write(src, L2A, 3, 24)
    assert main(["store", "migrate", str(src), str(tmp_path / "n.zarr"), "--grid", "native", "--no-progress"]) == 0
    assert main(["store", "migrate", str(tmp_path / "n.zarr"), str(tmp_path / "back.zarr"), "--no-progress"]) == 0
    assert open_store(tmp_path / "back.zarr").grid == "native"  # default: the source's grid
    capsys.readouterr()
    assert main(["store", "migrate", str(src), str(tmp_path / "n.zarr"), "--grid", "native", "--no-progress"]) == 0
    assert "0 location(s) copied, 3 already there" in capsys.readouterr().out  # resumable: a rerun is a no-op
    assert main(["store", "migrate", str(src), str(tmp_path / "n.zarr"), "--grid", "10m", "--no-progress"]) == 2
    assert "other settings: grid 'native' (asked '10m')" in capsys.readouterr().err  # not mixed into it
    assert main(["store", "migrate", str(tmp_path / "n.zarr"), str(tmp_path / "b10.zarr"), "--grid", "10m",
                 "--no-progress"]) == 0
    a, n, b = (open_store(tmp_path / p) for p in ("10m.zarr", "n.zarr", "b10.zarr"))
    assert (a.grid, n.grid, b.grid) == ("10m", "native", "10m")
    for i in range(3):
        np.testing.assert_array_equal(n.read(i), a.read(i))
        np.testing.assert_array_equal(b.read(i), a.read(i))
        assert n.meta(i) == a.meta(i)
    np.testing.assert_array_equal(n.histogram(), a.histogram())
    capsys.readouterr()
    assert main(["store", "info", str(tmp_path / "n.zarr"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["grid"] == "native" and info["image_arrays"] == ["images", "images_x2", "images_x6"]
    assert info["schema_version"] == 2 and info["grid_factors"]["B01"] == 6
    assert main(["store", "info", str(src), "--json"]) == 0
    ten = json.loads(capsys.readouterr().out)
    assert ten["grid"] == "10m" and 0 < info["mb_per_location"] < ten["mb_per_location"]


def test_migrate_to_native_refuses_resampled_data_naming_the_location(tmp_path, capsys):
    from store_helpers import location

    from seco.cli import main
    from seco.store.migrate import migrate_store

    src = tmp_path / "bilinear.zarr"
    with create_store(src, L2A, T, 24) as w:  # noise in every band: not block-constant
        for i in range(2):
            loc = native_location(i, L2A, patch=24) if i == 0 else location(i, patch=24, bands=12)
            w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    with pytest.raises(NotNativeError, match=r"source location 1 \(key 'loc-00001'\).*--grid 10m"):
        migrate_store(src, tmp_path / "n.zarr", layout=NATIVE, progress=False)
    assert open_store(tmp_path / "n.zarr").keys() == ["loc-00000"]  # the prefix, a valid store
    assert main(["store", "migrate", str(src), str(tmp_path / "m.zarr"), "--grid", "native", "--no-progress"]) == 2
    assert "source location 1" in capsys.readouterr().err


@pytest.mark.parametrize("layout", [StoreLayout(grid="native", sharded=False),
                                    StoreLayout(grid="native", inner_chunk="date", codec="zstd", clevel=3)],
                         ids=["unsharded", "date-chunks-zstd"])
def test_other_layouts_of_a_native_store(tmp_path, layout):
    """Layouts the direct shard reader/writer do not take go through zarr for every array."""
    locs = _write(tmp_path / "s.zarr", MIXED, 2, 20, layout=layout)
    s = open_store(tmp_path / "s.zarr")
    assert s.config.layout == layout
    for i in range(2):
        np.testing.assert_array_equal(s.read(i, [2, 0]), stored(locs[i])[[2, 0]])
        np.testing.assert_array_equal(s.pack_spec().unpack_numpy(s.read_packed(i)), stored(locs[i]))


@pytest.mark.integration
def test_native_store_on_s3(tmp_path):
    """The zarr path against a local S3-compatible server (moto on 127.0.0.1): write, reopen, resume, read."""
    from tests.integration.s3server import run_moto

    with run_moto(tmp_path) as env, pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            if k.startswith("AWS_"):
                mp.setenv(k, v)
        url = f"s3://{env['BUCKET']}/native/s.zarr"
        locs = [native_location(i, MIXED, patch=20) for i in range(3)]
        w = create_store(url, MIXED, T, 20, layout=NATIVE, commit_every=1)
        for loc in locs[:2]:
            w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
        w._arrays["images_x6"][2] = np.full((T, 1, 4, 4), 9, np.uint16)  # an orphan shard: never committed
        del w  # "killed"
        w = open_writer(url)
        assert len(w) == 2
        w.append(locs[2]["key"], locs[2]["images"], locs[2]["valid"], locs[2]["dates_meta"])
        w.close()
        s = open_store(url)
        assert s.grid == "native" and s.keys() == [loc["key"] for loc in locs]
        for i, loc in enumerate(locs):
            np.testing.assert_array_equal(s.read(i), stored(loc))
        from seco.store.check import check_store

        assert check_store(s, progress=False).ok

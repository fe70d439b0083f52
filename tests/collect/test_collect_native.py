"""``seco collect --grid native``: a native-resolution store from a Sentinel-2-like COG archive, equal through
``Store.read`` to the same collection on the 10 m grid; resumption keeps the grid; non-nesting data fails fast."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from seco.cli import main
from seco.collect.config import CollectConfig
from seco.collect.patches import read_patch
from seco.collect.pipeline import run_collect
from seco.collect.plan import plan_collect
from seco.store import open_store
from seco.store.packing import NotNativeError
from seco.synth.archive import make_archive, read_manifest
from tests.integration.servers import archive_locations

P = 48


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[Path, Path]:
    """Two UTM sites x 3 dates (some swath edges), 2 x 2 locations per site whose natural origins are not on the
    60 m grid (so the snapping is exercised)."""
    d = tmp_path_factory.mktemp("native")
    root = make_archive(d / "a", seed=6, zones=(31, 32), dates=("2021-06-01", "2021-08-24", "2021-11-16"),
                        scene_px=252, blocksize=256, corrupt=0, missing=0, progress=False, edge_prob=0.5,
                        cloud_probs=(0.7, 0.3, 0.0))
    return root, archive_locations(root, d / "loc.parquet", per_side=2, patch_px=P)


def _args(archive: tuple[Path, Path], out: Path, *extra: str) -> list[str]:
    root, locs = archive
    return ["collect", "--locations", str(locs), "--catalog", str(root / "catalog.parquet"), "--out", str(out),
            "--patch-size", str(P), "--max-cloud", "none", "--max-patch-cloud", "0.9", "--max-nodata", "0.99",
            "--workers", "2", "--no-progress", *extra]


@pytest.fixture(scope="module")
def native(archive, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("n") / "native.zarr"
    assert main(_args(archive, out, "--grid", "native")) == 0
    return out


def _aligned_reader(*args, align=1, **kw):
    return read_patch(*args, align=6, **kw)  # the native run's windows, written to a 10 m store


def test_native_collect_reads_equal_to_the_same_collect_on_the_10m_grid(archive, native, tmp_path):
    root, locs = archive
    cfg = CollectConfig(locations=str(locs), catalog=str(root / "catalog.parquet"), out=str(tmp_path / "10m.zarr"),
                        patch_size=P, max_cloud=None, max_patch_cloud=0.9, max_nodata=0.99, workers=2,
                        progress=False, grid="10m")
    run_collect(plan_collect(cfg), reader=_aligned_reader)
    a, b = open_store(tmp_path / "10m.zarr"), open_store(native)
    assert set(a.grid_factors.values()) == {1} and b.grid_factors["B01"] == 6 and b.grid_factors["B05"] == 2
    assert b.attrs["seco_collect"]["config"]["grid"] == "native"
    assert len(b) >= 4 and a.keys() == b.keys()  # some locations are rejected (clouds, edges) in both
    np.testing.assert_array_equal(a.valid_mask(), b.valid_mask())
    edges = 0
    for i in range(len(a)):
        x = a.read(i)
        np.testing.assert_array_equal(x, b.read(i))
        assert a.meta(i) == b.meta(i)
        edges += sum(m["nodata_fraction"] > 0 for m in b.meta(i))
    assert edges > 0  # swath edges (each band nodata on its own grid) went into the native store


def test_native_patches_sit_on_the_60m_grid_near_the_requested_point(archive, native, tmp_path):
    root, _ = archive
    sites = {s["epsg"]: s for s in read_manifest(root)["sites"]}
    plain = tmp_path / "plain.zarr"
    assert main(_args(archive, plain)) == 0  # the default: 10 m grid, nearest-pixel windows
    a, b = open_store(plain), open_store(native)
    assert set(a.grid_factors.values()) == {1}
    moved = 0
    for i in range(len(b)):
        for ma, mb in zip(a.meta(i), b.meta(i), strict=True):
            site = sites[int(mb["crs"].split(":")[1])]
            x, y = mb["transform"][2], mb["transform"][5]
            assert (x - site["x0"]) % 60 == 0 and (site["y0"] - y) % 60 == 0
            if ma["item_id"] == mb["item_id"]:
                dx, dy = abs(x - ma["transform"][2]), abs(y - ma["transform"][5])
                assert dx <= 30 and dy <= 30  # the centre moves by at most 30 m per axis
                moved += dx > 0 or dy > 0
    assert moved > 0


def test_resumed_collect_keeps_the_store_grid(archive, native, capsys):
    assert main(_args(archive, native, "--grid", "10m")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'native' grid" in err and "drop --grid" in err
    n = len(open_store(native))
    assert main(_args(archive, native)) == 0  # no --grid: the store's grid, nothing left to collect
    out = capsys.readouterr().out
    assert f"collected {n}/8 locations" in out and "0 this run" in out
    assert "snapped to multiples of 6 px" in out and "up to 30 m per axis" in out
    assert open_store(native).grid_factors["B09"] == 6


def test_non_nesting_patches_fail_at_the_first_location(archive, tmp_path, monkeypatch, capsys):
    """Patches whose 20 m / 60 m bands are not whole blocks (here: windows left on odd pixels) stop the run at
    the first location with a typed error and exit 2, before the rest is read."""
    calls = []

    def unaligned(*args, align=1, **kw):
        calls.append(1)
        return read_patch(*args, align=1, **kw)

    monkeypatch.setattr("seco.collect.worker.read_patch", unaligned)
    out = tmp_path / "bad.zarr"
    assert main(_args(archive, out, "--grid", "native")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--grid 10m" in err and "location 0" in err
    assert len(calls) < 8 * 3  # stopped before reading everything
    assert not out.exists()  # the store it created holds no location: removed, so a rerun may choose other settings
    with pytest.raises(NotNativeError):
        cfg = CollectConfig(locations=str(archive[1]), catalog=str(archive[0] / "catalog.parquet"),
                            out=str(tmp_path / "bad2.zarr"), patch_size=P, max_cloud=None, max_patch_cloud=0.9,
                            max_nodata=0.99, workers=1, progress=False, grid="native")
        run_collect(plan_collect(cfg), reader=functools.partial(unaligned))

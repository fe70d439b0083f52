"""``make_store(grid="native")`` / ``seco synth --grid native``: the same imagery as the 10 m store, fewer pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seco.bands import L2A
from seco.cli import main
from seco.errors import ConfigError, StoreError
from seco.store import open_store
from seco.store.packing import PackSpec
from seco.synth import make_store, nodata_on_band_grids

KW = dict(num_locations=12, num_dates=3, patch_size=48, seed=4, progress=False)


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("native")
    return make_store(d / "10m.zarr", **KW), make_store(d / "native.zarr", grid="native", **KW)


def test_native_synth_store_reads_equal_to_the_10m_store(pair):
    a, b = open_store(pair[0]), open_store(pair[1])
    assert set(a.grid_factors.values()) == {1}
    assert b.grid_factors == {n: {10: 1, 20: 2, 60: 6}[r] for n, r in zip(L2A, (60, 10, 10, 10, 20, 20, 20, 10, 20,
                                                                                60, 20, 20), strict=True)}
    assert a.keys() == b.keys() and len(a) == 12
    np.testing.assert_array_equal(a.valid_mask(), b.valid_mask())
    nodata_dates = 0
    for i in range(len(a)):
        x = a.read(i)  # (T, C, P, P)
        np.testing.assert_array_equal(x, b.read(i))
        valid = a.valid_mask()[i]
        nodata_dates += int(((x[valid] == 0).any(axis=(1, 2, 3))).sum())
        spec = b.pack_spec()
        np.testing.assert_array_equal(spec.unpack_numpy(b.read_packed(i)), x)
        assert a.meta(i) == b.meta(i)
        for t in np.flatnonzero(valid):  # the recorded nodata share is the share of pixels with a 0 in any band
            assert a.meta(i)[t]["nodata_fraction"] == pytest.approx((x[t] == 0).any(axis=0).mean())
    assert nodata_dates > 0  # the swath-edge case (20 m / 60 m pixels cut on their own grid) is exercised


def test_synth_store_is_block_native_at_nodata_edges():
    """The 10 m store's coarse bands are whole blocks too (nodata included): what makes the two grids equal."""
    rng = np.random.default_rng(0)
    P = 24
    bands = ("B02", "B05", "B01")
    img = np.zeros((2, 3, P, P), np.uint16)
    img[:, 0] = rng.integers(1, 9, (2, P, P))
    img[:, 1] = np.repeat(np.repeat(rng.integers(1, 9, (2, P // 2, P // 2)), 2, 1), 2, 2)
    img[:, 2] = np.repeat(np.repeat(rng.integers(1, 9, (2, P // 6, P // 6)), 6, 1), 6, 2)
    edge = np.add.outer(np.arange(P), np.arange(P)) > 31  # a diagonal swath edge on the 10 m grid
    img[0][:, edge] = 0
    spec = PackSpec.build(bands, P)
    with pytest.raises(StoreError):
        spec.split(img)  # cut on the 10 m grid: not whole blocks
    metas = [{"nodata_fraction": float(edge.mean())}, {"nodata_fraction": 0.0}]
    before = img.copy()
    nodata_on_band_grids(img, np.array([True, True]), metas, bands)
    spec.split(img)  # now whole blocks
    np.testing.assert_array_equal(img[1], before[1])  # a date without nodata is untouched
    np.testing.assert_array_equal(img[0, 0], before[0, 0])  # 10 m bands keep their own edge
    grown = (img[0] == 0).any(axis=0)
    assert (grown >= edge).all() and grown.sum() > edge.sum()
    assert metas[0]["nodata_fraction"] == pytest.approx(grown.mean()) and metas[1]["nodata_fraction"] == 0.0
    np.testing.assert_array_equal(img[0, 1][~grown], before[0, 1][~grown])  # only nodata blocks changed


def test_continuing_with_the_other_grid_is_refused(pair, tmp_path):
    with pytest.raises(StoreError, match="--grid native"):
        make_store(pair[1], **KW)  # grid 10m asked, the store is native
    with pytest.raises(ConfigError, match="grid"):
        make_store(tmp_path / "x.zarr", grid="20m", **KW)
    again = make_store(pair[1], grid="native", **KW)  # the same arguments continue it (nothing left to do)
    assert len(open_store(again)) == 12


def test_cli_synth_grid_native(tmp_path, capsys):
    out = tmp_path / "cli.zarr"
    assert main(["synth", "--out", str(out), "--locations", "2", "--dates", "3", "--patch-size", "36", "--grid",
                 "native", "--no-progress"]) == 0
    assert "native grid" in capsys.readouterr().out
    s = open_store(out)
    assert s.grid_factors["B01"] == 6 and s.read(0).shape == (3, 12, 36, 36)

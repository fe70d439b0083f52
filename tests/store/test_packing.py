"""Packed native-resolution samples: split/pack/unpack round trips and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seco.bands import L1C, L2A, RGB
from seco.store.packing import NotNativeError, PackSpec, band_factor


def _native_grid(rng: np.random.Generator, bands, P: int, lead=(2, 3)) -> np.ndarray:
    """(*lead, C, P, P) uint16 whose coarse bands are whole blocks from the origin (cropped at the far edge)."""
    out = np.empty((*lead, len(bands), P, P), np.uint16)
    for k, b in enumerate(bands):
        f = band_factor(b)
        n = -(-P // f)
        src = rng.integers(1, 10000, size=(*lead, n, n), dtype=np.uint16)
        out[..., k, :, :] = np.repeat(np.repeat(src, f, -2), f, -1)[..., :P, :P]
    return out


def test_factors_of_sentinel2_bands():
    assert [band_factor(b) for b in ("B02", "B05", "B01", "B8A", "B10", "SCL", "VV")] == [1, 2, 6, 2, 6, 1, 1]


@pytest.mark.parametrize("P", [264, 64, 13])
@pytest.mark.parametrize("bands", [L2A, L1C, RGB, ("B12", "B02", "B01", "B05")])
def test_pack_unpack_round_trip_numpy_and_torch(P, bands):
    rng = np.random.default_rng(P + len(bands))
    grid = _native_grid(rng, bands, P)
    spec = PackSpec.build(bands, P)
    packed = spec.pack(grid)
    assert packed.shape == (2, 3, spec.length)
    np.testing.assert_array_equal(spec.unpack_numpy(packed), grid)
    t = spec.unpack(torch.from_numpy(packed))
    assert t.dtype == torch.uint16
    np.testing.assert_array_equal(t.numpy(), grid)
    # only copies: unpacking reflectance equals converting the unpacked DN
    refl = spec.unpack(torch.from_numpy(packed).to(torch.float32) / 10000)
    assert torch.equal(refl, torch.from_numpy(grid).to(torch.float32) / 10000)


def test_twelve_bands_are_two_point_one_six_times_fewer_pixels():
    spec = PackSpec.build(L2A, 264)
    assert spec.length == 264 * 264 * (4 + 6 / 4 + 2 / 36)
    assert round(12 * 264 * 264 / spec.length, 2) == 2.16
    assert PackSpec.build(RGB, 264).is_identity and not spec.is_identity


def test_a_band_that_is_not_block_constant_is_refused_by_name():
    rng = np.random.default_rng(0)
    grid = _native_grid(rng, L2A, 24, lead=(2,))
    grid[1, L2A.index("B11"), 5, 7] += 1  # breaks one 2 x 2 block
    with pytest.raises(NotNativeError, match=r"band B11 is not constant on 2 x 2 blocks.*--grid 10m"):
        PackSpec.build(L2A, 24).pack(grid)


def test_origin_off_the_coarse_grid_is_refused():
    rng = np.random.default_rng(1)
    grid = _native_grid(rng, ("B02", "B05"), 32, lead=(1,))
    shifted = np.roll(grid, 1, axis=-1)  # what an origin on an odd 10 m pixel gives
    with pytest.raises(NotNativeError, match="B05"):
        PackSpec.build(("B02", "B05"), 32).pack(shifted)


def test_a_10m_store_reads_packed_as_its_flattened_images(tmp_path):
    from store_helpers import location

    from seco.store import create_store, open_store

    loc = location(0, num_dates=3, patch=12, bands=3)
    with create_store(tmp_path / "s.zarr", ("B02", "B05", "B01"), num_dates=3, patch_size=12) as w:
        w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"])
    s = open_store(tmp_path / "s.zarr")
    spec = s.pack_spec(["B01", "B02"])
    assert spec.is_identity and spec.length == 2 * 144
    p = s.read_packed(0, [2, 0], ["B01", "B02"])
    np.testing.assert_array_equal(p.reshape(2, 2, 12, 12), s.read(0, [2, 0], ["B01", "B02"]))
    t = spec.unpack(torch.from_numpy(p))
    assert t.shape == (2, 2, 12, 12) and t.data_ptr() == torch.from_numpy(p).data_ptr()  # a view, no copy

"""Per-band normalisation: statistics -> reflectance units, apply/invert, serialisation, band selection."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seco.data.normalize import Normalization, to_reflectance
from seco.errors import BandError, ConfigError

BANDS = ("B02", "B03", "B04", "B08")
STATS = {  # DN
    "mean": np.array([1000.0, 1200.0, 1500.0, 3000.0]),
    "std": np.array([200.0, 250.0, 400.0, 800.0]),
    "p2": np.array([300.0, 400.0, 200.0, 900.0]),
    "p98": np.array([2300.0, 2600.0, 3200.0, 5900.0]),
}


class StatsStore:
    """The part of the store API that ``from_store`` uses."""

    bands = ("B01", *BANDS)

    def __init__(self) -> None:
        self.asked: list | None = None

    def stats(self, bands=None):
        self.asked = list(bands)
        pos = [self.bands.index(b) - 1 for b in bands]
        return {k: v[pos] for k, v in STATS.items()}


def test_from_stats_meanstd_and_percentile_in_reflectance() -> None:
    n = Normalization.from_stats(STATS, BANDS)
    assert n.method == "meanstd"
    np.testing.assert_allclose(n.mean, STATS["mean"] / 1e4)
    np.testing.assert_allclose(n.std, STATS["std"] / 1e4)
    p = Normalization.from_stats(STATS, BANDS, method="percentile")
    np.testing.assert_allclose(p.mean, STATS["p2"] / 1e4)
    np.testing.assert_allclose(p.std, (STATS["p98"] - STATS["p2"]) / 1e4)
    # percentile maps p2 -> 0 and p98 -> 1
    x = torch.tensor(np.stack([STATS["p2"], STATS["p98"]], 1) / 1e4, dtype=torch.float32)[:, :, None]  # (C, 2, 1)
    y = p.apply(x)
    torch.testing.assert_close(y[:, 0], torch.zeros(4, 1), atol=1e-6, rtol=0)
    torch.testing.assert_close(y[:, 1], torch.ones(4, 1), atol=1e-6, rtol=0)
    with pytest.raises(ConfigError, match="quantile|unknown"):
        Normalization.from_stats(STATS, BANDS, method="quantile")
    with pytest.raises(ConfigError, match=r"\(4,\) .* for 5 bands"):
        Normalization.from_stats(STATS, BANDS[:3] + ("B05", "B06"))


def test_from_store_reads_only_the_asked_bands() -> None:
    store = StatsStore()
    n = Normalization.from_store(store, "B04,B02")
    assert store.asked == ["B04", "B02"]
    assert n.bands == ("B04", "B02")
    np.testing.assert_allclose(n.mean, [0.15, 0.10])
    with pytest.raises(BandError, match="B12"):
        Normalization.from_store(store, ["B02", "B12"])


def test_apply_invert_roundtrip_any_batch_shape() -> None:
    n = Normalization.from_stats(STATS, BANDS)
    x = torch.rand(2, 3, 4, 5, 6, generator=torch.Generator().manual_seed(0))  # (B, T, C, H, W)
    y = n.apply(x)
    assert y.shape == x.shape
    torch.testing.assert_close(n.invert(y), x, atol=1e-6, rtol=1e-6)
    # band 2 (B04) is normalised with its own mean and std
    torch.testing.assert_close(y[:, :, 2], (x[:, :, 2] - 0.15) / 0.04)
    z = x.clone()
    assert n.apply_(z) is z
    torch.testing.assert_close(z, y)
    x64 = x.double()
    assert n.apply(x64).dtype == torch.float64


def test_apply_band_count_mismatch_raises() -> None:
    n = Normalization.from_stats(STATS, BANDS)
    with pytest.raises(BandError, match="4 band"):
        n.apply(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ConfigError, match="to_reflectance"):
        n.apply(torch.zeros(2, 4, 8, 8, dtype=torch.int32))


def test_dict_roundtrip_through_json() -> None:
    n = Normalization.from_stats(STATS, BANDS, method="percentile")
    d = json.loads(json.dumps(n.to_dict()))
    assert Normalization.from_dict(d) == n
    with pytest.raises(ConfigError, match="std"):
        Normalization.from_dict({"bands": ["B02"], "mean": [0.1]})


def test_select_by_name_reorders_and_rejects_missing() -> None:
    n = Normalization.from_stats(STATS, BANDS)
    s = n.select(["b8", "B02"])
    assert s.bands == ("B08", "B02")
    assert s.mean == (n.mean[3], n.mean[0]) and s.std == (n.std[3], n.std[0])
    assert n.select("all") == n and n.select(list(BANDS)) == n
    with pytest.raises(BandError, match="B11"):
        n.select(["B02", "B11"])
    with pytest.raises(BandError, match="B99"):
        n.select(["B99"])


def test_validation() -> None:
    with pytest.raises(ConfigError, match="one mean and one std"):
        Normalization(("B02", "B03"), (0.1,), (0.1, 0.1))
    with pytest.raises(ConfigError, match="B03"):
        Normalization(("B02", "B03"), (0.1, 0.1), (0.1, 0.0))
    with pytest.raises(BandError, match="twice"):
        Normalization(("B02", "b2"), (0.1, 0.1), (0.1, 0.1))
    assert Normalization(("b2",), (0.1,), (0.2,)).bands == ("B02",)


def test_to_reflectance() -> None:
    dn = torch.tensor([[0, 10000, 65535]], dtype=torch.uint16)
    r = to_reflectance(dn)
    assert r.dtype == torch.float32
    torch.testing.assert_close(r, torch.tensor([[0.0, 1.0, 6.5535]]))
    f = torch.rand(3)
    assert to_reflectance(f) is f

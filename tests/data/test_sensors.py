"""Radar channels in the training data path: units, per-sensor augmentations, single-sensor views."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import seco.data.transforms as T
from seco.data.normalize import Normalization, to_reflectance
from seco.data.units import to_units
from seco.data.views import make_views
from seco.errors import ConfigError
from seco.methods import get_method
from seco.store.s1 import decode_db, encode_db

BANDS = ("B02", "B03", "B04", "VV", "VH")
SENSORS = ("s2", "s2", "s2", "s1", "s1")


def _batch(b: int = 4, n: int = 3, p: int = 40, seed: int = 0) -> torch.Tensor:
    """(B, n, 5, P, P) uint16: DN for the optical channels, S1 codes (with a no-data strip) for the radar ones."""
    rng = np.random.default_rng(seed)
    x = np.empty((b, n, 5, p, p), np.uint16)
    x[:, :, :3] = rng.integers(1, 4000, (b, n, 3, p, p))
    db = rng.normal([-11.0, -18.0], 4.0, (b, n, p, p, 2)).transpose(0, 1, 4, 2, 3)
    db[..., :3] = np.nan
    x[:, :, 3:] = encode_db(db)
    return torch.from_numpy(x.astype(np.int32)).to(torch.uint16)


def test_units_are_reflectance_and_db_with_no_data_filled():
    x = _batch()
    fill = [0.0, 0.0, 0.0, -11.5, -18.5]
    y = to_units(x, BANDS, fill)
    assert torch.equal(y[:, :, :3], to_reflectance(x[:, :, :3]))  # bit for bit the optical path
    want = decode_db(x[:, :, 3:].numpy())
    got = y[:, :, 3:].numpy()
    np.testing.assert_allclose(got[..., 3:], want[..., 3:], atol=1e-4)
    assert (got[:, :, 0, :, :3] == -11.5).all() and (got[:, :, 1, :, :3] == -18.5).all()
    assert torch.isnan(to_units(x, BANDS)[:, :, 3:, :, :3]).all()
    with pytest.raises(ConfigError, match="5 channels"):
        to_units(x, BANDS[:4])


def _aug(**kw) -> T.Augment:
    return T.Augment(size=32, sensors=SENSORS, **kw)


def test_optical_jitter_never_touches_radar_channels():
    x = to_units(_batch(), BANDS, [0, 0, 0, -11.5, -18.5])[:, 0]
    cfg = _aug(jitter_p=1.0, brightness=0.9, contrast=0.9, grayscale_p=1.0, blur_p=0.0, speckle_p=0.0)
    plain = dataclasses.replace(cfg, jitter_p=0.0, grayscale_p=0.0)
    a = T.augment(x, torch.Generator().manual_seed(3), cfg)
    b = T.augment(x, torch.Generator().manual_seed(3), plain)  # the same crops and flips, no photometric op
    assert torch.equal(a[:, 3:], b[:, 3:])  # dB untouched by gain, clamp and grayscale
    assert not torch.allclose(a[:, :3], b[:, :3])
    assert torch.allclose(a[:, 0], a[:, 1]) and torch.allclose(a[:, 1], a[:, 2])  # grayscale over optical only


def test_speckle_is_additive_db_noise_on_radar_only_and_independent_of_chunking(monkeypatch):
    x = to_units(_batch(b=6), BANDS, [0, 0, 0, -11.5, -18.5])[:, 0]
    cfg = _aug(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0, speckle_p=1.0, speckle_db=1.5)
    quiet = dataclasses.replace(cfg, speckle_p=0.0)
    a = T.augment(x, torch.Generator().manual_seed(9), cfg)
    b = T.augment(x, torch.Generator().manual_seed(9), quiet)
    assert torch.equal(a[:, :3], b[:, :3])
    noise = (a[:, 3:] - b[:, 3:]).flatten()
    assert abs(float(noise.std()) - 1.5) < 0.1 and abs(float(noise.mean())) < 0.1
    monkeypatch.setattr(T, "CPU_CHUNK_BYTES", 1)  # one sample per chunk
    c = T.augment(x, torch.Generator().manual_seed(9), cfg)
    assert torch.equal(a, c)


def test_a_dn_batch_with_radar_channels_is_refused():
    with pytest.raises(ConfigError, match="to_units"):
        T.augment(_batch()[:, 0], torch.Generator().manual_seed(0), _aug())


def test_optical_runs_draw_what_they_always_drew():
    """Sensors all optical (or not given): the same random numbers, hence the same output, as before."""
    x = to_reflectance(_batch()[:, 0, :3])
    a = T.augment(x, torch.Generator().manual_seed(1), T.Augment(size=32))
    b = T.augment(x, torch.Generator().manual_seed(1), T.Augment(size=32, sensors=("s2",) * 3))
    assert torch.equal(a, b)


def test_single_sensor_views_hide_the_other_sensor():
    x = to_units(_batch(), BANDS, [0, 0, 0, -11.5, -18.5])
    norm = Normalization(BANDS, (0.1, 0.1, 0.1, -11.5, -18.5), (0.05, 0.05, 0.05, 4.0, 4.0))
    recipe = get_method("seco-s12").views
    q, keys = make_views(x, recipe, torch.Generator().manual_seed(0), 32, norm, _aug())
    assert (q[:, 3:] == 0).all() and (q[:, :3] != 0).any()  # optical query
    assert (keys[0][:, :3] == 0).all() and (keys[0][:, 3:] != 0).any()  # radar key of another date
    assert (keys[3][:, :3] == 0).all() and (keys[2][:, 3:] == 0).all()
    with pytest.raises(ConfigError, match="s1\\+s2"):
        make_views(x, recipe, torch.Generator().manual_seed(0), 32, norm, T.Augment(size=32))

"""Batched multispectral augmentations: determinism, geometry, photometry, probabilities, devices."""

from __future__ import annotations

import math

import pytest
import torch

from seco.data.transforms import (
    Augment,
    adjust_brightness_contrast,
    augment,
    crop_only,
    gaussian_blur,
    resized_crop,
    sample_crop_boxes,
    to_grayscale,
)
from seco.errors import ConfigError

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
#: Every random op off, and a crop that keeps the whole square image.
OFF = Augment(size=16, scale=(1.0, 1.0), ratio=(1.0, 1.0), jitter_p=0, grayscale_p=0, blur_p=0, flip_p=0)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rand(*shape: int, seed: int = 1, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return low + (high - low) * torch.rand(*shape, generator=gen(seed))


def coords(b: int, h: int, w: int) -> torch.Tensor:
    """(b, 2, h, w): channel 0 = column index, channel 1 = row index."""
    cols = torch.arange(w, dtype=torch.float64).expand(h, w)
    rows = torch.arange(h, dtype=torch.float64)[:, None].expand(h, w)
    return torch.stack([cols, rows])[None].expand(b, 2, h, w).contiguous()


# --- determinism, shapes, independence ---------------------------------------------------------------


def test_same_generator_state_same_output_and_input_untouched() -> None:
    x = rand(4, 5, 40, 40)
    x0 = x.clone()
    a = augment(x, gen(7), Augment(size=24))
    b = augment(x, gen(7), Augment(size=24))
    c = augment(x, gen(8), Augment(size=24))
    assert a.shape == (4, 5, 24, 24) and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.equal(x, x0)
    assert torch.equal(crop_only(x, gen(3), 24), crop_only(x, gen(3), 24))


def test_samples_get_their_own_parameters_and_do_not_leak() -> None:
    one = rand(1, 4, 32, 32)
    x = one.expand(6, 4, 32, 32).contiguous()
    y = augment(x, gen(0), Augment(size=16))
    # identical inputs, different random parameters per sample
    assert all(not torch.allclose(y[0], y[i]) for i in range(1, 6))
    # changing sample 3 does not change any other sample's output (no batch statistics)
    x2 = x.clone()
    x2[3] = rand(4, 32, 32, seed=99)
    y2 = augment(x2, gen(0), Augment(size=16))
    keep = [0, 1, 2, 4, 5]
    assert torch.equal(y[keep], y2[keep])
    assert not torch.allclose(y[3], y2[3])


@pytest.mark.parametrize("device", DEVICES)
def test_device_agnostic_path(device: str) -> None:
    x = rand(3, 4, 20, 20)
    cpu = augment(x, gen(5), Augment(size=12))
    out = augment(x.to(device), gen(5), Augment(size=12))
    assert out.device.type == device
    torch.testing.assert_close(out.cpu(), cpu, atol=1e-5, rtol=1e-5)


def test_float64_and_bad_inputs() -> None:
    x = rand(2, 3, 20, 20).double()
    assert augment(x, gen(), Augment(size=8)).dtype == torch.float64
    with pytest.raises(ConfigError, match="torch.bool"):
        augment(x > 0.5, gen(), Augment(size=8))
    with pytest.raises(ConfigError, match=r"\(B, C, H, W\)"):
        augment(x[0], gen(), Augment(size=8))
    if torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CPU"):
            augment(x, torch.Generator(device="cuda"), Augment(size=8))


@pytest.mark.parametrize(
    "kw",
    [{"size": 0}, {"scale": (0.0, 1.0)}, {"scale": (0.5, 0.2)}, {"ratio": (1.0,)}, {"jitter_p": 1.5},
     {"brightness": 1.0}, {"blur_sigma": (0.0, 2.0)}],
)
def test_config_validation(kw: dict) -> None:
    with pytest.raises(ConfigError):
        Augment(**kw)


# --- random resized crop ------------------------------------------------------------------------------


def test_crop_boxes_respect_bounds() -> None:
    h, w = 264, 200
    boxes = sample_crop_boxes(4000, h, w, gen(1))
    top, left, bh, bw = boxes.unbind(1)
    assert boxes.dtype == torch.int64
    assert bool((bh > 0).all() and (bw > 0).all() and (top >= 0).all() and (left >= 0).all())
    assert bool((top + bh <= h).all() and (left + bw <= w).all())
    frac = (bh * bw).double() / (h * w)
    ratio = bw.double() / bh.double()
    # integer rounding of w and h moves the area and ratio by at most ~1 px / side
    assert frac.min() >= 0.2 * (1 - 2 / 100) and frac.max() <= 1.0
    assert ratio.min() >= 0.75 * (1 - 2 / 100) and ratio.max() <= 4 / 3 * (1 + 2 / 100)
    # the range is actually explored
    assert frac.min() < 0.25 and frac.max() > 0.9 and ratio.min() < 0.8 and ratio.max() > 1.25
    # offsets are uniform over the free range: both ends are reached
    assert int(top.min()) == 0 and bool(((top + bh) == h).any())


def test_crop_fallback_is_torchvisions_central_crop() -> None:
    # 100 x 10: no candidate fits (w >= 12 for any scale >= 0.2), so every sample falls back
    boxes = sample_crop_boxes(50, 100, 10, gen(2))
    expected = torch.tensor([(100 - 13) // 2, 0, 13, 10])  # w = 10, h = round(10 / (3/4))
    assert torch.equal(boxes, expected.expand(50, 4))


def test_crop_samples_exactly_the_box() -> None:
    """A coordinate-encoding image reveals where each output pixel was sampled."""
    b, h, w, s = 64, 50, 60, 20
    x = coords(b, h, w)
    g = gen(4)
    state = g.get_state()
    y = crop_only(x, g, s)
    boxes = sample_crop_boxes(b, h, w, torch.Generator().set_state(state))
    u = torch.arange(s, dtype=torch.float64)
    for k in range(b):
        top, left, bh, bw = boxes[k].tolist()
        cols = (left + (u + 0.5) * bw / s - 0.5).clamp(left, left + bw - 1)  # bilinear points, inside the box
        rows = (top + (u + 0.5) * bh / s - 0.5).clamp(top, top + bh - 1)
        torch.testing.assert_close(y[k, 0], cols.expand(s, s), atol=1e-9, rtol=0)
        torch.testing.assert_close(y[k, 1], rows[:, None].expand(s, s), atol=1e-9, rtol=0)
        assert bh * bw >= 0.19 * h * w


def test_cpu_and_accelerator_crop_paths_agree() -> None:
    """The per-sample interpolate (CPU) and batched grid_sample (other devices) crops give the same pixels."""
    from seco.data.transforms import _crop_grid_sample, _crop_interpolate

    x = rand(40, 3, 30, 26)
    boxes = sample_crop_boxes(40, 30, 26, gen(6), scale=(0.05, 1.0))  # up- and downsampling
    flip = torch.rand(40, generator=gen(7)) < 0.5
    a = _crop_interpolate(x, boxes, 16, flip)
    b = _crop_grid_sample(x, boxes, 16, flip)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_full_box_is_identity_and_flip_mirrors() -> None:
    x = rand(3, 4, 16, 16)
    box = torch.tensor([[0, 0, 16, 16]]).expand(3, 4)
    torch.testing.assert_close(resized_crop(x, box, 16), x, atol=1e-6, rtol=0)
    flip = torch.tensor([True, False, True])
    y = resized_crop(x, box, 16, flip=flip)
    torch.testing.assert_close(y[0], x[0].flip(-1), atol=1e-6, rtol=0)
    torch.testing.assert_close(y[1], x[1], atol=1e-6, rtol=0)


# --- probabilities ------------------------------------------------------------------------------------


def test_all_off_is_identity() -> None:
    x = rand(5, 3, 16, 16)
    torch.testing.assert_close(augment(x, gen(), OFF), x, atol=1e-6, rtol=0)


def test_flip_p1_flips_every_sample() -> None:
    from dataclasses import replace

    x = rand(5, 3, 16, 16)
    torch.testing.assert_close(augment(x, gen(), replace(OFF, flip_p=1.0)), x.flip(-1), atol=1e-6, rtol=0)


def test_flip_probability_about_half() -> None:
    from dataclasses import replace

    x = coords(400, 8, 8).float()
    y = augment(x, gen(11), replace(OFF, size=8, flip_p=0.5))
    flipped = (y[:, 0, 0, 0] > y[:, 0, 0, -1]).float().mean().item()
    assert 0.4 < flipped < 0.6


def test_grayscale_p1_is_band_mean_and_p02_rate() -> None:
    from dataclasses import replace

    x = rand(4, 5, 16, 16)
    y = augment(x, gen(), replace(OFF, grayscale_p=1.0))
    torch.testing.assert_close(y, x.mean(1, keepdim=True).expand_as(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(to_grayscale(x), x.mean(1, keepdim=True).expand_as(x))
    many = rand(500, 3, 4, 4)
    y = augment(many, gen(3), replace(OFF, size=4, grayscale_p=0.2))
    gray = (y.std(dim=1) < 1e-7).flatten(1).all(1).float().mean().item()
    assert 0.14 < gray < 0.26


def test_jitter_per_band_brightness_and_contrast() -> None:
    from dataclasses import replace

    x = rand(8, 6, 16, 16, low=0.5, high=1.0)  # far enough from 0 that nothing clamps
    y = augment(x, gen(2), replace(OFF, jitter_p=1.0))
    m_in, m_out = x.mean((2, 3)), y.mean((2, 3))  # (B, C)
    # contrast keeps the band mean, brightness scales it: mean ratio = brightness in [0.6, 1.4]
    bri = m_out / m_in
    assert bool((bri > 0.6 - 1e-6).all() and (bri < 1.4 + 1e-6).all())
    # each band is an affine map of itself with slope brightness * contrast
    xc, yc = x - m_in[..., None, None], y - m_out[..., None, None]
    slope = (xc * yc).sum((2, 3)) / (xc * xc).sum((2, 3))
    torch.testing.assert_close(yc, slope[..., None, None] * xc, atol=1e-5, rtol=0)
    con = slope / bri
    assert bool((con > 0.6 - 1e-5).all() and (con < 1.4 + 1e-5).all())
    # factors are drawn per band, not shared by all bands of a sample
    assert bool((bri.std(dim=1) > 1e-3).all() and (con.std(dim=1) > 1e-3).all())


def test_jitter_clamps_jittered_samples_at_zero_only() -> None:
    x = torch.tensor([0.0, 0.1, 1.0]).repeat(4)[None, None, None, :]  # (1, 1, 1, 12)
    y = adjust_brightness_contrast(x, torch.tensor([[1.0]]), torch.tensor([[1.4]]))
    assert float(y.min()) == 0.0  # 1.4 * 0 - 0.4 * mean < 0 -> clamped
    y = adjust_brightness_contrast(x, torch.tensor([[1.0]]), torch.tensor([[1.4]]), clamp_min=None)
    assert float(y.min()) < 0.0


def test_jitter_rate() -> None:
    from dataclasses import replace

    x = rand(500, 2, 4, 4, low=0.5)
    y = augment(x, gen(5), replace(OFF, size=4, jitter_p=0.8))
    changed = ((y - x).abs().flatten(1).amax(1) > 1e-6).float().mean().item()
    assert 0.73 < changed < 0.87


# --- blur ---------------------------------------------------------------------------------------------


def test_blur_preserves_mass_and_has_the_drawn_sigma() -> None:
    x = torch.zeros(3, 2, 41, 41, dtype=torch.float64)
    x[:, :, 20, 20] = 1.0
    sigma = torch.tensor([1.0, 1.5, 2.0], dtype=torch.float64)
    y = gaussian_blur(x, sigma, radius=6)
    torch.testing.assert_close(y.sum((2, 3)), torch.ones(3, 2, dtype=torch.float64), atol=1e-12, rtol=0)
    d = torch.arange(41, dtype=torch.float64) - 20
    var_x = (y.sum(2) * d**2).sum(-1)  # (3, 2)
    var_y = (y.sum(3) * d**2).sum(-1)
    # truncation at 3 sigma_max = 6 px costs ~3 % of the variance at sigma = 2
    expected = (sigma**2)[:, None].expand(3, 2)
    torch.testing.assert_close(var_x, expected, atol=0, rtol=0.04)
    torch.testing.assert_close(var_y, expected, atol=0, rtol=0.04)
    # a constant image stays constant (normalised kernel, replicated edges)
    c = torch.full((2, 3, 9, 9), 0.3)
    torch.testing.assert_close(gaussian_blur(c, torch.tensor([0.1, 2.0]), 6), c)


def test_blur_p1_changes_every_sample_and_keeps_the_mean() -> None:
    from dataclasses import replace

    x = rand(6, 3, 32, 32)
    y = augment(x, gen(), replace(OFF, size=32, blur_p=1.0))
    assert all(not torch.allclose(y[i], x[i]) for i in range(6))
    torch.testing.assert_close(y.mean((2, 3)), x.mean((2, 3)), atol=2e-3, rtol=0)
    assert float(y.std()) < float(x.std())
    assert Augment().blur_radius == 6 and math.isclose(Augment().blur_sigma[1], 2.0)


def test_cpu_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import seco.data.transforms as T

    x = rand(7, 3, 24, 24)
    whole = augment(x, gen(4), Augment(size=16, blur_p=0.7, grayscale_p=0.5))
    monkeypatch.setattr(T, "CPU_CHUNK_BYTES", 2 * 3 * 16 * 16 * 4)  # 2 samples per chunk
    assert T._chunks(7, 3 * 16 * 16 * 4, x.device)[-1] == slice(6, 7)
    torch.testing.assert_close(augment(x, gen(4), Augment(size=16, blur_p=0.7, grayscale_p=0.5)), whole)
    monkeypatch.setattr(T, "CPU_CHUNK_BYTES", 1)  # one sample per chunk
    torch.testing.assert_close(augment(x, gen(4), Augment(size=16, blur_p=0.7, grayscale_p=0.5)), whole)


# --- digital numbers in ----------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.uint16, torch.int32])
def test_dn_input_is_bitwise_to_reflectance_first(device: str, dtype: torch.dtype) -> None:
    """Integer DN in: only the crop boxes are converted, to the same numbers as converting the whole batch."""
    from seco.data.normalize import to_reflectance

    dn = (rand(5, 4, 40, 36, seed=3) * 12000).to(dtype).to(device)
    ref = to_reflectance(dn)
    norm = lambda y: y.sub_(0.1).div_(0.03)  # noqa: E731  a per-sample `then`, as Normalization.apply_
    for cfg in (Augment(size=24), Augment(size=24, jitter_p=1.0, blur_p=1.0, grayscale_p=0.5, flip_p=0.5)):
        out = augment(dn, gen(4), cfg)
        assert out.dtype == torch.float32 and torch.equal(out, augment(ref, gen(4), cfg))
        assert torch.equal(augment(dn, gen(4), cfg, then=norm), augment(ref, gen(4), cfg, then=norm))
    assert torch.equal(crop_only(dn, gen(5), 24), crop_only(ref, gen(5), 24))
    assert torch.equal(crop_only(dn, gen(5), 24, then=norm), crop_only(ref, gen(5), 24, then=norm))
    boxes = sample_crop_boxes(5, 40, 36, gen(6))
    flip = torch.tensor([True, False, True, False, False])
    assert torch.equal(resized_crop(dn, boxes, 17, flip), resized_crop(ref, boxes, 17, flip))

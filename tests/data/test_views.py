"""View recipes: which date and which transform each view gets, date draws, errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from seco.data.normalize import Normalization
from seco.data.transforms import Augment
from seco.data.views import draw_dates, make_views, recipe_for, step_generator
from seco.errors import ConfigError, DatasetError
from seco.methods import View, ViewRecipe

SECO, MOCO, MOCO_TP = (recipe_for(m) for m in ("seco", "moco", "moco-tp"))

#: Only the (always-on) flip marks an augmented view; the rest keeps values readable.
FLIP_ONLY = Augment(size=12, jitter_p=0, grayscale_p=0, blur_p=0, flip_p=1.0)


def dated_batch(b: int = 4, n: int = 3, h: int = 20) -> torch.Tensor:
    """(b, n, 2, h, h): band 0 = the date position everywhere, band 1 = column index (reveals flips)."""
    x = torch.zeros(b, n, 2, h, h)
    x[:, :, 0] = torch.arange(n, dtype=torch.float32)[None, :, None, None]
    x[:, :, 1] = torch.arange(h, dtype=torch.float32)
    return x


def date_and_flip(v: torch.Tensor) -> tuple[list[float], list[bool]]:
    """Per sample: the date a view shows and whether it was flipped."""
    dates = v[:, 0].flatten(1)
    assert float((dates.amax(1) - dates.amin(1)).max()) < 1e-5, "a view mixes dates"
    flipped = (v[:, 1, :, 0] > v[:, 1, :, -1]).all(1)
    return dates[:, 0].round(decimals=4).tolist(), flipped.tolist()


@pytest.mark.parametrize(
    ("recipe", "expected"),
    [
        # (date, augmented) of q, k0, k1, ...
        (SECO, [(0, False), (1, True), (2, False), (0, True)]),
        (MOCO, [(0, True), (0, True)]),
        (MOCO_TP, [(0, True), (1, True)]),
    ],
)
def test_each_view_comes_from_its_date_with_its_transform(recipe: ViewRecipe, expected: list) -> None:
    batch = dated_batch(n=recipe.num_dates)
    q, keys = make_views(batch, recipe, step_generator(0, 1), 12, None, FLIP_ONLY)
    assert len(keys) == recipe.num_keys == len(expected) - 1
    for view, (date, aug) in zip([q, *keys], expected, strict=True):
        assert view.shape == (4, 2, 12, 12)
        dates, flipped = date_and_flip(view)
        assert dates == [float(date)] * 4
        assert flipped == [aug] * 4


def test_seco_views_have_independent_crops() -> None:
    batch = dated_batch(b=8, h=40)
    q, (k0, k1, k2) = make_views(batch, SECO, step_generator(3), 12, None, replace(FLIP_ONLY, flip_p=0.0))
    # q and k2 both show t0, but each view draws its own crop box: the column ranges differ
    assert not torch.allclose(q[:, 1], k2[:, 1])
    assert not torch.allclose(q[:, 1], k1[:, 1])


def test_views_are_normalised_and_deterministic() -> None:
    batch = dated_batch(n=3) + 1.0
    norm = Normalization(("B02", "B03"), (0.5, 2.0), (2.0, 4.0))
    g = step_generator(1, 0, 5)
    q, keys = make_views(batch, SECO, g, 12, norm, FLIP_ONLY)
    raw_q, raw_keys = make_views(batch, SECO, step_generator(1, 0, 5), 12, None, FLIP_ONLY)
    torch.testing.assert_close(q, norm.apply(raw_q))
    for k, rk in zip(keys, raw_keys, strict=True):
        torch.testing.assert_close(k, norm.apply(rk))
    # band 0 of k1 shows date 2 (+1) -> (3 - 0.5) / 2
    torch.testing.assert_close(keys[1][:, 0], torch.full((4, 12, 12), 1.25))
    # the default (full MoCo-v2) augmentation is deterministic given the generator
    a = make_views(batch, SECO, step_generator(9), 12, norm)
    b = make_views(batch, SECO, step_generator(9), 12, norm)
    assert all(torch.equal(x, y) for x, y in zip([a[0], *a[1]], [b[0], *b[1]], strict=True))


def test_make_views_errors() -> None:
    batch = dated_batch(n=2)
    with pytest.raises(ConfigError, match="needs 3 dates"):
        make_views(batch, SECO, step_generator(0), 12, None)
    with pytest.raises(ConfigError, match=r"\(B, dates, C, H, W\)"):
        make_views(batch[:, 0], MOCO, step_generator(0), 12, None)
    with pytest.raises(ConfigError, match="differs from the view size"):
        make_views(batch, MOCO, step_generator(0), 10, None, FLIP_ONLY)
    with pytest.raises(ConfigError, match="1 band"):  # normalisation for other bands
        make_views(batch, MOCO, step_generator(0), 12, Normalization(("B02",), (0.0,), (1.0,)))


def test_recipe_lookup_and_validation() -> None:
    assert recipe_for("seco") is SECO and recipe_for("MoCo_TP") is MOCO_TP and recipe_for("moco") is MOCO
    assert (SECO.num_dates, SECO.num_keys, MOCO.num_dates, MOCO_TP.num_dates) == (3, 3, 1, 2)
    with pytest.raises(ConfigError, match="simclr"):
        recipe_for("simclr")
    with pytest.raises(ConfigError, match="date 2"):
        ViewRecipe(2, View(0, False), (View(2, True),), "bad")


def test_draw_dates_distinct_valid_and_deterministic() -> None:
    valid = np.array([True, False, True, True, False, True])
    seen = set()
    for s in range(200):
        d = draw_dates(valid, 3, np.random.default_rng(s))
        assert len(set(d)) == 3 and all(valid[i] for i in d)
        assert d == draw_dates(valid, 3, np.random.default_rng(s))
        seen.add(tuple(d))
    assert {i for t in seen for i in t} == {0, 2, 3, 5}
    assert len({t[0] for t in seen}) == 4  # t0 is random too, not always the earliest date
    assert len(seen) == 24  # all ordered triples of 4 dates occur


def test_draw_dates_too_few_valid() -> None:
    valid = np.array([False, True, False, True, False])
    with pytest.raises(DatasetError, match="2 valid date.*3 are needed"):
        draw_dates(valid, 3, np.random.default_rng(0))
    # the official draw (with replacement) needs one valid date
    d = draw_dates(valid, 3, np.random.default_rng(0), replace=True)
    assert set(d) <= {1, 3}
    with pytest.raises(DatasetError):
        draw_dates(np.zeros(5, bool), 1, np.random.default_rng(0), replace=True)


def test_step_generator_is_a_function_of_its_keys() -> None:
    a = torch.rand(4, generator=step_generator(1, 0, 7))
    assert torch.equal(a, torch.rand(4, generator=step_generator(1, 0, 7)))
    assert not torch.equal(a, torch.rand(4, generator=step_generator(1, 1, 7)))
    assert not torch.equal(a, torch.rand(4, generator=step_generator(1, 0, 8)))


def test_views_of_a_dn_batch_equal_views_of_its_reflectance() -> None:
    """The loop hands a uint16 DN batch to make_views on the CPU; the views are bitwise those of reflectance."""
    from seco.data.normalize import to_reflectance

    dn = torch.randint(0, 12000, (3, 3, 2, 30, 30), generator=torch.Generator().manual_seed(0)).to(torch.uint16)
    norm = Normalization(("B02", "B08"), (0.1, 0.3), (0.03, 0.1))
    q, keys = make_views(dn, SECO, step_generator(0, 2), 16, norm)
    q2, keys2 = make_views(to_reflectance(dn), SECO, step_generator(0, 2), 16, norm)
    assert q.dtype == torch.float32 and torch.equal(q, q2)
    assert all(torch.equal(a, b) for a, b in zip(keys, keys2, strict=True))

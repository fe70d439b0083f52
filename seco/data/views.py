"""The views of each pre-training method, made from its ``ViewRecipe`` (data, in :mod:`seco.methods`).

A recipe says how many dates a sample draws and, for the query and each key, which drawn date it shows and
whether it gets the full augmentation (``seco.data.transforms.augment``) or only a random resized crop.

The official SeCo views, from ``datasets/seco_dataset.py`` (``SeasonalContrastMultiAug.__getitem__``) of
ServiceNow/seasonal-contrast (commit 411e37e), with ``datasets/seco_datamodule.py`` and
``models/moco2_module.py``::

    t0, t1, t2 = 3 dates of the location, np.random.choice(dates, 3)   # NB: with replacement
    q  = t0            -> RandomResizedCrop(224, scale=(0.2, 1))   (crop only: no jitter, no flip)
    k0 = augment(t1)   -> own RandomResizedCrop                    (other date and augmented)
    k1 = t2            -> own RandomResizedCrop                    (other date, not augmented)
    k2 = augment(t0)   -> own RandomResizedCrop                    (same date, augmented)

where ``augment`` = ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8, RandomGrayscale p=0.2, GaussianBlur p=0.5,
RandomHorizontalFlip, applied to the full patch before the crop. Every view has its *own* independent crop
(``preprocess`` is called once per view), so ``q`` is not the same crop as ``k1`` or ``k2``. Head 0 pairs
``q`` with ``k0`` (invariant to time and augmentation), head 1 with ``k1`` (invariant to time, variant to
augmentation: k0 and k2 of the batch are extra negatives), head 2 with ``k2`` (invariant to augmentation,
variant to time).

MoCo-v2 (``--data_mode moco``): one image, two independent ``Moco2TrainImagenetTransforms`` views; the official
dataset treats every (location, date) as its own image, here a sample is one random valid date of a location.
MoCo-v2+TP (``moco_tp``): two dates (``np.random.choice(dates, 2)``, also with replacement), each augmented.

Differences here, on purpose: dates are drawn **distinct** by default (the official draw can repeat a date,
which turns a "different season" positive into a same-image one); ``PretrainDataset(..., replace=True)``
(``draw_dates(..., replace=True)``) reproduces the official draw. The augmentation crops first (see
``seco.data.transforms``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from seco.data.normalize import Normalization
from seco.data.transforms import Augment, augment, crop_only
from seco.errors import ConfigError, DatasetError
from seco.methods import View, ViewRecipe, get_method

__all__ = ["draw_dates", "make_views", "recipe_for", "step_generator"]


def recipe_for(method: str) -> ViewRecipe:
    """The view recipe of a registered method (``seco``, ``moco``, ``moco-tp``, or one a user registered).

    Raises:
        ConfigError: on an unknown method.
    """
    return get_method(method).views


def draw_dates(valid: np.ndarray, n: int, rng: np.random.Generator, replace: bool = False) -> list[int]:
    """Draw ``n`` date indices at random among the valid dates of one location, in draw order.

    Args:
        valid: (T,) bool, the location's usable dates.
        n: dates to draw.
        rng: numpy generator (seed it from (seed, epoch, location) for reproducible runs).
        replace: allow the same date twice (the official SeCo draw).

    Raises:
        DatasetError: if the location has fewer valid dates than needed (or none when ``replace``).
    """
    valid = np.asarray(valid, dtype=bool)
    if valid.ndim != 1:
        raise DatasetError(f"valid-date mask must be (T,), got shape {valid.shape}")
    pool = np.flatnonzero(valid)  # (V,)
    need = 1 if replace else n
    if len(pool) < need:
        raise DatasetError(
            f"location has {len(pool)} valid date(s) of {len(valid)} but {need} are needed "
            f"({n} drawn {'with' if replace else 'without'} replacement); "
            "drop such locations (PretrainDataset(..., drop_incomplete=True)), use a method with fewer dates, "
            "or collect more dates"
        )
    return [int(d) for d in rng.choice(pool, size=n, replace=replace)]


def _hidden_channels(recipe: ViewRecipe, cfg: Augment, num_channels: int) -> dict[str, Tensor]:
    """Per sensor a view may show alone, the (C,) bool of the channels it hides (those of the other sensor).

    Raises:
        ConfigError: a view of one sensor in a run whose channels are not labelled, or lack that sensor.
    """
    wanted = {v.sensor for v in (recipe.query, *recipe.keys)} - {"all"}
    if not wanted:
        return {}
    if cfg.sensors is None or len(cfg.sensors) != num_channels:
        raise ConfigError(f"method {recipe.name!r} shows single-sensor views; train it on bands of both sensors "
                          "(--bands s1+s2)")
    sensors = list(cfg.sensors)
    out = {}
    for s in sorted(wanted):
        if s not in sensors or len(set(sensors)) < 2:
            raise ConfigError(f"method {recipe.name!r} needs bands of both sensors, the run has only "
                              f"{sorted(set(sensors))}; use --bands s1+s2")
        out[s] = torch.tensor([c != s for c in sensors])
    return out


def step_generator(seed: int, *keys: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, *keys)``, e.g. ``(seed, rank, step)``: per-step augmentations
    that a resumed run re-derives without saving generator state."""
    if seed < 0 or any(k < 0 for k in keys):
        raise ConfigError(f"generator seed and keys must be >= 0, got {(seed, *keys)}")
    s = np.random.SeedSequence([seed, *keys]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(s) & ((1 << 63) - 1))


def make_views(
    batch: Tensor,
    recipe: ViewRecipe,
    gen: torch.Generator,
    size: int,
    normalization: Normalization | None,
    augment_cfg: Augment | None = None,
) -> tuple[Tensor, list[Tensor]]:
    """The query and key views of a batch of drawn dates, normalised, on the batch's device.

    Views are made in order q, k0, k1, ... each with its own random parameters from ``gen``.

    Args:
        batch: (B, n, C, H, W) float reflectance, or integer DN (as ``to_reflectance(batch)``; on the CPU only
            the crop boxes are converted), ``batch[:, j]`` = drawn date j; ``n >= recipe.num_dates``.
        recipe: the method's views.
        gen: CPU generator.
        size: output side.
        normalization: applied to every view after augmentation; None to return reflectance.
        augment_cfg: the full augmentation (MoCo-v2 at ``size`` when None); its size must equal ``size``.

    Returns:
        q (B, C, size, size) and a list of ``recipe.num_keys`` keys of the same shape.
    """
    if batch.ndim != 5:
        raise ConfigError(
            f"views need a batch (B, dates, C, H, W), got shape {tuple(batch.shape)}; "
            "use the 'images' of a PretrainDataset batch"
        )
    if batch.shape[1] < recipe.num_dates:
        raise ConfigError(
            f"recipe {recipe.name!r} needs {recipe.num_dates} dates per sample, the batch has {batch.shape[1]}; "
            f"build the dataset with num_dates={recipe.num_dates}"
        )
    cfg = augment_cfg if augment_cfg is not None else Augment(size=size)
    if cfg.size != size:
        raise ConfigError(f"augment size {cfg.size} differs from the view size {size}; use dataclasses.replace(cfg, size={size})")

    hide = _hidden_channels(recipe, cfg, batch.shape[2])

    def one(v: View) -> Tensor:
        x = batch[:, v.date]  # (B, C, H, W)
        then = normalization.apply_ if normalization is not None else None  # on fresh crops: in place is safe
        if v.augmented:
            y = augment(x, gen, cfg, then=then)
        else:
            y = crop_only(x, gen, size, cfg.scale, cfg.ratio, then=then)
        if v.sensor != "all":  # the other sensor's channels at their normalised mean: this view shows one sensor
            y[:, hide[v.sensor]] = 0
        return y

    q = one(recipe.query)
    keys = [one(v) for v in recipe.keys]
    return q, keys


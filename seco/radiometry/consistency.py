"""Radiometric consistency across the dates of one location: finding dates harmonised with the wrong offset.

Provider flags are sometimes wrong (Earth Search's ``earthsearch:boa_offset_applied``, Element84/earth-search#66,
#71; cirrus-geo/cirrus-earth-search#33), and no metadata rule can see it. The pixels can: a date whose DN still
carry the baseline-04.00 offset is about 1000 DN brighter than the same place on other dates, and one whose
offset was removed twice about 1000 DN darker, with its darkest pixels clipped to 1.

**Statistic.** Per date, the *dark-object* DN: the ``percentile`` (1st) of the valid (non-zero) pixels (by
default every second pixel in each direction, 17,000 of a 264 px patch) of each of ``bands`` (B02, B03: their darkest surfaces, water, shadow, dense vegetation, sit near 0-500 DN and move
little with the season, unlike bright surfaces), averaged over those bands; and the share of valid pixels at
DN 1 (where a harmonised value lands when the offset is removed twice).

**Rule.** A date is flagged when, against the median of the location's *other* valid dates (robust to one bad
date; at least ``min_dates - 1`` others with ``min_valid`` valid pixels each):

- ``offset-kept``: its statistic is ``expected_jump`` +- ``tolerance`` DN (1000 +- 400) higher;
- ``offset-removed-twice``: it is 1000 +- 400 DN lower, or at least ``clipped`` (1 %) of its pixels sit at DN 1
  while the other dates' median is below a tenth of that.

The tolerance leaves room for season and haze (dark objects move by a few hundred DN at most over a year on
real scenes); differences beyond 1400 DN (thick cloud, snow) are left alone. A finding is a reason to look
(``seco catalog inspect`` on the item, the ``dn_rule`` recorded in the store), never a silent correction.

numpy only: used by collect (at collection time, on the patches in memory) and by ``seco store check``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seco.errors import ConfigError

KINDS = ("offset-kept", "offset-removed-twice")


@dataclass(frozen=True)
class ConsistencyConfig:
    """Settings of the check (the defaults are the documented ones).

    Attributes:
        bands: bands whose dark objects are compared.
        percentile: the dark-object percentile of valid pixels.
        expected_jump: the DN offset a wrong harmonisation adds or removes.
        tolerance: how far from ``expected_jump`` a difference may be and still be flagged.
        min_dates: a location needs this many usable dates (the date and its references).
        min_valid: valid pixels a date needs per band to be usable.
        clipped: share of valid pixels at DN 1 that marks an offset removed twice.
        stride: use every ``stride``-th pixel in each direction (2: a quarter of them, about 3x faster; docs/BENCHMARKS.md).
    """

    bands: tuple[str, ...] = ("B02", "B03")
    percentile: float = 1.0
    expected_jump: int = 1000
    tolerance: int = 400
    min_dates: int = 3
    min_valid: int = 100
    clipped: float = 0.01
    stride: int = 2

    def __post_init__(self) -> None:
        if not self.bands:
            raise ConfigError("ConsistencyConfig.bands is empty; give e.g. ('B02', 'B03')")
        if not 0 < self.percentile < 50:
            raise ConfigError(f"percentile={self.percentile!r} must be in (0, 50); dark objects use 1")
        if not 0 < self.tolerance < self.expected_jump:
            raise ConfigError(f"tolerance={self.tolerance!r} must be in (0, expected_jump={self.expected_jump})")
        if self.min_dates < 2:
            raise ConfigError(f"min_dates={self.min_dates!r} must be >= 2 (a date and a reference)")
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or self.stride < 1:
            raise ConfigError(f"stride={self.stride!r} must be a positive integer (1 = every pixel)")
        if not 0 < self.clipped < 1:
            raise ConfigError(f"clipped={self.clipped!r} must be a fraction in (0, 1)")


@dataclass(frozen=True)
class DateFlag:
    """One flagged date of one location's stack (what :func:`check_dates` returns).

    Attributes:
        date: date index ``t``.
        kind: one of :data:`KINDS`.
        statistic: the date's dark-object DN.
        reference: the median dark-object DN of the other usable dates.
        difference: ``statistic - reference``.
        clipped: share of the date's valid pixels at DN 1.
    """

    date: int
    kind: str
    statistic: float
    reference: float
    difference: float
    clipped: float


@dataclass(frozen=True)
class Finding:
    """A flagged date of a store location, with what the store recorded about it.

    Attributes:
        location: location index in the store.
        key: the location's key.
        flag: the statistics (:class:`DateFlag`).
        item_id: STAC item the date was read from.
        datetime: acquisition time (ISO 8601).
        dn_shift: per band, the shift collect applied (``None``: the store predates that record).
        dn_rule: the rule(s) that decided it (``None``: unknown).
    """

    location: int
    key: str
    flag: DateFlag
    item_id: str | None = None
    datetime: str | None = None
    dn_shift: tuple[int, ...] | None = None
    dn_rule: str | None = None

    @property
    def date(self) -> int:
        return self.flag.date

    @property
    def kind(self) -> str:
        return self.flag.kind

    @property
    def problem(self) -> str:
        """:meth:`message` (the field ``seco store check`` reports)."""
        return self.message()

    @property
    def severity(self) -> str:
        """``"warning"``: the date is suspicious, the location still usable."""
        return "warning"

    def message(self) -> str:
        """One line naming the location, date, item, numbers and what to do."""
        f = self.flag
        what = ("still carries the +1000 DN baseline offset" if f.kind == "offset-kept"
                else "had the 1000 DN offset removed twice")
        rule = f", rule {self.dn_rule}" if self.dn_rule else ""
        return (f"location {self.location} ({self.key}) date {f.date} item {self.item_id or '?'}{rule}: "
                f"dark-object DN {f.statistic:.0f} vs {f.reference:.0f} on the other dates ({f.difference:+.0f}; "
                f"{100 * f.clipped:.1f} % clipped to 1) - it likely {what}; check the provider flag with "
                f"`seco catalog inspect` and recollect or drop this date")


def dark_objects(images: np.ndarray, valid: np.ndarray, band_index: Sequence[int],
                 config: ConsistencyConfig = ConsistencyConfig()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per date: the dark-object DN, the share of valid pixels at DN 1, and whether the date is usable.

    Args:
        images: (T, C, H, W) uint16 DN, 0 = nodata.
        valid: (T,) bool.
        band_index: channel positions of ``config.bands`` in ``images``.
        config: the settings.

    Returns:
        stat (T,) float64 (NaN where unusable), clipped (T,) float64, usable (T,) bool.
    """
    T = images.shape[0]
    stat = np.full(T, np.nan)
    clipped = np.zeros(T)
    usable = np.zeros(T, bool)
    for t in range(T):
        if not valid[t]:
            continue
        per_band, clip, ok = [], [], True
        for c in band_index:
            px = images[t, c, ::config.stride, ::config.stride].ravel()  # a sample: cheaper, p1 as robust
            px = px[px != 0]
            if px.size < config.min_valid:  # counted on the sample
                ok = False
                break
            per_band.append(float(np.percentile(px, config.percentile)))
            clip.append(float(np.mean(px == 1)))
        if ok:
            stat[t], clipped[t], usable[t] = float(np.mean(per_band)), float(np.mean(clip)), True
    return stat, clipped, usable


def check_dates(images: np.ndarray, valid: np.ndarray, band_index: Sequence[int],
                config: ConsistencyConfig = ConsistencyConfig()) -> list[DateFlag]:
    """The dates of one location's stack whose dark objects sit about 1000 DN off the other dates.

    Args:
        images: (T, C, H, W) uint16 DN, 0 = nodata (harmonised as stored).
        valid: (T,) bool.
        band_index: channel positions of ``config.bands`` in ``images``.
        config: the settings.

    Returns:
        The flagged dates, in date order (empty when fewer than ``min_dates`` dates are usable).
    """
    stat, clipped, usable = dark_objects(images, valid, band_index, config)
    idx = np.flatnonzero(usable)
    if idx.size < config.min_dates:
        return []
    lo, hi = config.expected_jump - config.tolerance, config.expected_jump + config.tolerance
    out = []
    for t in idx:
        others = idx[idx != t]
        ref = float(np.median(stat[others]))
        ref_clip = float(np.median(clipped[others]))
        diff = float(stat[t] - ref)
        kind = None
        if lo <= diff <= hi:
            kind = "offset-kept"
        elif -hi <= diff <= -lo or (clipped[t] >= config.clipped and ref_clip < config.clipped / 10):
            kind = "offset-removed-twice"
        if kind is not None:
            out.append(DateFlag(int(t), kind, float(stat[t]), ref, diff, float(clipped[t])))
    return out


def _band_positions(store: Any, config: ConsistencyConfig) -> list[int]:
    missing = [b for b in config.bands if b not in store.bands]
    if missing:
        raise ConfigError(f"the store has no band(s) {', '.join(missing)} (it has {', '.join(store.bands)}); "
                          "the consistency check compares dark objects in ConsistencyConfig.bands")
    return [store.bands.index(b) for b in config.bands]


def check_location(store: Any, i: int, config: ConsistencyConfig = ConsistencyConfig()) -> list[Finding]:
    """The flagged dates of location ``i`` of a store (:class:`seco.store.Store`), with their metadata.

    Raises:
        ConfigError: the store lacks ``config.bands``.
    """
    pos = _band_positions(store, config)
    images = store.read(i, bands=list(config.bands))  # (T, len(bands), H, W)
    flags = check_dates(images, store.valid(i), list(range(len(pos))), config)
    if not flags:
        return []
    meta = store.meta(i)
    key = store.key(i)
    out = []
    for f in flags:
        m = meta[f.date]
        shift = m.get("dn_shift")
        out.append(Finding(location=int(i), key=key, flag=f, item_id=m.get("item_id"), datetime=m.get("datetime"),
                           dn_shift=None if shift is None else tuple(shift), dn_rule=m.get("dn_rule")))
    return out


def check_store(store: Any, locations: Iterable[int] | None = None, config: ConsistencyConfig = ConsistencyConfig(),
                progress: bool = False) -> list[Finding]:
    """:func:`check_location` over a store (``seco store check`` calls this).

    Args:
        store: an open :class:`seco.store.Store`.
        locations: indices to check (``None`` = all).
        config: the settings.
        progress: a tqdm bar on stderr.

    Returns:
        Every finding, by location then date.
    """
    _band_positions(store, config)
    idx = list(range(len(store))) if locations is None else [int(i) for i in locations]
    it: Iterable[int] = idx
    if progress:
        from tqdm import tqdm

        it = tqdm(idx, desc="radiometric consistency", unit="loc")
    out: list[Finding] = []
    for i in it:
        out.extend(check_location(store, i, config))
    return out

"""Sentinel-1 scene records and the choice of the S1 acquisition that best matches one Sentinel-2 date.

An :class:`S1Item` is one S1 STAC item (RTC or GRD) with its polarisation assets keyed ``VV``/``VH``/``HH``/``HV``
whatever the provider calls them (``vv``, ``vv-rtc``, ``gamma0_vv``), its acquisition geometry and the provider
rule of :mod:`seco.radiometry.s1` that turns its pixels into dB.

Matching (:func:`match_dates`): per S2 date, the IW VV+VH acquisitions within ``window_days`` of the S2 time;
an *acquisition* is the items of one pass (same platform, relative orbit and orbit state, within 5 minutes:
consecutive slices of one datatake), mosaicked when the patch straddles them. The orbit policy ``same`` keeps
one orbit state for every date of a location (the state matching the most dates; ties: the smaller summed time
offset, then descending), so a difference between dates is a season, not a viewing geometry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from seco.collect.scene import _parse_time
from seco.errors import CatalogError, ConfigError
from seco.radiometry.s1 import S1Rule, S1RuleError, decide_s1, polarization_of_key, s1_provider_of

ORBIT_POLICIES = ("same", "any", "ascending", "descending")
#: Items of one pass closer than this are one acquisition (slices of a datatake are ~25 s apart).
PASS_GAP = dt.timedelta(minutes=5)
S1_BANDS = ("VV", "VH")


@dataclass(frozen=True)
class S1Item:
    """One Sentinel-1 item as found in a catalog.

    Attributes:
        id: item id.
        datetime: acquisition time (UTC).
        bbox: (west, south, east, north) degrees.
        collection: collection id.
        provider: :func:`seco.radiometry.s1.s1_provider_of`.
        assets: polarisation (``VV``...) -> href (signed when the catalog signs).
        mode: ``sar:instrument_mode`` (``IW``, ``EW``...), ``None`` when absent.
        polarizations: ``sar:polarizations``.
        product_type: ``sar:product_type`` as the item says (the rule does not trust it).
        orbit_state: ``sat:orbit_state`` (lower case).
        relative_orbit: ``sat:relative_orbit``.
        platform: ``platform`` (lower case, e.g. ``sentinel-1a``).
        looks: ``sar:looks_equivalent_number``.
        properties: the raw properties (for the rule and for ``seco catalog inspect``).
    """

    id: str
    datetime: dt.datetime
    bbox: tuple[float, float, float, float]
    collection: str | None
    provider: str
    assets: dict[str, str] = field(hash=False)
    mode: str | None = None
    polarizations: tuple[str, ...] = ()
    product_type: str | None = None
    orbit_state: str | None = None
    relative_orbit: int | None = None
    platform: str | None = None
    looks: float | None = None
    properties: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)

    def rule(self) -> S1Rule:
        """The provider rule (:func:`seco.radiometry.s1.decide_s1`); raises :class:`S1RuleError`."""
        return decide_s1(item_id=self.id, provider=self.provider, collection=self.collection,
                         properties=self.properties)

    @property
    def dual_vv_vh(self) -> bool:
        """IW mode with VV and VH assets (what seco stores)."""
        return (self.mode or "").upper() == "IW" and all(p in self.assets for p in S1_BANDS)


def s1_assets(raw: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Polarisation -> (asset key, asset) of a STAC ``assets`` mapping (data assets only)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for key, a in raw.items():
        if not isinstance(a, dict) or not a.get("href"):
            continue
        if set(a.get("roles") or ()) & {"metadata", "thumbnail", "overview"}:
            continue
        pol = polarization_of_key(key)
        if pol is not None and pol not in out:
            out[pol] = (key, a)
    return out


def s1_from_stac(item: dict[str, Any], sign: Any = None) -> S1Item:
    """An :class:`S1Item` from a STAC item dict, signing hrefs with ``sign(href)``.

    Raises:
        CatalogError: no datetime or no bbox.
    """
    props = dict(item.get("properties") or {})
    when = _parse_time(props.get("datetime")) or _parse_time(props.get("start_datetime"))
    if when is None:
        raise CatalogError(f"S1 item {item.get('id')!r} has no datetime; it cannot be matched to a date")
    raw_bbox = list(item.get("bbox") or ())
    if len(raw_bbox) not in (4, 6):
        raise CatalogError(f"S1 item {item.get('id')!r} has no valid bbox ({item.get('bbox')!r})")
    w, s, e, n = (raw_bbox[i] for i in ((0, 1, 3, 4) if len(raw_bbox) == 6 else (0, 1, 2, 3)))
    pols = s1_assets(item.get("assets") or {})
    links = [str(ln.get("href", "")) for ln in item.get("links") or () if isinstance(ln, dict)]
    provider = s1_provider_of(links, [a["href"] for _, a in pols.values()], props)
    rel = props.get("sat:relative_orbit")
    looks = props.get("sar:looks_equivalent_number")
    return S1Item(
        id=str(item["id"]), datetime=when, bbox=(float(w), float(s), float(e), float(n)),
        collection=item.get("collection"), provider=provider,
        assets={p: (sign(a["href"]) if sign is not None else a["href"]) for p, (_, a) in pols.items()},
        mode=None if props.get("sar:instrument_mode") is None else str(props["sar:instrument_mode"]).upper(),
        polarizations=tuple(str(p).upper() for p in props.get("sar:polarizations") or ()),
        product_type=None if props.get("sar:product_type") is None else str(props["sar:product_type"]),
        orbit_state=None if props.get("sat:orbit_state") is None else str(props["sat:orbit_state"]).lower(),
        relative_orbit=None if rel is None else int(rel),
        platform=None if props.get("platform") is None else str(props["platform"]).lower(),
        looks=None if looks is None else float(looks), properties=props,
    )


# ---------------------------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Acquisition:
    """The items of one S1 pass over a location (mosaicked in order) and its offset to the S2 date."""

    items: tuple[S1Item, ...]
    offset_days: float  # S1 time minus S2 time

    @property
    def orbit_state(self) -> str | None:
        return self.items[0].orbit_state

    @property
    def datetime(self) -> dt.datetime:
        return self.items[0].datetime


def acquisitions(items: Sequence[S1Item], s2_time: dt.datetime, window_days: float) -> list[Acquisition]:
    """The passes of ``items`` within ``window_days`` of ``s2_time``, closest first (ties: earlier, id)."""
    win = dt.timedelta(days=window_days)
    near = sorted((it for it in items if abs(it.datetime - s2_time) <= win), key=lambda it: (it.datetime, it.id))
    groups: list[list[S1Item]] = []
    for it in near:
        g = next((g for g in groups if g[0].platform == it.platform and g[0].relative_orbit == it.relative_orbit
                  and g[0].orbit_state == it.orbit_state and abs(it.datetime - g[-1].datetime) <= PASS_GAP), None)
        if g is None:
            groups.append([it])
        else:
            g.append(it)
    out = []
    for g in groups:
        mid = g[0].datetime + (g[-1].datetime - g[0].datetime) / 2
        # the slice containing most of the patch is unknown here: the closest slice in time reads first
        out.append(Acquisition(tuple(g), (mid - s2_time).total_seconds() / 86400.0))
    out.sort(key=lambda a: (abs(a.offset_days), a.offset_days, a.items[0].id))
    return out


def choose_orbit(per_date: Sequence[Sequence[Acquisition]], policy: str) -> str | None:
    """The orbit state every date of a location uses (``None``: any).

    ``same``: the state with acquisitions at the most dates; ties by the smaller summed offset of each date's
    closest acquisition, then ``descending``.
    """
    if policy not in ORBIT_POLICIES:
        raise ConfigError(f"--s1-orbit {policy!r} is unknown; choose one of {', '.join(ORBIT_POLICIES)}")
    if policy in ("ascending", "descending"):
        return policy
    if policy == "any":
        return None
    score: dict[str, tuple[int, float]] = {}
    for state in ("descending", "ascending"):
        hits = [min(abs(a.offset_days) for a in acq if a.orbit_state == state)
                for acq in per_date if any(a.orbit_state == state for a in acq)]
        score[state] = (-len(hits), sum(hits))
    best = min(("descending", "ascending"), key=lambda s: score[s])
    return best if score[best][0] < 0 else None


def usable(items: Sequence[S1Item]) -> tuple[list[S1Item], list[tuple[S1Item, str]]]:
    """(IW VV+VH items whose rule applies, [(other item, why not)])."""
    ok, bad = [], []
    for it in items:
        if not it.dual_vv_vh:
            bad.append((it, f"mode {it.mode or '?'} with {'+'.join(sorted(it.assets)) or 'no'} polarisation "
                            "assets; seco stores IW VV+VH"))
            continue
        try:
            it.rule()
        except S1RuleError as e:
            bad.append((it, str(e)))
            continue
        ok.append(it)
    return ok, bad

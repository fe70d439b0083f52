"""Provider-correct harmonisation of Sentinel-2 DN: which shift makes ``reflectance = DN / 10000``, and why.

Since processing baseline 04.00 (25 January 2022) ESA's Sentinel-2 products carry ``BOA_ADD_OFFSET = -1000``
(L2A) or ``RADIO_ADD_OFFSET = -1000`` (L1C): ``reflectance = (DN - 1000) / 10000``. seco stores every date on the
older scale (``DN' = DN + shift``), so one reflectance has one DN across the archive. Whether ``shift`` is -1000 or
0 depends on what the provider did to the pixels, which only its own metadata tells, and not always truthfully.
Each rule below is explicit, keyed by provider and collection, and returns the shift together with its name:

================== ===================== ==================================================== =========
provider           collection            metadata read (in order)                             shift
================== ===================== ==================================================== =========
earth-search       sentinel-2-l2a        baseline < 04.00                                     0
                                         ``earthsearch:boa_offset_applied`` true              0
                                         flag false and baseline >= 04.00                     -1000
                                         no flag: ``raster:bands`` offset (warning)           offset
earth-search       sentinel-2-c1-l2a     ``raster:bands`` offset (-0.1), else baseline        -1000
earth-search       sentinel-2-l1c        ``raster:bands`` offset (from 04.00), else baseline  -1000 / 0
planetary-computer sentinel-2-l2a        ``s2:processing_baseline`` >= 04.00                  -1000 / 0
cdse               sentinel-2-l2a / l1c  ``raster:offset`` (-0.1), else ``processing:version`` -1000 / 0
local / unknown    any                   ``raster:bands`` offset, else baseline (warning),    offset /
                                         else nothing (warning when acquired >= 2022-01-25)   -1000 / 0
================== ===================== ==================================================== =========

Earth Search v1 ``sentinel-2-l2a`` keeps ``raster:bands`` ``offset: -0.1`` on every item, also where the COGs
already have the offset removed (``earthsearch:boa_offset_applied: true``) and on pre-04.00 products that never
had one: trusting ``raster:bands`` there subtracts 1000 twice. The flag itself is known to be wrong for some
2022 and 2025 scenes (Element84/earth-search#66, #71; cirrus-geo/cirrus-earth-search#33): no metadata rule can
see that, :mod:`seco.radiometry.consistency` can.

A decision carries a ``warning`` when the metadata could not decide and a default was taken; collect records
it per item. numpy-free and torch-free: used by ``seco.collect`` and ``seco catalog inspect``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from seco.bands import REFLECTANCE_SCALE
from seco.errors import ReadError

#: The DN offset ESA introduced with processing baseline 04.00.
BASELINE_04_SHIFT = -1000
#: First acquisition day processed with baseline 04.00.
BASELINE_04_DATE = dt.datetime(2022, 1, 25, tzinfo=dt.UTC)

EARTH_SEARCH, PLANETARY_COMPUTER, CDSE, LOCAL, UNKNOWN = (
    "earth-search", "planetary-computer", "cdse", "local", "unknown")
PROVIDERS = (EARTH_SEARCH, PLANETARY_COMPUTER, CDSE, LOCAL, UNKNOWN)

#: Host name fragments (links or asset hrefs) -> provider.
_HOSTS: tuple[tuple[str, str], ...] = (
    ("earth-search.aws.element84.com", EARTH_SEARCH),
    ("sentinel-cogs.s3", EARTH_SEARCH),
    ("e84-earth-search-sentinel-data", EARTH_SEARCH),
    ("planetarycomputer.microsoft.com", PLANETARY_COMPUTER),
    ("sentinel2l2a01.blob.core.windows.net", PLANETARY_COMPUTER),
    ("dataspace.copernicus.eu", CDSE),
    ("eodata/sentinel-2", CDSE),
)
#: The Earth Search flag, current and former name (renamed in 2023, cirrus-earth-search#33).
BOA_FLAGS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")


@dataclass(frozen=True)
class ShiftDecision:
    """What harmonisation does to one band of one item.

    Attributes:
        shift: DN added to valid pixels (-1000 or 0; another multiple of 10 only from an explicit offset).
        rule: name of the rule that decided (stable; recorded in the store, listed in docs/COLLECT.md).
        warning: set when the metadata could not decide and a stated default was taken.
    """

    shift: int
    rule: str
    warning: str | None = None


def parse_baseline(pb: str) -> tuple[int, int]:
    """``"05.09"``, ``"N0509"`` or ``"5.9"`` -> (5, 9).

    Raises:
        ReadError: an unparseable value (the item's metadata is malformed).
    """
    s = str(pb).strip()
    m = re.fullmatch(r"(\d{1,2})\.(\d{1,2})", s) or re.fullmatch(r"N?(\d{2})(\d{2})", s)
    if not m:
        raise ReadError(f"s2:processing_baseline {pb!r} is not like '05.09' or 'N0509'; fix the item metadata")
    return int(m.group(1)), int(m.group(2))


def provider_of(links: Iterable[str], hrefs: Iterable[str], properties: Mapping[str, Any]) -> str:
    """The provider an item comes from, read from its links, then its asset hrefs, then its properties.

    Returns:
        One of :data:`PROVIDERS`: ``local`` when every href is a local path, ``unknown`` otherwise.
    """
    for group in (links, hrefs):
        for u in group:
            low = str(u).lower()
            for frag, prov in _HOSTS:
                if frag in low:
                    return prov
    if any(str(k).startswith("earthsearch:") and v is not None for k, v in properties.items()):  # geoparquet: None
        return EARTH_SEARCH
    hs = [str(h) for h in hrefs]
    if hs and all(urlparse(h).scheme in ("", "file") or re.match(r"^[A-Za-z]:[\\/]", h) for h in hs):
        return LOCAL
    return UNKNOWN


def boa_flag(properties: Mapping[str, Any]) -> bool | None:
    """Earth Search's ``boa_offset_applied`` flag (either name), ``None`` when absent or not a boolean."""
    for k in BOA_FLAGS:
        v = properties.get(k)
        if isinstance(v, bool):
            return v
    return None


def baseline_of(properties: Mapping[str, Any]) -> str | None:
    """The processing baseline: ``s2:processing_baseline``, CDSE's ``processing:version``, or the ``_Nxxyy_``
    of ``s2:product_uri``; ``None`` when none is given."""
    pb = properties.get("s2:processing_baseline")
    if pb is None and str(properties.get("product:type", "")).startswith("S2MSI"):
        pb = properties.get("processing:version")
    if pb is None:
        m = re.search(r"_N(\d{2})(\d{2})_", str(properties.get("s2:product_uri") or ""))
        if m:
            pb = f"{m.group(1)}.{m.group(2)}"
    return None if pb is None else str(pb)


def _offset_shift(item_id: str, band: str, offset: float, scale: float | None) -> int:
    if scale is not None and not math.isclose(scale, 1.0 / REFLECTANCE_SCALE, rel_tol=1e-6):
        raise ReadError(
            f"raster:bands scale {scale!r} of band {band} of item {item_id!r} is not 0.0001; seco stores "
            "DN = reflectance x 10000 and cannot harmonise it. Read with harmonize=False or fix the metadata"
        )
    shift = offset * REFLECTANCE_SCALE
    if not math.isclose(shift, round(shift), abs_tol=1e-6):
        raise ReadError(f"raster:bands offset {offset!r} of band {band} of item {item_id!r} is not a whole number "
                        "of DN at scale 0.0001; fix the metadata or read with harmonize=False")
    return int(round(shift))


def _new_baseline(pb: str | None) -> bool | None:
    return None if pb is None else parse_baseline(pb) >= (4, 0)


def decide_shift(
    *,
    item_id: str,
    band: str,
    provider: str | None,
    collection: str | None,
    processing_baseline: str | None,
    boa_offset_applied: bool | None,
    offset: float | None,
    scale: float | None,
    datetime: dt.datetime | None = None,
) -> ShiftDecision:
    """The harmonisation shift of one band, by the rules of the module table.

    Args:
        item_id: for messages.
        band: canonical band name (``B02``...).
        provider: :func:`provider_of` (``None`` = unknown).
        collection: the item's collection id.
        processing_baseline: e.g. ``"05.11"``.
        boa_offset_applied: Earth Search's flag.
        offset: the asset's ``raster:bands`` offset (reflectance units, e.g. -0.1).
        scale: the asset's ``raster:bands`` scale.
        datetime: acquisition time (only decides whether a missing baseline deserves a warning).

    Raises:
        ReadError: a scale other than 0.0001, an offset that is not whole DN, a malformed baseline.
    """
    prov = provider or UNKNOWN
    coll = (collection or "").lower()
    new = _new_baseline(processing_baseline)
    raster = None if offset is None else _offset_shift(item_id, band, offset, scale)

    if prov == EARTH_SEARCH and coll == "sentinel-2-l2a":
        if new is False:
            return ShiftDecision(0, "earth-search-l2a:baseline<04.00")
        if boa_offset_applied is True:
            return ShiftDecision(0, "earth-search-l2a:boa-offset-applied")
        if boa_offset_applied is False and new:
            return ShiftDecision(BASELINE_04_SHIFT, "earth-search-l2a:boa-offset-not-applied")
        if boa_offset_applied is False:  # no baseline: a false flag says nothing about an offset
            return ShiftDecision(0, "earth-search-l2a:no-baseline", warning=(
                "Earth Search l2a item without s2:processing_baseline: assumed no offset in the DN"))
        if raster is not None:
            return ShiftDecision(raster, "earth-search-l2a:no-flag:raster-offset", warning=(
                "Earth Search l2a item without earthsearch:boa_offset_applied: trusted raster:bands offset "
                f"{offset!r}, which that collection is known to state also where it is already applied"))
        if new:
            return ShiftDecision(BASELINE_04_SHIFT, "earth-search-l2a:no-flag:baseline>=04.00", warning=(
                "Earth Search l2a item without earthsearch:boa_offset_applied: assumed the offset is in the DN"))
        return _nothing(prov, coll, datetime)

    if prov == EARTH_SEARCH and coll in ("sentinel-2-c1-l2a", "sentinel-2-l1c", "sentinel-2-c1-l1c"):
        tag = {"sentinel-2-c1-l2a": "earth-search-c1-l2a", "sentinel-2-l1c": "earth-search-l1c",
               "sentinel-2-c1-l1c": "earth-search-c1-l1c"}[coll]
        warning = None
        if boa_offset_applied is True:
            warning = f"{coll} is not harmonised by Earth Search, yet the item says boa_offset_applied: true"
        if raster is not None:
            return ShiftDecision(raster, f"{tag}:raster-offset", warning)
        if new is not None:
            return ShiftDecision(BASELINE_04_SHIFT if new else 0,
                                 f"{tag}:baseline{'>=' if new else '<'}04.00", warning)
        return _nothing(prov, coll, datetime, warning)

    if prov == PLANETARY_COMPUTER and coll == "sentinel-2-l2a":
        if new is not None:
            shift = BASELINE_04_SHIFT if new else 0
            warning = None
            if raster is not None and raster != shift:
                warning = (f"raster:bands offset {offset!r} disagrees with baseline {processing_baseline}; "
                           "Planetary Computer does not harmonise, the baseline was used")
            return ShiftDecision(shift, f"planetary-computer-l2a:baseline{'>=' if new else '<'}04.00", warning)
        if raster is not None:
            return ShiftDecision(raster, "planetary-computer-l2a:raster-offset")
        return _nothing(prov, coll, datetime)

    if prov == CDSE:
        if raster is not None:
            return ShiftDecision(raster, "cdse:raster-offset")
        if new is not None:
            return ShiftDecision(BASELINE_04_SHIFT if new else 0, f"cdse:baseline{'>=' if new else '<'}04.00")
        return _nothing(prov, coll, datetime)

    # local archives, unknown APIs, and known providers' other collections: the item's own metadata
    tag = "local" if prov == LOCAL else "stac"
    if raster is not None:
        return ShiftDecision(raster, f"{tag}:raster-offset")
    if new:
        return ShiftDecision(BASELINE_04_SHIFT, f"{tag}:baseline>=04.00", warning=(
            f"no offset metadata from a {prov} source: assumed the DN are as ESA delivers them, offset not "
            "removed (a harmonised archive would be shifted twice; `seco store check` finds that)"))
    if new is False:
        return ShiftDecision(0, f"{tag}:baseline<04.00")
    return _nothing(prov, coll, datetime)


def _nothing(prov: str, coll: str, when: dt.datetime | None, warning: str | None = None) -> ShiftDecision:
    """No baseline and no offset: 0, flagged unless the acquisition predates baseline 04.00."""
    tag = "local" if prov == LOCAL else prov if prov != UNKNOWN else "stac"
    if when is not None and when < BASELINE_04_DATE:
        return ShiftDecision(0, f"{tag}:no-metadata:acquired<2022-01-25", warning)
    msg = ("no processing baseline and no raster:bands offset: assumed no offset (true before 04.00 and for "
           "harmonised archives); check the collected store with `seco store check`")
    return ShiftDecision(0, f"{tag}:no-metadata", msg if warning is None else f"{warning}; {msg}")

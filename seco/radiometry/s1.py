"""Sentinel-1 provider rules: what an S1 item's pixels are, and how they become backscatter in dB.

As for Sentinel-2 (:mod:`seco.radiometry.providers`), the rule is decided by **provider and collection**, not by
the item's own ``sar:product_type`` (an RTC item derived from GRD may well say ``GRD``):

======================= ======================= =========================================== =================
provider                collection              pixels                                      rule
======================= ======================= =========================================== =================
planetary-computer      ``sentinel-1-rtc``      float32 linear gamma0 (terrain-flattened),  ``planetary-computer-rtc:gamma0-linear-to-db``
                                                UTM, 10 m, nodata -32768
aws-indigo              ``sentinel1-rtc-aws``   float32 linear gamma0, UTM, 20 m, nodata 0  ``aws-indigo-rtc:gamma0-linear-to-db``
local / unknown         ``sentinel-1-rtc``      float32 linear gamma0 (``seco synth``,      ``local-rtc:gamma0-linear-to-db``
                        (or ``*rtc*``)          ``seco catalog build``), nodata of the file
any                     ``*grd*`` / product     detected amplitude DN in radar (ground      refused (:class:`S1RuleError`)
                        GRD                     range) geometry, located by GCPs
======================= ======================= =========================================== =================

RTC: ``dB = 10 * log10(linear)``; non-positive, non-finite and nodata pixels are nodata (NaN). GRD would need
the product's calibration LUT (sigma0), thermal-noise removal and geocoding from its GCPs; seco does not do that
yet and never writes uncalibrated DN as backscatter, so a GRD collection is refused with one line naming what to
use instead. numpy only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from seco.errors import CatalogError, ConfigError
from seco.radiometry.providers import LOCAL, PLANETARY_COMPUTER, UNKNOWN, provider_of

AWS_INDIGO = "aws-indigo"
#: Host fragments of Sentinel-1 hrefs and links -> provider (checked before the Sentinel-2 ones).
_S1_HOSTS: tuple[tuple[str, str], ...] = (
    ("sentinel1euwestrtc.blob.core.windows.net", PLANETARY_COMPUTER),
    ("sentinel1euwest.blob.core.windows.net", PLANETARY_COMPUTER),
    ("sentinel-s1-rtc-indigo", AWS_INDIGO),
    ("sentinel-s1-l1c", "earth-search"),
)
#: Properties a date's S1 record needs (the store contract's per-date fields come from them).
REQUIRED_PROPERTIES = ("sar:instrument_mode", "sar:polarizations", "sat:orbit_state", "sat:relative_orbit",
                       "platform")
#: The S1 products ``seco collect --s1`` knows.
S1_PRODUCTS = ("rtc", "grd")
#: Where each product is collected from by default (collection ids of the presets and of ``seco synth``).
DEFAULT_COLLECTIONS = {"rtc": "sentinel-1-rtc", "grd": "sentinel-1-grd"}
#: The variable the Planetary Computer's SDK reads its API key from (also read by seco's signer).
PC_KEY_VARIABLE = "PC_SDK_SUBSCRIPTION_KEY"
PC_ACCOUNT_URL = "https://planetarycomputer.microsoft.com/account/request"


class S1RuleError(CatalogError):
    """An S1 item or collection seco cannot turn into calibrated backscatter (GRD, unknown product, missing
    metadata, inaccessible data)."""


@dataclass(frozen=True)
class S1Rule:
    """How one S1 item's pixels become dB.

    Attributes:
        product: ``"RTC"`` (the only product converted today).
        quantity: ``"gamma0"``.
        rule: stable rule name, recorded per date in the store.
        nodata: the provider's nodata value (``None``: the file's own).
    """

    product: str
    quantity: str
    rule: str
    nodata: float | None


def s1_provider_of(links: Iterable[str], hrefs: Iterable[str], properties: Mapping[str, Any]) -> str:
    """The provider of an S1 item: its S1 storage hosts first, then the Sentinel-2 rules (links, hrefs)."""
    links, hrefs = list(links), list(hrefs)
    for group in (hrefs, links):
        for u in group:
            low = str(u).lower()
            for frag, prov in _S1_HOSTS:
                if frag in low:
                    return prov
    return provider_of(links, hrefs, properties)


def is_grd(collection: str | None, product_type: Any = None) -> bool:
    """Whether a collection (or, for a collection that does not say, the item's product type) is GRD."""
    coll = (collection or "").lower()
    if "rtc" in coll:
        return False
    return "grd" in coll or str(product_type or "").upper() == "GRD"


def grd_refusal(what: str) -> S1RuleError:
    """The one-line refusal of GRD data (``what`` names the item or collection)."""
    return S1RuleError(
        f"{what} is Sentinel-1 GRD (detected amplitude DN in radar geometry): seco does not calibrate GRD to "
        "sigma0 yet (calibration LUT, thermal-noise removal, GCP geocoding) and never stores uncalibrated DN as "
        "backscatter; collect --s1 rtc instead (Planetary Computer sentinel-1-rtc, or a local archive of RTC "
        "gamma0 COGs)")


def decide_s1(*, item_id: str, provider: str | None, collection: str | None,
              properties: Mapping[str, Any]) -> S1Rule:
    """The rule of one S1 item (module table).

    Raises:
        S1RuleError: a GRD item, an item of a collection no rule knows, or one without the metadata the rule
            needs (:data:`REQUIRED_PROPERTIES`).
    """
    prov = provider or UNKNOWN
    coll = (collection or "").lower()
    if is_grd(coll, properties.get("sar:product_type")):
        raise grd_refusal(f"item {item_id!r} of collection {collection!r} ({prov})")
    missing = [k for k in REQUIRED_PROPERTIES if properties.get(k) in (None, "", [])]
    if missing:
        raise S1RuleError(f"S1 item {item_id!r} ({prov}, {collection!r}) lacks {', '.join(missing)}, which the "
                          "per-date S1 record needs; fix the item metadata (or its sidecar for a local archive)")
    if prov == PLANETARY_COMPUTER and coll == "sentinel-1-rtc":
        return S1Rule("RTC", "gamma0", "planetary-computer-rtc:gamma0-linear-to-db", -32768.0)
    if prov == AWS_INDIGO:
        return S1Rule("RTC", "gamma0", "aws-indigo-rtc:gamma0-linear-to-db", 0.0)
    if "rtc" in coll and prov in (LOCAL, UNKNOWN):
        tag = "local" if prov == LOCAL else "stac"
        return S1Rule("RTC", "gamma0", f"{tag}-rtc:gamma0-linear-to-db", None)
    raise S1RuleError(f"no Sentinel-1 rule for item {item_id!r} of collection {collection!r} from {prov}: seco "
                      "reads RTC gamma0 (Planetary Computer sentinel-1-rtc, AWS sentinel1-rtc-aws, local "
                      "sentinel-1-rtc archives); choose such a collection with --s1-collection")


def linear_to_db(linear: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """Linear power -> dB (float32); non-positive, non-finite and ``nodata`` pixels become NaN.

    Shapes: any -> the same.
    """
    a = np.asarray(linear, dtype=np.float64)
    bad = ~np.isfinite(a) | (a <= 0)
    if nodata is not None and np.isfinite(nodata):
        bad |= a == nodata
    out = np.full(a.shape, np.nan, dtype=np.float32)
    ok = ~bad
    out[ok] = (10.0 * np.log10(a[ok])).astype(np.float32)
    return out


def mask_linear(linear: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """Linear power with every invalid pixel (non-positive, non-finite, ``nodata``) set to NaN (float32)."""
    a = np.asarray(linear, dtype=np.float32).copy()
    bad = ~np.isfinite(a) | (a <= 0)
    if nodata is not None and np.isfinite(nodata):
        bad |= a == np.float32(nodata)
    a[bad] = np.nan
    return a


# ---------------------------------------------------------------------------------------------- access


def access_error(status: int, url: str, collection: str | None = None) -> S1RuleError | None:
    """The one-line error for an S1 token or read refused with HTTP ``status`` (``None``: not an access
    problem)."""
    if status not in (401, 403):
        return None
    low = url.lower()
    if "planetarycomputer" in low or ".blob.core.windows.net" in low:
        return pc_access_error(status, url, collection)
    if low.startswith("s3://") or "amazonaws.com" in low:
        return requester_pays_error(url)
    return S1RuleError(f"access to {url.split('?', 1)[0]} was refused (HTTP {status}); check the credentials "
                       "that source needs")


def pc_access_error(status: int, url: str, collection: str | None = None) -> S1RuleError:
    """The one-line error for a Planetary Computer token or blob refused with HTTP ``status``."""
    return S1RuleError(
        f"the Planetary Computer refused access to {collection or 'the S1 collection'} (HTTP {status} from "
        f"{url.split('?', 1)[0]}): sentinel-1-rtc needs an approved Planetary Computer account; request one at "
        f"{PC_ACCOUNT_URL} and set {PC_KEY_VARIABLE} to its API key, or collect from a local archive")


def requester_pays_error(url: str) -> S1RuleError:
    """The one-line error for a requester-pays bucket read without the variables that allow it."""
    return S1RuleError(
        f"{url} is in a requester-pays bucket (Earth Search sentinel-1-grd, s3://sentinel-s1-l1c): set "
        "AWS_REQUEST_PAYER=requester and AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY); the reads are billed to that account")


_POL = re.compile(r"(?i)^(?:gamma0_|amplitude-|sigma0_)?(vv|vh|hh|hv)(?:-rtc|-iw)?$")


def polarization_of_key(key: str) -> str | None:
    """The polarisation an asset key names (``vv``, ``vv-rtc``, ``gamma0_vv``, ``amplitude-vv-iw``), else
    ``None``."""
    m = _POL.match(key.strip())
    return m.group(1).upper() if m else None


def check_window(days: Any) -> float:
    """A ``--s1-window`` in days, checked.

    S1 passes near 06:00 / 18:00 and S2 near 10:30 local solar time, so an S1 and an S2 acquisition of one
    place are always more than 4 hours apart: a window under 0.25 day can never match.

    Raises:
        ConfigError: not a number, below 0.25 or above 60 days.
    """
    if isinstance(days, bool) or not isinstance(days, int | float) or not np.isfinite(days):
        raise ConfigError(f"--s1-window {days!r} must be a number of days (e.g. 6)")
    if days < 0.25:
        raise ConfigError(
            f"--s1-window {days!r} days can never match: Sentinel-1 passes near 06:00/18:00 and Sentinel-2 near "
            "10:30 local solar time, at least 4 hours apart; use at least 0.25 (default 6, the 12-day repeat of "
            "one orbit track covered on both sides)")
    if days > 60:
        raise ConfigError(f"--s1-window {days!r} days pairs S1 with another season; use at most 60 (SSL4EO-S12 "
                          "searched 30-day windows)")
    return float(days)

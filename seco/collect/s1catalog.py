"""Sentinel-1 catalogs for ``seco collect --s1``: the presets, href signing, and the checks made before any work.

``open_s1_catalog`` returns an ordinary :class:`~seco.collect.catalog.Catalog` whose searches yield
:class:`~seco.collect.s1scene.S1Item` records. Presets:

============================ ========================= ==========================================================
``--s1-catalog``             collection                access
============================ ========================= ==========================================================
``planetary-computer``       ``sentinel-1-rtc``        SAS-signed Azure blobs; the token endpoint may ask for an
                                                       approved account (``PC_SDK_SUBSCRIPTION_KEY``)
``planetary-computer``       ``sentinel-1-grd``        SAS-signed like Sentinel-2 (refused: GRD is not calibrated)
``earth-search``             ``sentinel-1-grd``        requester-pays ``s3://sentinel-s1-l1c`` (refused: GRD)
a ``.parquet`` file          ``sentinel-1-rtc``        local COGs (``seco synth``, ``seco catalog build``)
============================ ========================= ==========================================================
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seco.collect.catalog import PRESETS, Catalog, ParquetCatalog, SasSigner, StacApiCatalog
from seco.collect.s1scene import S1Item, s1_from_stac, usable
from seco.errors import CatalogError
from seco.radiometry.s1 import (
    DEFAULT_COLLECTIONS,
    PC_KEY_VARIABLE,
    S1RuleError,
    grd_refusal,
    is_grd,
    pc_access_error,
)

#: Sentinel-1 collections of the presets.
S1_PRESET_COLLECTIONS: dict[str, tuple[str, ...]] = {
    "planetary-computer": ("sentinel-1-rtc", "sentinel-1-grd"),
    "earth-search": ("sentinel-1-grd",),
}


class S1SasSigner(SasSigner):
    """The Planetary Computer signer for S1 blobs: sends ``PC_SDK_SUBSCRIPTION_KEY`` when set, and turns a
    refused token (401/403: no approved account) into one line naming the account and the variable."""

    def __init__(self, *, timeout: float = 30.0, collection: str = "sentinel-1-rtc", **kw: Any):
        kw.setdefault("subscription_key", os.environ.get(PC_KEY_VARIABLE) or None)
        super().__init__(timeout=timeout, **kw)
        self.collection = collection

    def token(self, account: str, container: str) -> str:
        try:
            return super().token(account, container)
        except CatalogError as e:
            status = getattr(getattr(e.__cause__, "response", None), "status_code", None)
            if status in (401, 403):
                raise pc_access_error(status, f"{self.token_url}/{account}/{container}", self.collection) from e
            raise


@dataclass(frozen=True)
class S1Spec:
    """How a worker opens the S1 catalog (picklable), and how dates are matched.

    Attributes:
        target: a preset, a STAC API URL or a stac-geoparquet file (an absolute path).
        collection: the S1 collection.
        window_days: S1 within this many days of the S2 date.
        orbit: orbit policy (:data:`seco.collect.s1scene.ORBIT_POLICIES`).
        timeout_s: seconds per HTTP request.
    """

    target: str
    collection: str
    window_days: float
    orbit: str
    timeout_s: float = 30.0

    def open(self) -> Catalog:
        return open_s1_catalog(self.target, self.collection, timeout=self.timeout_s)


def open_s1_catalog(target: str | Path, collection: str, *, timeout: float = 30.0, signer: Any = None) -> Catalog:
    """A catalog whose searches return :class:`S1Item` records of ``collection``.

    Raises:
        S1RuleError: a GRD collection (refused before any work).
        CatalogError: unreachable catalog, or no such collection in it (the message names what it has).
    """
    if is_grd(collection):
        raise grd_refusal(f"--s1-collection {collection!r}")
    t = str(target)
    cat: Catalog
    if t in PRESETS:
        if collection not in S1_PRESET_COLLECTIONS.get(t, ()):
            raise CatalogError(f"{t} has no Sentinel-1 collection {collection!r}; it has "
                               f"{', '.join(S1_PRESET_COLLECTIONS.get(t, ())) or 'none'}")
        if signer is None and PRESETS[t].sas_signing:
            signer = S1SasSigner(timeout=timeout, collection=collection)
        cat = StacApiCatalog(PRESETS[t].url, collection, (), signer=signer, timeout=timeout)
    elif t.startswith(("http://", "https://")):
        cat = StacApiCatalog(t, collection, (), signer=signer, timeout=timeout)
    else:
        if not Path(t).exists():
            raise CatalogError(f"S1 catalog {t!r} is neither a preset ({', '.join(S1_PRESET_COLLECTIONS)}), an "
                               "http(s) STAC API URL, nor an existing stac-geoparquet file")
        try:
            cat = ParquetCatalog(t, collection, ())
        except CatalogError as e:
            raise CatalogError(
                f"--s1 needs Sentinel-1 items: {e}. Build an archive with S1 (`seco synth` writes "
                f"{DEFAULT_COLLECTIONS['rtc']} items beside the Sentinel-2 ones), index RTC COGs with "
                "`seco catalog build DIR --collection sentinel-1-rtc`, or give --s1-catalog planetary-computer"
            ) from e
    cat.parse = s1_from_stac  # type: ignore[method-assign]
    return cat


def probe_signing(cat: Catalog, items: Sequence[S1Item]) -> None:
    """Sign one href of ``items`` (a token request on the Planetary Computer), so that an account problem
    shows before any work. Raises :class:`S1RuleError` naming the account or variable to set."""
    signer = getattr(cat, "signer", None)
    if signer is None:
        return
    for it in items:
        for href in it.assets.values():
            signer(href)
            return


def probe_location(cat: Catalog, lon: float, lat: float, start: Any, end: Any, window_days: float,
                   where: str) -> str | None:
    """Check the S1 items around one location before any work.

    Returns:
        A note when the location has no S1 item at all in its time span (not an error: dates are then counted
        as without S1), else ``None``.

    Raises:
        S1RuleError: items exist but none is IW VV+VH (an EW-only, HH/HV location), or they lack the metadata
            the rule needs; the message names the item, what it has, and the fix.
    """
    import datetime as dt

    from seco.collect.scene import point_box

    win = dt.timedelta(days=window_days)
    found = cat.search(point_box(lon, lat), start - win, end + win)
    items = [it for it in found if isinstance(it, S1Item)]
    if not items:
        return f"no Sentinel-1 item in {cat.describe()} at {where}: its dates will be counted as without S1"
    ok, bad = usable(items)
    if ok:
        probe_signing(cat, ok)
        return None
    modes = sorted({f"{it.mode or '?'} {'+'.join(it.polarizations) or '?'}" for it in items})
    it, why = bad[0]
    if all(not b.dual_vv_vh for b, _ in bad):
        raise S1RuleError(
            f"{where} is seen by Sentinel-1 only as {', '.join(modes)} ({len(items)} item(s), e.g. {it.id!r}): seco "
            "stores IW VV+VH (as SSL4EO-S12 and CROMA); collect this location without --s1, or sample locations "
            "outside the EW/HH-HV areas (polar seas, Greenland)")
    raise S1RuleError(f"{where}: no usable Sentinel-1 item; {it.id!r}: {why}")


"""The Sentinel-1 half of one location's work (``seco collect --s1``; runs on the worker, never writes).

After every S2 date of a location has its patch, each date gets the S1 acquisition that best matches it
(:mod:`seco.collect.s1scene`: IW VV+VH, within the window, the location's orbit state, closest in time), read
onto that date's S2 grid in dB (:mod:`seco.collect.s1read`). Faults are retried and recorded exactly as for S2
(kinds ``retried``, ``transient``, ``read``, ``missing``; the item id is the S1 item's); an acquisition whose
patch is mostly empty (``outside``) hands over to the next one. A date left without S1 keeps its S2 and is
recorded with kind ``s1-none``; an S1 item the rules refuse is recorded as ``s1-item``.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from typing import Any

import numpy as np

from seco.collect.records import RETRIED, Failure, LocationResult
from seco.collect.retry import Attempted, maybe_transient, with_retries
from seco.collect.s1catalog import S1Spec
from seco.collect.s1read import read_s1
from seco.collect.s1scene import S1_BANDS, Acquisition, S1Item, acquisitions, choose_orbit, usable
from seco.errors import ReadError

#: Failure kind of a date without S1 (its S2 is kept), and of an S1 item the rules refuse.
S1_NONE, S1_ITEM = "s1-none", "s1-item"
#: An acquisition whose patch is more than this share nodata hands over to the next one of the date.
S1_MAX_NODATA = 0.5

_LOCAL = threading.local()


def _catalog(spec: S1Spec, job: Any) -> Any:
    cache: dict[S1Spec, Any] = _LOCAL.__dict__.setdefault("s1", {})
    if spec not in cache:
        cache[spec] = with_retries(spec.open, job.retry)[0]
    return cache[spec]


def _brief(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    return text if len(text) <= 800 else text[:797] + "..."


def _fail(res: LocationResult, t: int, kind: str, reason: str, item: str | None = None, href: str | None = None,
          attempts: int = 1) -> None:
    res.failures.append(Failure(res.task.id, t, item, href, kind, reason, attempts))


def _candidates(cat: Any, res: LocationResult, job: Any, t: int, when: dt.datetime) -> list[Acquisition] | None:
    """The acquisitions of date ``t`` (closest first); ``None`` when the S1 catalog stays down."""
    from seco.collect.scene import point_box

    spec: S1Spec = job.s1
    win = dt.timedelta(days=spec.window_days)
    search = functools.partial(cat.search, point_box(res.task.lon, res.task.lat), when - win, when + win)
    errors: list[BaseException] = []
    try:
        found, n = with_retries(search, job.retry, on_retry=lambda _a, e: errors.append(e))
    except Attempted as a:
        if a.transient:
            res.reason = f"S1 search of date {t} failed after {a.attempts} attempt(s): {a.error}"
            return None
        _fail(res, t, "catalog", f"S1 search failed: {a.error}", attempts=a.attempts)
        return []
    if n > 1:
        _fail(res, t, RETRIED, f"S1 search succeeded at attempt {n} after: {'; '.join(map(_brief, errors))}",
              attempts=n)
    for sk in getattr(found, "skipped", ()):
        _fail(res, t, "malformed-item", sk.reason, sk.id)
    ok, bad = usable([it for it in found if isinstance(it, S1Item)])
    for it, why in bad:
        if it.dual_vv_vh:  # EW / HH+HV items are simply not candidates; refused rules are worth a row
            _fail(res, t, S1_ITEM, why, it.id)
    return acquisitions(ok, when, spec.window_days)


def _read(acq: Acquisition, res: LocationResult, job: Any, t: int, meta: dict[str, Any], size: int) -> Any:
    """The S1 patch of one acquisition on date ``t``'s S2 grid, or ``None`` with the failure recorded."""
    rule = acq.items[0].rule()
    a, b, c, d, e, f = meta["transform"]
    epsg = int(str(meta["crs"]).split(":")[-1])
    ids = ";".join(it.id for it in acq.items)
    read = functools.partial(read_s1, acq, epsg, (a, b, c, d, e, f), size, gdal_env=job.gdal_env,
                             nodata=rule.nodata, rule=rule.rule)
    retried: list[BaseException] = []
    try:
        p, n = with_retries(read, job.retry, on_retry=lambda _a, err: retried.append(err), retry_if=maybe_transient)
    except Attempted as x:
        err, href = x.error, getattr(x.error, "href", None)
        if x.transient:
            _fail(res, t, "transient", f"S1: gave up after {x.attempts} attempt(s): {err}", ids, href, x.attempts)
        elif isinstance(err, ReadError):
            missing = "No such file" in str(err) or "404" in str(err) or "does not exist" in str(err)
            _fail(res, t, "missing" if missing else "read", f"S1: {err}", ids, href, x.attempts)
        else:
            _fail(res, t, "error", f"S1: {_brief(err)}", ids, href)
        return None
    if n > 1:
        _fail(res, t, RETRIED, f"S1 read succeeded at attempt {n} after: {'; '.join(map(_brief, retried))}", ids,
              getattr(retried[-1], "href", None), n)
    if p.nodata_fraction > S1_MAX_NODATA:
        _fail(res, t, "outside", f"S1 acquisition covers only {1 - p.nodata_fraction:.0%} of the patch", ids)
        return None
    return p


def _record(acq: Acquisition, p: Any, s2_time: dt.datetime) -> dict[str, Any]:
    """The per-date S1 record of the store contract."""
    first = acq.items[0]
    rule = first.rule()
    return {"item_id": ";".join(it.id for it in acq.items), "datetime": acq.datetime, "product": rule.product,
            "quantity": rule.quantity, "platform": first.platform, "orbit_state": first.orbit_state,
            "relative_orbit": first.relative_orbit,
            "time_offset_days": (acq.datetime - s2_time).total_seconds() / 86400.0, "rule": rule.rule,
            "nodata_fraction": p.nodata_fraction, "looks": first.looks}


def collect_s1(res: LocationResult, job: Any, metas: list[dict[str, Any]], size: int) -> bool:
    """Fill ``res.s1_db`` (T, 2, H, W) float32 dB, ``res.s1_valid`` (T,) and ``res.s1_meta`` for a location
    whose S2 dates are all read (``metas``: their store records). False when the S1 catalog stays down
    (``res.reason`` says why: the location is undecided)."""
    spec: S1Spec = job.s1
    try:
        cat = _catalog(spec, job)
    except Attempted as a:
        res.reason = f"S1 catalog unreachable after {a.attempts} attempt(s): {a.error}"
        return False
    T = len(metas)
    per_date = []
    for t, m in enumerate(metas):
        found = _candidates(cat, res, job, t, m["datetime"])
        if found is None:
            return False
        per_date.append(found)
    state = choose_orbit(per_date, spec.orbit)
    db = np.full((T, len(S1_BANDS), size, size), np.nan, dtype=np.float32)
    valid = np.zeros(T, dtype=bool)
    meta: list[dict[str, Any] | None] = [None] * T
    for t, cands in enumerate(per_date):
        for acq in [a for a in cands if state is None or a.orbit_state == state][: job.max_scenes]:
            p = _read(acq, res, job, t, metas[t], size)
            if p is not None:
                db[t], valid[t], meta[t] = p.db, True, _record(acq, p, metas[t]["datetime"])
                break
        if not valid[t]:
            where = f" in orbit state {state}" if state else ""
            _fail(res, t, S1_NONE, f"no IW VV+VH acquisition{where} within {spec.window_days:g} days of the S2 "
                  f"date {metas[t]['datetime']:%Y-%m-%d %H:%M} ({len(cands)} found in any state); S2 kept")
    res.s1_db, res.s1_valid, res.s1_meta = db, valid, meta
    return True

"""The per-location work of ``seco collect`` (runs on a worker thread or a Dask worker; never writes).

For each date window: search the catalog at the location's point, try the candidate scenes in policy order,
read the patch and check it; every failing candidate becomes a :class:`~seco.collect.records.Failure` and the next one is tried.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seco.collect.catalog import Catalog, open_catalog
from seco.collect.cloud import cloud_fraction, patch_ok
from seco.collect.dn_warnings import radiometry_failures
from seco.collect.patches import PatchOutsideScene, read_patch
from seco.collect.records import RETRIED, Failure, LocationResult, LocationTask
from seco.collect.retry import Attempted, RetryPolicy, maybe_transient, with_retries
from seco.collect.scene import SceneItem, choose_scene, point_box
from seco.errors import ReadError, SecoError
from seco.store.clear import band_test, scl_clear

_MISSING_TEXT = re.compile(r"(?i)no such file|does not exist|HTTP (response )?code:? *404|\b404 Not Found")


# ---------------------------------------------------------------------------------------------- worker


@dataclass(frozen=True)
class CatalogSpec:
    """How a worker opens the catalog (picklable; each worker thread or process opens its own)."""

    target: str
    collection: str | None
    bands: tuple[str, ...]
    timeout_s: float

    def open(self) -> Catalog:
        return open_catalog(self.target, self.collection, bands=list(self.bands), timeout=self.timeout_s)


@dataclass(frozen=True)
class Job:
    """The per-location work description sent to workers (picklable).

    ``align`` is passed to the reader (patch-origin snapping for native-resolution stores).
    ``reader`` / ``checker`` default to :func:`seco.collect.patches.read_patch` and
    :func:`seco.collect.cloud.patch_ok`; tests pass stand-ins. ``catalog`` may be a ready catalog object (thread
    mode in tests) instead of a :class:`CatalogSpec`.
    """

    catalog: Any
    bands: tuple[str, ...]
    patch_size: int
    max_cloud: float | None
    max_patch_cloud: float
    max_nodata: float
    policy: str
    harmonize: bool
    max_scenes: int
    retry: RetryPolicy
    gdal_env: dict[str, str] = field(default_factory=dict, hash=False)
    align: int = 1
    reader: Callable[..., Any] | None = None
    checker: Callable[..., tuple[bool, str]] | None = None
    s1: Any = None  # seco.collect.s1catalog.S1Spec with --s1, else None


_LOCAL = threading.local()


def _worker_catalog(job: Job) -> Catalog:
    if not isinstance(job.catalog, CatalogSpec):
        return job.catalog
    cache: dict[CatalogSpec, Catalog] = _LOCAL.__dict__.setdefault("catalogs", {})
    hit = cache.get(job.catalog)
    if hit is not None:
        return hit
    opened: Catalog = with_retries(job.catalog.open, job.retry)[0]
    cache[job.catalog] = opened
    return opened


def _href_of(err: BaseException, item: SceneItem) -> str | None:
    href = getattr(err, "href", None)
    if isinstance(href, str):
        return href
    for h in item.assets.values():
        if h in str(err):
            return h
    return None


def _keep(acc: list[BaseException], attempt: int, e: BaseException) -> None:
    acc.append(e)


def _brief(e: BaseException, limit: int = 800) -> str:
    text = f"{type(e).__name__}: {e}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _date_meta(patch: Any, item: SceneItem) -> dict[str, Any]:
    cloud = cloud_fraction(patch)
    if not math.isfinite(cloud):  # no SCL and no B02 to test: the scene's figure is the best there is
        cloud = (item.cloud_cover / 100.0) if item.cloud_cover is not None else 0.0
    return patch.meta(cloud_fraction=min(max(float(cloud), 0.0), 1.0))


def collect_location(task: LocationTask, job: Job) -> LocationResult:
    """Find, read and check one patch per date window of a location (runs on a worker; never writes).

    Never raises for a data fault: every failing candidate becomes a :class:`~seco.collect.records.Failure` and
    the next one is tried. Returns status ``error`` only when the catalog cannot be reached after the retries.
    """
    res = LocationResult(task=task, status="error")
    try:
        _collect_into(task, job, res)
    except Exception as e:  # a bug or an unreachable catalog: undecided, so the run stops cleanly here
        res.status = "error"
        res.reason = res.reason or f"{type(e).__name__}: {e}"
        res.images = res.valid = res.dates_meta = None
        return res
    res.failures.extend(radiometry_failures(res, job.bands))  # warnings only (dates kept), on the worker
    return res


def _record(res: LocationResult, t: int, kind: str, reason: str, item: SceneItem | None = None,
            href: str | None = None, attempts: int = 1) -> None:
    """Add a failure of date ``t`` to the result."""
    res.failures.append(Failure(res.task.id, t, item.id if item else None, href, kind, reason, attempts))


def _search(catalog: Catalog, task: LocationTask, job: Job, t: int, res: LocationResult) -> list[SceneItem] | None:
    """The catalog's scenes for date window ``t`` at the location (retried); ``None`` when the catalog stays
    down (``res.reason`` says why: no decision about this location). Failures and retries are recorded."""
    start, end = task.windows[t]
    res.searches += 1
    search = functools.partial(catalog.search, point_box(task.lon, task.lat), start, end, max_cloud=job.max_cloud)
    errors: list[BaseException] = []
    try:
        found, n = with_retries(search, job.retry, on_retry=functools.partial(_keep, errors))
        if n > 1:
            _record(res, t, RETRIED, f"search succeeded at attempt {n} after: {'; '.join(map(_brief, errors))}",
                    attempts=n)
    except Attempted as a:
        if a.transient:  # the catalog is down: no decision about this location
            res.reason = f"search of date {t} failed after {a.attempts} attempt(s): {a.error}"
            return None
        _record(res, t, "catalog", f"search failed: {a.error}", attempts=a.attempts)
        found = []
    for sk in getattr(found, "skipped", ()):  # malformed rows of a local catalog: recorded, never fatal
        res.failures.append(Failure(task.id, t, sk.id, None, "malformed-item", sk.reason))
    return found


def _read_scene(catalog: Catalog, item: SceneItem, task: LocationTask, job: Job, t: int,
                res: LocationResult) -> Any:
    """Read and check the patch of one candidate scene (reads retried); the patch, or ``None`` with the
    failure recorded by its kind."""
    reader, checker = job.reader or read_patch, job.checker or patch_ok
    C, P = len(job.bands), job.patch_size
    res.reads += 1
    try:
        read = functools.partial(reader, catalog.sign(item), task.lon, task.lat, size_px=P,
                                 bands=job.bands, resolution=10, harmonize=job.harmonize,
                                 gdal_env=job.gdal_env, align=job.align)
        retried: list[BaseException] = []
        p, n = with_retries(read, job.retry, on_retry=functools.partial(_keep, retried),
                            retry_if=maybe_transient)
        if n > 1:
            _record(res, t, RETRIED, f"read succeeded at attempt {n} after: {'; '.join(_brief(e) for e in retried)}",
                    item, _href_of(retried[-1], item), n)
    except Attempted as a:
        err = a.error
        href = _href_of(err, item)
        if isinstance(err, PatchOutsideScene):
            _record(res, t, "outside", str(err), item, href)
        elif a.transient:
            _record(res, t, "transient", f"gave up after {a.attempts} attempt(s): {err}", item, href, a.attempts)
        elif isinstance(err, ReadError):
            _record(res, t, "missing" if _MISSING_TEXT.search(str(err)) else "read", str(err), item, href,
                    a.attempts)
        elif isinstance(err, SecoError):
            _record(res, t, "catalog", f"{type(err).__name__}: {err}", item, href)
        else:
            _record(res, t, "error", f"{type(err).__name__}: {err}", item, href)
        return None
    data = np.asarray(p.data)
    if data.shape != (C, P, P) or data.dtype != np.uint16:
        _record(res, t, "error", f"read_patch returned {data.dtype} {data.shape}, expected uint16 {(C, P, P)}", item)
        return None
    ok, why = checker(p, job.max_patch_cloud, job.max_nodata)
    if not ok:
        _record(res, t, "patch", why, item)
        return None
    return p


def _pick_scene(catalog: Catalog, found: list[SceneItem], task: LocationTask, job: Job, t: int,
                res: LocationResult) -> tuple[Any, SceneItem | None]:
    """Try the usable scenes of ``found`` in policy order (at most ``job.max_scenes``) until one gives a valid
    patch: (patch, its scene), or (None, None)."""
    usable = []
    for it in found:
        missing = [b for b in job.bands if b not in it.assets]
        if missing:
            _record(res, t, "missing-asset", f"item lacks asset(s) for {', '.join(missing)}", it)
        else:
            usable.append(it)
    tried = 0
    while usable and tried < job.max_scenes:
        item = choose_scene(usable, job.policy, job.max_cloud, job.bands)
        if item is None:
            break
        usable.remove(item)
        tried += 1
        patch = _read_scene(catalog, item, task, job, t, res)
        if patch is not None:
            return patch, item
    return None, None


def _collect_into(task: LocationTask, job: Job, res: LocationResult) -> None:
    try:
        catalog = _worker_catalog(job)
    except Attempted as a:
        res.reason = f"catalog unreachable after {a.attempts} attempt(s): {a.error}"
        return
    T, C, P = len(task.windows), len(job.bands), job.patch_size
    images = np.zeros((T, C, P, P), dtype=np.uint16)
    clear, rules = np.zeros((T, P, P), dtype=bool), []  # the store's clear-sky mask: SCL, else its band test
    metas: list[dict[str, Any]] = []
    for t, (start, end) in enumerate(task.windows):
        found = _search(catalog, task, job, t, res)
        if found is None:
            return
        patch, chosen = _pick_scene(catalog, found, task, job, t, res)
        if patch is None or chosen is None:
            kinds = Counter(f.kind for f in res.failures if f.date_index == t)
            detail = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none found"
            res.status = "rejected"
            res.reason = (f"date {t} ({start:%Y-%m-%d}..{end:%Y-%m-%d}): no valid scene among {len(found)} "
                          f"found ({detail})")
            _record(res, t, "window", res.reason)
            return
        images[t] = patch.data
        if patch.scl is not None:
            clear[t], rule = scl_clear(patch.scl), "scl"
        else:  # L1C: the store's band test (blue / NDSI / B10), recorded as such
            m, rule = band_test(images[t : t + 1], job.bands)
            clear[t] = m[0]
        rules.append(rule)
        metas.append(_date_meta(patch, chosen))
        res.items.append(chosen.id)
    if job.s1 is not None:
        from seco.collect.s1worker import collect_s1

        if not collect_s1(res, job, metas, P):
            return  # the S1 catalog stayed down: undecided
    res.status, res.images, res.valid, res.dates_meta = "ok", images, np.ones(T, dtype=bool), metas
    res.clear, res.clear_rule = clear, rules

"""``seco collect``: locations x date windows -> a seco store, resumable and exactly-once.

For each location (a row of the GeoParquet written by ``seco sample``) and each of its date windows:
search the catalog at the location's point, try the candidate scenes in policy order (scene cloud below
``max_cloud``; most recent or least cloudy), read the patch (:func:`seco.collect.patches.read_patch`) and check
it (:func:`seco.collect.cloud.patch_ok`: SCL cloud, shadow, cirrus and nodata); a failing candidate hands over
to the next one. If any date of a location has no valid scene, the location is rejected and *replaced*, as in
the paper: the sampler is run again with the same seed for ``n + spares`` locations (its first ``n`` are the
file's, see :mod:`seco.collect.sampling`) and the extra ones are used in order.

Exactly-once and determinism. Candidates (the ``n`` locations, then the spares) form one ordered stream; the
store holds the first ``n`` candidates that succeed, *in stream order*. Work runs out of order (a thread
pool, or a Dask cluster with ``scheduler``) but results are committed in order from a bounded reorder
buffer, by the driver only (the single writer). The decision for each candidate is written to a journal
(``<store>/_collect/journal.jsonl``) before the store append; a rerun skips keys already in the store
(``StoreWriter.has``) and candidates the journal rejected, so killing the run at any moment (SIGKILL) and
rerunning gives the same store, array for array, as an uninterrupted run.

Faults. Searches and reads are retried with exponential backoff on timeouts, connection errors, 429 and 5xx.
A corrupt, truncated or missing asset, an item lacking band assets, or a search the catalog answers with an
error is recorded in the failures table (``<store>/_collect/failures.parquet``) and the next candidate is
tried; nothing of that kind stops the run. Only a catalog that stays unreachable after the retries stops it,
cleanly, at a location boundary (rerun to continue). Files in ``<store>/_collect/``: ``journal.jsonl`` (one
line per decided candidate), ``failures.parquet`` (rebuilt from the journal at the end of each run) and
``summary.json``; one writer at a time is ensured by an ``flock`` on ``.<store name>.collect-lock`` beside it.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import datetime as dt
import functools
import json
import math
import os
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

import numpy as np

from seco.bands import BY_NAME, L1C, L2A
from seco.collect.catalog import POLICIES, Catalog, SceneItem, choose_scene, open_catalog
from seco.collect.cloud import cloud_fraction, patch_ok
from seco.collect.dates import DateWindows
from seco.collect.patches import PatchOutsideScene, TransientReadError, read_patch
from seco.collect.sampling import Locations, read_locations, sample
from seco.errors import CatalogError, CollectError, ConfigError, ReadError, SecoError, StoreError
from seco.fileutil import file_sha256

T = TypeVar("T")

#: Band sets ``seco collect --bands`` accepts.
BAND_CHOICES: dict[str, tuple[str, ...]] = {"l2a": L2A, "l1c": L1C}
#: Folder inside the store with the journal, the failures table, the summary and the lock.
STATE_DIR = "_collect"
#: Key of the collect configuration in the store's user attributes.
ATTR = "seco_collect"
#: Failure kinds that are faults of the data or the servers (the rest are ordinary rejections).
FAULT_KINDS = ("read", "missing", "transient", "catalog", "missing-asset", "error")
_MISSING_TEXT = re.compile(r"(?i)no such file|does not exist|HTTP (response )?code:? *404|\b404 Not Found")
JOURNAL_VERSION = 1

# ---------------------------------------------------------------------------------------------- retries

_TRANSIENT_TEXT = re.compile(
    r"(?i)(HTTP (response )?(code|status)[^0-9]{0,4}(5\d\d|429)\b|\b(5\d\d|429) (Server Error|Too Many)"
    r"|timed out|timeout was reached|connection (reset|refused|aborted)|temporarily unavailable"
    r"|remote end closed|broken pipe)"
)


def is_transient(exc: BaseException) -> bool:
    """Whether an error is worth retrying: a timeout, a dropped connection, HTTP 429 or 5xx.

    Follows ``__cause__``/``__context__``, so a :class:`CatalogError` wrapping a pystac-client ``APIError``
    with status 503, or a :class:`ReadError` whose GDAL message says ``HTTP response code: 502``, counts.
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, TimeoutError | ConnectionError | TransientReadError):
            return True
        status = getattr(e, "status_code", None)
        if status is None:
            status = getattr(getattr(e, "response", None), "status_code", None)
        if isinstance(status, int) and (status >= 500 or status == 429):
            return True
        if type(e).__module__.startswith("requests") and type(e).__name__ in (
                "Timeout", "ConnectTimeout", "ReadTimeout", "ConnectionError", "ChunkedEncodingError"):
            return True
        if _TRANSIENT_TEXT.search(str(e)):
            return True
        e = e.__cause__ or e.__context__
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient errors.

    Attributes:
        retries: extra attempts after the first (0: no retry).
        backoff_s: wait before the first retry; doubles at each further retry (times a jitter in [0.5, 1]).
        backoff_max_s: longest single wait.
    """

    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or not 0 <= self.retries <= 100:
            raise ConfigError(f"retries={self.retries!r} must be an integer in 0..100 (e.g. --retries 3)")
        if not (0 <= self.backoff_s <= 600 and 0 <= self.backoff_max_s <= 3600):
            raise ConfigError(f"backoff {self.backoff_s!r} s (max {self.backoff_max_s!r} s) must be >= 0 and "
                              "reasonable (at most 600 s, max 3600 s)")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.backoff_max_s, self.backoff_s * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class Attempted(Exception):
    """A call that failed for good: the last error, how many attempts were made, and whether it was transient."""

    def __init__(self, error: BaseException, attempts: int, transient: bool):
        super().__init__(str(error))
        self.error, self.attempts, self.transient = error, attempts, transient


def with_retries(fn: Callable[[], T], policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep
                 ) -> tuple[T, int]:
    """Call ``fn`` until it succeeds, retrying transient errors (:func:`is_transient`) with backoff.

    Returns:
        The result and the number of attempts made.

    Raises:
        Attempted: wrapping the last error (immediately for a non-transient one).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn(), attempt
        except Exception as e:
            transient = is_transient(e)
            if not transient or attempt > policy.retries:
                raise Attempted(e, attempt, transient) from e
            sleep(policy.delay(attempt))


# ---------------------------------------------------------------------------------------------- config


def _fraction(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
        raise ConfigError(f"{name}={v!r} must be a fraction in [0, 1] (e.g. 0.1 for 10 %)")


@dataclass(frozen=True)
class CollectConfig:
    """Everything ``seco collect`` does (saved in the store's attributes).

    Attributes:
        locations: GeoParquet of locations with date windows (``seco sample``).
        catalog: a STAC API URL, a preset (``earth-search``, ``planetary-computer``) or a stac-geoparquet file.
        out: the store folder (created, or continued when it is a store of an earlier run with the same options).
        collection: collection id (``None``: ``sentinel-2-l2a`` for APIs, every item of a local file).
        bands: ``"l2a"`` (12 bands) or ``"l1c"`` (13 bands).
        patch_size: patch side in 10 m pixels.
        max_cloud: scene-level ``eo:cloud_cover`` limit in percent; ``None``: no scene filter (scenes of
            unknown cover allowed, e.g. a local archive without metadata).
        max_patch_cloud: patch-level cloud fraction limit (0..1) from the SCL; ``None``: ``max_cloud / 100``.
        max_nodata: patch-level nodata fraction limit (0..1).
        policy: ``"recent"`` (the paper) or ``"least-cloudy"``.
        harmonize: remove the L2A processing-baseline offset (baseline 04.00 and later).
        spares: replacement locations drawn after the file's ``n`` (``None``: ``n // 2 + 8``; 0: no replacement).
        max_scenes: candidate scenes tried per date window before the date counts as failed.
        workers: threads for the I/O (thread-pool mode).
        scheduler: address of a Dask distributed scheduler (``tcp://127.0.0.1:8786``); ``None``: threads.
        retries: retries of a search or read on timeouts, connection errors, 429 and 5xx.
        backoff_s: first retry wait in seconds (doubling, capped at ``backoff_max_s``).
        backoff_max_s: longest retry wait.
        timeout_s: seconds per HTTP request (catalog searches and GDAL's asset reads).
        progress: show a progress bar on stderr.
    """

    locations: str
    catalog: str
    out: str
    collection: str | None = None
    bands: str = "l2a"
    patch_size: int = 264
    max_cloud: float | None = 10.0
    max_patch_cloud: float | None = None
    max_nodata: float = 0.0
    policy: str = "recent"
    harmonize: bool = True
    spares: int | None = None
    max_scenes: int = 8
    workers: int = 8
    scheduler: str | None = None
    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    timeout_s: float = 30.0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.bands not in BAND_CHOICES:
            raise ConfigError(f"--bands {self.bands!r} is unknown; choose one of {', '.join(BAND_CHOICES)}")
        if isinstance(self.patch_size, bool) or not isinstance(self.patch_size, int) or not 8 <= self.patch_size <= 4096:
            raise ConfigError(f"--patch-size {self.patch_size!r} must be an integer in 8..4096 (SeCo: 264)")
        if self.max_cloud is not None and (isinstance(self.max_cloud, bool) or not 0 <= self.max_cloud <= 100):
            raise ConfigError(f"--max-cloud {self.max_cloud!r} must be a percentage in [0, 100] (or 'none')")
        if self.max_patch_cloud is not None:
            _fraction("--max-patch-cloud", self.max_patch_cloud)
        _fraction("--max-nodata", self.max_nodata)
        if self.policy not in POLICIES:
            raise ConfigError(f"--policy {self.policy!r} is unknown; choose one of {', '.join(POLICIES)}")
        for name, v, lo in (("--spares", self.spares, 0), ("--max-scenes", self.max_scenes, 1),
                            ("--workers", self.workers, 1)):
            if v is None and name == "--spares":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"{name} {v!r} must be an integer >= {lo}")
        if not 0 < self.timeout_s <= 3600:
            raise ConfigError(f"--timeout {self.timeout_s!r} must be in (0, 3600] seconds")
        RetryPolicy(self.retries, self.backoff_s, self.backoff_max_s)  # validates
        if not str(self.out) or "://" in str(self.out) and not str(self.out).startswith("file://"):
            raise ConfigError(f"--out {self.out!r} must be a local folder: the collect journal and lock live "
                              "beside the data; collect locally, then copy the store to object storage")

    @property
    def band_names(self) -> tuple[str, ...]:
        """The store's bands, in order."""
        return BAND_CHOICES[self.bands]

    @property
    def patch_cloud_limit(self) -> float:
        """The resolved patch-level cloud fraction limit."""
        if self.max_patch_cloud is not None:
            return float(self.max_patch_cloud)
        return 0.1 if self.max_cloud is None else float(self.max_cloud) / 100.0

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.retries, self.backoff_s, self.backoff_max_s)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)


#: Options that must not change between a run and its resumption (they change what the store holds).
FINGERPRINT_FIELDS = ("catalog", "collection", "bands", "patch_size", "max_cloud", "max_nodata", "policy",
                      "harmonize", "spares", "max_scenes")


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class LocationTask:
    """One candidate location of the stream.

    Attributes:
        order: position in the candidate stream (the file's locations, then the spares).
        id: location id (the store key is ``str(id)``).
        lon: longitude, degrees.
        lat: latitude, degrees.
        windows: T (start, end) search windows, timezone-aware UTC, oldest first.
        spare: whether it is a replacement candidate.
    """

    order: int
    id: int
    lon: float
    lat: float
    windows: tuple[tuple[dt.datetime, dt.datetime], ...]
    spare: bool = False

    @property
    def key(self) -> str:
        return str(self.id)


@dataclass(frozen=True)
class Failure:
    """One row of the failures table: a candidate scene (or search) that did not give a patch.

    Attributes:
        location_id: the location.
        date_index: the date window (0-based, oldest first).
        item_id: the STAC item, when known.
        href: the asset or endpoint concerned, when known.
        kind: ``read`` (corrupt or truncated asset), ``missing`` (asset file absent), ``transient`` (timeouts / 5xx beyond the
            retries), ``catalog`` (a search or item the catalog could not serve), ``missing-asset`` (item lacks
            a band), ``error`` (an unexpected exception), ``outside`` (patch not inside the scene), ``patch``
            (cloud or nodata above the limits), ``window`` (no valid scene left for the date).
        reason: human-readable detail.
        attempts: attempts made (retries included).
    """

    location_id: int
    date_index: int
    item_id: str | None
    href: str | None
    kind: str
    reason: str
    attempts: int = 1

    @property
    def is_fault(self) -> bool:
        return self.kind in FAULT_KINDS


@dataclass
class LocationResult:
    """What a worker found for one candidate.

    Attributes:
        task: the candidate.
        status: ``ok`` (every date has a patch), ``rejected`` (some date has none: replace the location) or
            ``error`` (the catalog stayed unreachable: undecided, the run stops here and a rerun retries it).
        reason: why it was rejected or failed.
        images: (T, C, H, W) uint16 when ok.
        valid: (T,) bool when ok.
        dates_meta: T dicts of store metadata when ok.
        failures: every candidate scene or search that failed on the way.
        searches: catalog searches made.
        reads: patch reads attempted.
    """

    task: LocationTask
    status: str
    reason: str = ""
    images: np.ndarray | None = None
    valid: np.ndarray | None = None
    dates_meta: list[dict[str, Any]] | None = None
    failures: list[Failure] = field(default_factory=list)
    searches: int = 0
    reads: int = 0
    items: list[str | None] = field(default_factory=list)


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
    reader: Callable[..., Any] | None = None
    checker: Callable[..., tuple[bool, str]] | None = None


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


def _date_meta(patch: Any, item: SceneItem) -> dict[str, Any]:
    cloud = cloud_fraction(patch)
    if not math.isfinite(cloud):  # no SCL and no B02 to test: the scene's figure is the best there is
        cloud = (item.cloud_cover / 100.0) if item.cloud_cover is not None else 0.0
    return patch.meta(cloud_fraction=min(max(float(cloud), 0.0), 1.0))


#: Half-size in degrees (about 1 m) of the box searched around a location: a degenerate point box
#: (west == east, south == north) makes stac-fastapi-pgstac 7.2 / pgstac 0.10 miss intersecting items.
POINT_EPS_DEG = 1e-5


def point_box(lon: float, lat: float) -> tuple[float, float, float, float]:
    """The search box of a location: its point, widened by :data:`POINT_EPS_DEG` (clipped to the globe)."""
    return (max(lon - POINT_EPS_DEG, -180.0), max(lat - POINT_EPS_DEG, -90.0), min(lon + POINT_EPS_DEG, 180.0),
            min(lat + POINT_EPS_DEG, 90.0))


def collect_location(task: LocationTask, job: Job) -> LocationResult:
    """Find, read and check one patch per date window of a location (runs on a worker; never writes).

    Never raises for a data fault: every failing candidate becomes a :class:`Failure` and the next one is
    tried. Returns status ``error`` only when the catalog cannot be reached after the retries.
    """
    res = LocationResult(task=task, status="error")
    try:
        _collect_into(task, job, res)
    except Exception as e:  # a bug or an unreachable catalog: undecided, so the run stops cleanly here
        res.status = "error"
        res.reason = res.reason or f"{type(e).__name__}: {e}"
        res.images = res.valid = res.dates_meta = None
    return res


def _collect_into(task: LocationTask, job: Job, res: LocationResult) -> None:
    reader, checker = job.reader or read_patch, job.checker or patch_ok
    try:
        catalog = _worker_catalog(job)
    except Attempted as a:
        res.reason = f"catalog unreachable after {a.attempts} attempt(s): {a.error}"
        return
    T, C, P = len(task.windows), len(job.bands), job.patch_size
    images = np.zeros((T, C, P, P), dtype=np.uint16)
    metas: list[dict[str, Any]] = []
    box = point_box(task.lon, task.lat)
    for t, (start, end) in enumerate(task.windows):
        def fail(kind: str, reason: str, item: SceneItem | None = None, href: str | None = None,
                 attempts: int = 1, t: int = t) -> None:
            res.failures.append(Failure(task.id, t, item.id if item else None, href, kind, reason, attempts))

        res.searches += 1
        search = functools.partial(catalog.search, box, start, end, max_cloud=job.max_cloud)
        try:
            found, _ = with_retries(search, job.retry)
        except Attempted as a:
            if a.transient:  # the catalog is down: no decision about this location
                res.reason = f"search of date {t} failed after {a.attempts} attempt(s): {a.error}"
                return
            fail("catalog", f"search failed: {a.error}", attempts=a.attempts)
            found = []
        usable = []
        for it in found:
            missing = [b for b in job.bands if b not in it.assets]
            if missing:
                fail("missing-asset", f"item lacks asset(s) for {', '.join(missing)}", it)
            else:
                usable.append(it)
        patch: Any = None
        chosen: SceneItem | None = None
        tried = 0
        while usable and tried < job.max_scenes:
            item = choose_scene(usable, job.policy, job.max_cloud, job.bands)
            if item is None:
                break
            usable.remove(item)
            tried += 1
            res.reads += 1
            try:
                read = functools.partial(reader, catalog.sign(item), task.lon, task.lat, size_px=P,
                                         bands=job.bands, resolution=10, harmonize=job.harmonize,
                                         gdal_env=job.gdal_env)
                p, _ = with_retries(read, job.retry)
            except Attempted as a:
                err = a.error
                href = _href_of(err, item)
                if isinstance(err, PatchOutsideScene):
                    fail("outside", str(err), item, href)
                elif a.transient:
                    fail("transient", f"gave up after {a.attempts} attempt(s): {err}", item, href, a.attempts)
                elif isinstance(err, ReadError):
                    fail("missing" if _MISSING_TEXT.search(str(err)) else "read", str(err), item, href, a.attempts)
                elif isinstance(err, SecoError):
                    fail("catalog", f"{type(err).__name__}: {err}", item, href)
                else:
                    fail("error", f"{type(err).__name__}: {err}", item, href)
                continue
            data = np.asarray(p.data)
            if data.shape != (C, P, P) or data.dtype != np.uint16:
                fail("error", f"read_patch returned {data.dtype} {data.shape}, expected uint16 {(C, P, P)}", item)
                continue
            ok, why = checker(p, job.max_patch_cloud, job.max_nodata)
            if not ok:
                fail("patch", why, item)
                continue
            patch, chosen = p, item
            break
        if patch is None or chosen is None:
            kinds = Counter(f.kind for f in res.failures if f.date_index == t)
            detail = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none found"
            res.status = "rejected"
            res.reason = (f"date {t} ({start:%Y-%m-%d}..{end:%Y-%m-%d}): no valid scene among {len(found)} "
                          f"found ({detail})")
            fail("window", res.reason)
            return
        images[t] = patch.data
        metas.append(_date_meta(patch, chosen))
        res.items.append(chosen.id)
    res.status, res.images, res.valid, res.dates_meta = "ok", images, np.ones(T, dtype=bool), metas


# ---------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    """A checked collection: every input validated, the catalog opened, the candidate stream drawn.

    Attributes:
        config: the options.
        tasks: the candidate stream: the file's locations, then the spares.
        target: how many locations the store should hold (the file's ``n``).
        num_dates: ``T``.
        fingerprint: what must not change when the run is resumed.
        catalog: the opened catalog (for the dry-run probe and thread mode).
        notes: remarks to print (e.g. why there are no spares).
    """

    config: CollectConfig
    tasks: tuple[LocationTask, ...]
    target: int
    num_dates: int
    fingerprint: dict[str, Any]
    catalog: Catalog = field(compare=False, repr=False)
    notes: tuple[str, ...] = ()

    @property
    def out(self) -> Path:
        return _local_path(self.config.out)


def _local_path(out: str) -> Path:
    return Path(out[len("file://"):] if out.startswith("file://") else out).expanduser().absolute()




def _tasks_of(loc: Locations, first_order: int, spare: bool, source: str) -> list[LocationTask]:
    if loc.windows is None:
        raise CollectError(f"{source} has no date windows (columns dates, window_start, window_end); "
                           "create it with `seco sample`")
    w = loc.windows
    out = []
    for i in range(len(loc)):
        lid, lon, lat = int(loc.id[i]), float(loc.lon[i]), float(loc.lat[i])
        if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
            raise ConfigError(f"location {lid} of {source} has an invalid position lon={lon!r} lat={lat!r}; "
                              "positions are WGS84 degrees (lon -180..180, lat -90..90); fix or re-sample it")
        if np.isnat(w.start[i]).any() or np.isnat(w.end[i]).any():
            raise ConfigError(f"location {lid} of {source} has a missing date window; re-create the file "
                              "with `seco sample`")
        if (w.start[i] > w.end[i]).any():
            t = int(np.argmax(w.start[i] > w.end[i]))
            raise ConfigError(f"location {lid} of {source}: date window {t} starts ({w.start[i][t]}) after it "
                              f"ends ({w.end[i][t]}); swap them or re-create the file with `seco sample`")
        out.append(LocationTask(order=first_order + i, id=lid, lon=lon, lat=lat,
                                windows=tuple(w.for_location(i)), spare=spare))
    ids = [t.id for t in out]
    if len(set(ids)) != len(ids):
        dup = sorted({x for x in ids if ids.count(x) > 1})[:5]
        raise ConfigError(f"{source} has duplicate location ids {dup}; each location needs its own id")
    return out


def _spares(loc: Locations, k: int, first_order: int, source: str) -> tuple[list[LocationTask], str | None]:
    if k == 0:
        return [], None
    if loc.config is None:
        return [], (f"{source} carries no sampling config, so no replacement locations can be drawn; "
                    "rejected locations are dropped (sample with `seco sample` to get replacements)")
    if len(loc) != loc.config.n:
        return [], (f"{source} has {len(loc)} rows but its sampling config says n={loc.config.n} (edited?), so "
                    "no replacement locations can be drawn; rejected locations are dropped")
    more = sample(dataclasses.replace(loc.config, n=loc.config.n + k))
    n = len(loc)
    mw, lw = more.windows, loc.windows
    assert mw is not None and lw is not None  # sample() always draws windows; the file's were checked
    if not (np.allclose(more.lon[:n], loc.lon) and np.allclose(more.lat[:n], loc.lat)
            and np.array_equal(mw.start[:n], lw.start)):
        raise CollectError(
            f"re-running the sampler of {source} does not reproduce its locations (the file was edited, or "
            "written by another seco release); re-create it with `seco sample`, or pass --spares 0"
        )
    extra = Locations(id=more.id[n:], lon=more.lon[n:], lat=more.lat[n:], city=more.city[n:],
                      country=more.country[n:],
                      windows=DateWindows(centre=mw.centre[n:], start=mw.start[n:], end=mw.end[n:]))
    taken = set(int(i) for i in loc.id)
    tasks = [t for t in _tasks_of(extra, first_order, True, f"spares of {source}") if t.id not in taken]
    return tasks, None


def _check_output(cfg: CollectConfig, fingerprint: dict[str, Any], num_dates: int) -> bool:
    """Whether ``out`` continues an earlier run (True) or is new (False). Raises on anything else."""
    from seco.store import open_store

    out = _local_path(cfg.out)
    if out.exists() and not out.is_dir():
        raise StoreError(f"--out {str(out)!r} is a file; give a folder for the store")
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return False
    store = open_store(out)  # StoreError: not a seco store
    meta = store.attrs.get(ATTR)
    if not isinstance(meta, dict) or "fingerprint" not in meta:
        raise StoreError(f"{out} is a seco store but was not written by `seco collect`; choose a new --out")
    old = meta["fingerprint"]
    diff = [f"{k}: store {old.get(k)!r}, now {v!r}" for k, v in fingerprint.items() if old.get(k) != v]
    if diff:
        raise CollectError(
            f"the store at {out} was collected with other options ({'; '.join(diff)}); rerun with the "
            "options it was started with, or choose a new --out"
        )
    if store.num_dates != num_dates or store.patch_size != cfg.patch_size or store.bands != cfg.band_names:
        raise CollectError(f"the store at {out} has {store.num_dates} dates x {store.patch_size} px x "
                           f"{len(store.bands)} bands, not what this run writes; choose a new --out")
    return True


def plan_collect(cfg: CollectConfig, *, catalog: Catalog | None = None) -> Plan:
    """Check every input before any work and draw the candidate stream.

    Order: the locations file (positions, windows), the output (new, or a store of an earlier run with the
    same options), then the catalog (reachable, with the needed band assets; transient errors retried).

    Raises:
        ConfigError / CollectError: bad locations, options or output.
        StoreError: ``out`` exists and is not a seco store (or not one of ``seco collect``).
        CatalogError: unreachable catalog, unknown collection, missing band assets.
    """
    src = Path(cfg.locations)
    loc = read_locations(src)
    primaries = _tasks_of(loc, 0, False, str(src))
    if not primaries:
        raise CollectError(f"{src} holds no locations; sample some with `seco sample --n N`")
    num_dates = len(primaries[0].windows)
    spares_n = (len(loc) // 2 + 8) if cfg.spares is None else cfg.spares
    fingerprint = {k: getattr(cfg, k) for k in FINGERPRINT_FIELDS}
    if Path(cfg.catalog).exists():  # a local file: the same file whatever the working directory
        fingerprint["catalog"] = str(Path(cfg.catalog).resolve())
    fingerprint.update(spares=spares_n, locations_sha256=file_sha256(src), max_patch_cloud=cfg.patch_cloud_limit)
    _check_output(cfg, fingerprint, num_dates)
    spare_tasks, note = _spares(loc, spares_n, len(primaries), str(src))
    if catalog is None:
        spec = CatalogSpec(cfg.catalog, cfg.collection, cfg.band_names, cfg.timeout_s)
        try:
            opened, _ = with_retries(spec.open, cfg.retry)
        except Attempted as a:
            if isinstance(a.error, SecoError):
                raise a.error from None
            raise CatalogError(f"cannot open catalog {cfg.catalog!r}: {a.error}") from a.error
    else:
        opened = catalog
    return Plan(config=cfg, tasks=tuple(primaries + spare_tasks), target=len(primaries), num_dates=num_dates,
                fingerprint=fingerprint, catalog=opened, notes=(note,) if note else ())


# ---------------------------------------------------------------------------------------------- dry run


@dataclass(frozen=True)
class Estimate:
    """What a run is expected to transfer (``--dry-run``), assuming one scene per date is enough.

    Attributes:
        locations: locations still to collect.
        dates: dates per location.
        assets: band assets read per patch (SCL included for L2A).
        searches: catalog searches.
        requests: HTTP requests (searches + per asset: one header read and one range read per tile row).
        bytes: bytes expected (headers + the compressed tiles each window touches).
        tile_px: COG tile side assumed.
        bytes_per_tile: compressed bytes per tile assumed.
        source: where ``tile_px`` / ``bytes_per_tile`` come from (a probed asset, or defaults).
    """

    locations: int
    dates: int
    assets: int
    searches: int
    requests: int
    bytes: int
    tile_px: int
    bytes_per_tile: float
    source: str

    def describe(self) -> str:
        return (
            f"dry run: {self.locations} locations x {self.dates} dates = {self.locations * self.dates} patches; "
            f"{self.searches} catalog searches; about {self.requests:,} HTTP requests and "
            f"{_human(self.bytes)} ({self.assets} assets per patch, {self.tile_px} px tiles of about "
            f"{_human(self.bytes_per_tile)}, {self.source}); more for scenes rejected by the cloud/nodata "
            "check; nothing was written"
        )


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


HEADER_BYTES = 16384  # GDAL's first read of a COG (the header and tile index)


def _probe(plan: Plan) -> tuple[int, float, str] | None:
    """Tile side and compressed bytes per tile of one B02 asset found near the first locations."""
    import rasterio

    for task in plan.tasks[:3]:
        for start, end in task.windows[:2]:
            try:
                items = plan.catalog.search(point_box(task.lon, task.lat), start, end)
            except SecoError:
                return None
            for it in items:
                href = it.assets.get("B02")
                if not href:
                    continue
                try:
                    with rasterio.open(href) as src:
                        block = int(src.block_shapes[0][0])
                        ntiles = math.ceil(src.width / block) * math.ceil(src.height / block)
                        share = 0.75 if src.overviews(1) else 1.0  # overviews take about 1/4 of a COG
                    size = _size_of(href)
                except Exception:
                    continue
                if size and ntiles:
                    return block, size * share / ntiles, f"probed from {it.id} B02"
    return None


def _size_of(href: str) -> int | None:
    if href.startswith(("http://", "https://")):
        import requests

        r = requests.head(href, timeout=10, allow_redirects=True)
        return int(r.headers["Content-Length"]) if r.ok and "Content-Length" in r.headers else None
    p = Path(href[len("file://"):] if href.startswith("file://") else href)
    return p.stat().st_size if p.is_file() else None


def estimate(plan: Plan, remaining: int | None = None, *, probe: bool = True) -> Estimate:
    """Requests and bytes a run is expected to need (see :class:`Estimate`).

    Per asset of resolution ``r`` the window spans ``w = patch * 10 / r`` native pixels; with tiles of side
    ``b`` at a random offset it touches ``(1 + (w - 1) / b)^2`` tiles in ``1 + (w - 1) / b`` rows.
    """
    n = plan.target if remaining is None else remaining
    cfg = plan.config
    found = _probe(plan) if probe else None
    tile, per_tile, source = found or (1024, 1024 * 1024 * 2 * 0.45, "defaults: 1024 px deflate tiles")
    res = [BY_NAME[b].resolution_m for b in cfg.band_names]
    if cfg.bands == "l2a":
        res.append(20)  # the SCL
    reqs = byts = 0.0
    for r in res:
        w = max(1.0, cfg.patch_size * 10.0 / r)
        rows = 1 + (min(w, tile) - 1) / tile if w <= tile else math.ceil(w / tile) + 1
        reqs += 1 + rows
        byts += HEADER_BYTES + rows * rows * per_tile
    patches = n * plan.num_dates
    searches = patches
    return Estimate(locations=n, dates=plan.num_dates, assets=len(res), searches=searches,
                    requests=int(round(searches + patches * reqs)), bytes=int(round(patches * byts)),
                    tile_px=tile, bytes_per_tile=per_tile, source=source)


def remaining(plan: Plan) -> int:
    """Locations a run of ``plan`` still has to collect (its store and journal read, nothing written)."""
    if not (plan.out / "zarr.json").is_file():
        return plan.target
    from seco.store import open_store

    store = open_store(plan.out)
    have = set(store.keys())
    journal = plan.out / STATE_DIR / "journal.jsonl"
    decided = set()
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, KeyError):
                decided.add(int(json.loads(line)["id"]))
    open_tasks = sum(1 for t in plan.tasks if t.key not in have and t.id not in decided)
    return max(0, min(plan.target - len(have), open_tasks))


# ---------------------------------------------------------------------------------------------- journal


class Journal:
    """Append-only JSONL of the decision on each candidate, in stream order; the last line of an id wins.

    A line torn by a crash (no trailing newline) is dropped when the journal is opened.
    """

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[int, dict[str, Any]] = {}
        if path.exists():
            raw = path.read_bytes()
            keep = raw[: raw.rfind(b"\n") + 1]
            if len(keep) != len(raw):
                with open(path, "r+b") as f:
                    f.truncate(len(keep))
            for line in keep.decode("utf-8").splitlines():
                if line.strip():
                    d = json.loads(line)
                    self.entries[int(d["id"])] = d
        self._f: TextIO = open(path, "a", encoding="utf-8")

    def status(self, location_id: int) -> str | None:
        e = self.entries.get(location_id)
        return None if e is None else str(e["status"])

    def record(self, r: LocationResult) -> None:
        d = {"v": JOURNAL_VERSION, "order": r.task.order, "id": r.task.id, "spare": r.task.spare,
             "status": r.status, "reason": r.reason, "items": r.items,
             "failures": [dataclasses.asdict(f) for f in r.failures]}
        self._f.write(json.dumps(d) + "\n")
        self._f.flush()
        self.entries[r.task.id] = d

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.fsync(self._f.fileno())
        self._f.close()


FAILURE_COLUMNS = ("location_id", "date_index", "item_id", "href", "kind", "reason", "attempts")


def write_failures(journal: Journal, path: Path) -> int:
    """Write the failures of every decided candidate (latest decision per id, stream order) as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [f for e in sorted(journal.entries.values(), key=lambda e: e["order"]) for f in e["failures"]]
    table = pa.table({
        "location_id": pa.array([r["location_id"] for r in rows], pa.int64()),
        "date_index": pa.array([r["date_index"] for r in rows], pa.int32()),
        "item_id": pa.array([r["item_id"] for r in rows], pa.string()),
        "href": pa.array([r["href"] for r in rows], pa.string()),
        "kind": pa.array([r["kind"] for r in rows], pa.string()),
        "reason": pa.array([r["reason"] for r in rows], pa.string()),
        "attempts": pa.array([r["attempts"] for r in rows], pa.int32()),
    })
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return len(rows)


def read_failures(store: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The failures table of a collected store as a list of dicts (columns: :data:`FAILURE_COLUMNS`)."""
    import pyarrow.parquet as pq

    path = _local_path(os.fspath(store)) / STATE_DIR / "failures.parquet"
    if not path.is_file():
        raise StoreError(f"{path} does not exist; it is written at the end of each `seco collect` run")
    return pq.read_table(path).to_pylist()


def lock_path(out: Path) -> Path:
    """The lock file of a store: beside it (``.<name>.collect-lock``), as it must exist before the store."""
    return out.parent / f".{out.name}.collect-lock"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    with open(path, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            store = path.parent / path.name[1:].removesuffix(".collect-lock")
            raise CollectError(f"another `seco collect` is writing to {store} (pid {f.read().strip() or '?'}); "
                               "wait for it, or choose another --out") from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------- run


@dataclass
class CollectSummary:
    """What a run did.

    Attributes:
        store: the store path.
        target: locations asked for.
        committed: locations in the store at the end.
        resumed_from: locations already there at the start.
        candidates: candidates decided in this run.
        rejected: (location id, reason) of every candidate rejected so far (journal).
        replacements: (rejected location id, spare id that took a place) pairs, in order.
        faults: failure counts by kind over the journal (faults and rejections).
        patches: patches written in this run.
        elapsed_s: wall time of this run.
        stalled: why the run stopped before the end (rerun to continue), or ``None``.
        exhausted: the candidate stream ran out before ``target`` (not enough spares).
        failures_path: the failures table.
        notes: remarks from planning.
    """

    store: str
    target: int
    committed: int
    resumed_from: int
    candidates: int
    rejected: list[tuple[int, str]]
    replacements: list[tuple[int, int]]
    faults: dict[str, int]
    patches: int
    elapsed_s: float
    stalled: str | None = None
    exhausted: bool = False
    failures_path: str = ""
    notes: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.committed >= self.target

    def describe(self) -> str:
        rate = self.committed - self.resumed_from
        el = max(self.elapsed_s, 1e-9)
        faults = {k: v for k, v in sorted(self.faults.items()) if k in FAULT_KINDS}
        other = {k: v for k, v in sorted(self.faults.items()) if k not in FAULT_KINDS}
        lines = [
            f"collected {self.committed}/{self.target} locations into {self.store} "
            f"({rate} this run{f', {self.resumed_from} already there' if self.resumed_from else ''}) in "
            f"{self.elapsed_s:.1f} s: {rate / el:.2f} locations/s, {self.patches / el:.2f} patches/s",
            f"candidates decided this run: {self.candidates}; rejected so far: {len(self.rejected)}; "
            f"replaced: {len(self.replacements)}",
            f"faults (recorded and skipped): {sum(faults.values())}"
            f"{' (' + ', '.join(f'{k} {v}' for k, v in faults.items()) + ')' if faults else ''}; scenes passed over: "
            f"{', '.join(f'{k} {v}' for k, v in other.items()) or 'none'}; failures table: {self.failures_path}",
        ]
        for lid, why in self.rejected[:5]:
            lines.append(f"  rejected location {lid}: {why}")
        if len(self.rejected) > 5:
            lines.append(f"  ... and {len(self.rejected) - 5} more (see the failures table)")
        lines += [f"note: {n}" for n in self.notes]
        if self.exhausted:
            lines.append(f"only {self.committed} of {self.target} locations could be collected: the candidate "
                         "stream (locations + spares) ran out; for a `seco sample` file, more --spares (in a new "
                         "--out) draw more replacements")
        if self.stalled:
            lines.append(f"stopped early: {self.stalled}; rerun the same command to continue")
        return "\n".join(lines)


class _Progress:
    """tqdm bar with locations/s, patches/s and failures; silent when disabled."""

    def __init__(self, enabled: bool, total: int, initial: int):
        self.t0 = time.monotonic()
        self.patches = 0
        self.failures = 0
        self.done = 0
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="loc", desc="collect", file=sys.stderr,
                            dynamic_ncols=True, smoothing=0.1)

    def update(self, committed: bool, patches: int, failures: int) -> None:
        self.patches += patches
        self.failures += failures
        self.done += int(committed)
        if self.bar is not None:
            el = max(time.monotonic() - self.t0, 1e-9)
            self.bar.set_postfix_str(f"{self.done / el:.2f} loc/s, {self.patches / el:.1f} patches/s, "
                                     f"failures {self.failures}", refresh=False)
            self.bar.update(int(committed))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _reachable(address: str) -> None:
    """Fail fast on a TCP scheduler address nobody listens on (the Dask client would wait its timeout)."""
    import socket
    from urllib.parse import urlparse

    u = urlparse(address if "://" in address else f"tcp://{address}")
    if u.scheme not in ("tcp", "tls") or not u.hostname or not u.port:
        return  # another transport (inproc, ucx): let Dask judge
    try:
        with socket.create_connection((u.hostname, u.port), timeout=5):
            pass
    except OSError as e:
        raise CollectError(f"cannot connect to the Dask scheduler at {address!r} ({e}); start one "
                           "(`dask scheduler`) or drop --scheduler to use local threads") from e


def _executor(cfg: CollectConfig) -> tuple[cf.Executor, int, Any]:
    """(executor, parallel slots, dask client or None)."""
    if cfg.scheduler is None:
        return cf.ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="seco-collect"), cfg.workers, None
    try:
        from distributed import Client
    except ImportError as e:
        raise ConfigError("--scheduler needs Dask distributed: pip install 'dask[distributed]==2026.8.0'") from e
    _reachable(cfg.scheduler)
    try:
        client = Client(cfg.scheduler, timeout="10s", set_as_default=False)
    except Exception as e:
        raise CollectError(f"cannot connect to the Dask scheduler at {cfg.scheduler!r} ({type(e).__name__}: {e}); "
                           "start one (`dask scheduler`) or drop --scheduler to use local threads") from e
    slots = sum(client.nthreads().values())
    if slots == 0:
        client.close()
        raise CollectError(f"the Dask cluster at {cfg.scheduler} has no workers; start some (`dask worker ADDR`)")
    return client.get_executor(pure=False), slots, client


def _job(plan: Plan, reader: Callable[..., Any] | None, checker: Callable[..., Any] | None,
         share_catalog: bool) -> Job:
    cfg = plan.config
    spec = CatalogSpec(cfg.catalog, cfg.collection, cfg.band_names, cfg.timeout_s)
    return Job(catalog=plan.catalog if share_catalog else spec, bands=cfg.band_names, patch_size=cfg.patch_size,
               max_cloud=cfg.max_cloud, max_patch_cloud=cfg.patch_cloud_limit, max_nodata=cfg.max_nodata,
               policy=cfg.policy, harmonize=cfg.harmonize, max_scenes=cfg.max_scenes, retry=cfg.retry,
               gdal_env={"GDAL_HTTP_TIMEOUT": f"{cfg.timeout_s:g}",
                         "GDAL_HTTP_CONNECTTIMEOUT": f"{min(cfg.timeout_s, 10.0):g}"},
               reader=reader, checker=checker)


def _open_writer(plan: Plan) -> Any:
    from seco.store import create_store, open_writer

    out = plan.out
    if (out / "zarr.json").is_file():
        return open_writer(out, commit_every=1)
    attrs = {ATTR: {"config": plan.config.to_dict(), "fingerprint": plan.fingerprint, "target": plan.target}}
    return create_store(out, list(plan.config.band_names), num_dates=plan.num_dates,
                        patch_size=plan.config.patch_size, attrs=attrs, exist_ok=True, commit_every=1)


def run_collect(plan: Plan, *, reader: Callable[..., Any] | None = None,
                checker: Callable[..., Any] | None = None, share_catalog: bool = False,
                stop_after: int | None = None) -> CollectSummary:
    """Collect the plan into its store (resuming what an earlier run left), committing in stream order.

    Args:
        plan: from :func:`plan_collect`.
        reader: stand-in for ``read_patch`` (tests).
        checker: stand-in for ``patch_ok`` (tests).
        share_catalog: workers use ``plan.catalog`` instead of opening their own (on a Dask cluster it must
            pickle; tests use it for catalogs that exist only in the test process).
        stop_after: stop after committing this many locations in this run (tests of resumption).

    Returns:
        The summary (also written to ``<store>/_collect/summary.json``).
    """
    cfg = plan.config
    t0 = time.monotonic()
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    with _locked(lock_path(plan.out)):  # before the store is touched: opening a writer sweeps partial files
        writer = _open_writer(plan)
        state = plan.out / STATE_DIR
        state.mkdir(exist_ok=True)
        journal = Journal(state / "journal.jsonl")
        resumed = committed = len(writer)
        todo = [t for t in plan.tasks if not writer.has(t.key) and journal.status(t.id) != "rejected"]
        limit = plan.target if stop_after is None else min(plan.target, committed + stop_after)
        futures: dict[cf.Future[LocationResult], int] = {}
        ready: dict[int, LocationResult] = {}
        head = nxt = decided = patches = 0
        stalled: str | None = None
        executor: cf.Executor | None = None
        client = None
        progress = _Progress(cfg.progress, plan.target, committed)
        try:
            if committed < limit and todo:
                executor, slots, client = _executor(cfg)
                job = _job(plan, reader, checker, share_catalog)
                window = max(4, 2 * slots)  # bounded reorder buffer: in flight + waiting for their turn
            while committed < limit and head < len(todo) and stalled is None:
                assert executor is not None
                while nxt < len(todo) and nxt - head < window and committed + (nxt - head) < limit:
                    futures[executor.submit(collect_location, todo[nxt], job)] = nxt
                    nxt += 1
                if head not in ready:
                    done, _ = cf.wait(list(futures), timeout=5.0, return_when=cf.FIRST_COMPLETED)
                    for f in done:
                        i = futures.pop(f)
                        ready[i] = _result(f, todo[i])
                while head in ready and committed < limit:
                    r = ready.pop(head)
                    if r.status == "error":
                        stalled = f"location {r.task.id}: {r.reason}"
                        break
                    journal.record(r)  # the decision first: a crash after it re-reads the location, no more
                    n_valid = 0
                    if r.status == "ok":
                        assert r.images is not None and r.valid is not None and r.dates_meta is not None
                        writer.append(r.task.key, r.images, r.valid, r.dates_meta)
                        committed += 1
                        n_valid = int(r.valid.sum())
                        patches += n_valid
                    head += 1
                    decided += 1
                    progress.update(r.status == "ok", n_valid, sum(f.is_fault for f in r.failures))
        finally:
            for f in futures:
                f.cancel()
            progress.close()
            if isinstance(executor, cf.ThreadPoolExecutor):
                executor.shutdown(wait=True, cancel_futures=True)  # running reads finish (bounded: one each)
            elif executor is not None:
                executor.shutdown(wait=False)
            if client is not None:
                client.close()
            writer.close()
            n_fail = write_failures(journal, state / "failures.parquet")
            journal.close()
        exhausted = committed < plan.target and head >= len(todo) and stalled is None and stop_after is None
        summary = _summary(plan, journal, committed, resumed, decided, patches, time.monotonic() - t0, stalled,
                           exhausted, state)
        (state / "summary.json").write_text(json.dumps({**dataclasses.asdict(summary), "failure_rows": n_fail},
                                                       indent=1, default=str))
    return summary


def _result(f: cf.Future[LocationResult], task: LocationTask) -> LocationResult:
    try:
        return f.result()
    except BaseException as e:  # a lost worker, a cancelled task: undecided
        return LocationResult(task=task, status="error", reason=f"worker failed: {type(e).__name__}: {e}")


def _summary(plan: Plan, journal: Journal, committed: int, resumed: int, decided: int, patches: int,
             elapsed: float, stalled: str | None, exhausted: bool, state: Path) -> CollectSummary:
    entries = sorted(journal.entries.values(), key=lambda e: e["order"])
    rejected = [(int(e["id"]), str(e["reason"])) for e in entries if e["status"] == "rejected"]
    lost = [int(e["id"]) for e in entries if e["status"] == "rejected" and not e["spare"]]
    taken = [int(e["id"]) for e in entries if e["status"] == "ok" and e["spare"]]
    kinds = Counter(f["kind"] for e in entries for f in e["failures"])
    return CollectSummary(
        store=str(plan.out), target=plan.target, committed=committed, resumed_from=resumed, candidates=decided,
        rejected=rejected, replacements=list(zip(lost, taken, strict=False)), faults=dict(kinds), patches=patches,
        elapsed_s=elapsed, stalled=stalled, exhausted=exhausted, failures_path=str(state / "failures.parquet"),
        notes=plan.notes,
    )


def collect(cfg: CollectConfig, **kw: Any) -> CollectSummary:
    """Plan and run a collection (the library form of ``seco collect``); see :func:`run_collect`."""
    return run_collect(plan_collect(cfg), **kw)


__all__ = [
    "ATTR", "BAND_CHOICES", "FAILURE_COLUMNS", "STATE_DIR", "Attempted", "CatalogSpec", "CollectConfig",
    "CollectSummary", "Estimate", "Failure", "Job", "Journal", "LocationResult", "LocationTask", "Plan",
    "RetryPolicy", "collect", "collect_location", "estimate", "is_transient", "plan_collect", "read_failures",
    "remaining",
    "run_collect", "with_retries",
]

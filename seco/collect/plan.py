"""Planning a collection: every input checked before any work, the candidate stream drawn (spares included).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seco.collect.catalog import Catalog
from seco.collect.config import (
    ATTR,
    FINGERPRINT_FIELDS,
    S1_FINGERPRINT_FIELDS,
    CollectConfig,
    _local_path,
    is_url,
)
from seco.collect.dates import DateWindows
from seco.collect.journal import CREATING, OWNER, STATE_DIR, lock_path
from seco.collect.records import Failure, LocationTask
from seco.collect.retry import Attempted, with_retries
from seco.collect.sampling import AreaFullError, Locations, read_locations, sample
from seco.collect.worker import CatalogSpec
from seco.errors import CatalogError, CollectError, ConfigError, SecoError, StoreError
from seco.fileutil import file_sha256


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
        catalog_skips: malformed catalog items found when the catalog was opened (rows no search can return),
            recorded in the failures table with ``location_id`` and ``date_index`` -1.
        s1_catalog: the opened Sentinel-1 catalog with ``--s1``, else ``None``.
    """

    config: CollectConfig
    tasks: tuple[LocationTask, ...]
    target: int
    num_dates: int
    fingerprint: dict[str, Any]
    catalog: Catalog = field(compare=False, repr=False)
    notes: tuple[str, ...] = ()
    catalog_skips: tuple[Failure, ...] = ()
    s1_catalog: Catalog | None = field(default=None, compare=False, repr=False)

    @property
    def out(self) -> Path:
        """The store folder (local stores only; see :attr:`store` for URLs)."""
        if is_url(self.config.out):
            raise CollectError(f"the store {self.config.out} is a URL, not a folder; use Plan.store")
        return _local_path(self.config.out)

    @property
    def store(self) -> str:
        """Where the store is: an absolute folder path, or the fsspec URL."""
        return store_target(self.config.out)

    @property
    def state(self) -> Path:
        """The local folder of the journal, failures table and summary."""
        return state_dir(self.config)

    @property
    def lock(self) -> Path:
        """The lock file: beside a local store (it must exist before the store), in the journal folder for URLs."""
        if is_url(self.config.out):
            return self.state / "lock"
        return lock_path(self.out)


def store_target(out: str) -> str:
    """An ``--out`` as the store layer takes it: an absolute folder path, or the URL without a trailing slash."""
    return out.rstrip("/") if is_url(out) else str(_local_path(out))


def state_dir(cfg: CollectConfig) -> Path:
    """``--journal``, or ``<out>/_collect`` for a local store."""
    if cfg.journal is not None:
        return _local_path(str(cfg.journal))
    return _local_path(cfg.out) / STATE_DIR


def _url_entries(url: str) -> list[str]:
    """What an object store holds under a URL prefix (empty when nothing); typed errors for the usual mistakes."""
    try:
        import fsspec

        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as e:
        raise ConfigError(f"--out {url}: {e}; install the fsspec driver of that protocol (for s3://: "
                          "pip install -e '.[s3]')") from e
    except (ValueError, TypeError) as e:
        raise ConfigError(f"--out {url!r} is not a usable fsspec URL ({e}); e.g. s3://bucket/stores/s2.zarr") from e
    try:
        return list(fs.ls(path, detail=False))
    except FileNotFoundError:
        return []
    except Exception as e:  # credentials, endpoint, network: say which
        raise StoreError(f"cannot list {url} ({type(e).__name__}: {e}); check the URL, the credentials and the "
                         "endpoint (e.g. AWS_ENDPOINT_URL for an S3-compatible server)") from e


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
    n = len(loc)
    note = None
    try:
        more = sample(dataclasses.replace(loc.config, n=n + k))
    except AreaFullError as e:  # the area holds fewer replacements than asked for: take those that fit
        if e.placed <= n:
            return [], (f"no replacement location fits beside the {n} of {source} (its area is full at this "
                        "separation); rejected locations are dropped")
        more = sample(dataclasses.replace(loc.config, n=e.placed))
        note = (f"only {e.placed - n} of the {k} replacement locations (--spares) fit beside the {n} of {source} "
                "(its area is full at this separation); rejected locations beyond that are dropped")
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
    return tasks, note


def _check_output(cfg: CollectConfig, fingerprint: dict[str, Any], num_dates: int) -> str | None:
    """The grid of the store ``out`` holds from an earlier run (``"10m"`` / ``"native"``), or ``None`` when
    ``out`` is new. Raises on anything else."""
    from seco.store import open_store

    out = store_target(cfg.out)
    if is_url(out):
        if not _url_entries(out):
            return None
        creating = state_dir(cfg) / CREATING
        if creating.is_file() and creating.read_text().strip() == out and not _is_store(out):
            return None  # our own creation, interrupted: the run starts it again
    else:
        local = Path(out)
        if local.exists() and not local.is_dir():
            raise StoreError(f"--out {out!r} is a file; give a folder for the store")
        if not local.exists() or (local.is_dir() and not any(local.iterdir())):
            return None
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
    grid = "native" if any(f > 1 for f in store.grid_factors.values()) else "10m"
    if cfg.grid is not None and cfg.grid != grid:
        raise CollectError(
            f"the store at {out} keeps its bands on the {grid!r} grid, not {cfg.grid!r}; a resumed collect "
            f"continues the store's grid: drop --grid (or pass --grid {grid}), or choose a new --out for a "
            f"{cfg.grid!r} store"
        )
    return grid


def _is_store(target: str) -> bool:
    from seco.store import open_store

    try:
        open_store(target)
    except StoreError:
        return False
    return True


def _check_journal(cfg: CollectConfig) -> None:
    """A ``--journal`` folder belongs to one store: refuse one that recorded another."""
    if cfg.journal is None:
        return
    state = state_dir(cfg)
    if state.exists() and not state.is_dir():
        raise ConfigError(f"--journal {str(state)!r} is a file; give a folder")
    owner = state / OWNER
    if owner.is_file():
        recorded = json.loads(owner.read_text()).get("store")
        if recorded != store_target(cfg.out):
            raise CollectError(f"--journal {state} holds the journal of {recorded}, not of {store_target(cfg.out)}; "
                               "give each store its own journal folder (and the same one on every rerun)")


def plan_collect(cfg: CollectConfig, *, catalog: Catalog | None = None) -> Plan:
    """Check every input before any work and draw the candidate stream.

    Order: the locations file (positions, windows), the output (new, or a store of an earlier run with the
    same options), then the catalog (reachable, with the needed band assets; transient errors retried).
    ``plan.config.grid`` is resolved: the continued store's grid (a conflicting ``grid`` is refused), else
    the one asked for, else ``"10m"``.

    Raises:
        ConfigError / CollectError: bad locations, options or output.
        StoreError: ``out`` exists and is not a seco store (or not one of ``seco collect``).
        CatalogError: unreachable catalog, unknown collection, missing band assets.
    """
    cfg = resolve_paths(cfg)  # workers (a Dask cluster) run in other folders: every local path absolute
    src = Path(cfg.locations)
    loc = read_locations(src)
    primaries = _tasks_of(loc, 0, False, str(src))
    if not primaries:
        raise CollectError(f"{src} holds no locations; sample some with `seco sample --n N`")
    num_dates = len(primaries[0].windows)
    spares_n = (len(loc) // 2 + 8) if cfg.spares is None else cfg.spares
    fingerprint = {k: getattr(cfg, k) for k in FINGERPRINT_FIELDS}
    if cfg.s1 is not None:
        fingerprint.update({k: getattr(cfg, k) for k in S1_FINGERPRINT_FIELDS})
    if Path(cfg.catalog).exists():  # a local file: the same file whatever the working directory
        fingerprint["catalog"] = str(Path(cfg.catalog).resolve())
    fingerprint.update(spares=spares_n, locations_sha256=file_sha256(src), max_patch_cloud=cfg.patch_cloud_limit)
    _check_journal(cfg)
    grid = _check_output(cfg, fingerprint, num_dates)  # the grid of a store being continued
    cfg = dataclasses.replace(cfg, grid=grid or cfg.grid or "10m")
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
    notes = [note] if note else []
    if cfg.grid == "native":
        notes.append(f"native-resolution store: patch origins snapped to multiples of {cfg.align} px of the 10 m "
                     f"grid, so patch centres sit up to {cfg.align * 5} m per axis from the sampled points (the "
                     "recorded lon/lat/transform are the patches' own)")
    collections = tuple(getattr(opened, "collections", ()) or ())
    if cfg.collection is None and len(collections) > 1:
        raise CollectError(
            f"catalog {cfg.catalog} mixes collections ({', '.join(collections)}): their bands and radiometry "
            f"differ (e.g. L1C vs L2A), so one store must come from one; pick it with --collection {collections[0]}")
    skips = tuple(Failure(-1, -1, sk.id, None, "malformed-item", sk.reason) for sk in getattr(opened, "skipped", ()))
    if skips:
        listed = "; ".join(f"{f.item_id} ({f.reason})" for f in skips[:3])
        notes.append(f"{len(skips)} malformed item(s) of the catalog skipped (failures table, location_id -1): "
                     f"{listed}{' ...' if len(skips) > 3 else ''}")
    s1_cat = None
    if cfg.s1 is not None:
        s1_cat, note = _open_s1(cfg, primaries[0])
        notes += [note] if note else []
    return Plan(config=cfg, tasks=tuple(primaries + spare_tasks), target=len(primaries), num_dates=num_dates,
                fingerprint=fingerprint, catalog=opened, notes=tuple(notes), catalog_skips=skips, s1_catalog=s1_cat)


def resolve_paths(cfg: CollectConfig) -> CollectConfig:
    """The options with every local path made absolute against this process's working directory (the
    locations file, a catalog or S1 catalog that is an existing file, a local ``--out``, ``--journal``): a Dask
    worker runs in another folder, where a relative path names nothing or something else."""
    def local(v: str | None) -> str | None:
        if v is None or is_url(v) or str(v).startswith(("http://", "https://")):
            return v
        path = Path(v).expanduser()
        return str(path.absolute()) if path.exists() else v

    out = cfg.out if is_url(cfg.out) else str(_local_path(cfg.out))
    journal = None if cfg.journal is None else str(_local_path(str(cfg.journal)))
    return dataclasses.replace(cfg, locations=str(Path(cfg.locations).expanduser().absolute()),
                               catalog=local(cfg.catalog) or cfg.catalog, s1_catalog=local(cfg.s1_catalog),
                               out=out, journal=journal)


def _open_s1(cfg: CollectConfig, first: LocationTask) -> tuple[Catalog, str | None]:
    """Open the S1 catalog and check the first location's S1 items before any work (EW-only, missing
    metadata, an unapproved account)."""
    from seco.collect.s1catalog import open_s1_catalog, probe_location
    from seco.radiometry.s1 import DEFAULT_COLLECTIONS

    assert cfg.s1 is not None
    coll = cfg.s1_collection or DEFAULT_COLLECTIONS[cfg.s1]
    try:
        cat, _ = with_retries(lambda: open_s1_catalog(cfg.s1_target, coll, timeout=cfg.timeout_s), cfg.retry)
    except Attempted as a:
        if isinstance(a.error, SecoError):
            raise a.error from None
        raise CatalogError(f"cannot open the S1 catalog {cfg.s1_target!r}: {a.error}") from a.error
    start, end = first.windows[0][0], first.windows[-1][1]
    note = probe_location(cat, first.lon, first.lat, start, end, cfg.s1_window_days,
                          f"location {first.id} (lon {first.lon:.4f}, lat {first.lat:.4f})")
    return cat, note


def remaining(plan: Plan) -> int:
    """Locations a run of ``plan`` still has to collect (its store and journal read, nothing written)."""
    if not _is_store(plan.store):
        return plan.target
    from seco.store import open_store

    store = open_store(plan.store)
    have = set(store.keys())
    journal = plan.state / "journal.jsonl"
    decided = set()
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, KeyError):
                decided.add(int(json.loads(line)["id"]))
    open_tasks = sum(1 for t in plan.tasks if t.key not in have and t.id not in decided)
    return max(0, min(plan.target - len(have), open_tasks))

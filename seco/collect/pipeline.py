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
cleanly, at a location boundary (rerun to continue). Files in ``<store>/_collect/`` (or the ``--journal``
folder): ``journal.jsonl`` (one line per decided candidate), ``failures.parquet`` (rebuilt from the journal at
the end of each run) and ``summary.json``; one writer at a time is ensured by an ``flock`` on
``.<store name>.seco-lock`` beside a local store (``<journal>/lock`` for a store on an object store).

Object stores. ``--out`` may be an fsspec URL (``s3://bucket/x.zarr``); the journal then lives in the local
``--journal`` folder (``store.json`` there names the store it belongs to). Exactly-once holds without renames
because each object PUT is atomic and the store commits its manifest last; only creating the store is not
atomic there, so a ``creating`` file in the journal folder marks it and a rerun redoes an interrupted creation.

Modules, one concern each (import each name from the module that defines it): :mod:`seco.collect.config`
(the options), :mod:`seco.collect.retry` (transient errors, backoff), :mod:`seco.collect.records` (candidates,
failures, results), :mod:`seco.collect.worker` (the per-location work), :mod:`seco.collect.dn_warnings` (the
radiometry warnings of each location), :mod:`seco.collect.plan` (input checks, the candidate stream),
:mod:`seco.collect.estimate` (``--dry-run``), :mod:`seco.collect.journal` (journal, failures table, lock) and
this one (executors, the in-order commit loop, the summary).
"""


from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seco.cluster import dask_executor
from seco.collect.config import ATTR, CollectConfig, is_url
from seco.collect.dn_warnings import RADIOMETRY_KINDS, describe_warnings
from seco.collect.journal import CREATING, OWNER, Journal, _locked, write_failures
from seco.collect.plan import Plan, _is_store, plan_collect
from seco.collect.records import FAULT_KINDS, RETRIED, LocationResult, LocationTask
from seco.collect.worker import CatalogSpec, Job, collect_location
from seco.errors import CollectError

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
    s1_dates: tuple[int, int] | None = None  # (dates with S1, dates) over the store, with --s1

    @property
    def complete(self) -> bool:
        return self.committed >= self.target

    def describe(self) -> str:
        rate = self.committed - self.resumed_from
        el = max(self.elapsed_s, 1e-9)
        faults = {k: v for k, v in sorted(self.faults.items()) if k in FAULT_KINDS}
        other = {k: v for k, v in sorted(self.faults.items())
                 if k not in (*FAULT_KINDS, RETRIED, *RADIOMETRY_KINDS, "s1-none")}
        lines = [
            f"collected {self.committed}/{self.target} locations into {self.store} "
            f"({rate} this run{f', {self.resumed_from} already there' if self.resumed_from else ''}) in "
            f"{self.elapsed_s:.1f} s: {rate / el:.2f} locations/s, {self.patches / el:.2f} patches/s",
            f"candidates decided this run: {self.candidates}; rejected so far: {len(self.rejected)}; "
            f"replaced: {len(self.replacements)}",
            f"faults (recorded and skipped): {sum(faults.values())}"
            f"{' (' + ', '.join(f'{k} {v}' for k, v in faults.items()) + ')' if faults else ''}; scenes passed over: "
            f"{', '.join(f'{k} {v}' for k, v in other.items()) or 'none'}; searches and reads that succeeded on a "
            f"retry: {self.faults.get(RETRIED, 0)}; failures table: {self.failures_path}",
        ]
        for lid, why in self.rejected[:5]:
            lines.append(f"  rejected location {lid}: {why}")
        if len(self.rejected) > 5:
            lines.append(f"  ... and {len(self.rejected) - 5} more (see the failures table)")
        if self.s1_dates is not None:
            have, total = self.s1_dates
            lines.append(f"S1: {have}/{total} collected dates have a matching S1 acquisition "
                         f"({100.0 * have / max(total, 1):.1f} %); {total - have} without (S2 kept; failures "
                         "table kind s1-none)")
        rad = describe_warnings(self.faults)
        lines += [rad] if rad else []
        lines += [f"note: {n}" for n in self.notes]
        if self.exhausted:
            lines.append(f"only {self.committed} of {self.target} locations could be collected: the candidate "
                         "stream (locations + spares) ran out; for a `seco sample` file, more --spares (in a new "
                         "--out) draw more replacements")
        if self.stalled:
            lines.append(f"stopped early: {self.stalled}; rerun the same command to continue")
        if self.committed:
            lines.append(f"look at it: seco store view {self.store} --out {self.store}-view (docs/VIEW.md)")
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


def _executor(cfg: CollectConfig) -> tuple[cf.Executor, int, Any]:
    """(executor, parallel slots, dask client or None)."""
    if cfg.scheduler is None:
        return cf.ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="seco-collect"), cfg.workers, None
    return dask_executor(cfg.scheduler, flag="--scheduler", instead="drop --scheduler to use local threads",
                         error=CollectError)


def _job(plan: Plan, reader: Callable[..., Any] | None, checker: Callable[..., Any] | None,
         share_catalog: bool) -> Job:
    cfg = plan.config
    spec = CatalogSpec(cfg.catalog, cfg.collection, cfg.band_names, cfg.timeout_s)
    return Job(catalog=plan.catalog if share_catalog else spec, bands=cfg.band_names, patch_size=cfg.patch_size,
               max_cloud=cfg.max_cloud, max_patch_cloud=cfg.patch_cloud_limit, max_nodata=cfg.max_nodata,
               policy=cfg.policy, harmonize=cfg.harmonize, max_scenes=cfg.max_scenes, retry=cfg.retry,
               gdal_env={"GDAL_HTTP_TIMEOUT": f"{cfg.timeout_s:g}",
                         "GDAL_HTTP_CONNECTTIMEOUT": f"{min(cfg.timeout_s, 10.0):g}"},
               align=cfg.align, reader=reader, checker=checker, s1=_s1_spec(plan, share_catalog))


def _s1_spec(plan: Plan, share_catalog: bool) -> Any:
    """The S1 work description (``None`` without ``--s1``); thread-mode tests share the opened catalog."""
    cfg = plan.config
    if cfg.s1 is None:
        return None
    from seco.collect.s1catalog import S1Spec
    from seco.radiometry.s1 import DEFAULT_COLLECTIONS

    spec = S1Spec(cfg.s1_target, cfg.s1_collection or DEFAULT_COLLECTIONS[cfg.s1], cfg.s1_window_days,
                  cfg.s1_orbit, cfg.timeout_s)
    if share_catalog and plan.s1_catalog is not None:
        from seco.collect.s1worker import _LOCAL

        _LOCAL.__dict__.setdefault("s1", {})[spec] = plan.s1_catalog
    return spec


def _open_writer(plan: Plan) -> Any:
    """Continue the plan's store, or create it.

    A local store is created atomically (built beside and renamed). An object store cannot be: ``create_store``
    marks it until its last write and redoes a creation a crash interrupted; the journal folder holds a
    ``creating`` file meanwhile, which tells the next run's planning that the half-made store is its own.
    """
    from seco.store import StoreLayout, create_store

    attrs = {ATTR: {"config": plan.config.to_dict(), "fingerprint": plan.fingerprint, "target": plan.target}}
    make = functools.partial(create_store, plan.store, list(plan.config.band_names), num_dates=plan.num_dates,
                             patch_size=plan.config.patch_size, attrs=attrs, exist_ok=True, commit_every=1,
                             layout=StoreLayout(grid=plan.config.grid or "10m"),
                             sensors=("s2", "s1") if plan.config.s1 else ("s2",))
    if not is_url(plan.store) or _is_store(plan.store):
        return make()
    creating = plan.state / CREATING
    creating.write_text(plan.store)
    writer = make()
    creating.unlink()
    return writer


@dataclass
class _Tally:
    """Where the in-order commit stands: locations in the store, the next candidate to decide, counts."""

    committed: int
    head: int = 0  # index in the to-do list of the next candidate to decide
    decided: int = 0
    patches: int = 0
    stalled: str | None = None


def _commit(r: LocationResult, writer: Any, journal: Journal, tally: _Tally, progress: _Progress) -> bool:
    """Decide one candidate in stream order: journal it, then append it when ok; False when the run must stop
    here (the catalog stayed unreachable: undecided, ``tally.stalled`` says why)."""
    if r.status == "error":
        tally.stalled = f"location {r.task.id}: {r.reason}"
        return False
    journal.record(r)  # the decision first: a crash after it re-reads the location, no more
    n_valid = 0
    if r.status == "ok":
        assert r.images is not None and r.valid is not None and r.dates_meta is not None
        _append(writer, r)
        tally.committed += 1
        n_valid = int(r.valid.sum())
        tally.patches += n_valid
    tally.head += 1
    tally.decided += 1
    progress.update(r.status == "ok", n_valid, sum(f.is_fault for f in r.failures))
    return True


def _run_stream(plan: Plan, todo: list[LocationTask], limit: int, job: Job, writer: Any, journal: Journal,
                tally: _Tally, progress: _Progress) -> None:
    """Run ``todo`` on the executor, out of order within a bounded window, and commit the results in stream
    order until ``limit`` locations are in the store, the stream ends or the run stalls."""
    executor, slots, client = _executor(plan.config)
    window = max(4, 2 * slots)  # bounded reorder buffer: in flight + waiting for their turn
    futures: dict[cf.Future[LocationResult], int] = {}
    ready: dict[int, LocationResult] = {}
    nxt = 0
    try:
        while tally.committed < limit and tally.head < len(todo) and tally.stalled is None:
            while nxt < len(todo) and nxt - tally.head < window and tally.committed + (nxt - tally.head) < limit:
                futures[executor.submit(collect_location, todo[nxt], job)] = nxt
                nxt += 1
            if tally.head not in ready:
                done, _ = cf.wait(list(futures), timeout=5.0, return_when=cf.FIRST_COMPLETED)
                for f in done:
                    i = futures.pop(f)
                    ready[i] = _result(f, todo[i])
            while tally.head in ready and tally.committed < limit:
                if not _commit(ready.pop(tally.head), writer, journal, tally, progress):
                    break
    finally:
        for f in futures:
            f.cancel()
        if isinstance(executor, cf.ThreadPoolExecutor):
            executor.shutdown(wait=True, cancel_futures=True)  # running reads finish (bounded: one each)
        else:
            executor.shutdown(wait=False)
        if client is not None:
            client.close()


def run_collect(plan: Plan, *, reader: Callable[..., Any] | None = None,
                checker: Callable[..., Any] | None = None, share_catalog: bool = False,
                stop_after: int | None = None) -> CollectSummary:
    """Collect the plan into its store (resuming what an earlier run left), committing in stream order.

    Args:
        plan: from :func:`seco.collect.plan.plan_collect`.
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
    state = plan.state
    if is_url(plan.store) or cfg.journal is not None:
        state.mkdir(parents=True, exist_ok=True)
        (state / OWNER).write_text(json.dumps({"store": plan.store}))
    else:
        plan.out.parent.mkdir(parents=True, exist_ok=True)
    with _locked(plan.lock, plan.store):  # before the store is touched: opening a writer sweeps partial files
        writer = _open_writer(plan)
        state.mkdir(exist_ok=True)
        journal = Journal(state / "journal.jsonl")
        resumed = len(writer)
        tally = _Tally(committed=resumed)
        todo = [t for t in plan.tasks if not writer.has(t.key) and journal.status(t.id) != "rejected"]
        limit = plan.target if stop_after is None else min(plan.target, resumed + stop_after)
        progress = _Progress(cfg.progress, plan.target, resumed)
        try:
            if tally.committed < limit and todo:
                _run_stream(plan, todo, limit, _job(plan, reader, checker, share_catalog), writer, journal, tally,
                            progress)
        finally:
            progress.close()
            writer.close()
            n_fail = write_failures(journal, state / "failures.parquet", plan.catalog_skips)
            journal.close()
        exhausted = (tally.committed < plan.target and tally.head >= len(todo) and tally.stalled is None
                     and stop_after is None)
        summary = _summary(plan, journal, tally.committed, resumed, tally.decided, tally.patches,
                           time.monotonic() - t0, tally.stalled, exhausted, state)
        (state / "summary.json").write_text(json.dumps({**dataclasses.asdict(summary), "failure_rows": n_fail},
                                                       indent=1, default=str))
    return summary


def _append(writer: Any, r: LocationResult) -> None:
    """Append a location; a native store's refusal (patches whose 20 m / 60 m bands are not whole blocks)
    stops the run at once with the location and the fix, rather than failing every location after it."""
    from seco.store.packing import NotNativeError

    s1: dict[str, Any] = {}
    if r.s1_db is not None:
        from seco.store import S1Patch

        assert r.s1_valid is not None and r.s1_meta is not None

        s1["s1"] = S1Patch(db=r.s1_db, valid=r.s1_valid, meta=r.s1_meta)
    try:
        writer.append(r.task.key, r.images, r.valid, r.dates_meta, **s1, clear=r.clear, clear_rule=r.clear_rule)
    except NotNativeError as e:
        items = ", ".join(i for i in r.items if i) or "?"
        raise NotNativeError(
            f"location {r.task.id} (scenes {items}), native-resolution store {writer.path}: {e}. Here the scenes' "
            "20 m / 60 m assets do not nest on their 10 m grid (not Sentinel-2 tiles, e.g. EPSG:4326 rasters): "
            "collect them with --grid 10m into a new --out"
        ) from e


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
    kinds = Counter([f["kind"] for e in entries for f in e["failures"]] + [f.kind for f in plan.catalog_skips])
    return CollectSummary(
        store=plan.store, target=plan.target, committed=committed, resumed_from=resumed, candidates=decided,
        rejected=rejected, replacements=list(zip(lost, taken, strict=False)), faults=dict(kinds), patches=patches,
        elapsed_s=elapsed, stalled=stalled, exhausted=exhausted, failures_path=str(state / "failures.parquet"),
        notes=plan.notes, s1_dates=_s1_dates(plan, entries, committed),
    )


def _s1_dates(plan: Plan, entries: list[dict[str, Any]], committed: int) -> tuple[int, int] | None:
    """(dates with S1, dates) over the committed locations (from the journal, so resumed runs count too)."""
    if plan.config.s1 is None:
        return None
    ok = [e for e in entries if e["status"] == "ok"][:committed]
    none = sum(1 for e in ok for f in e["failures"] if f["kind"] == "s1-none")
    total = len(ok) * plan.num_dates
    return total - none, total


def collect(cfg: CollectConfig, **kw: Any) -> CollectSummary:
    """Plan and run a collection (the library form of ``seco collect``); see :func:`run_collect`."""
    return run_collect(plan_collect(cfg), **kw)


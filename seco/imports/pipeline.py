"""``seco import``: a published corpus -> a seco store, parallel, resumable and exactly-once.

Workers (a process pool, ``workers`` processes, or a Dask cluster) read and decode locations
(:func:`seco.imports.readers.read_location`); the driver alone writes, in location order, from a bounded
reorder window. Each decision is written to ``<store>/_import/journal.jsonl`` before the store append, and a
rerun skips keys already in the store (``StoreWriter.has``) and locations the journal skipped, so killing the
run at any moment (SIGKILL) and rerunning gives the same store as an uninterrupted run. Nothing is
downloaded. One writer per store at a time (:func:`seco.boundary.claim_output`: an ``flock`` on
``.<store name>.seco-lock`` beside it).

Files in ``<store>/_import/``: ``journal.jsonl`` (one line per decided location) and ``report.json`` (the
report of the last run, covering every run).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import json
import multiprocessing
import os
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seco.cluster import dask_executor
from seco.errors import ConfigError, CorpusError, SecoError, StoreError
from seco.imports.journal import Journal, reason_kind
from seco.imports.layouts import V11_NAME, Corpus, LocationRef, corpus_for, find_locations
from seco.imports.readers import QA60_CLOUD_FRACTION, ReadJob, ReadResult, read_location
from seco.imports.s1 import s1_attrs

__all__ = ["ATTR", "STATE_DIR", "ImportConfig", "ImportReport", "reason_kind", "run_import"]

ATTR = "import"
STATE_DIR = "_import"


@dataclass(frozen=True)
class ImportConfig:
    """``seco import`` settings (saved in the store's ``user_attrs.import.config``).

    Attributes:
        corpus: ``"seco"`` or ``"ssl4eo-s12"``.
        root: the unpacked corpus folder.
        out: the store folder (created, or continued).
        modality: ``"s2c"`` / ``"s2a"`` (SSL4EO-S12; default s2c), ``None`` for SeCo. ``"s1"`` is refused.
        workers: reader processes; 0 reads in the driver process (debugging, tiny corpora).
        dask: a Dask scheduler address (``tcp://HOST:PORT``) instead of local processes.
        min_dates: fewest valid dates a location needs (3: SeCo's query + two other seasons).
        patch_size: ``P``, 10 m pixels per side (264 in both corpora; a multiple of 6).
        size_tolerance: native pixels a band may be off its size (then cropped / padded with nodata).
        limit: import at most this many locations (the first ones by id), ``None``: all.
        commit_every: locations per store commit (metadata + manifest write). Larger amortises the single
            writer's metadata writes (16: ~31 ms CPU per location against ~55 ms at 1, bench in
            docs/BENCHMARKS.md); a crash loses at most the uncommitted ones, which a rerun reads again.
        progress: show a progress bar.
        grid: the store grid: ``"10m"`` (every band on the 10 m grid) or ``"native"`` (20 m / 60 m bands kept
            at the corpus' own resolution, ``seco.store.packing``); ``None``: the grid of the store being
            continued, else ``"10m"``. A conflicting grid on a rerun is refused.
        v11_offset: (SSL4EO-S12 v1.1) the DN the S2 values carry: ``"auto"`` (decided per file from its darkest
            valid values, ``seco.radiometry.corpora.v11_offset``), ``"1000"`` or ``"0"``.
        with_s1: (SSL4EO-S12) import the ``s1/`` Sentinel-1 seasons into the store's S1 group, each on the date
            of its S2 season (``seco.imports.s1``).
    """

    corpus: str
    root: str
    out: str
    modality: str | None = None
    workers: int = 2
    dask: str | None = None
    min_dates: int = 3
    patch_size: int = 264
    size_tolerance: int = 1
    limit: int | None = None
    commit_every: int = 16
    progress: bool = True
    grid: str | None = None
    with_s1: bool = False
    v11_offset: str = "auto"

    def __post_init__(self) -> None:
        c = corpus_for(self.corpus, self.modality)  # refuses s1 and unknown names first
        if self.v11_offset not in ("auto", "1000", "0"):
            raise ConfigError(f"--v11-offset {self.v11_offset!r} is unknown; choose auto (decide per file from the "
                              "data), 1000 or 0")
        if self.with_s1 and c.name not in ("ssl4eo-s12", V11_NAME):
            raise ConfigError(f"--with-s1: the {c.name} corpus has no Sentinel-1; drop --with-s1 (SSL4EO-S12 has it)")
        if self.grid is not None and self.grid not in ("10m", "native"):
            raise ConfigError(f"--grid {self.grid!r} is unknown; choose 10m or native")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise ConfigError(f"--workers {self.workers!r} must be an integer >= 0 (0: read in this process)")
        if not isinstance(self.patch_size, int) or self.patch_size < 6 or self.patch_size % 6:
            raise ConfigError(f"--patch-size {self.patch_size!r} must be a positive multiple of 6 "
                              "(60 m bands are P/6 px); the corpora use 264")
        if not isinstance(self.min_dates, int) or not 1 <= self.min_dates <= c.num_dates:
            raise ConfigError(f"--min-dates {self.min_dates!r} must be in 1..{c.num_dates} ({c.name} has "
                              f"{c.num_dates} dates); SeCo pre-training needs 3, MoCo-v2 1")
        if not isinstance(self.size_tolerance, int) or self.size_tolerance < 0:
            raise ConfigError(f"size tolerance {self.size_tolerance!r} must be an integer >= 0")
        if not isinstance(self.commit_every, int) or self.commit_every < 1:
            raise ConfigError(f"--commit-every {self.commit_every!r} must be a positive integer (default 16)")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ConfigError(f"--limit {self.limit!r} must be a positive integer")

    @property
    def spec(self) -> Corpus:
        return corpus_for(self.corpus, self.modality)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "root": str(Path(self.root).expanduser().absolute()),
                "out": str(Path(self.out).expanduser().absolute())}


@dataclass
class ImportReport:
    """What an import did (also ``<store>/_import/report.json``); counts cover every run on the store."""

    corpus: str
    modality: str
    root: str
    store: str
    locations_found: int
    imported: int
    imported_this_run: int
    resumed_from: int
    skipped: list[tuple[str, str]]
    skip_kinds: dict[str, int]
    date_problems: dict[str, int]
    dates_imported_this_run: int
    notes: dict[str, int]
    elapsed_s: float
    cpus: int
    workers: str
    radiometry: str
    skipped_this_run: int = 0
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Sentinel-1 (``--with-s1``): dates, coverage of the S2 dates, S1 seasons left out by kind, stats in dB
    s1: dict[str, Any] = field(default_factory=dict)
    #: nothing was imported into a store this run created, so the store was removed again
    store_removed: bool = False

    @property
    def rate(self) -> float:
        """Locations decided per second in this run."""
        return (self.imported_this_run + self.skipped_this_run) / max(self.elapsed_s, 1e-9)

    def describe(self) -> str:
        decided = self.imported_this_run + self.skipped_this_run
        run = (f"{self.imported_this_run} this run, {self.resumed_from} before; {self.dates_imported_this_run} "
               f"dates) in {self.elapsed_s:.1f} s, {self.rate:.2f} loc/s ({self.workers}, {self.cpus} CPUs)"
               if decided else "nothing left to import)")
        lines = [
            f"imported {self.imported} of {self.locations_found} {self.corpus} {self.modality} locations into "
            f"{self.store} ({run}",
            f"radiometry: {self.radiometry}",
        ]
        if self.skipped:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.skip_kinds.items(), key=lambda kv: -kv[1]))
            lines.append(f"skipped {len(self.skipped)} location(s): {kinds}")
            lines += [f"  {name}: {why}" for name, why in self.skipped[:10]]
            if len(self.skipped) > 10:
                lines.append(f"  ... and {len(self.skipped) - 10} more (report.json)")
        if self.date_problems:
            lines.append("dates left out: " + ", ".join(f"{k} {n}" for k, n in sorted(self.date_problems.items())))
        if self.s1:
            s1 = self.s1
            lines.append(f"sentinel-1: {s1['dates']} of {s1['s2_dates']} S2 dates have S1 ({100 * s1['coverage']:.1f} %)"
                         + ("; S1 seasons left out: " + ", ".join(f"{k} {n}" for k, n in sorted(s1["left_out"].items()))
                            if s1["left_out"] else ""))
        if self.notes:
            lines.append("adjusted: " + ", ".join(f"{k} {n}" for k, n in sorted(self.notes.items())))
        if self.imported:
            lines.append(f"look at it: seco store view {self.store} --out {self.store}-view (docs/VIEW.md)")
        return "\n".join(lines)


def _locked(out: Path) -> contextlib.AbstractContextManager[Any]:
    """Claim the store for ``seco import`` (:func:`seco.boundary.claim_output`: one writer per store, whatever
    the command); a store that fails before its first location is committed is removed, so a rerun with other
    settings (``--patch-size``) is not refused by an empty store."""
    from seco.boundary import claim_output, keep_store

    return claim_output(out, "seco import", kind="dir", keep=keep_store, error=StoreError)


# ---------------------------------------------------------------------------------------------- executors


class _Inline(cf.Executor):
    """Runs each task at submit, in this process (``workers=0``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        f: cf.Future[Any] = cf.Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as e:
            f.set_exception(e)
        return f


def _executor(cfg: ImportConfig) -> tuple[cf.Executor, int, Any, str]:
    """(executor, parallel slots, dask client or None, description). Worker processes leave Ctrl-C to this one."""
    from seco.boundary import ignore_interrupts

    if cfg.dask is None:
        if cfg.workers == 0:
            return _Inline(), 1, None, "in-process"
        ctx = multiprocessing.get_context("forkserver")  # clean children: the driver holds zarr's I/O thread
        procs = cf.ProcessPoolExecutor(max_workers=cfg.workers, mp_context=ctx, initializer=ignore_interrupts)
        return procs, cfg.workers, None, f"{cfg.workers} worker processes"
    pool, slots, client = dask_executor(cfg.dask, flag="--dask", instead="use --workers N")
    return pool, slots, client, f"Dask {cfg.dask} ({slots} threads)"


# ---------------------------------------------------------------------------------------------- store


def _probe(corpus: Corpus, ref: LocationRef) -> None:
    """Refuse a corpus of the wrong kind (e.g. SSL4EO-S12 given as SeCo) before creating anything."""
    import numpy as np
    import rasterio

    for d in sorted(os.scandir(ref.path), key=lambda e: e.name):
        if not d.is_dir():
            continue
        tifs = sorted(p for p in os.listdir(d.path) if p.endswith(".tif"))
        for t in tifs:
            try:
                with rasterio.open(os.path.join(d.path, t)) as src:
                    dtype = np.dtype(src.dtypes[0])
            except Exception:
                continue  # a broken file is the reader's business (reported per date)
            want = np.dtype(corpus.scale.source_dtype)
            if dtype != want:
                other = "ssl4eo-s12" if corpus.name == "seco" else "seco"
                raise CorpusError(
                    f"{os.path.join(d.path, t)} is {dtype}, but the {corpus.name} corpus is {want} "
                    f"({corpus.scale.note.split(':')[0]}); is this the {other} corpus (`seco import {other}`)?"
                )
            return


#: A date left out for its size (``seco.imports.layouts.fit_patch``): band, height, width, expected side.
_SIZE = re.compile(r"^(?:[^:]*: )?(B\w+) is (\d+)x(\d+) px, expected (\d+)x\d+")
#: Locations read before the store is created to recognise a --patch-size that fits no patch of the corpus.
SIZE_PROBE = 3


def _probe_patch_size(refs: list[LocationRef], job: ReadJob) -> None:
    """Read the first locations before any store exists; when every date of each is left out for its size,
    and the sizes agree on another patch side, refuse with that side (an empty store would lock the wrong
    --patch-size in).

    Raises:
        ConfigError: naming the corpus' patch side and the flag to pass.
    """
    implied: set[int] = set()
    example = ""
    for ref in refs[:SIZE_PROBE]:
        res = read_location(ref, job)
        if res.status == "ok" or not res.date_problems:
            return
        for problem in res.date_problems:
            m = _SIZE.match(problem)
            if m is None:
                return  # something else is wrong with this location: the per-location report says what
            band, h, w, n = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
            if h != w:
                return
            implied.add(h * job.patch_size // n)
            example = example or f"{band} is {h}x{w} px where --patch-size {job.patch_size} expects {n}x{n}"
    if len(implied) == 1:
        side = implied.pop()
        raise ConfigError(
            f"the corpus' patches are {side} px at 10 m, not --patch-size {job.patch_size} ({example}, in every date "
            f"of its first {min(len(refs), SIZE_PROBE)} locations); pass --patch-size {side}"
        )


def _attrs(cfg: ImportConfig, corpus: Corpus, base: Path) -> dict[str, Any]:
    return {
        "source": "seco.imports",
        ATTR: {
            "corpus": corpus.name,
            "modality": corpus.modality,
            "root": str(base.absolute()),
            "config": cfg.to_dict(),
            "radiometry": corpus.scale.to_attrs(),
            "cloud_fraction": (f"{QA60_CLOUD_FRACTION} for every date, inferred, not measured: both downloaders mask "
                               "QA60 cloud/cirrus and sample without a default for masked pixels, so no QA60-masked "
                               "pixel is expected; QA60 patch fraction, not a cloud-free guarantee"),
            "grid": ("native 20/60 m bands kept at their resolution (native-resolution store)" if cfg.grid == "native"
                     else "native 20/60 m bands nearest-upsampled (2x2/6x6 repeats) to the 10 m grid, as seco collect"),
            "dates": "valid dates in chronological order in the first slots; item_id = product folder name",
            "with_s1": cfg.with_s1,
            **({"s1": s1_attrs(corpus.name == V11_NAME)} if cfg.with_s1 else {}),
            **({"cloud_fraction": "share of pixels with cloud_mask > 0 (the release's S2 cloud mask), per date",
                "v11_offset": cfg.v11_offset} if corpus.name == V11_NAME else {}),
        },
    }


def _store_grid(out: Path) -> str | None:
    """The grid of the seco store at ``out`` (``"10m"`` / ``"native"``), ``None`` when there is none."""
    from seco.store import open_store

    if not (out / "zarr.json").is_file():
        return None
    try:
        store = open_store(out)
    except StoreError:
        return None  # not a seco store: create_store says so
    return "native" if any(f > 1 for f in store.grid_factors.values()) else "10m"


def resolve_grid(cfg: ImportConfig) -> ImportConfig:
    """``cfg`` with ``grid`` resolved: the continued store's grid (a conflicting one is refused), else the one
    asked for, else ``"10m"``."""
    have = _store_grid(Path(cfg.out).expanduser())
    if have is not None and cfg.grid is not None and cfg.grid != have:
        raise ConfigError(
            f"{cfg.out} is a store on the {have!r} grid, not {cfg.grid!r}; a rerun continues the store's grid: "
            f"drop --grid (or pass --grid {have}), or choose a new --out for a {cfg.grid!r} store"
        )
    return dataclasses.replace(cfg, grid=have or cfg.grid or "10m")


def _open_writer(cfg: ImportConfig, corpus: Corpus, base: Path) -> Any:
    from seco.store import StoreLayout, create_store

    out = Path(cfg.out).expanduser()
    if (out / "zarr.json").is_file():
        try:
            root_attrs = json.loads((out / "zarr.json").read_text(encoding="utf-8")).get("attributes", {})
        except ValueError:
            root_attrs = {}
        have = root_attrs.get("user_attrs", {}).get(ATTR)
        if isinstance(have, dict) and (have.get("corpus"), have.get("modality")) != (corpus.name, corpus.modality):
            raise ConfigError(
                f"{out} holds an import of {have.get('corpus')} {have.get('modality')}, not {corpus.name} "
                f"{corpus.modality}; use a new --out"
            )
        if isinstance(have, dict) and bool(have.get("with_s1", False)) != cfg.with_s1:
            raise ConfigError(
                f"{out} holds an import {'with' if have.get('with_s1') else 'without'} Sentinel-1; rerun "
                f"{'with' if have.get('with_s1') else 'without'} --with-s1 to continue it, or use a new --out"
            )
    return create_store(out, list(corpus.bands), num_dates=corpus.num_dates, patch_size=cfg.patch_size,
                        attrs=_attrs(cfg, corpus, base), exist_ok=True, commit_every=cfg.commit_every,
                        layout=StoreLayout(grid=cfg.grid or "10m"),
                        sensors=("s2", "s1") if cfg.with_s1 else ("s2",))


# ---------------------------------------------------------------------------------------------- run


def run_import(cfg: ImportConfig, *, stop_after: int | None = None) -> ImportReport:
    """Import the corpus into the store, continuing what an earlier run left.

    Args:
        cfg: the settings.
        stop_after: stop after deciding this many locations in this run (tests of resumption).

    Returns:
        The report (also written to ``<store>/_import/report.json``).

    Raises:
        CorpusError: the root does not have the corpus layout, or holds another corpus.
        ConfigError: bad settings, or a store holding another corpus.
    """
    t0 = time.monotonic()
    corpus = cfg.spec
    cfg = resolve_grid(cfg)
    # absolute before anything reaches a reader: Dask workers run in another folder (a relative root would be
    # resolved against theirs); not resolved through symlinks, so a shared mount keeps the path users gave
    base, units = _units(cfg, corpus, Path(cfg.root).expanduser().absolute())
    refs = [r for _, rs in units for r in rs]
    if cfg.limit is not None:
        refs = refs[: cfg.limit]
    v11 = corpus.name == V11_NAME
    if not v11:
        _probe(corpus, refs[0])
    out = Path(cfg.out).expanduser()
    created = not (out / "zarr.json").is_file()
    out.parent.mkdir(parents=True, exist_ok=True)
    job = ReadJob(corpus=corpus, patch_size=cfg.patch_size, min_dates=cfg.min_dates,
                  size_tolerance=cfg.size_tolerance, s1_base=None if v11 else _s1_base(cfg, base),
                  v11_offset=cfg.v11_offset)
    if created and not v11:
        _probe_patch_size(refs, job)
    with _locked(out):
        executor, slots, client, desc = _executor(cfg)  # before the store: a bad --dask writes nothing
        try:
            writer = _open_writer(cfg, corpus, base)
        except BaseException:
            _shutdown(executor, client)
            raise
        state = out / STATE_DIR
        state.mkdir(exist_ok=True)
        journal = Journal(state / "journal.jsonl")
        resumed = len(writer)
        wanted = {r.key(corpus) for r in refs if not writer.has(r.key(corpus))
                  and not journal.skipped(r.key(corpus), cfg.min_dates)}
        todo = [u for u, rs in units if any(r.key(corpus) in wanted for r in rs)]
        try:
            imported, skipped_now, dates = _run_units(cfg, corpus, todo, wanted, job, executor, max(4, 2 * slots),
                                                      writer, journal, len(refs), stop_after)
        finally:
            _shutdown(executor, client)
            writer.close()
            journal.close()
        report = _report(cfg, corpus, base, out, len(refs), resumed, imported, skipped_now, dates, journal,
                         time.monotonic() - t0, desc)
        (state / "report.json").write_text(json.dumps(_report_json(report), indent=1, default=str))
    if created and report.imported == 0 and stop_after is None:
        shutil.rmtree(out, ignore_errors=True)  # an empty store would lock this run's settings in for the next
        report.store_removed = True
    return report


def _units(cfg: ImportConfig, corpus: Corpus, root: Path) -> tuple[Path, list[tuple[Any, list[LocationRef]]]]:
    """The units of work and the locations each decides: a location folder (v1, SeCo) or a Zarr-zip file (v1.1)."""
    if corpus.name != V11_NAME:
        base, refs = find_locations(corpus, root)
        return base, [(r, [r]) for r in refs]
    from seco.imports.v11 import find_v11_files, v11_names

    if not root.is_dir():
        raise CorpusError(f"corpus root {root} is not a folder; give the folder SSL4EO-S12 v1.1 was downloaded to")
    files = find_v11_files(root, corpus.modality, cfg.with_s1)
    return root, [(f, [LocationRef(n, f.s2) for n in v11_names(f)]) for f in files]


def read_unit(unit: Any, job: ReadJob) -> list[ReadResult]:
    """Read one unit of work in a worker: every location it holds, decided."""
    if isinstance(unit, LocationRef):
        return [read_location(unit, job)]
    from seco.imports.v11 import read_v11_file

    return read_v11_file(unit, job)


def _run_units(cfg: ImportConfig, corpus: Corpus, todo: list[Any], wanted: set[str], job: ReadJob,
               executor: cf.Executor, window: int, writer: Any, journal: Journal, total: int,
               stop_after: int | None) -> tuple[int, int, int]:
    """Read the units (bounded window, in order) and journal + append the wanted locations; (imported, skipped,
    dates) of this run."""
    imported = skipped_now = dates = 0
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=total - len(wanted), unit="loc", desc=f"import {corpus.name}",
                   file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
    futures: dict[int, cf.Future[list[ReadResult]]] = {}
    try:
        nxt = 0
        for head in range(len(todo)):
            while nxt < len(todo) and nxt - head < window:
                futures[nxt] = executor.submit(read_unit, todo[nxt], job)
                nxt += 1
            for r in _result(futures.pop(head), todo[head], corpus):
                if r.key not in wanted:
                    continue  # in the store already, skipped before, or beyond --limit
                if stop_after is not None and imported + skipped_now >= stop_after:
                    return imported, skipped_now, dates
                journal.record(r, cfg.min_dates)  # the decision first: a crash after it re-reads the location
                if r.status == "ok":
                    assert r.images is not None and r.valid is not None and r.dates_meta is not None
                    _append(writer, r)
                    imported += 1
                    dates += int(r.valid.sum())
                else:
                    skipped_now += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"skipped {skipped_now}", refresh=False)
    finally:
        for f in futures.values():
            f.cancel()
        if bar is not None:
            bar.close()
    return imported, skipped_now, dates


def _s1_base(cfg: ImportConfig, base: Path) -> str | None:
    """The absolute ``s1/`` folder beside the S2 modality folder (``--with-s1``), else ``None``.

    Raises:
        CorpusError: ``--with-s1`` and no ``s1/`` folder beside ``<modality>/``.
    """
    if not cfg.with_s1:
        return None
    s1 = base.parent / "s1"
    if not s1.is_dir():
        raise CorpusError(f"--with-s1: {base.parent} has no s1/ folder beside {base.name}/ (the SSL4EO-S12 s1.tar.gz "
                          "unpacks to s1/<location>/<S1 product id>/VV.tif, VH.tif); unpack it there or drop --with-s1")
    return str(s1)


def _append(writer: Any, r: ReadResult) -> None:
    """Append a location; a native store's refusal stops the import at once, naming the location and the fix."""
    from seco.store import S1Patch
    from seco.store.packing import NotNativeError

    s1 = None if r.s1 is None else S1Patch(db=r.s1.db, valid=r.s1.valid, meta=r.s1.meta)
    try:
        writer.append(r.key, r.images, r.valid, r.dates_meta, s1=s1)
    except NotNativeError as e:
        raise NotNativeError(
            f"location {r.ref.name} ({r.ref.path}), native-resolution store {writer.path}: {e}. Here the corpus' "
            "20 m / 60 m bands were resampled to another grid: import it with --grid 10m into a new --out"
        ) from e


def _shutdown(executor: cf.Executor, client: Any) -> None:
    if isinstance(executor, cf.ProcessPoolExecutor):
        executor.shutdown(wait=True, cancel_futures=True)
    else:
        executor.shutdown(wait=False)
    if client is not None:
        client.close()


def _result(f: cf.Future[list[ReadResult]], unit: Any, corpus: Corpus) -> list[ReadResult]:
    try:
        return f.result()
    except SecoError:
        raise
    except Exception as e:  # a bug or a lost worker: stop, the rerun continues from here
        what = f"location {unit.name} ({unit.path})" if isinstance(unit, LocationRef) else f"file {unit.s2}"
        raise CorpusError(f"reading {what} failed: {type(e).__name__}: {e}; rerun the same command to continue") from e


def _report(cfg: ImportConfig, corpus: Corpus, base: Path, out: Path, found: int, resumed: int, imported: int,
            skipped_now: int, dates: int, journal: Journal, elapsed: float, desc: str) -> ImportReport:
    from seco.store import open_store

    skipped = sorted(((name, why) for name, why, _ in journal.skips.values()),
                     key=lambda t: (int(t[0]) if t[0].isdigit() else 0, t[0]))
    date_kinds = Counter(k for dk, _, _ in journal.kinds.values() for k in dk)
    note_kinds = Counter(k for _, nk, _ in journal.kinds.values() for k in nk)
    s1_kinds = Counter(k for _, _, sk in journal.kinds.values() for k in sk)
    store = open_store(out)
    stats: dict[str, dict[str, float]] = {}
    if len(store):
        s = store.stats()
        stats = {b: {k: float(s[k][i]) for k in ("mean", "std", "p2", "p98")} for i, b in enumerate(store.bands)}
    rep = ImportReport(
        corpus=corpus.name, modality=corpus.modality, root=str(base), store=str(out), locations_found=found,
        imported=len(store), imported_this_run=imported, resumed_from=resumed, skipped=skipped,
        skip_kinds=dict(Counter(reason_kind(r) for _, r in skipped)), date_problems=dict(date_kinds),
        dates_imported_this_run=dates, notes=dict(note_kinds), elapsed_s=elapsed, cpus=os.cpu_count() or 1,
        workers=desc, radiometry=f"{corpus.scale.name}: {corpus.scale.note}", skipped_this_run=skipped_now,
        stats=stats, s1=_s1_summary(store, s1_kinds),
    )
    return rep


def _s1_summary(store: Any, kinds: Counter[str]) -> dict[str, Any]:
    """S1 coverage of the store (dates with S1 among the valid S2 dates), S1 problems by kind, S1 statistics."""
    if store.s1 is None:
        return {}
    s1_dates = int(store.s1.valid_mask().sum()) if len(store) else 0
    s2_dates = int(store.valid_mask().sum()) if len(store) else 0
    stats: dict[str, dict[str, float]] = {}
    if s1_dates:
        st = store.s1.stats()
        stats = {b: {k: float(st[k][i]) for k in ("mean", "std", "p2", "p98")} for i, b in enumerate(store.s1.bands)}
    return {"dates": s1_dates, "s2_dates": s2_dates, "coverage": s1_dates / max(s2_dates, 1),
            "left_out": dict(kinds), "stats_db": stats}


def _report_json(r: ImportReport) -> dict[str, Any]:
    d = dataclasses.asdict(r)
    d["skipped"] = [{"location": n, "reason": why} for n, why in r.skipped]
    d["locations_per_s"] = r.rate
    return d

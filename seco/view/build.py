"""``seco store view``: write the static site (index, location pages, quicklooks) of a store.

The site is plain files: ``index.html`` (map and store-wide views), ``loc/<i>.html`` (one page per viewed
location), ``ql/<i>/<t>-<composite>.webp`` (quicklooks), ``data/*.js`` (the index's data, as scripts because
browsers refuse ``fetch`` from ``file://``), ``assets/`` (CSS, JS, the basemap) and ``view.json`` (what was
viewed with which settings, so a rerun adds only what is missing). Layout and choices: docs/VIEW.md.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from seco.bands import parse_bands
from seco.errors import BandError, ConfigError, OutputError
from seco.fileutil import atomic_write
from seco.view import summary as SM
from seco.view.location import RGB, Plan, page_path, render_location, to_script
from seco.view.select import choose, warned_locations

#: Bumped when pages change shape: a view folder of another version is rebuilt.
VIEW_VERSION = 1
#: The false colour used when none is asked for and the store has its bands (near infrared, red, green).
DEFAULT_FALSE_COLOUR = ("B08", "B04", "B03")
STATIC = ("view.css", "view.js", "location.js", "basemap.js", "BASEMAP_NOTICE.txt")
MANIFEST = "view.json"


@dataclass(frozen=True)
class ViewConfig:
    """Settings of ``seco store view`` (defaults are the CLI's).

    Attributes:
        max_locations: locations drawn (seeded) for pages; every warned location is added.
        seed: the seed of that draw.
        false_colour: three band names (``"B08,B04,B03"``, ``"B12,B08,B04"``); ``None``: B08, B04, B03 when the
            store has them.
        thumb: quicklook side in pixels.
        workers: processes writing quicklooks (1: in this process).
        check_report: the JSON of ``seco store check --json`` (default ``<out>/check.json`` when present).
        failures: a collect failures table (default ``<store>/_collect/failures.parquet``).
    """

    max_locations: int = 200
    seed: int = 0
    false_colour: str | None = None
    thumb: int = 128
    workers: int = 1
    check_report: str | None = None
    failures: str | None = None

    def __post_init__(self) -> None:
        for name, low in (("max_locations", 0), ("thumb", 16), ("workers", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"--{name.replace('_', '-')} {v!r} must be an integer >= {low}")


@dataclass
class ViewResult:
    """What a view run did."""

    out: Path
    index: Path
    viewed: int
    written: int
    already: int
    warned: int
    seconds: float
    bytes: int
    notes: list[str]

    def describe(self) -> str:
        per = self.bytes / max(self.viewed, 1) / 1e3
        return (f"{self.index}: {self.viewed} location page(s) ({self.written} written now, {self.already} already "
                f"there; {self.warned} warned), {self.bytes / 1e6:.1f} MB ({per:.0f} kB per location) in "
                f"{self.seconds:.1f} s; open it in a browser (file://{self.index})"
                + "".join(f"\nnote: {n}" for n in self.notes))


def check_out(store_path: str, out: Path) -> None:
    """Refuse an output inside the store (it would become part of the store's folder)."""
    if "://" in store_path and not store_path.startswith("file://"):
        return
    root = Path(store_path.removeprefix("file://")).expanduser().resolve()
    o = out.expanduser().resolve()
    if o == root or root in o.parents:
        raise OutputError(f"--out {out} is inside the store {root}; write the view beside it, e.g. "
                          f"--out {root.parent / (root.name + '-view')}")


def resolve_plan(store: Any, config: ViewConfig) -> Plan:
    """The composites this store supports (and the user's false colour, checked against its bands)."""
    bands = tuple(store.bands)
    if config.false_colour is None:
        fc: tuple[str, ...] | None = DEFAULT_FALSE_COLOUR if set(DEFAULT_FALSE_COLOUR) <= set(bands) else None
    else:
        try:
            fc = tuple(parse_bands(config.false_colour, available=bands))
        except BandError as e:
            raise BandError(f"--false-colour {config.false_colour}: {str(e).split(';')[0]}; this store has "
                            f"{', '.join(bands)}: choose three of those") from None
        if len(fc) != 3:
            raise ConfigError(f"--false-colour {config.false_colour} names {len(fc)} band(s); give three "
                              "(red, green, blue), e.g. B08,B04,B03")
    return Plan(rgb=RGB if set(RGB) <= set(bands) else None, false_colour=fc,
                s1=getattr(store, "s1", None) is not None, thumb=config.thumb)


def _digest(plan: Plan) -> str:
    return hashlib.sha256(json.dumps([VIEW_VERSION, asdict(plan)]).encode()).hexdigest()[:16]


def _manifest(out: Path, store_path: str, digest: str, notes: list[str]) -> dict[str, Any]:
    """The previous run's manifest; pages of other settings are removed (they are rebuilt)."""
    path = out / MANIFEST
    if not path.is_file():
        if out.is_dir() and any(p.name != "check.json" for p in out.iterdir()):
            raise OutputError(f"--out {out} holds other files (no {MANIFEST}); choose an empty or new folder")
        return {}
    man = json.loads(path.read_text(encoding="utf-8"))
    if man.get("store") != store_path:
        raise OutputError(f"--out {out} holds the view of another store ({man.get('store')}); choose another "
                          "--out for this one")
    if man.get("digest") != digest:
        notes.append("settings changed since the last run (composites, quicklook size or view version): every "
                     "page is rebuilt")
        for sub in ("loc", "ql"):
            shutil.rmtree(out / sub, ignore_errors=True)
        man.pop("s1_counts", None)
    return man


def _chunks(items: Sequence[int], n: int) -> Iterator[list[int]]:
    for k in range(0, len(items), n):
        yield list(items[k : k + n])


def _render_chunk(store: Any, idx: list[int], plan: Plan, out: Path, warned: dict[int, list[str]],
                  template: str) -> list[dict[str, Any]]:
    return [render_location(store, i, plan, out, warned.get(i, []), template) for i in idx]


def _render(store: Any, todo: list[int], plan: Plan, out: Path, warned: dict[int, list[str]],
            workers: int, progress: bool) -> Iterator[dict[str, Any]]:
    """Render the pages of ``todo``, in worker processes when ``workers`` > 1, with a progress bar."""
    from tqdm import tqdm

    template = _static_text("location.html")
    bar = tqdm(total=len(todo), unit="loc", desc="store view", disable=not progress)
    try:
        if workers <= 1 or len(todo) < 2:
            for i in todo:
                yield render_location(store, i, plan, out, warned.get(i, []), template)
                bar.update(1)
            return
        size = max(1, min(16, len(todo) // (4 * workers)))
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            pending: set[Any] = set()
            chunks = _chunks(todo, size)
            from concurrent.futures import FIRST_COMPLETED, wait

            for c in chunks:  # at most 2 chunks per worker in flight: memory stays flat however many pages
                sub = {i: warned[i] for i in c if i in warned}
                pending.add(ex.submit(_render_chunk, store, c, plan, out, sub, template))
                while len(pending) >= 2 * workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        for r in f.result():
                            bar.update(1)
                            yield r
            for f in pending:
                for r in f.result():
                    bar.update(1)
                    yield r
    finally:
        bar.close()


def _static_text(name: str) -> str:
    return resources.files("seco.view").joinpath("static", name).read_text(encoding="utf-8")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text, durable=False)  # a page of the site: rebuilt by a rerun, never torn


def build_view(store_path: str | os.PathLike[str], out: str | os.PathLike[str], config: ViewConfig = ViewConfig(),
               *, progress: bool = True, storage_options: dict[str, Any] | None = None) -> ViewResult:
    """Write the static site of a store into ``out`` (rerun: only missing pages are written).

    Raises:
        StoreError: ``store_path`` is not a store; a ``--check-report`` or ``--failures`` that cannot be read.
        OutputError: ``out`` is inside the store, or holds something else.
        BandError / ConfigError: a false colour the store cannot show, bad settings.
    """
    from seco.store import open_store

    t0 = time.perf_counter()
    store = open_store(store_path, storage_options=storage_options)
    out = Path(out).expanduser().absolute()
    check_out(os.fspath(store_path), out)
    plan = resolve_plan(store, config)
    notes: list[str] = []
    digest = _digest(plan)
    man = _manifest(out, store.path, digest, notes)
    check = SM.load_check_report(SM.default_check_report(out, config.check_report))
    failures, rows = SM.find_failures(store.path, config.failures)
    warned = warned_locations(store, check, rows)
    chosen = choose(len(store), config.max_locations, config.seed, list(warned))
    for sub in ("loc", "ql", "data", "assets"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    _write(out / MANIFEST, json.dumps({**man, "version": VIEW_VERSION, "store": store.path, "digest": digest}))
    todo = [int(i) for i in chosen if not page_path(out, int(i)).is_file()]
    s1_counts: dict[str, list[list[int]]] = dict(man.get("s1_counts", {}))
    for r in _render(store, todo, plan, out, warned, config.workers, progress):
        if r["s1_counts"] is not None:
            s1_counts[str(r["i"])] = r["s1_counts"].tolist()
    write_index(store, out, plan, chosen, warned, check, failures, s1_counts, config.seed)
    _write(out / MANIFEST, json.dumps({"version": VIEW_VERSION, "store": store.path, "digest": digest,
                                       "viewed": len(chosen), "s1_counts": s1_counts}))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return ViewResult(out=out, index=out / "index.html", viewed=len(chosen), written=len(todo),
                      already=len(chosen) - len(todo), warned=len(warned), seconds=time.perf_counter() - t0,
                      bytes=size, notes=notes)


def viewed_table(store: Any, chosen: np.ndarray, warned: dict[int, list[str]]) -> dict[str, Any]:
    """The viewed locations with the per-location fields the map can colour by (columns of equal length)."""
    valid = store.valid_mask()[chosen]  # (n, T)
    lat = SM.first_valid(store.meta_array("lat")[chosen], valid)
    lon = SM.first_valid(store.meta_array("lon")[chosen], valid)
    cloud = np.where(valid, store.meta_array("cloud_fraction")[chosen], np.nan)
    with np.errstate(invalid="ignore"):
        mean_cloud = np.nanmean(np.where(valid.any(axis=1, keepdims=True), cloud, 0.0), axis=1)
    keys = store.keys()
    labels = store.labels()
    cols: dict[str, list[Any]] = {
        "i": [int(i) for i in chosen], "key": [keys[int(i)] for i in chosen],
        "lat": [None if not np.isfinite(x) else round(float(x), 4) for x in lat],
        "lon": [None if not np.isfinite(x) else round(float(x), 4) for x in lon],
        "valid dates": [int(x) for x in valid.sum(axis=1)],
        "mean cloud": [None if not np.isfinite(x) else round(float(x), 3) for x in mean_cloud],
        "warned": [int(i) in warned for i in chosen],
        "why": [warned.get(int(i), []) for i in chosen],
    }
    if labels is not None:
        names = store.label_names
        cols["label"] = [names[labels[i]] if names and 0 <= labels[i] < len(names) else int(labels[i])
                         for i in chosen]
    s1 = getattr(store, "s1", None)
    if s1 is not None:
        cols["S1 dates"] = [int(x) for x in s1.valid_mask()[chosen].sum(axis=1)]
    return cols


def write_index(store: Any, out: Path, plan: Plan, chosen: np.ndarray, warned: dict[int, list[str]],
                check: dict[str, Any] | None, failures: dict[str, Any] | None, s1_counts: dict[str, Any],
                seed: int) -> None:
    """Write ``index.html``, ``data/summary.js``, ``data/locations.js`` and the assets."""
    s1 = getattr(store, "s1", None)
    s1_view = None
    if s1 is not None:
        viewed = np.sum([np.asarray(c) for c in s1_counts.values()], axis=0) if s1_counts else None
        s1_view = SM.s1_histograms(s1, viewed)
    summary = {
        "store": {"path": store.path, "locations": len(store), "dates": store.num_dates, "bands": list(store.bands),
                  "patch_size": store.patch_size, "grid": store.grid, "schema_version": store.config.schema_version,
                  "sensors": list(getattr(store, "sensors", ("s2",)))},
        "viewed": int(len(chosen)), "warned": len(warned),
        "composites": [{"id": c, "title": t} for c, t, _ in plan.composites()] + (
            [{"id": "s1", "title": "Sentinel-1 VV/VH"}] if plan.s1 else []),
        "histograms": SM.optical_histograms(store), "s1": s1_view, "dates": SM.date_views(store),
        "map": SM.map_points(store, seed), "failures": failures, "check": check,
    }
    _write(out / "data" / "summary.js", "window.SECO_SUMMARY = " + to_script(summary) + ";\n")
    _write(out / "data" / "locations.js",
           "window.SECO_LOCATIONS = " + to_script(viewed_table(store, chosen, warned)) + ";\n")
    for name in STATIC:
        _write(out / "assets" / name, _static_text(name))
    _write(out / "index.html", _static_text("index.html"))

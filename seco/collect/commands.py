"""The collection commands: ``seco sample``, ``seco catalog build|search|inspect`` and ``seco collect``.

``seco.cli`` adds them with :func:`register` (``seco.cli.main`` runs them). Every
handler validates its input first and raises a :class:`seco.errors.SecoError` (exit status 2) on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from seco.boundary import RERUN_CONTINUES, Output, declare
from seco.errors import CollectError, ConfigError

# ---------------------------------------------------------------------------------------------- helpers


def _float_or_none(text: str) -> float | None:
    if text.strip().lower() in ("none", "off", "no"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (or 'none')") from None


def _bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        w, s, e, n = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bbox {text!r} must be W,S,E,N in degrees, e.g. 2.2,48.8,2.5,48.9") from None
    return w, s, e, n


# ---------------------------------------------------------------------------------------------- sample


def _add_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="sample locations (around cities or uniform over land) and date windows")
    p.add_argument("--out", required=True, help="GeoParquet file to write (.parquet)")
    p.add_argument("--n", type=int, required=True, help="number of locations")
    p.add_argument("--mode", choices=["cities", "uniform"], default="cities",
                   help="cities: Gaussian around the 10,000 most populous cities (SeCo); uniform: over land")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sigma-km", type=float, default=50.0, help="spread around cities (default 50 km)")
    p.add_argument("--window-days", type=float, default=7.5,
                   help="half-width of each date's search window (official code 7.5; the paper's text says 15)")
    p.add_argument("--end", help="latest reference date YYYY-MM-DD (default today minus 4 weeks)")
    p.add_argument("--n-dates", type=int, default=5, help="dates per location (default 5)")
    p.add_argument("--step-weeks", type=float, default=12.0, help="spacing of the dates (default 12 weeks)")
    p.add_argument("--top-cities", type=int, default=10000)
    p.add_argument("--land-only", action="store_true", help="cities mode: drop candidates at sea")
    p.add_argument("--min-separation-km", type=float, default=None,
                   help="least distance between centres (default: patch diagonal, so patches never overlap)")
    p.add_argument("--bbox", type=_bbox, default=None,
                   help="W,S,E,N in degrees: every location inside this box (uniform: over its land; cities: around "
                        "the cities or --centres inside it)")
    p.add_argument("--centres", metavar="FILE", default=None,
                   help="cities mode: draw around these centres instead of the bundled cities: a CSV of name,lon,lat "
                        "(or lon,lat), or a catalog .parquet (`seco catalog build`) whose scene centres are used, so "
                        "sampling targets a local archive")
    p.add_argument("--plot", help="also draw the locations on a world map (PNG)")
    p.set_defaults(func=_run_sample)
    declare(p, lambda a: [Output(a.out, kind="file"), *([Output(a.plot, "--plot", "file")] if a.plot else [])])


def _run_sample(a: argparse.Namespace) -> int:
    from seco.collect.sampling import run_sample

    path = run_sample(a.out, a.n, mode=a.mode, seed=a.seed, sigma_km=a.sigma_km, window_days=a.window_days,
                      plot=a.plot, end=a.end, top_cities=a.top_cities, n_dates=a.n_dates,
                      step_weeks=a.step_weeks, land_only=a.land_only, min_separation_km=a.min_separation_km,
                      bbox=a.bbox, centres=a.centres)
    print(f"wrote {a.n} locations x {a.n_dates} date windows to {path}" + (f" (map: {a.plot})" if a.plot else ""))
    return 0


# ---------------------------------------------------------------------------------------------- catalog


def _add_catalog(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("catalog", help="build a stac-geoparquet catalog from a folder of scenes, or search one")
    csub = p.add_subparsers(dest="catalog_command", required=True)
    b = csub.add_parser("build", help="index a folder of GeoTIFF/COG scenes into stac-geoparquet")
    b.add_argument("root", help="folder of scenes (one file per band, SAFE/OSCD style, or multi-band)")
    b.add_argument("--out", required=True, help="the .parquet file to write")
    b.add_argument("--collection", default="local", help="collection id of the items (default 'local')")
    b.set_defaults(func=_run_catalog_build)
    declare(b, lambda a: [Output(a.out, kind="file")])
    s = csub.add_parser("search", help="search a STAC API, preset or stac-geoparquet file")
    s.add_argument("--catalog", required=True, help="STAC API URL, earth-search, planetary-computer, or .parquet")
    s.add_argument("--collection", default=None)
    s.add_argument("--bbox", type=_bbox, required=True, help="W,S,E,N in degrees")
    s.add_argument("--start", required=True, help="first time (ISO 8601 date or datetime)")
    s.add_argument("--end", required=True, help="last time, inclusive")
    s.add_argument("--max-cloud", type=_float_or_none, default=None, help="eo:cloud_cover limit in %% (default none)")
    s.add_argument("--bands", default="l2a", help="bands the collection must offer (default l2a)")
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    s.set_defaults(func=_run_catalog_search)
    i = csub.add_parser("inspect", help="what seco will do with one STAC item: per band asset, href, resolution, "
                                        "DN shift and the rule that decided it")
    i.add_argument("item", nargs="?", default=None, help="a STAC item JSON file or its http(s) URL")
    i.add_argument("--id", dest="item_id", default=None, help="item id (with --catalog; or one feature of a file)")
    i.add_argument("--catalog", default=None,
                   help="look the id up here: earth-search, planetary-computer, a STAC API URL or .parquet")
    i.add_argument("--collection", default=None, help="collection of --catalog (default sentinel-2-l2a for APIs)")
    i.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request (default 30)")
    i.add_argument("--json", action="store_true", help="the report as one JSON object")
    i.set_defaults(func=_run_catalog_inspect)


def _run_catalog_build(a: argparse.Namespace) -> int:
    from seco.collect.build import build_catalog

    rep = build_catalog(a.root, a.out, collection=a.collection)
    print(f"indexed {rep.items} scenes into {rep.out}; skipped {len(rep.skipped)} file(s)")
    for path, why in rep.skipped[:20]:
        print(f"  skipped {path}: {why}")
    if len(rep.skipped) > 20:
        print(f"  ... and {len(rep.skipped) - 20} more")
    return 0


def _run_catalog_search(a: argparse.Namespace) -> int:
    from seco.collect.catalog import open_catalog

    if a.limit is not None and a.limit < 1:
        raise ConfigError(f"--limit {a.limit} must be a positive integer")
    cat = open_catalog(a.catalog, a.collection, bands=a.bands)
    items = cat.search(a.bbox, a.start, a.end, max_cloud=a.max_cloud, limit=a.limit)
    for it in items:
        if a.json:
            print(json.dumps({"id": it.id, "datetime": it.datetime.isoformat(), "cloud_cover": it.cloud_cover,
                              "epsg": it.epsg, "bbox": list(it.bbox), "assets": it.assets}))
        else:
            cc = "   ?" if it.cloud_cover is None else f"{it.cloud_cover:5.1f}"
            print(f"{it.datetime:%Y-%m-%dT%H:%M:%SZ}  cloud {cc}%  EPSG:{it.epsg}  {it.id}")
    if not a.json:
        print(f"{len(items)} item(s) from {cat.describe()}", file=sys.stderr)
    return 0


def _run_catalog_inspect(a: argparse.Namespace) -> int:
    from seco.collect.inspect import (
        format_report,
        format_s1_report,
        inspect_item,
        inspect_s1_item,
        is_s1_item,
        load_item,
    )

    item = load_item(a.item, item_id=a.item_id, catalog=a.catalog, collection=a.collection, timeout=a.timeout)
    if is_s1_item(item):
        rep = inspect_s1_item(item)
        print(json.dumps(rep) if a.json else format_s1_report(rep))
        return 0
    rep = inspect_item(item)
    print(json.dumps(rep) if a.json else format_report(rep))
    return 0


# ---------------------------------------------------------------------------------------------- collect


def _add_collect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("collect", help="read one patch per location and date from a STAC catalog into a store "
                                       "(resumable, exactly-once)")
    p.add_argument("--locations", required=True, help="GeoParquet of locations with date windows (seco sample)")
    p.add_argument("--catalog", required=True,
                   help="STAC API URL, preset (earth-search, planetary-computer) or stac-geoparquet file")
    p.add_argument("--out", required=True, help="store folder or fsspec URL (s3://bucket/x.zarr): created, or "
                                                "continued if an earlier run made it")
    p.add_argument("--journal", default=None,
                   help="local folder for the journal, failures table and lock (default <out>/_collect; required "
                        "when --out is a URL; give the same folder on every rerun)")
    p.add_argument("--collection", default=None, help="collection id (default sentinel-2-l2a for APIs)")
    p.add_argument("--bands", choices=["l2a", "l1c"], default="l2a", help="l2a: 12 bands (default); l1c: 13")
    p.add_argument("--patch-size", type=int, default=264, help="patch side in 10 m pixels (default 264)")
    p.add_argument("--grid", choices=["10m", "native"], default=None,
                   help="store grid: 10m (every band on the 10 m grid, default for a new store) or native (20 m / "
                        "60 m bands at their own resolution, 2.16x fewer pixels to decode; patch origins snapped "
                        "to 60 m, the centre moves by at most 30 m); a resumed run takes the store's grid")
    p.add_argument("--max-cloud", type=_float_or_none, default=10.0,
                   help="scene eo:cloud_cover limit in %% (default 10); 'none' also keeps scenes of unknown cover")
    p.add_argument("--max-patch-cloud", type=float, default=None,
                   help="patch cloud/shadow/cirrus fraction limit from the SCL, 0..1 (default max-cloud/100)")
    p.add_argument("--max-nodata", type=float, default=0.0, help="patch nodata fraction limit, 0..1 (default 0)")
    p.add_argument("--policy", choices=["recent", "least-cloudy"], default="recent",
                   help="scene choice per window: most recent (the paper, default) or least cloudy")
    p.add_argument("--spares", type=int, default=None,
                   help="replacement locations for rejected ones (default n/2 + 8; 0: drop rejected locations)")
    p.add_argument("--max-scenes", type=int, default=8, help="candidate scenes tried per date (default 8)")
    p.add_argument("--workers", type=int, default=8, help="I/O threads (default 8)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://HOST:PORT); default local threads")
    p.add_argument("--retries", type=int, default=3, help="retries on timeouts, 429 and 5xx (default 3)")
    p.add_argument("--backoff", type=float, default=0.5, help="first retry wait in seconds, doubling (default 0.5)")
    p.add_argument("--backoff-max", type=float, default=30.0, help="longest retry wait in seconds (default 30)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request, catalog and assets (default 30)")
    p.add_argument("--no-harmonize", action="store_true", help="keep the processing-baseline DN offset as is")
    p.add_argument("--s1", choices=["rtc", "grd"], default=None,
                   help="add Sentinel-1 to every S2 date: rtc (RTC gamma0 -> dB; grd is refused until GRD "
                        "calibration exists); default: Sentinel-2 only")
    p.add_argument("--s1-catalog", default=None,
                   help="where S1 is searched (default: --catalog): planetary-computer, a STAC API URL or .parquet")
    p.add_argument("--s1-collection", default=None, help="S1 collection (default sentinel-1-rtc)")
    p.add_argument("--s1-window", type=float, default=6.0,
                   help="S1 within this many days of each S2 date (default 6: one orbit track's 12-day repeat)")
    p.add_argument("--s1-orbit", choices=["same", "any", "ascending", "descending"], default="same",
                   help="same (default): one orbit state for all dates of a location; or any/ascending/descending")
    p.add_argument("--dry-run", action="store_true", help="check everything, print the expected requests and bytes, "
                                                          "write nothing")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_collect)
    # run_collect claims the store itself (seco.boundary.claim_output); main checks it and names it in errors
    declare(p, lambda a: [] if a.dry_run else [Output(a.out, kind="dir")], lock=False, interrupt=RERUN_CONTINUES)


def collect_config(a: argparse.Namespace) -> Any:
    """The :class:`~seco.collect.config.CollectConfig` of parsed ``seco collect`` arguments."""
    from seco.collect.config import CollectConfig

    return CollectConfig(
        locations=a.locations, catalog=a.catalog, out=a.out, collection=a.collection, bands=a.bands,
        patch_size=a.patch_size, max_cloud=a.max_cloud, max_patch_cloud=a.max_patch_cloud,
        max_nodata=a.max_nodata, policy=a.policy, harmonize=not a.no_harmonize, spares=a.spares,
        max_scenes=a.max_scenes, workers=a.workers, scheduler=a.scheduler, retries=a.retries,
        backoff_s=a.backoff, backoff_max_s=a.backoff_max, timeout_s=a.timeout, progress=not a.no_progress,
        journal=a.journal, grid=a.grid, s1=a.s1, s1_catalog=a.s1_catalog, s1_collection=a.s1_collection,
        s1_window_days=a.s1_window, s1_orbit=a.s1_orbit,
    )


def _run_collect(a: argparse.Namespace) -> int:
    from seco.collect.estimate import estimate
    from seco.collect.pipeline import run_collect
    from seco.collect.plan import plan_collect, remaining

    plan = plan_collect(collect_config(a))
    if a.dry_run:
        for note in plan.notes:
            print(f"note: {note}")
        print(estimate(plan, remaining=remaining(plan)).describe())
        return 0
    summary = run_collect(plan)
    print(summary.describe())
    if summary.committed == 0 and not summary.stalled:
        raise CollectError(
            f"nothing was collected: every one of the {summary.candidates} candidate locations was rejected (the "
            f"reasons are above and in {summary.failures_path}); widen the date windows (seco sample --window-days), "
            "raise --max-cloud / --max-patch-cloud, or sample "
            "other locations"
        )
    return 1 if summary.stalled else 0


# ---------------------------------------------------------------------------------------------- entry


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``sample``, ``catalog`` (``build``, ``search``, ``inspect``) and ``collect`` to a ``seco`` subparser set."""
    for add in (_add_sample, _add_catalog, _add_collect):
        add(sub)

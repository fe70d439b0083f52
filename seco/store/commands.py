"""The store commands: ``seco store check | migrate | info``.

``seco.cli`` adds them with :func:`register`. Bad input raises a :class:`seco.errors.SecoError` (exit status 2);
``store check`` exits 1 when it finds a damaged location, 0 when every location passes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from seco.boundary import RERUN_CONTINUES, Output, declare, keep_store
from seco.errors import ConfigError, StoreError


def location_checks() -> dict[str, Any]:
    """Every per-location check ``seco store check`` knows, by name (one line per check)."""
    from seco.radiometry.consistency import check_location as radiometry
    from seco.store.check import check_integrity

    return {"integrity": check_integrity, "radiometry": radiometry}


def applicable_checks(store: Any, names: list[str] | None) -> tuple[dict[str, Any], list[str]]:
    """The checks to run on ``store``: ``names`` (all when ``None``), and notes on those left out.

    A check the store cannot support (``radiometry`` on a store without ``B02`` and ``B03``) is left out of the
    default set with a note saying so; asked for by name, it is a :class:`ConfigError` before any work.
    """
    from seco.radiometry.consistency import ConsistencyConfig

    known = location_checks()
    if names is not None:
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise ConfigError(f"--checks {names!r}: unknown check(s) {unknown}; choose from {', '.join(known)}")
    chosen = {n: known[n] for n in (names if names is not None else known)}
    notes: list[str] = []
    need = ConsistencyConfig().bands
    if "radiometry" in chosen and not set(need) <= set(store.bands):
        msg = (f"radiometry check not run: it compares the dark objects of {', '.join(need)}, which the store "
               f"(bands {', '.join(store.bands)}) does not hold all of")
        if names is not None:
            raise ConfigError(msg + "; leave it out of --checks")
        del chosen["radiometry"]
        notes.append(msg)
    return chosen, notes


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("store", help="check, migrate, describe or view a seco store")
    ssub = p.add_subparsers(dest="store_command", required=True)

    c = ssub.add_parser("check", help="verify every location (checksums, truncated/missing shards, decoding)")
    c.add_argument("store", help="the store folder")
    c.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    c.add_argument("--checks", default=None,
                   help="comma-separated checks to run (default all: " + ", ".join(location_checks()) + ")")
    c.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(func=_run_check)

    m = ssub.add_parser("migrate", help="copy a store into the current (or another) layout; rerun to resume")
    m.add_argument("src", help="the store to read")
    m.add_argument("dst", help="the new store to write (an interrupted migration into it continues)")
    m.add_argument("--codec", choices=["blosc-lz4", "blosc-zstd", "zstd"], default=None)
    m.add_argument("--clevel", type=int, default=None)
    m.add_argument("--shuffle", choices=["noshuffle", "shuffle", "bitshuffle"], default=None)
    m.add_argument("--inner-chunk", choices=["date-band", "date"], default=None)
    m.add_argument("--no-checksum", action="store_true", help="write no per-chunk CRC32C (not recommended)")
    m.add_argument("--grid", choices=["10m", "native"], default=None,
                   help="native: keep 20 m / 60 m bands at their native resolution (schema version 2, 2.16x fewer "
                        "pixels to decode for 12 bands; needs block-constant bands); 10m: every band on the 10 m "
                        "grid (version 1). Default: the source's grid")
    m.add_argument("--on-corrupt", choices=["error", "skip"], default="error",
                   help="a damaged source location stops the migration (error) or is left out (skip)")
    m.add_argument("--no-progress", action="store_true")
    m.set_defaults(func=_run_migrate)
    declare(m, lambda a: [Output(a.dst, "DST", "dir", keep=keep_store)], interrupt=RERUN_CONTINUES)

    i = ssub.add_parser("info", help="print a store's size, bands, layout, checksums, valid dates, date range and "
                                     "per-band statistics")
    i.add_argument("store")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_run_info)

    from seco.view.commands import register as register_view

    register_view(ssub)


def _run_check(a: argparse.Namespace) -> int:
    from seco.store import open_store
    from seco.store.check import check_store

    store = open_store(a.store)
    if len(store) == 0:
        raise StoreError(f"{store.path} holds no locations, so there is nothing to check (a run stopped before its "
                         "first location, or one that rejected every location); rerun the command that writes it")
    names = None if not a.checks else [n.strip() for n in a.checks.split(",") if n.strip()]
    checks, notes = applicable_checks(store, names)
    report = check_store(store, checks=checks, workers=a.workers, progress=not a.no_progress)
    report.notes.extend(notes)
    if a.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for f in report.findings:
            print(f"{f.severity}: location {f.location} (key {f.key!r}) [{f.check}] {f.problem}"
                  + (f"; file {f.path}" if f.path else ""))
        for note in report.notes:
            print(f"note: {note}")
        bad = report.bad_locations
        warned = sorted({f.location for f in report.findings if f.severity == "warning"})
        print(f"{report.checked} location(s) checked ({', '.join(report.checks)}) in {report.seconds:.1f} s: "
              + (f"{len(warned)} with warnings (usable; see above), " if warned else "")
              + ("no damage" if not bad else f"{len(bad)} bad: {', '.join(map(str, bad[:20]))}"
                 + (" ..." if len(bad) > 20 else "")
                 + "; re-collect or leave them out (`seco pretrain --on-corrupt skip`)"))
    return 0 if report.ok else 1


def _run_migrate(a: argparse.Namespace) -> int:
    from dataclasses import replace

    from seco.store.migrate import disk_bytes, migrate_store
    from seco.store.schema import StoreLayout

    options: dict[str, Any] = {k: v for k, v in (("codec", a.codec), ("clevel", a.clevel), ("shuffle", a.shuffle),
                                                  ("inner_chunk", a.inner_chunk)) if v is not None}
    if a.no_checksum:
        options["checksum"] = False
    if a.grid is None:  # keep the source's grid
        from seco.store import open_store

        options["grid"] = open_store(a.src).grid
    else:
        options["grid"] = a.grid
    layout = replace(StoreLayout(), **options)
    r = migrate_store(a.src, a.dst, layout=layout, on_corrupt=a.on_corrupt, progress=not a.no_progress)
    print(f"{r.dest}: {r.copied} location(s) copied, {r.already} already there"
          + (f", {len(r.skipped)} damaged left out: {r.skipped[:20]}" if r.skipped else ""), file=sys.stdout)
    if os.path.isdir(a.src) and os.path.isdir(a.dst):
        print(f"image bytes: {disk_bytes(a.src) / 1e6:.1f} MB -> {disk_bytes(a.dst) / 1e6:.1f} MB")
    return 0


def _dates_summary(s: Any) -> dict[str, Any]:
    """Valid dates per location (min / mean / max and how many locations have k valid dates) and the range of
    the valid dates' acquisition times."""
    import numpy as np

    valid = s.valid_mask()  # (N, T)
    if not len(s):
        return {"valid_dates": None, "date_range": None}
    per = valid.sum(axis=1)  # (N,)
    counts = np.bincount(per, minlength=s.num_dates + 1)
    when = s.meta_array("datetime")[valid]  # (V,) datetime64[us]
    when = when[~np.isnat(when)]
    return {
        "valid_dates": {"total": int(per.sum()), "per_location_min": int(per.min()),
                        "per_location_mean": round(float(per.mean()), 3), "per_location_max": int(per.max()),
                        "locations_with": {str(k): int(c) for k, c in enumerate(counts) if c}},
        "date_range": ([str(when.min())[:19] + "Z", str(when.max())[:19] + "Z"] if when.size else None),
    }


def _band_stats(s: Any) -> dict[str, dict[str, float]] | str:
    """Per-band mean, std, 2nd and 98th percentile in DN over the clear pixels of valid dates (the valid pixels in
    a store without clear masks; nodata 0 left out), or why not."""
    if not len(s):
        return "none: the store holds no locations"
    try:
        st = s.stats()
    except StoreError as e:
        return f"none: {e}"
    return {b: {k: round(float(st[k][i]), 1) for k in ("mean", "std", "p2", "p98")} for i, b in enumerate(s.bands)}


def _s1_summary(s: Any) -> dict[str, Any] | None:
    """The S1 group in a few numbers: coverage of the valid S2 dates, products, orbit states, dB statistics."""
    import numpy as np

    if s.s1 is None:
        return None
    out: dict[str, Any] = {"bands": list(s.s1.bands), "units": s.s1.units, **s.s1.coverage()}
    if len(s):
        valid = s.s1.valid_mask()
        for name in ("product", "orbit_state", "rule"):
            values, counts = np.unique(s.s1.meta_array(name)[valid].astype(str), return_counts=True)
            out[f"{name}s"] = {str(v): int(c) for v, c in zip(values, counts, strict=True)}
        offsets = s.s1.meta_array("time_offset_days")[valid]
        out["abs_time_offset_days_max"] = round(float(np.abs(offsets).max()), 2) if offsets.size else None
        try:
            st = s.s1.stats()
            out["band_stats_db"] = {b: {k: round(float(st[k][i]), 2) for k in ("mean", "std", "p2", "p98")}
                                    for i, b in enumerate(s.s1.bands)}
        except StoreError as e:
            out["band_stats_db"] = f"none: {e}"
    return out


def _run_info(a: argparse.Namespace) -> int:
    from dataclasses import asdict

    from seco.store import open_store
    from seco.store.migrate import disk_bytes

    s = open_store(a.store)
    nbytes = disk_bytes(a.store) if os.path.isdir(a.store) else None
    info = {
        "path": s.path, "locations": len(s), "dates": s.num_dates, "bands": list(s.bands),
        "patch_size": s.patch_size, "label_names": s.label_names, "layout": asdict(s.config.layout),
        "checksums": s.has_checksums, "grid": s.grid, "grid_factors": s.grid_factors, "image_arrays": s.image_arrays,
        "schema_version": s.config.schema_version,
        "image_bytes": nbytes,
        "mb_per_location": round(nbytes / len(s) / 1e6, 3) if nbytes is not None and len(s) else None,
        **_dates_summary(s),
        "band_stats_dn": _band_stats(s),
        "band_stats_pixels": s.stats_method() if len(s) else None,
        "sensors": list(s.sensors),
        "s1": _s1_summary(s),
    }
    if a.json:
        print(json.dumps(info, indent=2))
        return 0
    for k, v in info.items():
        if k == "band_stats_dn" and isinstance(v, dict):
            print(f"band_stats_dn: (mean, std, p2, p98 over the {'clear' if s.has_clear else 'valid'} pixels of "
                  "valid dates; nodata 0 left out)")
            for b, st in v.items():
                print(f"  {b}: " + ", ".join(f"{n} {x:g}" for n, x in st.items()))
        elif k == "s1" and isinstance(v, dict):
            print("s1:")
            for n, x in v.items():
                print(f"  {n}: {x}")
        else:
            print(f"{k}: {v}")
    return 0

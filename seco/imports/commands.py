"""``seco import {seco,ssl4eo-s12} ROOT --out STORE``: pre-train on a published corpus without re-collecting.

``seco.cli`` adds it with :func:`register`. Bad input raises a :class:`seco.errors.SecoError` (exit status 2)
before any work.
"""

from __future__ import annotations

import argparse
import os

from seco.boundary import RERUN_CONTINUES, Output, declare
from seco.errors import CorpusError


def _add_common(p: argparse.ArgumentParser, modality: bool) -> None:
    p.add_argument("root", help="the unpacked corpus folder")
    p.add_argument("--out", required=True, help="store folder: created, or continued if an earlier run made it")
    if modality:
        p.add_argument("--modality", default="s2c",
                       help="s2c (L1C, 13 bands, default) or s2a (L2A, 12 bands); Sentinel-1 comes with them: --with-s1")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--workers", type=int, default=None,
                     help=f"reader processes (default min(4, CPUs) = {min(4, os.cpu_count() or 1)}; 0: this process)")
    how.add_argument("--dask", "--scheduler", dest="dask", metavar="ADDRESS", default=None,
                     help="Dask scheduler address (tcp://HOST:PORT) whose workers read the files "
                          "(--scheduler, as in seco collect, is the same flag; the corpus must be at the same "
                          "path on every worker; a relative ROOT is made absolute here first)")
    p.add_argument("--min-dates", type=int, default=3,
                   help="fewest valid dates a location needs (default 3: SeCo; 2: MoCo-v2+TP; 1: MoCo-v2)")
    p.add_argument("--patch-size", type=int, default=264, help="10 m pixels per side (default 264, the corpora's)")
    p.add_argument("--limit", type=int, default=None, help="import only the first N locations (by id)")
    p.add_argument("--commit-every", type=int, default=16,
                   help="locations per store commit (default 16); a crash re-reads at most the uncommitted ones")
    p.add_argument("--grid", choices=["10m", "native"], default=None,
                   help="store grid: 10m (every band on the 10 m grid, default for a new store) or native (20 m / "
                        "60 m bands kept at the corpus' own resolution: 2.16x fewer pixels to decode); a rerun "
                        "takes the store's grid")
    p.add_argument("--no-progress", action="store_true")


def _run(a: argparse.Namespace) -> int:
    from seco.imports.pipeline import ImportConfig, run_import

    workers = a.workers if a.workers is not None else min(4, os.cpu_count() or 1)
    cfg = ImportConfig(corpus=a.corpus, root=a.root, out=a.out, modality=getattr(a, "modality", None),
                       workers=workers, dask=a.dask, min_dates=a.min_dates, patch_size=a.patch_size,
                       limit=a.limit, commit_every=a.commit_every, progress=not a.no_progress, grid=a.grid,
                       with_s1=getattr(a, "with_s1", False), v11_offset=getattr(a, "v11_offset", "auto"))
    report = run_import(cfg)  # Ctrl-C: seco.cli.main says how to continue
    print(report.describe())
    if report.imported == 0:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(report.skip_kinds.items(), key=lambda kv: -kv[1]))
        raise CorpusError(
            f"nothing was imported: every one of the {report.locations_found} locations was skipped ({kinds or '-'}; "
            "the reasons are above)" + ("; the empty store was removed, so a rerun with other settings starts afresh"
                                        if report.store_removed else "")
        )
    print(f"report: {os.path.join(report.store, '_import', 'report.json')}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``import`` (``seco``, ``ssl4eo-s12``) to a ``seco`` subparser set."""
    p = sub.add_parser("import", help="import a published corpus (SeCo 100k/1M, SSL4EO-S12) into a store "
                                      "(parallel, resumable, exactly-once)")
    isub = p.add_subparsers(dest="corpus", required=True)
    s = isub.add_parser("seco", help="the SeCo paper's corpus (seco_100k / seco_1m: uint8 JPEG GeoTIFFs, 5 dates)")
    _add_common(s, modality=False)
    s.add_argument("--modality", default=None, help=argparse.SUPPRESS)  # refused with an explanation if given
    t = isub.add_parser("ssl4eo-s12", help="SSL4EO-S12 v1 (uint16 GeoTIFFs, 4 seasons; s2c or s2a, --with-s1)")
    _add_common(t, modality=True)
    t.add_argument("--with-s1", action="store_true",
                   help="also import s1/ (Sentinel-1 GRD VV/VH in dB) into the store's S1 group, each season on the "
                        "date of its S2 season; an S2 date without S1 keeps its S2")
    v = isub.add_parser("ssl4eo-s12-v1.1", help="SSL4EO-S12 v1.1 (Zarr-zip files of 64 locations x 4 timestamps; "
                                                "s2c or s2a, --with-s1)")
    _add_common(v, modality=True)
    v.add_argument("--with-s1", action="store_true",
                   help="also import S1GRD (float16 dB VV/VH) into the store's S1 group, on the S2 dates")
    v.add_argument("--v11-offset", choices=["auto", "1000", "0"], default="auto",
                   help="DN the S2 values carry: auto (default: decided per file from its darkest valid values; the "
                        "Zarr-zip release carries +1000, docs/IMPORT.md), 1000 or 0")
    for q in (s, t, v):
        q.set_defaults(func=_run)
        # run_import claims the store itself (seco.boundary.claim_output); main checks it and names it in errors
        declare(q, lambda a: [Output(a.out, kind="dir")], lock=False, interrupt=RERUN_CONTINUES)

"""The ``seco store view`` subcommand (registered by :func:`seco.store.commands.register`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seco.boundary import RERUN_CONTINUES, Output, declare, keep_nonempty


def register(ssub: Any) -> None:
    """Add ``view`` to the ``seco store`` subcommands."""
    v = ssub.add_parser("view", help="write a static HTML browser of a store (map, time strips, histograms, failures)")
    v.add_argument("store", help="the store folder (or URL)")
    v.add_argument("--out", required=True, help="the folder to write the site into (not inside the store)")
    v.add_argument("--max-locations", type=int, default=200,
                   help="locations drawn for pages (seeded; default 200); every warned location is added")
    v.add_argument("--seed", type=int, default=0, help="seed of that draw (default 0)")
    v.add_argument("--false-colour", default=None,
                   help="three bands for the false colour, e.g. B08,B04,B03 (default, when present) or B12,B08,B04")
    v.add_argument("--thumb", type=int, default=128, help="quicklook side in pixels (default 128)")
    v.add_argument("--workers", type=int, default=1, help="processes writing quicklooks (default 1)")
    v.add_argument("--check-report", default=None,
                   help="the JSON of `seco store check --json` (default <out>/check.json when present)")
    v.add_argument("--failures", default=None,
                   help="a collect failures table or its --journal folder (default <store>/_collect/failures.parquet)")
    v.add_argument("--no-progress", action="store_true")
    v.set_defaults(func=_run_view)
    declare(v, lambda a: [Output(a.out, "--out", "dir", keep=keep_nonempty)], lock=False, interrupt=RERUN_CONTINUES)


def _run_view(a: argparse.Namespace) -> int:
    from seco.boundary import claim_output
    from seco.store import open_store
    from seco.view.build import ViewConfig, build_view, check_out

    config = ViewConfig(max_locations=a.max_locations, seed=a.seed, false_colour=a.false_colour, thumb=a.thumb,
                        workers=a.workers, check_report=a.check_report, failures=a.failures)
    open_store(a.store)  # not a store: one line before anything is created
    check_out(a.store, Path(a.out))
    with claim_output(a.out, "seco store view", kind="dir", keep=keep_nonempty):
        r = build_view(a.store, a.out, config, progress=not a.no_progress)
    print(r.describe())
    return 0

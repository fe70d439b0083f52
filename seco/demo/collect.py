"""Steps 2 and 3 of the demo: sample locations around the archive's tiles, and collect them into a store.

Sampling is the SeCo sampler (Gaussian around "cities") with the archive's tile centres as the cities and the
date windows pinned to the archive's dates; collection is :mod:`seco.collect.pipeline` on the archive's local
stac-geoparquet catalog with a thread pool (rejected locations replaced by spares, failures recorded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seco.demo.archive import date_schedule, site_centres
from seco.errors import CollectError

#: Sampling spread around a tile centre, as a fraction of the tile side.
SIGMA_FRACTION = 0.2


def sample_locations(out: Path, man: dict[str, Any], seed: int, n: int, patch_px: int) -> dict[str, Any]:
    """Sample ``n`` locations around the tile centres, write them (reusing an identical file) and the world map.

    Returns:
        ``locations_path``, ``sample`` (the SampleConfig) and ``centres`` (:func:`site_centres`).
    """
    from seco.collect.sampling import SampleConfig, plot_locations, read_locations, sample, write_locations

    centres = site_centres(man)
    scene_km = man["config"]["scene_px"] / 100.0
    cfg = SampleConfig(n=n, mode="cities", seed=seed, sigma_km=SIGMA_FRACTION * scene_km, patch_km=patch_px / 100.0,
                       dates=date_schedule(man), centres=centres)
    print(f"[2/9] sample: {n} locations, Gaussian (sigma {cfg.sigma_km:.2f} km) around the {len(centres)} tile "
          f"centres, non-overlapping; windows +/-{cfg.dates.window_days:g} days around the archive's dates")
    path = out / "locations.parquet"
    loc = sample(cfg)
    if not (path.is_file() and read_locations(path).config == loc.config):
        write_locations(loc, path)  # rewritten only when it differs: its hash fingerprints the collected store
    plot_locations(path, out / "locations.png", title=f"{n} sampled locations (around {len(centres)} tile centres)")
    return {"locations_path": path, "sample": cfg, "centres": centres}


def collect_store(out: Path, archive: Path, locations: Path, patch_px: int, workers: int, progress: bool
                  ) -> dict[str, Any]:
    """Run the collection pipeline into ``out/collected``; what the report needs.

    Raises:
        CollectError: the collection stalled (a rerun of the demo continues it).
    """
    from seco.collect.config import CollectConfig
    from seco.collect.journal import read_failures
    from seco.collect.pipeline import run_collect
    from seco.collect.plan import plan_collect
    from seco.collect.records import FAULT_KINDS
    from seco.store import open_store
    from seco.synth.archive import PARQUET

    store = out / "collected"
    cfg = CollectConfig(locations=str(locations), catalog=str(archive / PARQUET), out=str(store),
                        patch_size=patch_px, workers=workers, progress=progress)
    plan = plan_collect(cfg)
    print(f"[3/9] collect: {plan.target} locations (+ {len(plan.tasks) - plan.target} spares) x {plan.num_dates} "
          f"dates, {patch_px} px, from the local stac-geoparquet catalog, {workers} threads")
    summary = run_collect(plan)
    print("\n".join("    " + line for line in summary.describe().splitlines()))
    if summary.stalled:
        raise CollectError(f"collection stopped early: {summary.stalled}; rerun the demo to continue")
    st = open_store(store)
    fails = read_failures(store)
    return {
        "store": store, "config": cfg, "summary": summary, "collected": len(st), "keys": st.keys(),
        "candidates": [(t.id, t.lon, t.lat, t.spare) for t in plan.tasks], "target": plan.target,
        "spares": len(plan.tasks) - plan.target, "failures": failures_by_kind(fails), "fault_kinds": FAULT_KINDS,
        "failure_rows": len(fails),
    }


def failures_by_kind(fails: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows of the failures table grouped by kind: ``rows``, the distinct scene ``items`` and a first ``example``."""
    by_kind: dict[str, dict[str, Any]] = {}
    for f in fails:
        k = by_kind.setdefault(f["kind"], {"rows": 0, "items": set(), "example": f["reason"]})
        k["rows"] += 1
        if f["item_id"]:
            k["items"].add(f["item_id"])
    return by_kind

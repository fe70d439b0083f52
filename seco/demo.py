"""``make demo`` / ``seco demo``: the whole system offline, from a simulated scene archive to a linear probe.

1. archive: :func:`seco.synth.archive.make_archive` writes a seeded COG + STAC archive (3 UTM zones x 5 dates x
   3 passes 5 days apart, with clouds, swath edges and a few broken assets) and its stac-geoparquet index;
2. sample: the SeCo sampler (Gaussian around "cities") with the archive's tile centres as the cities, and the
   date windows pinned to the archive's dates;
3. collect: :mod:`seco.collect.pipeline` on the local stac-geoparquet catalog with a thread pool, into a store
   (rejected locations replaced by spares, failures recorded);
4. SeCo pre-training on the collected store (a wall-clock budget), 5. export;
6. a linear probe on land-cover labels, SeCo against a random-init backbone. The collected store has no labels,
   so the probe runs on a labelled store of the same simulator (:func:`seco.synth.make_store`);
7. downstream evaluation (:mod:`seco.demo_eval`); every backbone normalised with the evaluation data's own
   statistics (one policy, see docs/FIDELITY.md);
8. ``report.md`` (sections and plots: :mod:`seco.demo_report`) with every number taken from the run.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from seco.bands import parse_bands
from seco.demo_report import Stage, plot_probe, plot_sites, report_lines, timed, timing_lines
from seco.errors import CollectError, ConfigError

#: UTM zones of the demo archive (one site each).
ZONES = (31, 32, 33)
#: Chances of a clear, scattered and overcast scene: fewer clouds than make_archive's default, so that most
#: (site, date) pairs keep a usable pass; the collector still meets clouds, edges and broken assets.
CLOUD_PROBS = (0.85, 0.12, 0.03)
EDGE_PROB = 0.2
#: Sampling spread around a tile centre, as a fraction of the tile side.
SIGMA_FRACTION = 0.2
#: Small sizes for tests and a first look (``seco demo --quick``): about a minute.
QUICK: dict[str, Any] = dict(
    locations=40, patch_size=48, crop=32, batch_size=8, queue_size=64, max_steps=5,
    collect_locations=12, collect_patch=32, scene_px=360, quick_eval=True,
)


# ---------------------------------------------------------------------------------------------- archive


def _archive(root: Path, seed: int, scene_px: int, passes: int) -> dict[str, Any]:
    """Make the demo archive under ``root`` (or reuse a finished one made with the same settings)."""
    from seco.synth.archive import (
        DEFAULT_DATES,
        MANIFEST,
        NDJSON,
        PARQUET,
        make_archive,
        read_manifest,
        write_index,
    )

    num_scenes = len(ZONES) * len(DEFAULT_DATES) * passes
    want: dict[str, Any] = {"seed": seed, "zones": list(ZONES), "dates": [d.isoformat() for d in DEFAULT_DATES],
                            "num_scenes": num_scenes, "scene_px": scene_px,
                            "cloud_probs": list(CLOUD_PROBS), "edge_prob": EDGE_PROB}
    if (root / MANIFEST).is_file():
        have = read_manifest(root)["config"]
        diff = [k for k, v in want.items() if have.get(k) != v]
        if diff:
            raise ConfigError(f"{root} holds an archive made with other settings ({', '.join(diff)}); remove "
                              "it or give the demo another --out")
        if not (root / PARQUET).is_file():
            write_index(root)  # interrupted between the manifest and the index
        return read_manifest(root)
    if root.exists():  # an interrupted earlier attempt: make_archive needs an empty folder
        ours = {"collection.json", MANIFEST, PARQUET, NDJSON}
        strays = [p.name for p in root.iterdir() if p.name not in ours and not p.name.startswith("S2")]
        if strays:
            raise ConfigError(f"{root} holds files that are not a demo archive ({', '.join(sorted(strays)[:3])}); "
                              "remove them or give the demo another --out")
        shutil.rmtree(root)
    make_archive(root, seed=seed, num_scenes=num_scenes, zones=ZONES, dates=DEFAULT_DATES,
                 scene_px=scene_px, progress=False, cloud_probs=CLOUD_PROBS, edge_prob=EDGE_PROB)
    return read_manifest(root)


def _site_centres(man: dict[str, Any]) -> tuple[tuple[str, float, float], ...]:
    """(name, lon, lat) of the centre of each site's tile."""
    from rasterio.warp import transform

    half = man["config"]["scene_px"] * 5.0  # metres: half the tile side at 10 m
    out = []
    for s in man["sites"]:
        lon, lat = transform(f"EPSG:{s['epsg']}", "EPSG:4326", [s["x0"] + half], [s["y0"] - half])
        out.append((f"tile {s['tile']} (UTM {s['zone']})", float(lon[0]), float(lat[0])))
    return tuple(out)


def _schedule(man: dict[str, Any]) -> Any:
    """A DateSchedule whose windows are centred on the archive's dates and hold every pass of a date."""
    from seco.collect.dates import DateSchedule
    from seco.synth.archive import REVISIT_DAYS

    dates = [dt.date.fromisoformat(d) for d in man["config"]["dates"]]
    steps = {(b - a).days for a, b in zip(dates, dates[1:], strict=False)}
    if len(steps) > 1:
        raise ConfigError(f"archive dates {dates} are not evenly spaced; the SeCo date schedule needs that")
    passes = -(-man["config"]["num_scenes"] // (len(man["sites"]) * len(dates)))
    return DateSchedule(n_dates=len(dates), step_weeks=(steps.pop() / 7.0) if steps else 12.0,
                        window_days=REVISIT_DAYS * (passes - 1) + 2.0, span_days=1, end=dates[-1])


# ---------------------------------------------------------------------------------------------- run


def run_demo(
    out: Path,
    minutes: float = 4.0,
    seed: int = 0,
    locations: int = 512,
    patch_size: int = 96,
    crop: int = 64,
    batch_size: int = 64,
    *,
    collect_locations: int = 96,
    collect_patch: int = 64,
    scene_px: int = 1098,
    passes: int = 3,
    workers: int = 4,
    queue_size: int = 4096,
    max_steps: int | None = None,
    quick_eval: bool = False,
    progress: bool = True,
) -> Path:
    """Run the demo into ``out`` and return the path of its Markdown report.

    Args:
        out: output folder (rerunning into it reuses the archive and continues the store and the run).
        minutes: pre-training wall-clock budget.
        seed: seeds the archive, the sampler, the probe store, training and the probe split.
        locations: locations of the labelled synth store used by the probe.
        patch_size: patch side of the probe store.
        crop: view size in pre-training and the probe's centre crop (at most both patch sides).
        batch_size: pre-training batch (at most the number of collected locations).
        collect_locations: locations to sample and collect from the archive.
        collect_patch: patch side of the collected store, in 10 m pixels.
        scene_px: archive tile side in 10 m pixels.
        passes: acquisitions per site and date (5 days apart).
        workers: collection threads.
        queue_size: negatives per subspace (a multiple of ``batch_size``).
        max_steps: stop pre-training after this many steps too (tests).
        quick_eval: the smallest downstream evaluation (tests).
        progress: progress bars.

    Raises:
        ConfigError: inconsistent sizes, or ``out`` holding outputs of other settings.
        CollectError: the collection stalled or gave fewer locations than one batch.
    """
    if crop > min(patch_size, collect_patch):
        raise ConfigError(f"crop={crop} must be at most patch_size={patch_size} and collect_patch={collect_patch}")
    if queue_size % batch_size:
        raise ConfigError(f"queue_size={queue_size} must be a multiple of batch_size={batch_size}")
    if passes < 1:
        raise ConfigError(f"passes={passes} must be >= 1")
    if collect_locations < batch_size:
        raise ConfigError(f"collect_locations={collect_locations} must be at least batch_size={batch_size}")
    from seco.demo_eval import eurosat_from_env, run_demo_eval

    eurosat_from_env()  # a bad $SECO_EUROSAT_ROOT fails now, not after pre-training
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stages: list[Stage] = []
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()

    with timed(stages, "scene archive (make_archive)"):
        from seco.synth.archive import DEFAULT_DATES

        n_dates = len(DEFAULT_DATES)
        print(f"[1/9] scene archive: {len(ZONES)} UTM zones x {n_dates} dates x {passes} passes = "
              f"{len(ZONES) * n_dates * passes} scenes "
              f"of {scene_px} px (COG + STAC, stac-geoparquet index)")
        archive = out / "archive"
        man = _archive(archive, seed, scene_px, passes)

    with timed(stages, "sampling (SeCo sampler)"):
        coll = _sample(out, man, seed, collect_locations, collect_patch)
    with timed(stages, "collection (seco.collect pipeline)"):
        coll.update(_collect(out, archive, coll["locations_path"], collect_patch, workers, progress))
        if coll["collected"] < batch_size:
            raise CollectError(f"only {coll['collected']} locations were collected, fewer than one batch of "
                               f"{batch_size}; lower batch_size or sample more locations")
    with timed(stages, "collection report plots"):
        plot_sites(man, coll, out / "collect_sites.png")

    with timed(stages, "labelled probe store (make_store)"):
        probe_path = out / "probe_store"
        print(f"[4/9] labelled synth store for the probe: {locations} locations x 5 dates x 12 bands x {patch_size} px")
        from seco.store import open_store
        from seco.synth import make_store

        make_store(probe_path, num_locations=locations, patch_size=patch_size, seed=seed, progress=progress)
        probe_store = open_store(probe_path)

    with timed(stages, "SeCo pre-training"):
        train = _pretrain(out, coll["store"], seed, minutes, crop, batch_size, queue_size, max_steps, progress)
    with timed(stages, "export"):
        from seco.train.export_run import export_run

        print("[6/9] export")
        paths = export_run(train["checkpoint"], out / "weights" / "seco_resnet18")
        weights = next(p for p in paths if p.suffix == ".safetensors")
    with timed(stages, "linear probe"):
        bands = parse_bands("all", open_store(coll["store"]).bands)
        results, names = _probe(out, probe_store, bands, crop, seed, weights)
    with timed(stages, "downstream evaluation (EuroSAT, synthetic OSCD)"):
        print("[8/9] downstream evaluation: EuroSAT probe (when $SECO_EUROSAT_ROOT is set) and change "
              "detection on a simulated OSCD, SeCo vs random init")
        evaluation = run_demo_eval(out, weights, seed=seed, quick=quick_eval, progress=progress)

    report = out / "report.md"
    lines = report_lines(out, man, coll, train, results, names, probe_store, bands, weights, minutes, batch_size,
                    crop, paths)
    lines += ["", *evaluation["markdown"].splitlines(), ""]
    total = time.perf_counter() - t0
    lines += timing_lines(stages, total, load0)
    report.write_text("\n".join(lines) + "\n")
    print(f"[9/9] report: {report} ({total / 60:.1f} min)")
    return report


def _sample(out: Path, man: dict[str, Any], seed: int, n: int, patch_px: int) -> dict[str, Any]:
    """Sample ``n`` locations around the tile centres, write them (reusing an identical file) and the world map."""
    from seco.collect.sampling import SampleConfig, plot_locations, read_locations, sample, write_locations

    centres = _site_centres(man)
    scene_km = man["config"]["scene_px"] / 100.0
    cfg = SampleConfig(n=n, mode="cities", seed=seed, sigma_km=SIGMA_FRACTION * scene_km, patch_km=patch_px / 100.0,
                       dates=_schedule(man), centres=centres)
    print(f"[2/9] sample: {n} locations, Gaussian (sigma {cfg.sigma_km:.2f} km) around the {len(centres)} tile "
          f"centres, non-overlapping; windows +/-{cfg.dates.window_days:g} days around the archive's dates")
    path = out / "locations.parquet"
    loc = sample(cfg)
    if not (path.is_file() and read_locations(path).config == loc.config):
        write_locations(loc, path)  # rewritten only when it differs: its hash fingerprints the collected store
    plot_locations(path, out / "locations.png", title=f"{n} sampled locations (around {len(centres)} tile centres)")
    return {"locations_path": path, "sample": cfg, "centres": centres}


def _collect(out: Path, archive: Path, locations: Path, patch_px: int, workers: int, progress: bool
             ) -> dict[str, Any]:
    """Run the collection pipeline into ``out/collected``; what the report needs."""
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
    by_kind: dict[str, dict[str, Any]] = {}
    for f in fails:
        k = by_kind.setdefault(f["kind"], {"rows": 0, "items": set(), "example": f["reason"]})
        k["rows"] += 1
        if f["item_id"]:
            k["items"].add(f["item_id"])
    return {
        "store": store, "config": cfg, "summary": summary, "collected": len(st), "keys": st.keys(),
        "candidates": [(t.id, t.lon, t.lat, t.spare) for t in plan.tasks], "target": plan.target,
        "spares": len(plan.tasks) - plan.target, "failures": by_kind, "fault_kinds": FAULT_KINDS,
        "failure_rows": len(fails),
    }


def _pretrain(out: Path, store: Path, seed: int, minutes: float, crop: int, batch_size: int, queue_size: int,
              max_steps: int | None, progress: bool) -> dict[str, Any]:
    from seco.train.config import PretrainConfig
    from seco.train.loop import pretrain

    run = out / "pretrain"
    print(f"[5/9] SeCo pre-training on the collected store: ResNet-18, {crop} px views, {minutes:g} min budget")
    cfg = PretrainConfig(
        store=str(store), out=str(run), method="seco", backbone="resnet18", bands="all", crop=crop,
        batch_size=batch_size, epochs=1000, max_steps=max_steps, max_minutes=minutes, queue_size=queue_size,
        schedule="cosine", log_every=5, ckpt_every=50, plot_every=50, seed=seed, tensorboard=False,
        progress=progress,
    )
    # a saved run on another store or with other settings is refused, not silently continued
    given = {"store", "method", "backbone", "bands", "crop", "batch_size", "queue_size", "seed", "schedule"}
    resume = (run / "last.ckpt").exists()
    if resume and (run / "config.yaml").is_file():
        import yaml

        saved = yaml.safe_load((run / "config.yaml").read_text()) or {}
        diff = [k for k in sorted(given) if str(saved.get(k)) != str(getattr(cfg, k))]
        if diff:
            raise ConfigError(f"{run} holds a pre-training run with other settings ({', '.join(diff)}), e.g. from "
                              "an earlier demo; remove it or give the demo another --out")
    res = pretrain(cfg, resume=resume, given=given)
    loss = res.final_loss
    if not math.isfinite(loss):  # a resumed run that had nothing left to do: its last logged loss
        with open(run / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        loss = float(rows[-1]["loss"]) if rows else loss
    return {"run": run, "checkpoint": res.checkpoint, "steps": res.steps, "final_loss": loss, "max_steps": max_steps}


def _probe(out: Path, store: Any, bands: tuple[str, ...], crop: int, seed: int, weights: Path
           ) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Linear probe of SeCo and random init, both normalised with the probe data's own statistics."""
    from seco.experiment.evaluate import probe, probe_images

    print("[7/9] linear probe on the synth land-cover labels: SeCo vs random init")
    x, y = probe_images(store, bands, crop, seed)
    results = {}
    for name, w in (("SeCo (this run)", str(weights)), ("random init", "random")):
        r = probe(w, bands, seed, x, y, split_seed=seed)  # checks that the frozen backbone did not change
        results[name] = {"test_acc": r["value"], "val_acc": r["val"], "C": r["C"]}
        print(f"    {name}: test accuracy {100 * r['value']:.1f} % (C={r['C']:g})")
    (out / "probe.json").write_text(json.dumps(results, indent=2))
    plot_probe(results, out / "probe.png")
    names = store.label_names or [str(c) for c in np.unique(y)]
    return results, names

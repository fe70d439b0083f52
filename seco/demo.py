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
7. ``report.md`` with every number taken from the run.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seco.bands import parse_bands
from seco.data.splits import stratified_split
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


@dataclass
class Stage:
    """Wall and process CPU seconds of one demo stage (CPU summed over all threads)."""

    name: str
    wall_s: float = 0.0
    cpu_s: float = 0.0


@contextmanager
def _timed(stages: list[Stage], name: str) -> Iterator[Stage]:
    st = Stage(name)
    w, c = time.perf_counter(), time.process_time()
    try:
        yield st
    finally:
        st.wall_s, st.cpu_s = time.perf_counter() - w, time.process_time() - c
        stages.append(st)


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


# ---------------------------------------------------------------------------------------------- probe


def _probe_images(store, bands: tuple[str, ...], crop: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """One valid date per location, centre-cropped: (N, C, crop, crop) reflectance, and the labels."""
    from seco.bands import indices

    rng = np.random.default_rng(seed)
    idx = indices(bands, store.bands)
    labels = store.labels()
    xs = []
    for i in range(len(store)):
        valid = np.flatnonzero(store.valid(i))
        d = int(rng.choice(valid))
        img = store.read(i, dates=[d], bands=[store.bands[j] for j in idx])[0]  # (C, H, W)
        off = (img.shape[-1] - crop) // 2
        xs.append(torch.from_numpy(img[:, off : off + crop, off : off + crop].astype(np.float32) / 10000.0))
    return torch.stack(xs), np.asarray(labels)


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

    with _timed(stages, "scene archive (make_archive)"):
        from seco.synth.archive import DEFAULT_DATES

        n_dates = len(DEFAULT_DATES)
        print(f"[1/9] scene archive: {len(ZONES)} UTM zones x {n_dates} dates x {passes} passes = "
              f"{len(ZONES) * n_dates * passes} scenes "
              f"of {scene_px} px (COG + STAC, stac-geoparquet index)")
        archive = out / "archive"
        man = _archive(archive, seed, scene_px, passes)

    with _timed(stages, "sampling (SeCo sampler)"):
        coll = _sample(out, man, seed, collect_locations, collect_patch)
    with _timed(stages, "collection (seco.collect pipeline)"):
        coll.update(_collect(out, archive, coll["locations_path"], collect_patch, workers, progress))
        if coll["collected"] < batch_size:
            raise CollectError(f"only {coll['collected']} locations were collected, fewer than one batch of "
                               f"{batch_size}; lower batch_size or sample more locations")
    with _timed(stages, "collection report plots"):
        _plot_sites(man, coll, out / "collect_sites.png")

    with _timed(stages, "labelled probe store (make_store)"):
        probe_path = out / "probe_store"
        print(f"[4/9] labelled synth store for the probe: {locations} locations x 5 dates x 12 bands x {patch_size} px")
        from seco.store import open_store
        from seco.synth import make_store

        make_store(probe_path, num_locations=locations, patch_size=patch_size, seed=seed, progress=progress)
        probe_store = open_store(probe_path)

    with _timed(stages, "SeCo pre-training"):
        train = _pretrain(out, coll["store"], seed, minutes, crop, batch_size, queue_size, max_steps, progress)
    with _timed(stages, "export"):
        from seco.train.export import export_run

        print("[6/9] export")
        paths = export_run(train["checkpoint"], out / "weights" / "seco_resnet18")
        weights = next(p for p in paths if p.suffix == ".safetensors")
    with _timed(stages, "linear probe"):
        bands = parse_bands("all", open_store(coll["store"]).bands)
        results, names = _probe(out, probe_store, bands, crop, seed, weights, Path(train["run"]))
    with _timed(stages, "downstream evaluation (EuroSAT, synthetic OSCD)"):
        print("[8/9] downstream evaluation: EuroSAT probe (when $SECO_EUROSAT_ROOT is set) and change "
              "detection on a simulated OSCD, SeCo vs random init")
        evaluation = run_demo_eval(out, weights, seed=seed, quick=quick_eval, progress=progress)

    report = out / "report.md"
    lines = _report(out, man, coll, train, results, names, probe_store, bands, weights, minutes, batch_size,
                    crop, paths)
    lines += ["", *evaluation["markdown"].splitlines(), ""]
    total = time.perf_counter() - t0
    lines += _timing(stages, total, load0)
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
    from seco.collect.pipeline import FAULT_KINDS, CollectConfig, plan_collect, read_failures, run_collect
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


def _probe(out: Path, store: Any, bands: tuple[str, ...], crop: int, seed: int, weights: Path, run: Path
           ) -> tuple[dict[str, dict[str, float]], list[str]]:
    from seco.eval.backbone import load_backbone
    from seco.eval.features import extract_features
    from seco.eval.probe import linear_probe

    print("[7/9] linear probe on the synth land-cover labels: SeCo vs random init")
    x, y = _probe_images(store, bands, crop, seed)
    parts = stratified_split(y, seed, (0.6, 0.2, 0.2))
    tr, va, te = parts["train"], parts["val"], parts["test"]
    results = {}
    for name, w in (("SeCo (this run)", str(weights)), ("random init", "random")):
        lb = load_backbone(w, bands, "resnet18")
        norm = lb.normalization or open_norm(run)
        before = {k: v.clone() for k, v in lb.model.state_dict().items()}
        f = extract_features(lb.model, x.split(128), norm)
        after = lb.model.state_dict()
        if not all(torch.equal(before[k], after[k]) for k in before):
            raise RuntimeError("the frozen backbone changed during feature extraction")
        r = linear_probe(f[tr], y[tr], f[va], y[va], f[te], y[te])
        results[name] = {"test_acc": r.test_acc, "val_acc": r.val_acc, "C": r.best_c}
        print(f"    {name}: test accuracy {100 * r.test_acc:.1f} % (C={r.best_c:g})")
    (out / "probe.json").write_text(json.dumps(results, indent=2))
    _plot_probe(results, out / "probe.png")
    names = store.label_names or [str(c) for c in np.unique(y)]
    return results, names


# ---------------------------------------------------------------------------------------------- report


def _why(reason: str) -> str:
    """The cause of a rejection: the failure kinds of the failing date, without counts ("outside", "patch")."""
    m = re.search(r"found \(([^)]*)\)\s*$", reason)
    if not m:
        return reason
    kinds = sorted({re.sub(r"\s*\d+$", "", part.strip()) for part in m.group(1).split(",")})
    return " + ".join(kinds)


WHY_TEXT = {
    "none found": "no scene under the scene cloud limit covers the point on that date (point off the tile, "
                  "or beyond a swath edge, or every pass cloudy)",
    "outside": "the patch crosses the tile border",
    "patch": "cloud, shadow, cirrus or nodata in the patch (SCL check)",
    "read": "a corrupt or truncated asset",
    "missing": "an asset file is missing",
}


def _report(out: Path, man: dict[str, Any], coll: dict[str, Any], train: dict[str, Any],
            results: dict[str, dict[str, float]], names: list[str], probe_store: Any,
            bands: tuple[str, ...], weights: Path, minutes: float, batch_size: int, crop: int,
            paths: list[Path]) -> list[str]:
    cfg = man["config"]
    scenes = man["scenes"]
    regimes = Counter(s["cloud_regime"] for s in scenes)
    faults = Counter(f["kind"] for f in man["faults"])
    sc = coll["sample"]
    s = coll["summary"]
    primary = {c[0] for c in coll["candidates"] if not c[3]}
    rejected_primary = [lid for lid, _ in s.rejected if lid in primary]
    why = Counter(_why(r) for _, r in s.rejected)
    budget = f"{minutes:g} min budget" + (f", at most {train['max_steps']} steps" if train["max_steps"] else "")
    lines = [
        "# seco demo report",
        "",
        "Offline, end to end: simulated scene archive -> sampling -> `seco collect` -> SeCo pre-training on the "
        "collected store -> export -> linear probe. Every number below comes from this run.",
        "",
        "## 1. Scene archive",
        "",
        f"`archive/`: {len(scenes)} Sentinel-2 L2A scenes from `seco.synth.archive.make_archive` (seed {cfg['seed']}): "
        f"{len(man['sites'])} sites (UTM zones {', '.join(str(z) for z in cfg['zones'])}) x {len(cfg['dates'])} dates "
        f"({cfg['dates'][0]} .. {cfg['dates'][-1]}, 12 weeks apart) x {len(scenes) // (len(man['sites']) * len(cfg['dates']))} "
        f"passes 5 days apart; tiles of {cfg['scene_px']} px ({cfg['scene_px'] / 100:.2f} km), COG per band + SCL, "
        "STAC items indexed in `archive/catalog.parquet` (stac-geoparquet).",
        f"Scenes: {regimes.get('clear', 0)} clear, {regimes.get('scattered', 0)} scattered cloud, "
        f"{regimes.get('overcast', 0)} overcast; {sum(sc_['swath_edge'] for sc_ in scenes)} with a swath edge; "
        f"broken on purpose: {', '.join(f'{v} {k}' for k, v in sorted(faults.items())) or 'none'} asset(s).",
        "",
        "## 2. Sampling",
        "",
        f"`locations.parquet`: {sc.n} locations drawn by the SeCo sampler (seed {sc.seed}) with the {len(coll['centres'])} "
        f"tile centres as its cities, Gaussian sigma {sc.sigma_km:.2f} km, no two patches overlapping "
        f"(centres >= {sc.separation_km:.2f} km apart); {sc.dates.n_dates} "
        f"date windows per location, centred on the archive's dates, +/-{sc.dates.window_days:g} days (so every pass "
        f"of a date is a candidate). Replacement locations (spares) come from the same sampler: {coll['spares']} drawn.",
        "",
        "![sampled locations](locations.png)",
        "",
        "## 3. Collection",
        "",
        f"`seco.collect.pipeline` (thread pool, {coll['config'].workers} threads) on the local stac-geoparquet catalog, "
        f"{coll['config'].patch_size} px patches, 12 L2A bands, scene cloud <= {coll['config'].max_cloud:g} %, patch "
        f"cloud <= {100 * coll['config'].patch_cloud_limit:g} %, no nodata, most recent scene first.",
        "",
        "| locations | count |",
        "|---|---:|",
        f"| sampled (target) | {coll['target']} |",
        f"| spares drawn | {coll['spares']} |",
        f"| candidates decided in this run | {s.candidates} |",
        f"| **collected** (in `collected/`) | **{coll['collected']}** |",
        f"| rejected (all candidates) | {len(s.rejected)} |",
        f"| rejected sampled locations | {len(rejected_primary)} |",
        f"| replaced by a spare | {len(s.replacements)} |",
        "",
        f"Collected {s.patches} patches in {s.elapsed_s:.1f} s this run "
        f"({(s.committed - s.resumed_from) / max(s.elapsed_s, 1e-9):.2f} locations/s)"
        + (f"; {s.resumed_from} locations were already in the store from an earlier run" if s.resumed_from else "")
        + (". The candidate stream ran out before the target." if s.exhausted else "."),
        "",
        "Why locations were rejected (the failure kinds of the first date without a valid scene):",
        "",
        "| cause | locations | meaning |",
        "|---|---:|---|",
        *[f"| {k} | {v} | {'; '.join(WHY_TEXT.get(p, p) for p in k.split(' + '))} |" for k, v in why.most_common()],
        *(["| (none) | 0 | |"] if not why else []),
        "",
        f"Failures table (`collected/_collect/failures.parquet`, {coll['failure_rows']} rows: every candidate "
        "scene or search that gave no patch):",
        "",
        "| kind | rows | scenes | fault? | example |",
        "|---|---:|---:|---|---|",
        *[
            f"| {k} | {v['rows']} | {len(v['items'])} | {'fault' if k in coll['fault_kinds'] else 'passed over'} | "
            f"{_short(v['example'])} |"
            for k, v in sorted(coll["failures"].items(), key=lambda kv: -kv[1]["rows"])
        ],
        "",
        "![collected and rejected locations per tile](collect_sites.png)",
        "",
        "## 4. SeCo pre-training (on the collected store)",
        "",
        f"ResNet-18 on all {len(bands)} bands of `collected/` ({coll['collected']} locations x 5 dates x "
        f"{coll['config'].patch_size} px), {train['steps']} steps of batch {batch_size} at {crop} px "
        f"({budget}), final loss {train['final_loss']:.3f}.",
        "",
        "![training curves](pretrain/curves.png)",
        "",
        "## 5. Linear probe",
        "",
        f"The collected store has no labels, so the probe runs on `probe_store/`: {len(probe_store)} locations of "
        f"`seco.synth.make_store` (the same simulator, seed {cfg['seed']}), land-cover classes: {', '.join(names)}. "
        "One date per location, centre crop, stratified 60/20/20 split, C chosen on validation.",
        "",
        "| backbone | test accuracy | val accuracy | C |",
        "|---|---|---|---|",
        *[
            f"| {n} | {100 * r['test_acc']:.1f} % | {100 * r['val_acc']:.1f} % | {r['C']:g} |"
            for n, r in results.items()
        ],
        "",
        "![probe](probe.png)",
        "",
        "## 6. Export",
        "",
        f"`{weights.relative_to(out)}` (+ {', '.join(f'`{p.suffix}`' for p in paths if p != weights)}: the "
        "torchvision-keyed state dict and the sidecar with bands and normalisation).",
        "",
    ]
    return lines


def _short(text: str, n: int = 90) -> str:
    t = str(text).replace("|", "/").replace("\n", " ")
    return t if len(t) <= n else t[: n - 3] + "..."


def _timing(stages: list[Stage], total: float, load0: float) -> list[str]:
    return [
        "## Timing",
        "",
        "| stage | wall (s) | CPU (s, all threads) |",
        "|---|---:|---:|",
        *[f"| {s.name} | {s.wall_s:.1f} | {s.cpu_s:.1f} |" for s in stages],
        f"| **total** | **{total:.1f}** | **{sum(s.cpu_s for s in stages):.1f}** |",
        "",
        f"{os.cpu_count()} CPUs; load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.",
    ]


def open_norm(run: Path):
    from seco.data.normalize import Normalization

    return Normalization.from_dict(json.loads((run / "normalization.json").read_text()))


def _plot_sites(man: dict[str, Any], coll: dict[str, Any], png: Path) -> None:
    """One panel per tile: its footprint, and the candidates collected, rejected or not needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = set(coll["keys"])
    rejected = {lid for lid, _ in coll["summary"].rejected}
    cands = coll["candidates"]
    centres = coll["centres"]
    sites = man["sites"]
    fig, axes = plt.subplots(1, len(sites), figsize=(4.2 * len(sites), 4.2), squeeze=False)
    for k, ax in enumerate(axes[0]):
        boxes = np.array([s["bbox"] for s in man["scenes"] if s["site"] == sites[k]["index"]])
        w, so, e, n = boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()
        ax.plot([w, e, e, w, w], [so, so, n, n, so], color="0.5", lw=1, label="tile (bbox)")
        near = [c for c in cands if int(np.argmin([(c[1] - x) ** 2 + (c[2] - yy) ** 2 for _, x, yy in centres])) == k]
        for label, sel, kw in (
            ("collected", lambda c: str(c[0]) in keys, dict(c="tab:green", marker="o", s=14)),
            ("rejected", lambda c: c[0] in rejected, dict(c="tab:red", marker="x", s=22)),
            ("spare, not needed", lambda c: str(c[0]) not in keys and c[0] not in rejected,
             dict(c="0.6", marker=".", s=10)),
        ):
            pts = [c for c in near if sel(c)]
            if pts:
                ax.scatter([c[1] for c in pts], [c[2] for c in pts], label=f"{label} ({len(pts)})", **kw)
        ax.set_title(centres[k][0], fontsize=9)
        ax.set_xlabel("longitude")
        ax.set_ylabel("latitude")
        ax.set_aspect(1.0 / max(np.cos(np.radians(centres[k][2])), 0.1))
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)


def _plot_probe(results: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    names = list(results)
    accs = [100 * results[n]["test_acc"] for n in names]
    bars = ax.bar(names, accs, color=["tab:green", "tab:gray"][: len(names)])
    for b, a in zip(bars, accs, strict=True):
        ax.text(b.get_x() + b.get_width() / 2, a + 1, f"{a:.1f} %", ha="center")
    ax.set_ylim(0, 105)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("linear probe on synth land cover")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)

"""The report of ``seco demo``: the Markdown sections and the stage timing table.

Every number comes from the run (:func:`seco.demo.run_demo` passes what each stage returned); the plots are in
:mod:`seco.demo.plots`, the downstream evaluation's section in :mod:`seco.demo.evaluate`.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Stage:
    """Wall and process CPU seconds of one demo stage (CPU summed over all threads)."""

    name: str
    wall_s: float = 0.0
    cpu_s: float = 0.0


@contextmanager
def timed(stages: list[Stage], name: str) -> Iterator[Stage]:
    """Time the ``with`` block as stage ``name`` and append it to ``stages`` (also when the block raises)."""
    st = Stage(name)
    w, c = time.perf_counter(), time.process_time()
    try:
        yield st
    finally:
        st.wall_s, st.cpu_s = time.perf_counter() - w, time.process_time() - c
        stages.append(st)


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


def report_lines(out: Path, man: dict[str, Any], coll: dict[str, Any], train: dict[str, Any],
                 results: dict[str, dict[str, float]], names: list[str], probe_store: Any,
                 bands: tuple[str, ...], weights: Path, minutes: float, batch_size: int, crop: int,
                 paths: list[Path]) -> list[str]:
    """The report's title and sections 1-6, from what each stage of :func:`seco.demo.run_demo` returned."""
    return [
        "# seco demo report",
        "",
        "Offline, end to end: simulated scene archive -> sampling -> `seco collect` -> SeCo pre-training on the "
        "collected store -> export -> linear probe. Every number below comes from this run.",
        "",
        *archive_section(man),
        *sampling_section(coll),
        *collection_section(coll),
        *pretraining_section(coll, train, bands, minutes, batch_size, crop),
        *probe_section(man, results, names, probe_store),
        *export_section(out, weights, paths),
    ]


def archive_section(man: dict[str, Any]) -> list[str]:
    """Section 1: the scene archive's sites, dates and passes, its cloud regimes and broken assets."""
    cfg = man["config"]
    scenes = man["scenes"]
    regimes = Counter(s["cloud_regime"] for s in scenes)
    faults = Counter(f["kind"] for f in man["faults"])
    return [
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
    ]


def sampling_section(coll: dict[str, Any]) -> list[str]:
    """Section 2: the sampler's settings and the spares it drew."""
    sc = coll["sample"]
    return [
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
    ]


def collection_section(coll: dict[str, Any]) -> list[str]:
    """Section 3: the collection's settings and counts, why locations were rejected, and the failures table."""
    s = coll["summary"]
    cfg = coll["config"]
    primary = {c[0] for c in coll["candidates"] if not c[3]}
    rejected_primary = [lid for lid, _ in s.rejected if lid in primary]
    return [
        "## 3. Collection",
        "",
        f"`seco.collect.pipeline` (thread pool, {cfg.workers} threads) on the local stac-geoparquet catalog, "
        f"{cfg.patch_size} px patches, 12 L2A bands, scene cloud <= {cfg.max_cloud:g} %, patch "
        f"cloud <= {100 * cfg.patch_cloud_limit:g} %, no nodata, most recent scene first.",
        f"To look at the collected locations: [view/index.html](view/index.html) ({coll['view']['pages']} "
        "locations on a map, every date's quicklook, histograms, this failures table; `seco store view`, "
        "docs/VIEW.md)." if "view" in coll else "To look at the collected locations (map, every date's quicklook, "
        "histograms, this failures table): `seco store view collected --out view`, then open `view/index.html` "
        "(docs/VIEW.md).",
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
        *_rejection_table(s.rejected),
        *_failures_table(coll),
        "![collected and rejected locations per tile](collect_sites.png)",
        "",
    ]


def _rejection_table(rejected: list[tuple[Any, str]]) -> list[str]:
    """Why locations were rejected: locations per cause, with what each cause means."""
    why = Counter(_why(r) for _, r in rejected)
    return [
        "Why locations were rejected (the failure kinds of the first date without a valid scene):",
        "",
        "| cause | locations | meaning |",
        "|---|---:|---|",
        *[f"| {k} | {v} | {'; '.join(WHY_TEXT.get(p, p) for p in k.split(' + '))} |" for k, v in why.most_common()],
        *(["| (none) | 0 | |"] if not why else []),
        "",
    ]


def _failures_table(coll: dict[str, Any]) -> list[str]:
    """The failures table per kind: rows, scenes, fault or passed over, and an example reason."""
    return [
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
    ]


def pretraining_section(coll: dict[str, Any], train: dict[str, Any], bands: tuple[str, ...], minutes: float,
                        batch_size: int, crop: int) -> list[str]:
    """Section 4: what was pre-trained on what, for how long, and the final loss."""
    budget = f"{minutes:g} min budget" + (f", at most {train['max_steps']} steps" if train["max_steps"] else "")
    return [
        "## 4. SeCo pre-training (on the collected store)",
        "",
        f"ResNet-18 on all {len(bands)} bands of `collected/` ({coll['collected']} locations x 5 dates x "
        f"{coll['config'].patch_size} px), {train['steps']} steps of batch {batch_size} at {crop} px "
        f"({budget}), final loss {train['final_loss']:.3f}.",
        "",
        "![training curves](pretrain/curves.png)",
        "",
    ]


def probe_section(man: dict[str, Any], results: dict[str, dict[str, float]], names: list[str], probe_store: Any
                  ) -> list[str]:
    """Section 5: the linear probe's data and protocol, and its accuracy per backbone."""
    return [
        "## 5. Linear probe",
        "",
        f"The collected store has no labels, so the probe runs on `probe_store/`: {len(probe_store)} locations of "
        f"`seco.synth.make_store` (the same simulator, seed {man['config']['seed']}), land-cover classes: "
        f"{', '.join(names)}. "
        "One date per location, centre crop, stratified 60/20/20 split, C chosen on validation. Both backbones "
        "are normalised alike, with the per-band statistics of the probe's training split (not the export's "
        "own), so the rows differ only in the weights.",
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
    ]


def export_section(out: Path, weights: Path, paths: list[Path]) -> list[str]:
    """Section 6: the exported files."""
    return [
        "## 6. Export",
        "",
        f"`{weights.relative_to(out)}` (+ {', '.join(f'`{p.suffix}`' for p in paths if p != weights)}: the "
        "torchvision-keyed state dict and the sidecar with bands and normalisation).",
        "",
    ]


def _short(text: str, n: int = 90) -> str:
    t = str(text).replace("|", "/").replace("\n", " ")
    return t if len(t) <= n else t[: n - 3] + "..."


def timing_lines(stages: list[Stage], total: float, load0: float) -> list[str]:
    """The timing section: wall and CPU seconds per stage, the total, and the load average at start and end."""
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

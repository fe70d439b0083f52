"""The report of ``seco demo``: the Markdown sections, the stage timing table and the plots.

Every number comes from the run (:func:`seco.demo.run_demo` passes what each stage returned).
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

import numpy as np


@dataclass
class Stage:
    """Wall and process CPU seconds of one demo stage (CPU summed over all threads)."""

    name: str
    wall_s: float = 0.0
    cpu_s: float = 0.0


@contextmanager
def timed(stages: list[Stage], name: str) -> Iterator[Stage]:
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


def timing_lines(stages: list[Stage], total: float, load0: float) -> list[str]:
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


def plot_sites(man: dict[str, Any], coll: dict[str, Any], png: Path) -> None:
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


def plot_probe(results: dict, png: Path) -> None:
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

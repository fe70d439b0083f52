"""The demo's orchestration: settle the settings, run the stages in order and time them, write ``report.md``.

Stages: 1. archive, 2. sample, 3. collect (:mod:`seco.demo.archive`, :mod:`seco.demo.collect`); 4. the labelled
probe store (:mod:`seco.demo.probe`); 5. SeCo pre-training, 6. export (:mod:`seco.demo.pretrain`); 7. the linear
probe; 8. downstream evaluation (:mod:`seco.demo.evaluate`); 9. the report (:mod:`seco.demo.report`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seco.bands import parse_bands
from seco.demo.archive import ZONES, make_or_reuse_archive
from seco.demo.collect import collect_store, sample_locations
from seco.demo.plots import plot_sites
from seco.demo.pretrain import export_weights, pretrain_on_collected
from seco.demo.probe import linear_probe, make_probe_store
from seco.demo.report import Stage, report_lines, timed, timing_lines
from seco.errors import CollectError, ConfigError

#: Small sizes for tests and a first look (``seco demo --quick``): about a minute.
QUICK: dict[str, Any] = dict(
    locations=40, patch_size=48, crop=32, batch_size=8, queue_size=64, max_steps=5,
    collect_locations=12, collect_patch=32, scene_px=360, quick_eval=True,
)


@dataclass(frozen=True)
class DemoSettings:
    """The arguments of :func:`run_demo` (documented there), checked against each other on construction.

    Raises:
        ConfigError: inconsistent sizes.
    """

    minutes: float
    seed: int
    locations: int
    patch_size: int
    crop: int
    batch_size: int
    collect_locations: int
    collect_patch: int
    scene_px: int
    passes: int
    workers: int
    queue_size: int
    max_steps: int | None
    quick_eval: bool
    progress: bool

    def __post_init__(self) -> None:
        if self.crop > min(self.patch_size, self.collect_patch):
            raise ConfigError(f"crop={self.crop} must be at most patch_size={self.patch_size} and "
                              f"collect_patch={self.collect_patch}")
        if self.queue_size % self.batch_size:
            raise ConfigError(f"queue_size={self.queue_size} must be a multiple of batch_size={self.batch_size}")
        if self.passes < 1:
            raise ConfigError(f"passes={self.passes} must be >= 1")
        if self.collect_locations < self.batch_size:
            raise ConfigError(f"collect_locations={self.collect_locations} must be at least "
                              f"batch_size={self.batch_size}")


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
    s = DemoSettings(minutes=minutes, seed=seed, locations=locations, patch_size=patch_size, crop=crop,
                     batch_size=batch_size, collect_locations=collect_locations, collect_patch=collect_patch,
                     scene_px=scene_px, passes=passes, workers=workers, queue_size=queue_size,
                     max_steps=max_steps, quick_eval=quick_eval, progress=progress)
    from seco.demo.evaluate import eurosat_from_env

    eurosat_from_env()  # a bad $SECO_EUROSAT_ROOT fails now, not after pre-training
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stages: list[Stage] = []
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    man, coll = _collected(out, s, stages)
    results = _trained_and_evaluated(out, s, stages, coll)
    report = out / "report.md"
    lines = report_lines(out, man, coll, results["train"], results["probe"], results["names"],
                         results["probe_store"], results["bands"], results["weights"], s.minutes, s.batch_size,
                         s.crop, results["paths"])
    lines += ["", *results["evaluation"]["markdown"].splitlines(), ""]
    total = time.perf_counter() - t0
    lines += timing_lines(stages, total, load0)
    report.write_text("\n".join(lines) + "\n")
    print(f"[9/9] report: {report} ({total / 60:.1f} min)")
    return report


def _collected(out: Path, s: DemoSettings, stages: list[Stage]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stages 1-3: the scene archive, the sampled locations and the store collected from them.

    Returns:
        The archive's manifest, and what sampling and collection return (merged).

    Raises:
        CollectError: the collection stalled or gave fewer locations than one batch.
    """
    with timed(stages, "scene archive (make_archive)"):
        from seco.synth.archive import DEFAULT_DATES

        n_dates = len(DEFAULT_DATES)
        print(f"[1/9] scene archive: {len(ZONES)} UTM zones x {n_dates} dates x {s.passes} passes = "
              f"{len(ZONES) * n_dates * s.passes} scenes "
              f"of {s.scene_px} px (COG + STAC, stac-geoparquet index)")
        man = make_or_reuse_archive(out / "archive", s.seed, s.scene_px, s.passes)

    with timed(stages, "sampling (SeCo sampler)"):
        coll = sample_locations(out, man, s.seed, s.collect_locations, s.collect_patch)
    with timed(stages, "collection (seco.collect pipeline)"):
        coll.update(collect_store(out, out / "archive", coll["locations_path"], s.collect_patch, s.workers,
                                  s.progress))
        if coll["collected"] < s.batch_size:
            raise CollectError(f"only {coll['collected']} locations were collected, fewer than one batch of "
                               f"{s.batch_size}; lower batch_size or sample more locations")
    with timed(stages, "collection report plots"):
        plot_sites(man, coll, out / "collect_sites.png")
    with timed(stages, "store view (seco store view)"):
        from seco.view.build import ViewConfig, build_view

        view = build_view(out / "collected", out / "view", ViewConfig(max_locations=48, seed=s.seed),
                          progress=s.progress)
        coll["view"] = {"index": "view/index.html", "pages": view.viewed}
    return man, coll


def _trained_and_evaluated(out: Path, s: DemoSettings, stages: list[Stage], coll: dict[str, Any]
                           ) -> dict[str, Any]:
    """Stages 4-8: the probe store, pre-training on the collected store, export, linear probe, downstream eval.

    Returns:
        ``probe_store``, ``train``, ``paths`` and ``weights`` (the export), ``bands``, ``probe`` and ``names``
        (the linear probe's results and class names) and ``evaluation`` (:func:`run_demo_eval`'s result).
    """
    from seco.demo.evaluate import run_demo_eval
    from seco.store import open_store

    with timed(stages, "labelled probe store (make_store)"):
        probe_store = make_probe_store(out, s.locations, s.patch_size, s.seed, s.progress)
    with timed(stages, "SeCo pre-training"):
        train = pretrain_on_collected(out, coll["store"], s.seed, s.minutes, s.crop, s.batch_size, s.queue_size,
                                      s.max_steps, s.progress)
    with timed(stages, "export"):
        paths, weights = export_weights(train["checkpoint"], out)
    with timed(stages, "linear probe"):
        bands = parse_bands("all", open_store(coll["store"]).bands)
        probe, names = linear_probe(out, probe_store, bands, s.crop, s.seed, weights)
    with timed(stages, "downstream evaluation (EuroSAT, synthetic OSCD)"):
        print("[8/9] downstream evaluation: EuroSAT probe (when $SECO_EUROSAT_ROOT is set) and change "
              "detection on a simulated OSCD, SeCo vs random init")
        evaluation = run_demo_eval(out, weights, seed=s.seed, quick=s.quick_eval, progress=s.progress)
    return {"probe_store": probe_store, "train": train, "paths": paths, "weights": weights, "bands": bands,
            "probe": probe, "names": names, "evaluation": evaluation}

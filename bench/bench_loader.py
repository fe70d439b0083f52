"""Loader throughput: SeCo samples/s in one process, seco's store path against the paper's per-band GeoTIFFs.

A *sample* is what one SeCo training example needs: 3 dates of one location turned into the 4 views
(q, k0, k1, k2) of 224 px, normalised, batched 32 at a time. Contenders, all single process
(``num_workers=0``), on the same locations:

- **paper (RGB)**: ``bench.paper_pipeline`` -- the official ``SeasonalContrastMultiAug`` data path re-created
  (list date folders, 3 dates x 3 band GeoTIFFs opened one by one with rasterio, quantile uint8 stretch, PIL
  ColorJitter / grayscale / blur / flip, RandomResizedCrop, ToTensor, ImageNet normalise, default collate),
  on a tree written by ``export_paper_layout`` as the downloader wrote it (uint8, JPEG-compressed);
- **paper (RGB, uncompressed tif)**: the same on uncompressed GeoTIFFs (shows the file format is not the cost);
- **seco (RGB)** and **seco (12 bands)**: what ``seco/train/loop.py`` does per step -- ``PretrainDataset``
  (``as_dn=True``: 3 distinct valid dates of each sample decoded straight into one uint16 batch tensor by
  ``__getitems__``) in a ``DataLoader`` with the ``ResumableSampler`` and ``collate_pretrain``, the batch to the
  device, then ``make_views(images, recipe_for("seco"), gen, 224, Normalization.from_store(...))`` (on the CPU
  from the DN batch, converting only the crop boxes; elsewhere after ``to_reflectance`` on the device). The
  view making is counted here, on this CPU. Keep this in step with the loop.
- **seco loader (...)**: the same without the views: store -> batch on the training device
  (``--device``), which is all the CPU does per sample in seco's design, where the views are made on the
  accelerator by the training loop. Compared with the paper's *full* pipeline, since the paper makes its
  views on the CPU in the loader.

Measurement: the contenders are interleaved (one round = each contender once, the order rotated every
round), after one warm-up round; each rate is the median over rounds, each ratio the median of the
per-round ratios, so load from other jobs hits every contender alike. Wall-clock samples/s and samples per
CPU-second of this process (``time.process_time``; what one dedicated core would do) are both reported.
``--threads`` (default 1) sets torch's intra-op threads and Blosc's threads for every contender: PIL and
GDAL decode single-threaded, so 1 thread compares the same CPU budget.

    .venv/bin/python -m bench.bench_loader                      # 64 synth locations x 264 px, 7 rounds
    .venv/bin/python -m bench.bench_loader --rounds 3 --profile # quick look + where seco's time goes

Targets (issue 2): seco RGB >= 10x the paper's RGB rate; seco 12 bands >= 3x the paper's RGB rate; shown on
both the views-on-this-CPU rows and the loader rows.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data._utils.collate import default_collate

from bench.common import machine, table
from bench.paper_pipeline import (
    QUANTILES,
    RGB_BANDS,
    PaperSeCoDataset,
    augment,
    export_paper_layout,
    preprocess,
    read_image,
)

TARGETS = {"RGB": 10.0, "12": 3.0}  # x the paper's RGB rate, by the bands of a seco contender


def header(module: str, title: str) -> str:
    """The exact command, time, load and machine, as the first lines of a benchmark's output."""
    cmd = " ".join([f".venv/bin/python -m {module}", *map(shlex.quote, sys.argv[1:])])
    load = os.getloadavg()
    return (
        f"`{cmd}`\n\n# {title}\n\n{time.strftime('%Y-%m-%d %H:%M')}, load average {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} (1/5/15 min) on {os.cpu_count()} CPUs; {machine()}\n"
    )


# ---------------------------------------------------------------------------------------------- contenders
class PaperRunner:
    """The paper's loader, consumed batch by batch (a new epoch when it runs out)."""

    def __init__(self, root: Path, batch: int, seed: int, size: int = 224):
        self.ds = PaperSeCoDataset(root, seed=seed, size=size)
        g = torch.Generator().manual_seed(seed)
        self.loader = DataLoader(self.ds, batch_size=batch, shuffle=True, drop_last=True, num_workers=0, generator=g)
        self.it: Iterator[Any] | None = None
        self.batch = batch

    def __call__(self) -> int:
        while True:
            if self.it is None:
                self.it = iter(self.loader)
            try:
                q, keys = next(self.it)
                break
            except StopIteration:
                self.ds.set_epoch(self.ds.epoch + 1)
                self.it = None
        assert q.shape[0] == self.batch and len(keys) == 3
        return int(q.shape[0])


class SecoRunner:
    """``seco/train/loop.py``'s data path: dataset + ResumableSampler in a DataLoader, the batch to the device,
    then make_views (``views=False``: up to the batch on the device)."""

    def __init__(self, store: Any, bands: str, batch: int, size: int, seed: int, views: bool = True,
                 device: str = "cpu"):
        from seco.data.normalize import Normalization
        from seco.data.pretrain import PretrainDataset, ResumableSampler, collate_pretrain
        from seco.data.views import recipe_for

        self.recipe = recipe_for("seco")
        self.ds = PretrainDataset(store, bands, num_dates=self.recipe.num_dates, seed=seed, as_dn=True)
        self.sampler = ResumableSampler(len(self.ds), batch, seed=seed)
        self.loader = DataLoader(self.ds, batch_sampler=self.sampler, num_workers=0, collate_fn=collate_pretrain,
                                 pin_memory=device.startswith("cuda"))
        self.norm = Normalization.from_store(store, bands)
        self.size, self.seed, self.step = size, seed, 0
        self.make, self.device = views, torch.device(device)
        self.gen = torch.Generator()
        self.it: Iterator[Any] | None = None
        self.breakdown_pos = 0

    def next_batch(self) -> dict[str, Any]:
        while True:
            if self.it is None:
                self.ds.set_epoch(self.sampler.epoch)
                self.it = iter(self.loader)
            try:
                batch = next(self.it)
                self.sampler.advance()
                return batch
            except StopIteration:
                self.sampler.next_epoch()
                self.it = None

    def views(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self.gen.manual_seed(self.seed * 1_000_003 + self.step)
        self.step += 1
        from seco.data.views import make_views

        return make_views(images, self.recipe, gen=self.gen, size=self.size, normalization=self.norm)

    def to_device(self, images: torch.Tensor) -> torch.Tensor:
        """As the loop: uint16 DN to the device; converted to reflectance there, except on the CPU where
        make_views converts only the crop boxes."""
        from seco.data.normalize import to_reflectance

        images = images.to(self.device, non_blocking=True)  # (B, 3, C, H, W) uint16
        return images if self.device.type == "cpu" else to_reflectance(images)

    def __call__(self) -> int:
        images = self.to_device(self.next_batch()["images"])  # (B, 3, C, H, W)
        n = int(images.shape[0])
        if self.make:
            q, keys = self.views(images)
            assert len(keys) == 3 and q.shape[-1] == self.size
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return n


# ---------------------------------------------------------------------------------------------- breakdowns
def paper_breakdown(root: Path, n: int, seed: int, size: int = 224, batch: int = 32) -> dict[str, float]:
    """CPU ms per sample of each stage of the paper's ``__getitem__`` (+ collate), over ``n`` samples."""
    ds = PaperSeCoDataset(root, seed=seed, size=size)
    acc = dict.fromkeys(("list dates", "read 3 dates (rasterio + stretch + PIL)", "augment x2 (PIL)",
                         "crop + ToTensor + normalise x4", "collate"), 0.0)
    items = []
    for i in range(n):
        idx = i % len(ds)
        rng = np.random.default_rng([seed, 0, idx])
        t = time.process_time()
        paths = sorted((p for p in ds.samples[idx].glob("*") if p.is_dir()), reverse=True)
        t1 = time.process_time()
        t0_, t1_, t2_ = (read_image(paths[int(j)], RGB_BANDS, QUANTILES) for j in rng.integers(0, len(paths), 3))
        t2 = time.process_time()
        k0, k2 = augment(t1_, rng), augment(t0_, rng)
        t3 = time.process_time()
        views = [preprocess(v, rng, size) for v in (t0_, k0, t2_, k2)]
        t4 = time.process_time()
        items.append((views[0], views[1:]))
        for k, dt in zip(acc, (t1 - t, t2 - t1, t3 - t2, t4 - t3), strict=False):
            acc[k] += dt
        if len(items) == batch:
            t = time.process_time()
            default_collate(items)
            acc["collate"] += time.process_time() - t
            items = []
    return {k: 1e3 * v / n for k, v in acc.items()}


SECO_STAGES = ("store -> one uint16 batch (__getitems__)", "collate_pretrain (pass-through) + to device",
               "make_views (4 views from DN, normalised)")


def seco_breakdown(runner: SecoRunner, batches: int) -> dict[str, float]:
    """CPU ms per sample of the loop's stages: batch read, collate + to device, make_views (on ``--device``)."""
    from seco.data.pretrain import collate_pretrain

    acc = dict.fromkeys(SECO_STAGES, 0.0)
    n = 0
    idx = runner.sampler.indices(0)
    bs = runner.sampler.batch_size
    for _ in range(batches):
        start = runner.breakdown_pos
        runner.breakdown_pos = (start + bs) % max(len(idx) - bs + 1, 1)
        sel = idx[start:start + bs]
        t = time.process_time()
        items = runner.ds.__getitems__([(0, int(i)) for i in sel])
        t1 = time.process_time()
        images = runner.to_device(collate_pretrain(items)["images"])
        t2 = time.process_time()
        runner.views(images)
        if runner.device.type == "cuda":
            torch.cuda.synchronize(runner.device)
        t3 = time.process_time()
        for k, dt in zip(acc, (t1 - t, t2 - t1, t3 - t2), strict=True):
            acc[k] += dt
        n += len(sel)
    return {k: 1e3 * v / n for k, v in acc.items()}


def profile(fn: Callable[[], object], calls: int, top: int = 14) -> str:
    """cProfile of ``calls`` calls of ``fn``: the top functions by own time."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).strip_dirs().sort_stats("tottime").print_stats(top)
    lines = s.getvalue().splitlines()
    start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
    return "\n".join(ln for ln in lines[start:] if ln.strip())


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--locations", type=int, default=None,
                    help="synth locations, each 5 dates x 12 bands (default 64; with --store: all of it)")
    ap.add_argument("--patch", type=int, default=264, help="patch side in px (the paper's 264)")
    ap.add_argument("--size", type=int, default=224, help="view side in px")
    ap.add_argument("--batch", type=int, default=32, help="batch size (the paper's 32)")
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds (each contender once per round)")
    ap.add_argument("--batches", type=int, default=2, help="batches per contender per round (x2 for seco RGB)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op and Blosc threads")
    ap.add_argument("--no-raw", action="store_true", help="skip the uncompressed-GeoTIFF paper variant")
    ap.add_argument("--no-loader-only", action="store_true",
                    help="skip the 'seco loader' rows (store -> batch on the device, no views)")
    ap.add_argument("--device", default="cpu", help="where seco makes the views (cpu, cuda): the loop's --device")
    ap.add_argument("--breakdown-reps", type=int, default=3, help="batches per stage in the breakdown")
    ap.add_argument("--profile", action="store_true", help="cProfile seco's contenders after the timing")
    ap.add_argument("--store", default=None, help="use this store instead of a synth one (first --locations)")
    ap.add_argument("--workdir", default=None, help="where to write the store and the GeoTIFF trees")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    import numcodecs.blosc

    from seco.store import open_store
    from seco.synth import make_store

    torch.set_num_threads(a.threads)
    numcodecs.blosc.set_nthreads(a.threads)
    tmp = tempfile.TemporaryDirectory(prefix="bench_loader_", dir=a.workdir)
    work = Path(tmp.name)
    t = time.perf_counter()
    if a.store is None:
        store_path = make_store(work / "store.zarr", num_locations=a.locations or 64, patch_size=a.patch,
                                seed=a.seed, progress=False)
    else:
        store_path = Path(a.store)
    store = open_store(store_path)
    if a.locations is not None and a.locations < len(store):
        raise SystemExit(f"--store has {len(store)} locations; both sides must read the same ones, drop --locations")
    locs = range(len(store))
    paper_jpeg = export_paper_layout(store, work / "paper_jpeg", "RGB", locations=locs, compress="JPEG")
    paper_raw = None if a.no_raw else export_paper_layout(store, work / "paper_raw", "RGB", locations=locs, compress=None)
    setup_s = time.perf_counter() - t

    print(header("bench.bench_loader", f"SeCo loader, single process: {len(locs)} locations x {store.num_dates} dates x {store.patch_size} px, "
                 f"4 views of {a.size} px, batch {a.batch}, {a.threads} thread(s)"))
    print(f"set-up (synth store + GeoTIFF trees): {setup_s:.0f} s; paper tree: uint8 single-band GeoTIFFs "
          f"(JPEG as the downloader wrote them{'' if paper_raw is None else '; and uncompressed'})\n")

    # name -> (one batch, batches per round, bands, target vs the paper's RGB rate)
    contenders: dict[str, tuple[Callable[[], int], int, str, float | None]] = {
        "paper (RGB), full pipeline": (PaperRunner(paper_jpeg, a.batch, a.seed, a.size), a.batches, "RGB", None),
    }
    if paper_raw is not None:
        contenders["paper (RGB, uncompressed tif), full pipeline"] = (
            PaperRunner(paper_raw, a.batch, a.seed, a.size), a.batches, "RGB", None)
    seco_rgb = SecoRunner(store, "RGB", a.batch, a.size, a.seed, device=a.device)
    seco_all = SecoRunner(store, "all", a.batch, a.size, a.seed, device=a.device)
    views_on = "views on this CPU" if a.device == "cpu" else f"views on {a.device}"
    contenders[f"seco (RGB), {views_on}"] = (seco_rgb, 2 * a.batches, "RGB", TARGETS["RGB"])
    contenders[f"seco (12 bands), {views_on}"] = (seco_all, a.batches, "12", TARGETS["12"])
    if not a.no_loader_only:
        where = "the CPU" if a.device == "cpu" else a.device
        for label, bands, per_round in (("RGB", "RGB", 2 * a.batches), ("12 bands", "all", a.batches)):
            runner = SecoRunner(store, bands, a.batch, a.size, a.seed, views=False, device=a.device)
            key = "RGB" if bands == "RGB" else "12"
            contenders[f"seco loader ({label}): store -> batch on {where}, views made on the training device"] = (
                runner, per_round, key, TARGETS[key])

    names = list(contenders)
    for name in names:  # warm-up: page cache, allocator, lazy handles
        contenders[name][0]()
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(a.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            fn, per_round, _, _ = contenders[name]
            t0, c0 = time.perf_counter(), time.process_time()
            n = sum(fn() for _ in range(per_round))
            wall[name].append(n / (time.perf_counter() - t0))
            cpu[name].append(n / max(time.process_time() - c0, 1e-9))
        print(f"round {r + 1}/{a.rounds}: " + ", ".join(f"{n} {wall[n][-1]:.0f}/s" for n in names), file=sys.stderr,
              flush=True)

    ref = names[0]
    rows = []
    for name in names:
        rw = statistics.median(w / p for w, p in zip(wall[name], wall[ref], strict=True))
        rc = statistics.median(c / p for c, p in zip(cpu[name], cpu[ref], strict=True))
        target = contenders[name][3]
        met = "" if target is None else ("yes" if rw >= target else "no") + f" (wall) / {'yes' if rc >= target else 'no'} (CPU)"
        rows.append((name, contenders[name][2], statistics.median(wall[name]), statistics.median(cpu[name]),
                     f"{rw:.2f}x", f"{rc:.2f}x", "" if target is None else f">= {target:.0f}x", met))
    print(table(["pipeline", "bands", "samples/s (wall)", "samples per CPU-s", "vs paper (wall)", "vs paper (CPU)",
                 "target", "met"], rows))
    print(f"\nmedians over {a.rounds} interleaved rounds; per round {a.batches * a.batch} samples per contender "
          f"({2 * a.batches * a.batch} for seco RGB); ratios are medians of per-round ratios to '{ref}'. "
          "'seco loader': the DataLoader's batches (PretrainDataset.__getitems__ + collate_pretrain) moved to the "
          "training device, without make_views: all the CPU does per sample in seco's design, where the loop makes "
          "the views on the accelerator; the paper's rows include its CPU-side views, as its loader makes them.\n")

    # where the time goes (CPU ms per sample; stage by stage, interleaved reps, medians)
    reps: dict[tuple[str, str], list[float]] = {}
    for r in range(a.breakdown_reps):
        for p, res in (("paper (RGB)", paper_breakdown(paper_jpeg, a.batch, a.seed + r, a.size, a.batch)),
                       ("seco (RGB)", seco_breakdown(seco_rgb, 1)), ("seco (12 bands)", seco_breakdown(seco_all, 1))):
            for k, v in res.items():
                reps.setdefault((p, k), []).append(v)
    bd = [(p, k, statistics.median(v)) for (p, k), v in reps.items()]
    totals: dict[str, float] = {}
    for p, _, v in bd:
        totals[p] = totals.get(p, 0.0) + v
    print(f"#### Where the time goes (CPU ms per sample, stage by stage; median of {a.breakdown_reps} interleaved "
          f"batches of {a.batch})\n")
    print(table(["pipeline", "stage", "CPU ms/sample", "share"], [(p, k, v, f"{100 * v / totals[p]:.0f} %") for p, k, v in bd]))
    print()

    if a.profile:
        for name, runner, calls in (("seco (RGB)", seco_rgb, 4), ("seco (12 bands)", seco_all, 2)):
            print(f"#### cProfile, {name}, {calls} batches (own time)\n\n```\n{profile(runner, calls)}\n```\n")
    tmp.cleanup()


if __name__ == "__main__":
    main()

"""Pre-training data path, stage by stage, in one run: where does ``seco pretrain`` lose time?

Every stage runs on a store on the 10 m grid and on a native-resolution store of the same data (``--grid``:
20 m / 60 m bands at their own grid, ``docs/STORE.md``), printed side by side with the native / 10 m ratio.
Stages (samples/s; one sample = ``num_dates`` dates x C bands x H x W uint16 DN, SeCo: 3 dates):

1. **decode, 1 process**: ``Store.read`` (the 10 m grid, into a reused (B, n, C, H, W) buffer; a native store
   upsamples on the CPU) against ``Store.read_packed`` (each band at its stored grid, into a ring slot, what
   ``seco pretrain``'s workers do); wall-clock and per CPU-second. With ``--fresh`` also the old path, a fresh
   batch tensor per batch (``__getitems__`` without a ring).
2. **loader, W workers**: a ``DataLoader`` with W persistent workers decoding packed batches into the ring
   (``seco.data.ring``), nothing done with the batches; with pinned output on CUDA (the ring pinned once);
   ``--fresh``: also the old path (a fresh shared-memory batch per batch, ``pin_memory=True`` on CUDA).
   *Efficiency* = rate / (W x the 1-process ``read_packed`` rate): 1.0 means the pipeline adds no allocation,
   copy or pinning tax; per CPU-second (samples per CPU-second of main process + workers over the 1-process
   samples per CPU-second) it does not depend on how many cores other jobs leave free. A reference row runs W
   independent decoder processes at once (no DataLoader): what the machine itself gives W processes.
3. **copy + unpack + views**: the packed batch to the device, ``PackSpec.unpack`` there (a view for the 10 m
   grid, nearest upsampling for native), ``to_reflectance`` + ``make_views`` (on the CPU: views from the DN
   batch, as the loop does).
4. **step only**: the training step on views already on the device (``--precision``, channels-last on CUDA);
   the same for both grids (same views), measured once.
5. **end to end**: ``seco.train.loop.pretrain`` itself (median samples/s of its ``metrics.csv`` after warm-up),
   and its ratio to the step-only rate. With ``--old-tree DIR`` (a checkout of older seco, e.g.
   ``git worktree add /tmp/seco_old 510f953``) both trees' ``seco pretrain`` run as subprocesses on the 10 m
   store, alternating, ``--rounds`` times: the median ratio new/old is printed.

CPU always; CUDA when present (``--device auto``). No progress bars with ``--quiet``. Synth stores are written
once into ``--work``; ``--store`` measures a given store and a copy of it on the other grid
(``seco.store.migrate.migrate_store``, written into ``--work``).

    .venv/bin/python -m bench.bench_pipeline --quiet                         # 2-core CPU box, ~15 min
    .venv/bin/python -m bench.bench_pipeline --quiet --old-tree /tmp/seco_old
    python -m bench.bench_pipeline --quiet --locations 2048 --batch-size 256 --workers 1,2,4,8,15 \\
        --e2e-workers 15 --steps 60                                          # 16-core GPU box
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from bench.common import machine, table
from seco.data.normalize import Normalization, to_reflectance
from seco.data.pretrain import PretrainDataset, ResumableSampler, collate_pretrain, unpack_batch
from seco.data.ring import BatchRing, RingBatches, SlotKeys, ring_slots
from seco.data.views import make_views, recipe_for
from seco.errors import ConfigError
from seco.models.contrastive import ContrastiveModel
from seco.store import open_store
from seco.train.config import PretrainConfig

PREFETCH = 2
GRIDS = ("10m", "native")


def _stores(a: argparse.Namespace) -> dict[str, Path]:
    """The store of each grid of ``--grid``: synth stores written once into ``--work``, or ``--store`` and a
    copy of it on the other grid."""
    grids = [g for g in a.grid.split(",") if g]
    bad = [g for g in grids if g not in GRIDS]
    if bad or not grids:
        raise SystemExit(f"--grid {a.grid!r}: choose from {', '.join(GRIDS)} (comma-separated)")
    out: dict[str, Path] = {}
    if a.store:
        src = Path(a.store)
        have = open_store(src).grid
        for g in grids:
            if g == have:
                out[g] = src
                continue
            from seco.store import StoreLayout
            from seco.store.migrate import migrate_store

            dst = Path(a.work) / f"{src.name.removesuffix('.zarr')}_{g}.zarr"
            t = time.perf_counter()
            migrate_store(src, dst, layout=StoreLayout(grid=g), progress=not a.quiet)
            print(f"copied {src} to the {g} grid: {dst} in {time.perf_counter() - t:.0f} s", flush=True)
            out[g] = dst
        return out
    from seco.synth import make_store

    for g in grids:
        path = Path(a.work) / f"pipe_{a.locations}x{a.dates}x{a.patch_size}_{g}.zarr"
        t = time.perf_counter()
        make_store(path, num_locations=a.locations, num_dates=a.dates, patch_size=a.patch_size, seed=0,
                   progress=not a.quiet, grid=g)  # continues (or keeps) a store of the same settings
        print(f"store {path} ready in {time.perf_counter() - t:.0f} s", flush=True)
        out[g] = path
    return out


def _dataset(store: Path, bands: str) -> PretrainDataset:
    return PretrainDataset(store, bands, num_dates=3, seed=0, drop_incomplete=True, as_dn=True)


def _ring(ds: PretrainDataset, batch: int, workers: int) -> BatchRing:
    assert ds.pack_spec is not None
    return BatchRing(ring_slots(workers, PREFETCH), (batch, ds.num_dates, ds.pack_spec.length))  # packed


def decode_rates(store: Path, a: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """(wall samples/s, samples per CPU-second) of in-process decoding: ``read`` into a reused 10 m grid
    batch buffer (the ring slot of before packing), ``read_packed`` into a packed ring slot (and with
    ``--fresh`` the old fresh batch tensor per batch)."""
    ds = _dataset(store, a.bands)
    ds._get_store()  # opened before timing
    spec = ds.pack_spec
    assert spec is not None
    ring = _ring(ds, a.batch_size, 0)
    # the 10 m grid batch in the same kind of memory as the ring (shared, prefaulted): the ring slot of before
    shape = (a.batch_size, ds.num_dates, len(ds.bands), spec.patch_size, spec.patch_size)
    grid = BatchRing(1, shape).view(0).numpy()  # (B, n, C, H, W)
    sampler = ResumableSampler(len(ds), a.batch_size, seed=0)
    batches = [list(b) for b in sampler][: a.decode_batches] or [list(next(iter(sampler)))]

    def read(k: int, keys: list[int]) -> None:
        for j, i in enumerate(keys):
            ds.read_drawn(int(ds.locations[i]), ds.draw(i), grid[j])

    def read_packed(k: int, keys: list[int]) -> None:
        slot = ring.view(k % ring.slots).numpy()  # (B, n, L)
        for j, i in enumerate(keys):
            ds.read_drawn_packed(int(ds.locations[i]), ds.draw(i), slot[j])

    def fresh(k: int, keys: list[int]) -> None:
        ds.__getitems__(keys)  # no ring: a new (B, n, C, H, W) tensor per batch

    fns: dict[str, Callable[[int, list[int]], None]] = {"read": read, "read_packed": read_packed}
    if a.fresh:
        fns["fresh"] = fresh
    out: dict[str, list[tuple[float, float]]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(a.rounds + 1):  # round 0 warms up; contenders alternate
        for name in names if r % 2 == 0 else names[::-1]:
            t, c = time.perf_counter(), time.process_time()
            for k, keys in enumerate(batches):
                fns[name](k, keys)
            dt, dc = time.perf_counter() - t, time.process_time() - c
            n = sum(len(b) for b in batches)
            if r:
                out[name].append((n / dt, n / max(dc, 1e-9)))
    return {k: (statistics.median(x for x, _ in v), statistics.median(y for _, y in v)) for k, v in out.items()}


def _decode_worker(store: str, bands: str, batch: int, batches: int, rounds: int, start: Any, q: Any) -> None:
    """One independent decoder process (no DataLoader): ``rounds`` x ``batches`` ring decodes after ``start``."""
    torch.set_num_threads(1)
    ds = _dataset(Path(store), bands)
    ds.ring = _ring(ds, batch, 0)
    keys = [list(b) for b in ResumableSampler(len(ds), batch, seed=0)][:batches]
    for k, kk in enumerate(keys):  # warm: every slot touched, every shard verified once
        ds.__getitems__(SlotKeys(kk, k % ds.ring.slots))
    start.wait()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        for k, kk in enumerate(keys):
            ds.__getitems__(SlotKeys(kk, k % ds.ring.slots))
    q.put((rounds * sum(len(x) for x in keys), time.perf_counter() - t, time.process_time() - c))


def independent_decoders(store: Path, a: argparse.Namespace, w: int) -> tuple[float, float]:
    """(samples/s, samples per CPU-second) of ``w`` decoder processes running at once, no pipeline between them.

    The ceiling a ``w``-worker loader can reach on this machine: where it is below ``w`` x the 1-process rate,
    the cores themselves do not scale (shared caches, memory bandwidth, SMT siblings, other load), and the
    loader's efficiency is better read against this row.
    """
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    start, q = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_decode_worker, args=(str(store), a.bands, a.batch_size, a.decode_batches,
                                                       a.rounds, start, q)) for _ in range(w)]
    for p in procs:
        p.start()
    time.sleep(1.0)
    start.set()
    res = [q.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    n = sum(r[0] for r in res)
    return n / max(r[1] for r in res), n / sum(r[2] for r in res)


def _batches_forever(loader: DataLoader, sampler: ResumableSampler) -> Generator[dict[str, Any], None, None]:
    while True:
        yield from loader
        sampler.next_epoch()


def _cpu_seconds() -> float:
    """CPU seconds of this process and its children (the DataLoader workers) so far."""
    import psutil

    procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def loader_rate(
    store: Path, a: argparse.Namespace, workers: int, ring_path: bool, pinned: bool
) -> tuple[float, float]:
    """(samples/s, samples per CPU-second of main + workers) a DataLoader with ``workers`` persistent workers
    hands to the main process, after warm-up. The second is what a machine with enough free cores would see
    per core, whatever else runs on this one."""
    ds = _dataset(store, a.bands)
    sampler = ResumableSampler(len(ds), a.batch_size, seed=0, with_epoch=True)
    ring = None
    if ring_path:
        ring = _ring(ds, a.batch_size, workers)
        if pinned:
            ring.pin()
        ds.ring = ring
    loader = DataLoader(
        ds, batch_sampler=RingBatches(sampler, ring) if ring is not None else sampler, collate_fn=collate_pretrain,
        num_workers=workers, persistent_workers=workers > 0, prefetch_factor=PREFETCH if workers else None,
        pin_memory=pinned and ring is None,
    )
    it = _batches_forever(loader, sampler)
    # warm-up: workers started, pipeline filled, and every ring slot written once by the workers (a forked
    # worker takes a minor page fault on its first write to each page: once per worker lifetime, which the
    # persistent workers of a long run never see again)
    for _ in range(ring_slots(workers, PREFETCH) + workers):
        unpack_batch(next(it), ring)
    t, c = time.perf_counter(), _cpu_seconds()
    n = 0
    for _ in range(max(a.loader_batches, 3 * ring_slots(workers, PREFETCH))):  # every ring slot reused
        n += len(unpack_batch(next(it), ring)["index"])
    rate, per_cpu = n / (time.perf_counter() - t), n / max(_cpu_seconds() - c, 1e-9)
    it.close()
    workers_iter: Any = getattr(loader, "_iterator", None)
    if workers_iter is not None:  # stop the workers now: their prefetching would count in the next measurement
        workers_iter._shutdown_workers()
    del it, loader
    if ring is not None:
        ring.unpin()
    return rate, per_cpu


def _median_rate(fn: Callable[[], None], samples: int, rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return samples / statistics.median(times)


def views_rate(store: Path, a: argparse.Namespace, device: torch.device) -> tuple[float, tuple[Any, Any]]:
    """(copy + unpack + views samples/s, the last views (q, keys)) on ``device``, from a packed ring slot."""
    ds = _dataset(store, a.bands)
    ring = _ring(ds, a.batch_size, 0)
    cuda = device.type == "cuda"
    if cuda:
        ring.pin()
    ds.ring = ring
    batch = unpack_batch(collate_pretrain(ds.__getitems__(SlotKeys(list(range(a.batch_size)), 0))), ring)
    host = batch["packed"]  # (B, 3, L) uint16, pinned on CUDA
    spec = ds.pack_spec
    assert spec is not None
    norm = Normalization.from_store(open_store(store), ds.bands)
    recipe = recipe_for("seco")
    gen = torch.Generator()
    stream = torch.cuda.Stream(device) if cuda else None
    made: dict[str, Any] = {}

    def views() -> None:
        if stream is not None:
            with torch.cuda.stream(stream):
                dev = host.to(device, non_blocking=True)  # (B, 3, L): the packed bytes only
            torch.cuda.current_stream(device).wait_stream(stream)
            images = to_reflectance(spec.unpack(dev))  # (B, 3, C, H, W), unpacked as uint16 first
        else:
            images = spec.unpack(host)  # on the CPU make_views reads the DN batch directly
        gen.manual_seed(0)
        made["v"] = make_views(images, recipe, gen=gen, size=a.crop, normalization=norm)
        if cuda:
            torch.cuda.synchronize(device)

    rate = _median_rate(views, a.batch_size, a.rounds)
    ring.unpin()
    return rate, made["v"]


def step_rate(views: tuple[Any, Any], bands: int, a: argparse.Namespace, device: torch.device) -> float:
    """Step-only samples/s on ``views`` already on ``device``."""
    q, keys = views
    cuda = device.type == "cuda"
    precision = a.precision if a.precision != "auto" else ("bf16" if cuda else "fp32")
    torch.manual_seed(0)
    model = ContrastiveModel(a.backbone, in_chans=bands, num_heads=3, queue_size=a.queue_size,
                             extra_negatives_heads=(1, 2)).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        q = q.contiguous(memory_format=torch.channels_last)
        keys = [k.contiguous(memory_format=torch.channels_last) for k in keys]
    opt = torch.optim.SGD(model.query_parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)

    def step() -> None:
        ctx = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
        with ctx:
            loss = model(q, keys).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize(device)

    return _median_rate(step, a.batch_size, max(a.rounds, 3))


def _metrics_rate(out: Path, warm: int) -> float:
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    rates = [float(r["samples_per_s"]) for r in rows if int(r["step"]) > warm]
    return statistics.median(rates) if rates else float("nan")


def _pretrain_args(store: Path, out: Path, a: argparse.Namespace, workers: int) -> list[str]:
    return [
        "pretrain", "--store", str(store), "--out", str(out), "--backbone", a.backbone, "--bands", a.bands,
        "--crop", str(a.crop), "--batch-size", str(a.batch_size), "--queue-size", str(a.queue_size),
        "--max-steps", str(a.steps), "--log-every", "1", "--ckpt-every", str(10**6), "--plot-every", str(10**6),
        "--num-workers", str(workers), "--no-tensorboard", "--no-progress",
    ]


def end_to_end(store: Path, a: argparse.Namespace, device: torch.device) -> float:
    from seco.train.loop import pretrain

    out = Path(tempfile.mkdtemp(dir=a.work, prefix="e2e_"))
    shutil.rmtree(out)
    workers: Any = a.e2e_workers if a.e2e_workers is not None else "auto"
    cfg = PretrainConfig(
        store=str(store), out=str(out), backbone=a.backbone, bands=a.bands, crop=a.crop, batch_size=a.batch_size,
        queue_size=a.queue_size, max_steps=a.steps, log_every=1, ckpt_every=10**6, plot_every=10**6,
        num_workers=workers, precision=a.precision, device=str(device), tensorboard=False, progress=False,
    )
    pretrain(cfg)
    rate = _metrics_rate(out, a.warm)
    shutil.rmtree(out, ignore_errors=True)
    return rate


def old_vs_new(store: Path, a: argparse.Namespace) -> list[tuple[str, float, float, float]]:
    """Per round: (round, old samples/s, new samples/s, new/old) of `seco pretrain` subprocesses."""
    here = Path(__file__).resolve().parents[1]
    rows = []
    for r in range(a.rounds):
        rates = {}
        for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
            tree = Path(a.old_tree) if name == "old" else here
            out = Path(tempfile.mkdtemp(dir=a.work, prefix=f"{name}_"))
            shutil.rmtree(out)
            env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(torch.get_num_threads())}
            cmd = [sys.executable, "-m", "seco", *_pretrain_args(store, out, a, a.e2e_workers or 0)]
            res = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
            if res.returncode:
                raise SystemExit(f"{name} tree failed: {res.stderr[-2000:]}")
            rates[name] = _metrics_rate(out, a.warm)
            shutil.rmtree(out, ignore_errors=True)
        rows.append((f"round {r + 1}", rates["old"], rates["new"], rates["new"] / rates["old"]))
    return rows


class Rows:
    """Rows of the side-by-side table: one per (stage, path), a rate (and a note) per grid."""

    def __init__(self, grids: list[str]) -> None:
        self.grids = grids
        self.rows: dict[tuple[str, str], dict[str, tuple[float, str]]] = {}

    def add(self, stage: str, path: str, grid: str, rate: float, note: str = "") -> None:
        self.rows.setdefault((stage, path), {})[grid] = (rate, note)
        print(f"{grid}: {stage} | {path} | {rate:.2f} | {note}", flush=True)

    def table(self) -> str:
        both = self.grids == list(GRIDS)
        headers = ["stage", "path", *(f"{g} samples/s" for g in self.grids)]
        headers += ["native / 10m"] if both else []
        headers += ["note"]
        out = []
        for (stage, path), by in self.rows.items():
            rates = [by[g][0] if g in by else float("nan") for g in self.grids]
            row: list[object] = [stage, path, *rates]
            if both:
                row.append(f"{rates[1] / rates[0]:.2f}x" if rates[0] and rates[0] == rates[0] else "")
            notes = [(g, by[g][1]) for g in self.grids if g in by and by[g][1]]
            if len({n for _, n in notes}) > 1:
                row.append("; ".join(f"{g}: {n}" for g, n in notes))
            else:
                row.append(notes[0][1] if notes else "")
            out.append(row)
        return table(headers, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", help="an existing store (default: synth stores in --work)")
    ap.add_argument("--grid", default="10m,native",
                    help="store grids to measure side by side: 10m, native or both (default)")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "seco_bench_pipeline"))
    ap.add_argument("--locations", type=int, default=64, help="synth store size (>= 2048 on a 16-core GPU box)")
    ap.add_argument("--dates", type=int, default=5)
    ap.add_argument("--patch-size", type=int, default=264)
    ap.add_argument("--bands", default="all")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--crop", type=int, default=224)
    ap.add_argument("--backbone", default="resnet18", choices=["resnet18", "resnet50"])
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--queue-size", type=int, default=None, help="default: 64 batches (16384 at batch 256)")
    ap.add_argument("--workers", default="1,2", help="worker counts for the loader rows")
    ap.add_argument("--e2e-workers", type=int, default=None, help="workers of the end-to-end run (default auto)")
    ap.add_argument("--steps", type=int, default=12, help="steps of each end-to-end run")
    ap.add_argument("--warm", type=int, default=3, help="end-to-end steps left out of the rate")
    ap.add_argument("--e2e-rounds", type=int, default=1,
                    help="end-to-end runs per grid, the grids alternating (the median is printed)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--decode-batches", type=int, default=3)
    ap.add_argument("--loader-batches", type=int, default=8)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--fresh", action="store_true",
                    help="also the old paths: a fresh batch tensor per batch (decode and loader rows)")
    ap.add_argument("--old-tree", help="a checkout of older seco: its `seco pretrain` against this one")
    ap.add_argument("--stages", default="decode,loader,step,e2e",
                    help="which of decode, loader, step (copy + views and step only), e2e to run")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    a.queue_size = a.queue_size or 64 * a.batch_size
    Path(a.work).mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if a.device == "auto" else a.device))
    cmd = " ".join(["python -m bench.bench_pipeline", *sys.argv[1:]])
    load = os.getloadavg()
    print(f"`{cmd}`\n\n# pre-training pipeline, stage by stage\n\n{time.strftime('%Y-%m-%d %H:%M')}, load "
          f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} on {len(os.sched_getaffinity(0))} CPUs; {machine()}; device "
          f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}\n", flush=True)
    stores = _stores(a)
    grids = list(stores)
    for g, path in stores.items():
        s = open_store(path)
        spec = s.pack_spec(a.bands)
        print(f"{g}: {path}: {len(s)} locations x {s.num_dates} dates x {len(spec.bands)} bands x {s.patch_size} "
              f"px; packed sample {spec.length} elements a date ({len(spec.bands) * s.patch_size**2 / spec.length:.2f}x "
              f"fewer than the 10 m grid)", flush=True)
    print(f"batch {a.batch_size}, {a.backbone}, {a.crop} px views, SeCo (3 dates)\n", flush=True)

    stages = set(a.stages.split(","))
    rows = Rows(grids)
    ref: dict[str, tuple[float, float]] = {}
    for g in grids:  # always: the loader's efficiency is relative to it
        dec = decode_rates(stores[g], a)
        ref[g] = dec["read_packed"]
        for k, what in (("fresh", "fresh batch tensor (old path)"), ("read", "read -> 10 m grid buffer"),
                        ("read_packed", "read_packed -> ring slot")):
            if k in dec:
                rows.add("decode, 1 process", what, g, dec[k][0], f"{dec[k][1]:.1f} per CPU-s")
    for w in [int(x) for x in a.workers.split(",") if x and "loader" in stages]:
        for g in grids:
            one, one_cpu = ref[g]
            ind, _ = independent_decoders(stores[g], a, w)
            rows.add(f"decode, {w} independent processes", "read_packed (no DataLoader)", g, ind,
                     f"{ind / (w * one):.2f} x W x 1 process (the machine's own scaling)")
            for pinned in (False, True) if device.type == "cuda" else (False,):
                for ring_path in (False, True) if a.fresh else (True,):
                    name = ("ring" if ring_path else "fresh shm per batch") + (", pinned" if pinned else "")
                    try:
                        r, per_cpu = loader_rate(stores[g], a, w, ring_path, pinned)
                    except ConfigError as e:  # e.g. a 10 m ring larger than /dev/shm: the other rows still run
                        rows.add(f"loader, {w} workers", name, g, float("nan"), f"refused: {e}")
                        continue
                    rows.add(f"loader, {w} workers", name, g, r,
                             f"efficiency {r / (w * one):.2f} wall, {per_cpu / one_cpu:.2f} per CPU-s, "
                             f"{r / ind:.2f} x {w} independent decoders")
    if device.type != "cuda" and "loader" in stages:
        rows.add("loader, pinned", "n/a without CUDA", grids[-1], float("nan"), "run on a GPU box")
    st = float("nan")
    if "step" in stages:
        made: Any = None
        for g in grids:
            cv, made = views_rate(stores[g], a, device)
            rows.add("copy + unpack + views", device.type, g, cv,
                     "to device (packed) + unpack + to_reflectance + make_views")
        st = step_rate(made, len(open_store(stores[grids[0]]).pack_spec(a.bands).bands), a, device)
        for g in grids:
            rows.add("step only", f"{device.type}, {a.precision}", g, st, "views already on the device (one run)")
    if "e2e" in stages:
        runs: dict[str, list[float]] = {g: [] for g in grids}
        for r in range(a.e2e_rounds):  # the grids alternate: load that drifts during the run hits both
            for g in grids if r % 2 == 0 else grids[::-1]:
                try:
                    runs[g].append(end_to_end(stores[g], a, device))
                except ConfigError as e:  # the run refused its settings (ring vs /dev/shm, pinning)
                    print(f"{g}: end to end refused: {e}", flush=True)
                    runs[g].append(float("nan"))
                    continue
                print(f"{g}: end to end, round {r + 1}: {runs[g][-1]:.2f} samples/s", flush=True)
        for g in grids:
            e2e = statistics.median(runs[g])
            rounds = f"median of {a.e2e_rounds} alternating runs, " if a.e2e_rounds > 1 else ""
            rows.add("end to end", "seco.train.loop.pretrain", g, e2e, f"{rounds}{e2e / st:.2f} x step only")
        for g in grids:
            e2e = rows.rows[("end to end", "seco.train.loop.pretrain")][g][0]
            rows.add("end to end / step only", "ratio", g, e2e / st)
    print()
    print(rows.table(), flush=True)

    if a.old_tree:
        base = stores.get("10m", stores[grids[0]])
        print(f"\n`seco pretrain` end to end, old tree {a.old_tree} against this one on {base} (subprocesses, "
              f"{a.e2e_workers or 0} workers, alternating):\n")
        rr = old_vs_new(base, a)
        print(table(["round", "old samples/s", "new samples/s", "new / old"], rr))
        print(f"\nmedian new / old: {statistics.median(r[3] for r in rr):.2f}")


if __name__ == "__main__":
    main()

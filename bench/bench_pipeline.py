"""Pre-training data path, stage by stage, in one run: where does ``seco pretrain`` lose time?

Stages (samples/s; one sample = ``num_dates`` dates x C bands x H x W uint16 DN, SeCo: 3 dates):

1. **decode, 1 process**: ``PretrainDataset.__getitems__`` in this process: into a fresh batch tensor per
   batch (the old path) and into a reusable ring slot (``seco.data.ring``); wall-clock and per CPU-second.
2. **loader, W workers**: a ``DataLoader`` with W persistent workers, nothing done with the batches: the old
   path (a fresh shared-memory batch per batch, sent to the main process) against the ring (workers decode
   into shared slots, only the slot number travels); with pinned output on CUDA (``pin_memory=True`` against
   the ring pinned once). *Efficiency* = rate / (W x the 1-process ring decode rate): 1.0 means the pipeline
   adds no allocation, copy or pinning tax; on a shared machine, where W workers do not get W free cores,
   the same ratio per CPU-second (samples per CPU-second of main process + workers over the 1-process
   samples per CPU-second) shows the tax independently of the load. A reference row runs W independent
   decoder processes at once (no DataLoader): what the machine itself gives W processes; the loader's rate
   over it is the pipeline's own tax.
3. **copy + views**: the batch to the device and ``to_reflectance`` + ``make_views`` there (on the CPU: views
   from the DN batch, as the loop does).
4. **step only**: the training step on views already on the device (``--precision``, channels-last on CUDA).
5. **end to end**: ``seco.train.loop.pretrain`` itself (median samples/s of its ``metrics.csv`` after warm-up),
   and its ratio to the step-only rate. With ``--old-tree DIR`` (a checkout of older seco, e.g.
   ``git worktree add /tmp/seco_old 510f953``) both trees' ``seco pretrain`` run as subprocesses on the same
   store, alternating, ``--rounds`` times: the median ratio new/old is printed.

CPU always; CUDA when present (``--device auto``). No progress bars with ``--quiet``.

    .venv/bin/python -m bench.bench_pipeline --quiet                         # 2-core CPU box, ~10 min
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
from seco.data.views import recipe_for
from seco.models.seco import ContrastiveModel
from seco.store import open_store
from seco.train.config import PretrainConfig

PREFETCH = 2


def _store(a: argparse.Namespace) -> Path:
    if a.store:
        return Path(a.store)
    from seco.synth import make_store

    path = Path(a.work) / f"pipe_{a.locations}x{a.dates}x{a.patch_size}.zarr"
    if not path.exists():
        t = time.perf_counter()
        make_store(path, num_locations=a.locations, num_dates=a.dates, patch_size=a.patch_size, seed=0,
                   progress=not a.quiet)
        print(f"wrote {path} in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def _dataset(store: Path, bands: str) -> PretrainDataset:
    return PretrainDataset(store, bands, num_dates=3, seed=0, drop_incomplete=True, as_dn=True)


def _ring(ds: PretrainDataset, batch: int, workers: int) -> BatchRing:
    assert ds.pack_spec is not None
    return BatchRing(ring_slots(workers, PREFETCH), (batch, ds.num_dates, ds.pack_spec.length))  # packed


def decode_rates(store: Path, a: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """(wall samples/s, samples per CPU-second) of in-process decoding, fresh tensor vs ring slot."""
    ds = _dataset(store, a.bands)
    ring = _ring(ds, a.batch_size, 0)
    sampler = ResumableSampler(len(ds), a.batch_size, seed=0)
    batches = [list(b) for b in sampler][: a.decode_batches] or [list(next(iter(sampler)))]
    out: dict[str, list[tuple[float, float]]] = {"fresh": [], "ring": []}
    for r in range(a.rounds + 1):  # round 0 warms up; contenders alternate
        for name in ("fresh", "ring") if r % 2 == 0 else ("ring", "fresh"):
            ds.ring = ring if name == "ring" else None
            t, c = time.perf_counter(), time.process_time()
            for k, keys in enumerate(batches):
                ds.__getitems__(SlotKeys(keys, k % ring.slots) if name == "ring" else keys)
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


def views_and_step_rates(store: Path, a: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """(copy + views samples/s, step-only samples/s) on ``device``."""
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
                dev = host.to(device, non_blocking=True)
            torch.cuda.current_stream(device).wait_stream(stream)
            images = to_reflectance(spec.unpack(dev))
        else:
            images = spec.unpack(host)  # on the CPU make_views reads the DN batch directly
        gen.manual_seed(0)
        made["v"] = recipe.make_views(images, gen=gen, size=a.crop, normalization=norm)
        if cuda:
            torch.cuda.synchronize(device)

    copy_views = _median_rate(views, a.batch_size, a.rounds)
    q, keys = made["v"]
    precision = a.precision if a.precision != "auto" else ("bf16" if cuda else "fp32")
    torch.manual_seed(0)
    model = ContrastiveModel(a.backbone, in_chans=len(ds.bands), num_heads=3, queue_size=a.queue_size,
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

    step_rate = _median_rate(step, a.batch_size, max(a.rounds, 3))
    ring.unpin()
    return copy_views, step_rate


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", help="an existing store (default: a synth store in --work)")
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
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--decode-batches", type=int, default=3)
    ap.add_argument("--loader-batches", type=int, default=8)
    ap.add_argument("--device", default="auto")
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
    store = _store(a)
    s = open_store(store)
    print(f"store {store}: {len(s)} locations x {s.num_dates} dates x {len(s.bands)} bands x {s.patch_size} px; "
          f"batch {a.batch_size}, {a.backbone}, {a.crop} px views, SeCo (3 dates)\n", flush=True)

    stages = set(a.stages.split(","))
    rows: list[tuple[str, str, float, str]] = []
    dec = decode_rates(store, a)  # always: the loader's efficiency is relative to it
    one, one_cpu = dec["ring"]
    for k in ("fresh", "ring"):
        rows.append(("decode, 1 process", f"{k} batch tensor", dec[k][0], f"{dec[k][1]:.1f} per CPU-s"))
    print(table(["stage", "path", "samples/s", "note"], rows), "\n", flush=True)

    for w in [int(x) for x in a.workers.split(",") if x and "loader" in stages]:
        ind, ind_cpu = independent_decoders(store, a, w)
        rows.append((f"decode, {w} independent processes", "ring (no DataLoader)", ind,
                     f"{ind / (w * one):.2f} x W x 1 process (the machine's own scaling)"))
        print(rows[-1], flush=True)
        for pinned in (False, True) if device.type == "cuda" else (False,):
            for ring_path in (False, True):
                name = ("ring" if ring_path else "fresh shm per batch") + (", pinned" if pinned else "")
                r, per_cpu = loader_rate(store, a, w, ring_path, pinned)
                rows.append((f"loader, {w} workers", name, r,
                             f"efficiency {r / (w * one):.2f} wall, {per_cpu / one_cpu:.2f} per CPU-s, "
                             f"{r / ind:.2f} x {w} independent decoders"))
                print(rows[-1], flush=True)
    if device.type != "cuda" and "loader" in stages:
        rows.append(("loader, pinned", "n/a without CUDA", float("nan"), "run on a GPU box"))
    st = float("nan")
    if "step" in stages:
        cv, st = views_and_step_rates(store, a, device)
        rows.append(("copy + views", f"{device.type}", cv, "to device + to_reflectance + make_views"))
        rows.append(("step only", f"{device.type}, {a.precision}", st, "views already on the device"))
    if "e2e" in stages:
        e2e = end_to_end(store, a, device)
        rows.append(("end to end", "seco.train.loop.pretrain", e2e, f"{e2e / st:.2f} x step only"))
    print()
    print(table(["stage", "path", "samples/s", "note"], rows), flush=True)

    if a.old_tree:
        print(f"\n`seco pretrain` end to end, old tree {a.old_tree} against this one (subprocesses, "
              f"{a.e2e_workers or 0} workers, alternating):\n")
        rr = old_vs_new(store, a)
        print(table(["round", "old samples/s", "new samples/s", "new / old"], rr))
        print(f"\nmedian new / old: {statistics.median(r[3] for r in rr):.2f}")


if __name__ == "__main__":
    main()

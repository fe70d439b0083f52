"""One command that checks seco's CUDA path of pre-training on a GPU (issue 19): seven checks, a pass/fail table.

    python -m bench.gpu_check --out gpu_check_out       # a machine with a CUDA GPU; < 8 min on one H100/H200

The checks, in order (each runs even when an earlier one failed; details in the table):

1. **environment**: ``/dev/shm``, ``ulimit -l``, the GPU, torch / CUDA / NCCL versions, bf16.
2. **pinning**: a small ring pinned with ``cudaHostRegister`` (portable, on the run's GPU); a slot view is
   pinned; a non-blocking copy of a slot returns in under 1 ms and moves more than 15 GB/s (unpinned memory
   alongside); a refused ``cudaHostRegister`` leaves no CUDA error behind for the next kernel.
3. **slot race under stress**: 4 forked persistent workers fill each ring slot with the global batch id;
   ``DevicePrefetcher`` runs 3 epochs with the copies and the compute slowed by ``torch.cuda._sleep``; every
   device batch must be uniformly its id. Negative control: the same with the event wait disabled must be
   caught (else the check could not see a race).
4. **uint16 on CUDA**: ``PackSpec.unpack`` against the NumPy unpack (P = 264 and 50, grid factors 1, 2, 6),
   ``to_reflectance`` bitwise equal to the CPU, ``make_views`` close to the CPU.
5. **synchronisations**: one step of a settled run (``settle_run`` + ``StepRunner``, the code ``seco pretrain``
   runs), fed by ``DevicePrefetcher`` from its pinned ring, under ``torch.cuda.set_sync_debug_mode("warn")``;
   the warnings are counted (goal 0) and located.
6. **all_gather layout**: a 1-rank NCCL group gathers channels-last key images into ``concat_all_gather``'s
   buffers (and, for the record, into ``empty_like`` buffers as before issue 19).
7. **end to end**: ``seco pretrain --device cuda`` on a native synth store, then ``--resume``: finite loss,
   samples/s and the end-to-end / step-only ratio; a clean exit, nothing new left in ``/dev/shm`` and no
   worker left running.

The table goes to the terminal and to ``<out>/gpu_check.md`` (``<out>/gpu_check.json`` too); the synth store
and the runs go to ``--work`` (default: a temporary folder). No progress bars. Without CUDA the script exits with status 2 and says so; the tests run its CPU-runnable parts
(``tests/bench/test_gpu_check.py``). Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from seco.bands import L2A
from seco.data.normalize import Normalization, to_reflectance
from seco.data.ring import BatchRing, RingBatches, SlotKeys, host_register, ring_slots
from seco.data.transforms import Augment
from seco.data.views import make_views
from seco.methods import SECO
from seco.models.contrastive import gather_buffers
from seco.store.packing import PackSpec
from seco.train.config import PretrainConfig
from seco.train.distributed import DistInfo
from seco.train.prefetch import DevicePrefetcher, teardown
from seco.train.setup import Run, settle_run
from seco.train.step import StepRunner

GIB = 2**30


@dataclass(frozen=True)
class Sizes:
    """How big each check runs (the defaults fit one H100/H200 in well under 8 minutes)."""

    patch: int = 264
    locations: int = 192
    batch: int = 64
    crop: int = 224
    queue: int = 4096
    steps: int = 40  # end to end, first run; the resumed run goes on to steps + resume_steps
    resume_steps: int = 20
    pin_batch: int = 64  # pinning: a native-store slot of this batch (64: 149 MB)
    race_batches: int = 40  # slot race: batches per epoch
    timeout_s: int = 300  # each `seco pretrain` subprocess


#: What the tests run on the CPU.
TINY = Sizes(patch=48, locations=16, batch=4, crop=32, queue=16, steps=4, resume_steps=2, pin_batch=2,
             race_batches=8, timeout_s=300)


@dataclass
class Result:
    name: str
    ok: bool
    detail: str
    seconds: float = 0.0


@dataclass
class Context:
    device: torch.device
    work: Path
    sizes: Sizes = field(default_factory=Sizes)
    _store: Path | None = None

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def store(self) -> Path:
        """A native-resolution synth store, written once into ``work`` (checks 5 and 7)."""
        if self._store is None:
            from seco.synth import make_store

            path = self.work / f"synth_native_{self.sizes.locations}x{self.sizes.patch}.zarr"
            if not path.exists():
                make_store(path, num_locations=self.sizes.locations, num_dates=5, patch_size=self.sizes.patch,
                           seed=0, progress=False, grid="native")
            self._store = path
        return self._store


# ------------------------------------------------------------------------------------- a run's training step


def settled_run(store: Path, out: Path, device: torch.device, sizes: Sizes, workers: int = 0, **kw: Any) -> Run:
    """A run as ``seco pretrain`` settles it (``settle_run``: the run's defaults for ``device``, its ring, model,
    optimiser), whose steps ``seco.train.step.StepRunner`` runs; ``kw`` overrides config fields."""
    cfg = PretrainConfig(
        store=str(store), out=str(out), batch_size=sizes.batch, crop=sizes.crop, queue_size=sizes.queue,
        num_workers=workers, device=str(device), tensorboard=False, progress=False, max_steps=10**6, **kw,
    )
    return settle_run(cfg, resume=False, given=set(), info=DistInfo(), device=device)


# ------------------------------------------------------------------------------------------------ the checks


def check_environment(ctx: Context) -> tuple[bool, str]:
    """Passes with a GPU that runs bf16 and at least 2 GiB free in /dev/shm (what the later checks need)."""
    st = os.statvfs("/dev/shm")
    shm_free, shm_total = st.f_bavail * st.f_frsize / GIB, st.f_blocks * st.f_frsize / GIB
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    memlock = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft / 2**20:.0f} MiB"
    parts = [f"torch {torch.__version__}", f"/dev/shm {shm_free:.1f} of {shm_total:.1f} GiB free",
             f"ulimit -l {memlock}", f"{len(os.sched_getaffinity(0))} CPUs"]
    bf16 = True
    if ctx.cuda:
        from seco.train.distributed import bf16_supported

        p = torch.cuda.get_device_properties(ctx.device)
        bf16 = bf16_supported(ctx.device)
        v = torch.cuda.nccl.version()
        nccl = ".".join(str(x) for x in v) if isinstance(v, tuple) else str(v)
        parts[:0] = [f"{p.name} ({p.total_memory / GIB:.0f} GiB, sm_{p.major}{p.minor})",
                     f"CUDA {torch.version.cuda}", f"NCCL {nccl}", f"bf16 {'yes' if bf16 else 'no'}"]
    return bf16 and shm_free >= 2.0, ", ".join(parts)


def check_pinning(ctx: Context) -> tuple[bool, str]:
    """A pinned slot: ``is_pinned``, a non-blocking copy returns < 1 ms and moves > 15 GB/s; a refused register
    leaves no error for the next kernel."""
    if not ctx.cuda:
        return False, "needs CUDA"
    dev = ctx.device
    ring = BatchRing(3, (ctx.sizes.pin_batch, 3, PackSpec.build(L2A, ctx.sizes.patch).length))
    ring.pin(dev)
    try:
        view = ring.view(1)  # (B, 3, L) uint16
        view.numpy()[...] = np.random.default_rng(0).integers(0, 2**16, size=tuple(view.shape), dtype=np.uint16)
        pinned = ring.pinned and view.is_pinned()
        dst = torch.empty(view.shape, dtype=view.dtype, device=dev)
        unpinned = view.clone()  # ordinary (pageable) memory

        def timed(src: torch.Tensor) -> tuple[float, float]:
            best_ret, best_all = math.inf, math.inf
            for _ in range(6):
                torch.cuda.synchronize(dev)
                t0 = time.perf_counter()
                dst.copy_(src, non_blocking=True)
                t1 = time.perf_counter()
                torch.cuda.synchronize(dev)
                best_ret, best_all = min(best_ret, t1 - t0), min(best_all, time.perf_counter() - t0)
            return best_ret, view.numel() * 2 / best_all / 1e9

        ret, gbs = timed(view)
        ret_u, gbs_u = timed(unpinned)
        ok_copy = torch.equal(dst.cpu(), unpinned)
        # a refused cudaHostRegister (the range is registered already) must not poison the next kernel
        code = host_register(ring.buffers.data_ptr(), ring.nbytes, dev.index or 0)
        after = "clean"
        try:
            torch.ones(4, device=dev).add_(1).sum().item()
        except RuntimeError as e:
            after = f"FAILED: {str(e).splitlines()[0][:80]}"
    finally:
        ring.unpin()
    ok = pinned and ret < 1e-3 and gbs > 15 and ok_copy and after == "clean" and code != 0
    return ok, (f"slot {view.numel() * 2 / 1e6:.0f} MB is_pinned={pinned}; pinned: returns in {ret * 1e3:.3f} ms, "
                f"{gbs:.1f} GB/s; unpinned: {ret_u * 1e3:.1f} ms, {gbs_u:.1f} GB/s; copy exact={ok_copy}; "
                f"refused re-register (error {code}) then a kernel: {after}")


class _IdBatches(Dataset):  # type: ignore[type-arg]
    """Batch ``k`` of the sampler is ``[k] * B``: the worker fills ring slot ``keys.slot`` with ``k``."""

    def __init__(self, ring: BatchRing, batch: int) -> None:
        self.ring, self.batch = ring, batch

    def __len__(self) -> int:
        return 10**9

    def __getitems__(self, keys: SlotKeys) -> dict[str, Any]:
        gid = int(keys[0])
        self.ring.view(keys.slot, self.batch).numpy()[...] = gid
        b = self.batch
        return {"slot": keys.slot, "index": np.full(b, gid), "dates": np.zeros((b, 1), np.int64),
                "location": np.zeros(b, np.int64)}


class _EpochIds:
    """A batch sampler: epoch e yields ``[[e * n + i] * B for i in range(n)]``."""

    def __init__(self, n: int, batch: int) -> None:
        self.n, self.batch, self.epoch = n, batch, 0

    def __iter__(self) -> Iterator[list[int]]:
        for i in range(self.n):
            yield [self.epoch * self.n + i] * self.batch

    def __len__(self) -> int:
        return self.n


def _first(x: Any) -> Any:
    return x


class _Stressed(DevicePrefetcher):
    """``DevicePrefetcher`` with each copy delayed on the copy stream; ``wait=False`` drops the slot wait."""

    copy_cycles = 0
    wait = True

    def _wait_slot(self) -> None:
        if self.wait:
            super()._wait_slot()

    def _copy(self, host: torch.Tensor) -> torch.Tensor:
        torch.cuda._sleep(self.copy_cycles)  # runs on the copy stream: the DMA of this slot starts late
        return super()._copy(host)


def _cycles_per_ms(dev: torch.device) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(10**7)
    end.record()
    torch.cuda.synchronize(dev)
    return 10**7 / max(start.elapsed_time(end), 1e-3)


def _race(ctx: Context, wait: bool, cycles: float) -> tuple[int, int]:
    """(bad device batches, batches) over 3 epochs, 4 forked persistent workers."""
    b, n, P = 8, ctx.sizes.race_batches, 32
    spec = PackSpec.build(("B02",), P)  # one 10 m band: the packed slot is the image, unpack a view
    ring = BatchRing(ring_slots(4, 2), (b, 1, spec.length))
    sampler = _EpochIds(n, b)
    loader = DataLoader(_IdBatches(ring, b), batch_sampler=RingBatches(sampler, ring), collate_fn=_first,
                        num_workers=4, persistent_workers=True, prefetch_factor=2, multiprocessing_context="fork")
    ring.pin(ctx.device)
    pre = _Stressed(ctx.device, ring, spec)
    pre.wait, pre.copy_cycles = wait, int(2 * cycles)  # 2 ms per copy
    flags: list[torch.Tensor] = []
    try:
        for _ in range(3):
            for batch in pre.epoch(loader):
                torch.cuda._sleep(int(cycles))  # 1 ms of "compute" on the compute stream
                want = float(batch["index"][0])  # sent through the loader's queue, not the ring
                flags.append((batch["images"].float() != want).any())  # on the device: no host sync
            sampler.epoch += 1
        bad = int(torch.stack(flags).sum().item())
    finally:
        teardown(pre, ring)
    return bad, len(flags)


def check_slot_race(ctx: Context) -> tuple[bool, str]:
    """Every device batch uniformly its id with the slot wait; the same without it must be caught."""
    if not ctx.cuda:
        return False, "needs CUDA"
    cycles = _cycles_per_ms(ctx.device)
    bad, total = _race(ctx, wait=True, cycles=cycles)
    bad_ctl, total_ctl = _race(ctx, wait=False, cycles=cycles)
    ok = bad == 0 and bad_ctl > 0 and total == total_ctl == 3 * ctx.sizes.race_batches
    return ok, (f"with the wait: {bad} of {total} device batches wrong; negative control (no wait): {bad_ctl} of "
                f"{total_ctl} wrong ({'caught' if bad_ctl else 'NOT caught: the check cannot see a race'}); "
                f"copies delayed 2 ms, compute 1 ms")


def check_uint16(ctx: Context) -> tuple[bool, str]:
    """unpack == NumPy, to_reflectance bitwise == CPU, make_views close to CPU (P = 264 and 50)."""
    notes, ok = [], True
    for P in (ctx.sizes.patch, 50):
        spec = PackSpec.build(L2A, P)  # 10 m, 20 m and 60 m bands: grid factors 1, 2 and 6
        factors = sorted({g.factor for g in spec.groups})
        rng = np.random.default_rng(P)
        packed = rng.integers(0, 2**16, size=(4, 3, spec.length), dtype=np.uint16)  # (B, n, L)
        ref = spec.unpack_numpy(packed)  # (B, n, C, P, P)
        dev = spec.unpack(torch.from_numpy(packed).to(ctx.device))
        unpack_ok = np.array_equal(dev.cpu().numpy(), ref)
        every_dn = torch.arange(2**16, dtype=torch.int32).to(torch.uint16)
        refl_ok = torch.equal(to_reflectance(every_dn.to(ctx.device)).cpu(), to_reflectance(every_dn)) and torch.equal(
            to_reflectance(dev).cpu(), to_reflectance(torch.from_numpy(ref)))
        crop = min(ctx.sizes.crop, P - P % 8)
        norm = Normalization(L2A, (0.1,) * len(L2A), (0.05,) * len(L2A))
        aug = Augment(size=crop)
        q_cpu, k_cpu = make_views(torch.from_numpy(ref), SECO.views, gen=torch.Generator().manual_seed(1),
                                  size=crop, normalization=norm, augment_cfg=aug)
        q_dev, k_dev = make_views(to_reflectance(dev), SECO.views, gen=torch.Generator().manual_seed(1),
                                  size=crop, normalization=norm, augment_cfg=aug)
        # full-range random DN (reflectance up to 6.5, normalised up to ~130) make the bilinear crop's float
        # rounding of the sample points visible: compare relative to the largest value (CPU emulation of the
        # grid_sample path: 2.3e-5 at P=264)
        diff = max(float((a.cpu() - b).abs().max()) for a, b in zip([q_dev, *k_dev], [q_cpu, *k_cpu], strict=True))
        rel = diff / max(float(t.abs().max()) for t in [q_cpu, *k_cpu])
        views_ok = rel < 1e-4
        ok = ok and unpack_ok and refl_ok and views_ok
        notes.append(f"P={P} factors {factors}: unpack {'==' if unpack_ok else '!='} NumPy, to_reflectance "
                     f"{'bitwise ==' if refl_ok else '!='} CPU, make_views max |diff| {diff:.1e} ({rel:.1e} of the "
                     "largest value) vs CPU")
    return ok, "; ".join(notes)


def check_syncs(ctx: Context) -> tuple[bool, str]:
    """One step of a settled run (``StepRunner``), fed by ``DevicePrefetcher`` from the run's pinned ring, under
    ``torch.cuda.set_sync_debug_mode("warn")``."""
    if not ctx.cuda:
        return False, "needs CUDA"
    run = settled_run(ctx.store(), ctx.work / "sync_run", ctx.device, ctx.sizes, workers=2)
    from seco.train.loop import make_loader  # the run's own DataLoader


    loader = make_loader(run)
    pre = DevicePrefetcher(run.device, run.ring, run.dataset.pack_spec)
    step_once = StepRunner(run)
    caught: list[warnings.WarningMessage] = []
    try:
        batches = _forever(pre, loader, run)
        for _ in range(3):  # warm-up: cuDNN autotuning, the allocator, normalisation constants
            step_once(next(batches)["images"])
        torch.cuda.synchronize(ctx.device)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                loss = step_once(next(batches)["images"]).loss.detach()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        finite = bool(torch.isfinite(loss).item())
    finally:
        teardown(pre, run.ring)
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    where = sorted({f"{Path(w.filename).name}:{w.lineno}" for w in syncs})
    return len(syncs) == 0 and finite, f"{len(syncs)} synchronising calls in one step" + (
        f" at {', '.join(where)}" if where else "") + (
        f" ({run.cfg.precision}, channels-last {run.cfg.channels_last}); loss finite={finite}")


def _forever(pre: DevicePrefetcher, loader: DataLoader, run: Run) -> Iterator[dict[str, Any]]:
    while True:
        run.dataset.set_epoch(run.sampler.epoch)
        yield from pre.epoch(loader)
        run.sampler.next_epoch()


def check_all_gather(ctx: Context) -> tuple[bool, str]:
    """A 1-rank group (NCCL on CUDA, gloo on the CPU) gathers channels-last images into seco's buffers."""
    import torch.distributed as dist

    backend = "nccl" if ctx.cuda else "gloo"
    init = ctx.work / f"{backend}_init"
    init.unlink(missing_ok=True)
    dist.init_process_group(backend, init_method=f"file://{init}", rank=0, world_size=1)
    try:
        x = torch.randn(4, 12, 16, 16, device=ctx.device).contiguous(memory_format=torch.channels_last)
        send, parts = gather_buffers(x, 1)
        dist.all_gather(parts, send)
        ok = torch.equal(parts[0], x)
        try:  # before issue 19: buffers empty_like(x) (channels-last), x.contiguous() sent
            old = [torch.empty_like(x)]
            dist.all_gather(old, x.contiguous())
            before = "correct" if torch.equal(old[0], x) else "scrambled"
        except RuntimeError as e:
            before = f"error: {str(e).splitlines()[0][:80]}"
        if ctx.cuda:
            torch.cuda.synchronize(ctx.device)
    finally:
        dist.destroy_process_group()
    return ok, f"{backend}: seco's buffers {'gather correctly' if ok else 'SCRAMBLE'}; empty_like buffers: {before}"


def _metrics(out: Path) -> list[dict[str, str]]:
    import csv

    with (out / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def _pretrain(ctx: Context, out: Path, max_steps: int, resume: bool) -> tuple[int, str]:
    s = ctx.sizes
    cmd = [sys.executable, "-m", "seco", "pretrain", "--store", str(ctx.store()), "--out", str(out),
           "--device", str(ctx.device), "--batch-size", str(s.batch), "--crop", str(s.crop), "--queue-size",
           str(s.queue), "--max-steps", str(max_steps), "--log-every", "5", "--ckpt-every", "20", "--plot-every",
           str(10**6), "--no-tensorboard", "--no-progress", *(["--resume"] if resume else [])]
    paths = [str(Path(__file__).resolve().parents[1]), *filter(None, os.environ.get("PYTHONPATH", "").split(":"))]
    env = {**os.environ, "PYTHONPATH": ":".join(paths)}  # this checkout first, carried wheels (if any) after
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=s.timeout_s, env=env)
    return res.returncode, res.stdout + res.stderr


def _leftovers(marker: str) -> list[str]:
    import psutil

    left = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if marker in cmd and p.pid != os.getpid():
            left.append(f"{p.pid}")
    return left


def _step_only_rate(ctx: Context) -> float:
    """Samples/s of the run's step alone (``StepRunner``: views, forward, backward, optimiser) on one batch
    already on the device."""
    s = ctx.sizes
    run = settled_run(ctx.store(), ctx.work / f"step_only_{os.getpid()}", ctx.device, s)
    step_once = StepRunner(run)
    n, P = len(run.bands), s.patch
    images = torch.randint(0, 5000, (s.batch, 3, n, P, P), dtype=torch.int32).to(torch.uint16).to(ctx.device)
    position = run.sampler.state_dict()
    times = []
    for _ in range(8):
        t0 = time.perf_counter()
        step_once(images)
        if ctx.cuda:
            torch.cuda.synchronize(ctx.device)
        times.append(time.perf_counter() - t0)
        run.sampler.load_state_dict(position)  # the same batch again: the sampler must not run out
    teardown(None, run.ring)
    return s.batch / statistics.median(times[3:])


def check_end_to_end(ctx: Context) -> tuple[bool, str]:
    """``seco pretrain`` then ``--resume`` as subprocesses: finite loss, rates, clean exit."""
    s = ctx.sizes
    out = ctx.work / f"e2e_{os.getpid()}"
    store = ctx.store()
    shm_before = set(os.listdir("/dev/shm"))
    code1, log1 = _pretrain(ctx, out, s.steps, resume=False)
    code2, log2 = _pretrain(ctx, out, s.steps + s.resume_steps, resume=True)
    time.sleep(1.0)
    left = _leftovers(str(out))
    shm_new = sorted(set(os.listdir("/dev/shm")) - shm_before)
    if code1 or code2:
        tail = (log1 if code1 else log2).strip().splitlines()[-3:]
        return False, f"seco pretrain exited {code1} / {code2}: {' | '.join(tail)}"
    rows = _metrics(out)
    losses = [float(r["loss"]) for r in rows]
    steps = [int(r["step"]) for r in rows]
    rates = [float(r["samples_per_s"]) for r in rows if int(r["step"]) > 10]
    e2e = statistics.median(rates) if rates else float("nan")
    step_only = _step_only_rate(ctx)
    ring = next((ln for ln in log1.splitlines() if ln.startswith("batch ring:")), "no ring line")
    ok = (all(math.isfinite(v) for v in losses) and steps[-1] == s.steps + s.resume_steps and not left
          and not shm_new)
    return ok, (f"{store.name}: steps {steps[0]}..{steps[-1]} (resumed at {s.steps}), loss {losses[0]:.3f} -> "
                f"{losses[-1]:.3f}, {e2e:.0f} samples/s end to end vs {step_only:.0f} step only "
                f"(ratio {e2e / step_only:.2f}); leftover workers: {left or 'none'}; new in /dev/shm: "
                f"{shm_new or 'nothing'}; {ring}")


CHECKS: list[tuple[str, Callable[[Context], tuple[bool, str]]]] = [
    ("environment", check_environment),
    ("pinning", check_pinning),
    ("slot race under stress", check_slot_race),
    ("uint16 on CUDA", check_uint16),
    ("synchronisations", check_syncs),
    ("all_gather layout", check_all_gather),
    ("end to end", check_end_to_end),
]


def run(ctx: Context, only: set[int] | None = None) -> list[Result]:
    results = []
    for k, (name, fn) in enumerate(CHECKS, start=1):
        if only and k not in only:
            continue
        t0 = time.perf_counter()
        try:
            ok, detail = fn(ctx)
        except Exception as e:  # one failing check must not hide the others
            last = traceback.extract_tb(e.__traceback__)[-1]
            ok, detail = False, f"{type(e).__name__}: {e} (at {Path(last.filename).name}:{last.lineno})"
        results.append(Result(f"{k}. {name}", ok, detail, time.perf_counter() - t0))
        print(f"{'PASS' if ok else 'FAIL'}  {k}. {name} ({results[-1].seconds:.0f} s): {detail}", flush=True)
    return results


def render(results: list[Result], header: str) -> str:
    lines = [header, "", "| check | result | seconds | detail |", "|---|---|---:|---|"]
    lines += [f"| {r.name} | {'pass' if r.ok else '**FAIL**'} | {r.seconds:.0f} | {r.detail} |" for r in results]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="gpu_check_out", help="folder for gpu_check.md and gpu_check.json")
    ap.add_argument("--work", default=None, help="folder for the synth store and the runs (default: a temp dir)")
    ap.add_argument("--device", default="cuda", help="the GPU to check, e.g. cuda:1 (default cuda)")
    ap.add_argument("--only", default="", help="comma-separated check numbers to run (default: all seven)")
    a = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench/gpu_check.py checks the CUDA path and needs a CUDA GPU, but torch sees none "
              f"(torch {torch.__version__}, torch.cuda.is_available() is False); run it on a GPU machine with a "
              "CUDA build of torch", file=sys.stderr)
        return 2
    device = torch.device(a.device)
    torch.cuda.set_device(device)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="seco_gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(device, work)
    t0 = time.perf_counter()
    results = run(ctx, {int(k) for k in a.only.split(",") if k})
    header = (f"# seco GPU check, {time.strftime('%Y-%m-%d %H:%M')}: {torch.cuda.get_device_name(device)}, torch "
              f"{torch.__version__}, {sum(r.ok for r in results)} of {len(results)} passed in "
              f"{time.perf_counter() - t0:.0f} s")
    text = render(results, header)
    print("\n" + text, flush=True)
    (out / "gpu_check.md").write_text(text)
    (out / "gpu_check.json").write_text(json.dumps([r.__dict__ for r in results], indent=2))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

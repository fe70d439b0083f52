"""``seco store check``: per-location checks of a store, run in parallel, with a report of bad locations.

A check is any function ``check(store, i) -> list[Finding]`` (empty when location ``i`` is fine). The
integrity check here verifies the shards of every location (of every image array: ``images``, and
``images_x2`` / ``images_x6`` in a native-grid store): the file exists and is not truncated, its index
CRC and every chunk CRC32C match (stores written since seco records checksums), and every chunk decodes.
Other per-location checks (e.g. radiometric consistency) plug in by adding one entry to the ``checks``
mapping given to ``check_store`` (``seco.store.commands.location_checks``).

    from seco.store.check import check_store
    report = check_store("data/store.zarr", workers=2)
    report.ok, report.bad_locations, [f.to_dict() for f in report.findings]
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from seco.errors import ConfigError, StoreCorruptError
from seco.store.reader import Store, open_store
from seco.store.shard import ShardCorruptError, ShardReader

#: What the report says about a store whose chunks carry no checksums.
NO_CHECKSUMS = "no checksums (written by an older seco): chunks were checked for decodability only"


@dataclass(frozen=True)
class Finding:
    """One problem of one location.

    Attributes:
        location: index of the location in the store.
        key: the location's key (``None`` when it cannot be read).
        path: the file concerned (the shard), if any.
        check: name of the check that found it (``"integrity"``, ...).
        problem: what is wrong, in words.
        severity: ``"error"`` (the location is bad) or ``"warning"`` (suspicious, still usable).
    """

    location: int
    key: str | None
    path: str | None
    check: str
    problem: str
    severity: str = "error"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: A per-location check: ``(store, location index) -> findings`` (empty when the location is fine).
LocationCheck = Callable[[Store, int], "list[Finding]"]


def _key(store: Store, i: int) -> str | None:
    try:
        return store.key(i)
    except Exception:  # the key array itself may be damaged; the finding still names the location
        return None


def check_integrity(store: Store, i: int) -> list[Finding]:
    """Whether location ``i``'s image data are intact: shards present and complete, checksums, decodable chunks.

    Every image array is checked (``images``, ``images_x2`` / ``images_x6`` of a native-grid store, ``s1/images``
    of a store with Sentinel-1); a finding names the damaged array's shard.
    """
    key = _key(store, i)
    names = store.sensor_image_arrays  # the S1 group's s1/images too
    readers = {name: store.shard_reader(name) for name in names}
    if any(r is None for r in readers.values()):  # an object store or a layout read through zarr
        if store.config.layout.sharded:  # zarr would read a missing shard as zeros
            for name in names:
                if not store.has_image_file(i, name):
                    return [Finding(i, key, store.image_file(i, name), "integrity", "its shard file is missing")]
        try:
            store.read(i)  # a full read exercises every chunk of every array
            if store.s1 is not None:
                store.s1.read_raw(i)
        except StoreCorruptError as e:
            return [Finding(i, key, e.path or store.image_file(i), "integrity",
                            getattr(e.__cause__, "problem", None) or str(e.__cause__ or e))]
        return _check_clear_mask(store, i, key)
    out: list[Finding] = []
    for name, reader in readers.items():
        assert reader is not None
        out += _check_shard(reader, i, key, store.image_file(i, name))
    return out + _check_clear_mask(store, i, key)


def _check_clear_mask(store: Store, i: int, key: str | None) -> list[Finding]:
    """The location's clear-sky mask (stores that record them) reads back: its chunk decodes and, in stores with
    checksums, its CRC32C matches (zarr verifies it on read)."""
    if not store.has_clear:
        return []
    from seco.store.clear import MASK

    try:
        store.clear_mask(i)
    except Exception as e:  # noqa: BLE001 - zarr raises codec- and checksum-specific errors
        return [Finding(i, key, f"{store.path}/{MASK}/c/{i}/0/0/0", "integrity",
                        f"its clear-sky mask cannot be read ({type(e).__name__}: {e})")]
    return []


def _check_shard(reader: ShardReader, i: int, key: str | None, path: str) -> list[Finding]:
    """The findings of one shard: present and complete, index CRC, chunk checksums, every chunk decodes."""

    def finding(problem: str) -> list[Finding]:
        return [Finding(i, key, path, "integrity", problem)]

    L = reader.layout
    try:
        data = reader.map(i)
        index = L.parse_index(data, data.size, i, path)
    except ShardCorruptError as e:
        return finding(e.problem)
    out: list[Finding] = []
    bad = L.bad_checksums(data, index)
    if bad:
        out += finding(f"checksum mismatch in {len(bad)} chunk(s): "
                       + ", ".join(f"(date {t}, chunk {b})" for t, b in bad))
    decode = L.decoder()
    crc = 4 if L.checksum else 0
    scratch = np.empty((L.bands_per_chunk, *L.shape[2:]), np.uint16)  # (c, H, W)
    undecodable = []
    mv = memoryview(data)  # type: ignore[arg-type]
    for t in range(L.grid[0]):
        for b in range(L.grid[1]):
            off, n = int(index[t, b, 0]), int(index[t, b, 1])
            if off == 2**64 - 1 or (t, b) in bad:
                continue
            try:
                decode(mv[off : off + n - crc], scratch if L.bands_per_chunk > 1 else scratch[0])
            except (RuntimeError, ValueError, TypeError) as e:
                undecodable.append(f"(date {t}, chunk {b}: {e})")
    if undecodable:
        out += finding(f"{len(undecodable)} chunk(s) do not decode: " + ", ".join(undecodable[:4])
                       + (" ..." if len(undecodable) > 4 else ""))
    return out


def integrity_checks() -> dict[str, LocationCheck]:
    """The checks of this module (``seco.store.commands.location_checks`` adds the others)."""
    return {"integrity": check_integrity}


@dataclass
class CheckReport:
    """The result of ``check_store``."""

    store: str
    locations: int
    checked: int
    checks: list[str]
    checksums: bool
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bad_locations(self) -> list[int]:
        """Sorted indices of the locations with at least one error."""
        return sorted({f.location for f in self.findings if f.severity == "error"})

    @property
    def ok(self) -> bool:
        return not self.bad_locations

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store, "locations": self.locations, "checked": self.checked, "checks": self.checks,
            "checksums": self.checksums, "ok": self.ok, "bad_locations": self.bad_locations,
            "findings": [f.to_dict() for f in self.findings], "notes": self.notes, "seconds": round(self.seconds, 3),
        }


def _run(store: Store, checks: Mapping[str, LocationCheck], locations: Sequence[int]) -> list[Finding]:
    found: list[Finding] = []
    for i in locations:
        for name, check in checks.items():
            try:
                new = [_as_finding(f, name) for f in check(store, i)]
            except Exception as e:  # a check that breaks on a location is itself a finding about it
                new = [Finding(i, _key(store, i), None, name, f"the check failed: {type(e).__name__}: {e}")]
            found += new
            if any(f.severity == "error" for f in new):
                break  # a damaged location: later checks would only fail to read it again
    return found


def _as_finding(f: Any, check: str) -> Finding:
    """A ``Finding`` from any finding-like object (``location`` plus ``problem`` or ``message``, ...)."""
    if isinstance(f, Finding):
        return f
    problem = getattr(f, "problem", None) or getattr(f, "message", None) or str(f)
    return Finding(int(f.location), getattr(f, "key", None), getattr(f, "path", None),
                   getattr(f, "check", None) or check, str(problem), getattr(f, "severity", "error"))


def check_store(
    store: str | os.PathLike[str] | Store,
    *,
    checks: Mapping[str, LocationCheck] | None = None,
    workers: int = 1,
    locations: Iterable[int] | None = None,
    progress: bool = True,
    batch: int | None = None,
) -> CheckReport:
    """Run every check on every location (or on ``locations``).

    Args:
        store: a store path or an open ``Store``.
        checks: name -> per-location check (default: ``integrity_checks()``).
        workers: processes (1: in this process). Workers are spawned, so a script that calls this with
            ``workers > 1`` needs the usual ``if __name__ == "__main__":`` guard.
        locations: the location indices to check (default all).
        progress: a tqdm bar on stderr.
        batch: locations per task handed to a worker (default: about 4 tasks per worker, at most 256).

    Raises:
        StoreError: the store cannot be opened.
        ConfigError: ``workers`` < 1 or a location out of range.
    """
    s = store if isinstance(store, Store) else open_store(store)
    checks = dict(checks or integrity_checks())
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers {workers!r} must be a positive integer (1 = in this process)")
    todo = list(range(len(s))) if locations is None else [int(i) for i in locations]
    bad = [i for i in todo if not 0 <= i < len(s)]
    if bad:
        raise ConfigError(f"location(s) {bad[:5]} out of range; the store has {len(s)} locations")
    report = CheckReport(s.path, len(s), len(todo), list(checks), s.has_checksums)
    if not s.has_checksums and "integrity" in checks:
        report.notes.append(NO_CHECKSUMS)
    t0 = time.perf_counter()
    batch = batch or max(1, min(256, -(-len(todo) // (4 * workers))))
    parts = [todo[k : k + batch] for k in range(0, len(todo), batch)]
    from tqdm import tqdm

    with tqdm(total=len(todo), unit="loc", desc="store check", disable=not progress) as bar:
        if workers == 1 or len(parts) <= 1:
            for part in parts:
                report.findings += _run(s, checks, part)
                bar.update(len(part))
        else:  # spawn: zarr keeps an event-loop thread, which a fork would copy in an unknown state
            ctx = multiprocessing.get_context("spawn")
            from seco.boundary import ignore_interrupts

            with ProcessPoolExecutor(max_workers=min(workers, len(parts)), mp_context=ctx,
                                     initializer=ignore_interrupts) as pool:
                futures = {pool.submit(_run, s, checks, part): len(part) for part in parts}
                for fut in as_completed(futures):
                    report.findings += fut.result()
                    bar.update(futures[fut])
    report.findings.sort(key=lambda f: (f.location, f.check))
    report.seconds = time.perf_counter() - t0
    return report

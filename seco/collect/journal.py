"""The exactly-once bookkeeping of ``seco collect``: the journal of decisions, the failures table, the lock."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from seco.collect.config import _local_path
from seco.collect.records import Failure, LocationResult
from seco.errors import CollectError, StoreError
from seco.fileutil import atomic_write

#: Folder inside a local store with the journal, the failures table and the summary (``--journal`` elsewhere).
STATE_DIR = "_collect"
#: File in the journal folder naming the store it belongs to.
OWNER = "store.json"
#: File in the journal folder that exists while the run creates a store on an object store (which, unlike a
#: local folder, cannot be created atomically): a rerun that finds it and a half-made store there starts over.
CREATING = "creating"
JOURNAL_VERSION = 1


class Journal:
    """Append-only JSONL of the decision on each candidate, in stream order; the last line of an id wins.

    A line torn by a crash (no trailing newline) is dropped when the journal is opened.
    """

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[int, dict[str, Any]] = {}
        if path.exists():
            raw = path.read_bytes()
            keep = raw[: raw.rfind(b"\n") + 1]
            if len(keep) != len(raw):
                with open(path, "r+b") as f:
                    f.truncate(len(keep))
            for line in keep.decode("utf-8").splitlines():
                if line.strip():
                    d = json.loads(line)
                    self.entries[int(d["id"])] = d
        self._f: TextIO = open(path, "a", encoding="utf-8")

    def status(self, location_id: int) -> str | None:
        e = self.entries.get(location_id)
        return None if e is None else str(e["status"])

    def record(self, r: LocationResult) -> None:
        d = {"v": JOURNAL_VERSION, "order": r.task.order, "id": r.task.id, "spare": r.task.spare,
             "status": r.status, "reason": r.reason, "items": r.items,
             "failures": [dataclasses.asdict(f) for f in r.failures]}
        self._f.write(json.dumps(d) + "\n")
        self._f.flush()
        self.entries[r.task.id] = d

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.fsync(self._f.fileno())
        self._f.close()


FAILURE_COLUMNS = ("location_id", "date_index", "item_id", "href", "kind", "reason", "attempts")


def write_failures(journal: Journal, path: Path, extra: Sequence[Failure] = ()) -> int:
    """Write the failures of every decided candidate (latest decision per id, stream order) as Parquet.

    ``extra`` rows (e.g. malformed catalog items found when opening the catalog) come first.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [dataclasses.asdict(f) for f in extra]
    rows += [f for e in sorted(journal.entries.values(), key=lambda e: e["order"]) for f in e["failures"]]
    table = pa.table({
        "location_id": pa.array([r["location_id"] for r in rows], pa.int64()),
        "date_index": pa.array([r["date_index"] for r in rows], pa.int32()),
        "item_id": pa.array([r["item_id"] for r in rows], pa.string()),
        "href": pa.array([r["href"] for r in rows], pa.string()),
        "kind": pa.array([r["kind"] for r in rows], pa.string()),
        "reason": pa.array([r["reason"] for r in rows], pa.string()),
        "attempts": pa.array([r["attempts"] for r in rows], pa.int32()),
    })
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    return len(rows)


def read_failures(store: str | os.PathLike[str] | None = None, *, journal: str | os.PathLike[str] | None = None
                  ) -> list[dict[str, Any]]:
    """The failures table of a collected store as a list of dicts (columns: :data:`FAILURE_COLUMNS`).

    Args:
        store: a local store folder (its table is in ``<store>/_collect``).
        journal: the ``--journal`` folder instead (stores on object stores, or a run given ``--journal``).
    """
    import pyarrow.parquet as pq

    if journal is not None:
        base = _local_path(os.fspath(journal))
    elif store is not None:
        base = _local_path(os.fspath(store)) / STATE_DIR
    else:
        raise StoreError("read_failures needs the store folder or the --journal folder")
    path = base / "failures.parquet"
    if not path.is_file():
        raise StoreError(f"{path} does not exist; it is written at the end of each `seco collect` run")
    return pq.read_table(path).to_pylist()


def lock_path(out: Path) -> Path:
    """The lock file of a store: beside it (``.<name>.seco-lock``, the one every seco command that writes the
    store takes: :func:`seco.boundary.claim_output`), as it must exist before the store."""
    return out.parent / f".{out.name}.seco-lock"


def _locked(path: Path, store: str | None = None) -> contextlib.AbstractContextManager[Any]:
    """Claim the store (lock file ``path``) for ``seco collect``; a store that fails before its first location
    is committed is removed (a rerun starts it again with the settings then given)."""
    from seco.boundary import claim_output, keep_store

    name = store or str(path.parent / path.name[1:].removesuffix(".seco-lock"))
    return claim_output(name, "seco collect", kind="dir", keep=keep_store, lock=path, error=CollectError)

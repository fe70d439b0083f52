"""``<store>/_import/journal.jsonl``: one JSON line per decided location (the resumption record of ``seco import``),
and the short categories the report counts skip reasons, date problems and adjustments by."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seco.imports.readers import ReadResult

__all__ = ["Journal", "note_kind", "reason_kind"]


_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fewer dates than needed", ("fewer than --min-dates",)),
    ("missing band", ("missing band",)),
    ("unreadable file", ("unreadable", "cannot list")),
    ("wrong band size", (" px, expected",)),
    ("wrong dtype or band count", (", expected uint", "bands, expected 1")),
    ("no acquisition time", ("no acquisition time",)),
    ("no data", ("no data",)),
    ("bad georeference", ("georeference",)),
    ("not a corpus location", ("date folders",)),
    ("S1 without an S2 date", ("no s2 date within",)),
    ("not IW mode", ("instrument mode",)),
)


def reason_kind(reason: str) -> str:
    """A short category of a skip reason, for the report's counts."""
    r = reason.lower()
    for kind, words in _KINDS:
        if any(w in r for w in words):
            return kind
    return "other"


def note_kind(note: str) -> str:
    """A short category of an adjustment note, for the report's counts."""
    n = note.split(": ", 1)[-1]
    if "cropped" in n or "padded" in n:
        return "band size fixed (crop/pad)"
    if "processing baseline" in n:
        return "baseline offset removed"
    if "product id" in n:
        return "datetime from product id"
    if "metadata.json" in n:
        return "metadata.json missing or unreadable"
    if "orbit state from" in n:
        return "S1 orbit state from local solar time"
    if "relative orbit from" in n:
        return "S1 relative orbit from product id"
    if "no s1 folder" in n:
        return "location without s1 folder"
    if "v1.1 offset" in n:
        return "v1.1 +1000 DN removed"
    return "other"


# ---------------------------------------------------------------------------------------------- journal


class Journal:
    """``journal.jsonl``: one JSON line per decided location; a torn last line (a kill) is ignored.

    In memory only what resumption and the report need (a million-location corpus must not cost a million
    dicts): the skipped locations, and per location the kinds of its date problems and adjustments, if any.
    The last line of a key wins (a location re-decided after a crash or a lower ``--min-dates``).
    """

    def __init__(self, path: Path):
        self.path = path
        self.skips: dict[str, tuple[str, str, int]] = {}  # key -> (location name, reason, min_dates)
        #: key -> (S2 date problem, note, S1 date problem) kinds
        self.kinds: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {}
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        e = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(e, dict) and "key" in e:
                        self._keep(e)
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def _keep(self, e: dict[str, Any]) -> None:
        key = str(e["key"])
        if e.get("status") == "skipped":
            self.skips[key] = (str(e.get("name", key)), str(e.get("reason")), int(e.get("min_dates", 1)))
        else:
            self.skips.pop(key, None)
        dk = tuple(reason_kind(p.split(": ", 1)[-1]) for p in e.get("date_problems", []))
        nk = tuple(note_kind(n) for n in e.get("notes", []))
        sk = tuple(reason_kind(p.split(": ", 1)[-1]) for p in e.get("s1_problems", []))
        if dk or nk or sk:
            self.kinds[key] = (dk, nk, sk)
        else:
            self.kinds.pop(key, None)

    def skipped(self, key: str, min_dates: int) -> bool:
        """Whether ``key`` was skipped by a run whose ``--min-dates`` was at most ``min_dates`` (a skip under a
        stricter setting is decided again: lowering ``--min-dates`` on a rerun imports what it now allows)."""
        s = self.skips.get(key)
        return s is not None and s[2] <= min_dates

    def record(self, r: ReadResult, min_dates: int) -> None:
        e = {"key": r.key, "name": r.ref.name, "status": r.status, "reason": r.reason, "min_dates": min_dates,
             "date_problems": r.date_problems, "notes": r.notes}
        if r.s1 is not None:
            e["notes"] = r.notes + r.s1.notes
            e["s1_problems"] = r.s1.problems
            e["s1_dates"] = int(r.s1.valid.sum())
        self._f.write(json.dumps(e) + "\n")
        self._f.flush()
        self._keep(e)

    def close(self) -> None:
        self._f.close()

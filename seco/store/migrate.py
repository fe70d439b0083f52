"""``seco store migrate``: copy a store into a new layout (codec, shuffle, checksums, grid), resumably.

Every location is read (checked against its checksums, when it has them) and appended to the destination
with the same key, validity, per-date metadata and label (and Sentinel-1 group: the same stored codes, validity
and records), in the same order, so location indices match.
The destination is an ordinary store: a rerun after an interruption continues where it stopped (locations
already there are skipped by key), exactly as ``seco collect`` does.

    from seco.store.migrate import migrate_store
    migrate_store("old.zarr", "new.zarr")              # the current default layout
    migrate_store("old.zarr", "native.zarr", layout=StoreLayout(grid="native"))  # 20/60 m bands at native res.

To the native grid, every 20 m / 60 m band of every location must be whole 2 x 2 / 6 x 6 blocks of the 10 m
grid (what seco collect, import and synth write for ``--grid native``; not a corpus resampled bilinearly):
the first location that is not stops the migration with ``NotNativeError`` naming it (the locations before
it are in the destination, which stays a valid store).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from seco.errors import StoreCorruptError, StoreError
from seco.store.create import create_store
from seco.store.packing import NotNativeError
from seco.store.reader import open_store
from seco.store.s1 import S1Patch
from seco.store.schema import Location, StoreLayout


@dataclass
class MigrateResult:
    """What ``migrate_store`` did."""

    source: str
    dest: str
    copied: int
    already: int
    skipped: list[int] = field(default_factory=list)  # damaged source locations left out (on_corrupt="skip")


def migrate_store(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    layout: StoreLayout | None = None,
    on_corrupt: str = "error",
    progress: bool = True,
    commit_every: int = 16,
) -> MigrateResult:
    """Copy store ``src`` into a new (or partly written) store ``dst`` with ``layout``.

    Args:
        src: the store to read (any version-1 or version-2 store, e.g. one written by an older seco).
        dst: the store to write; an interrupted migration into it continues.
        layout: the destination layout (default: ``StoreLayout()``, the current default with checksums, on the
            10 m grid); ``grid="native"`` converts to a native-resolution store, ``"10m"`` back.
        on_corrupt: ``"error"`` (stop at the first damaged source location) or ``"skip"`` (leave it out; the
            result lists it).
        progress: a tqdm bar on stderr.
        commit_every: locations per commit of the destination.

    Raises:
        StoreError: a bad path, ``dst`` equal to ``src``, or ``dst`` holding a store with other settings.
        StoreCorruptError: a damaged source location (with ``on_corrupt="error"``).
        NotNativeError: to the native grid, a source location whose 20 m / 60 m bands are not block-constant.
    """
    if on_corrupt not in ("error", "skip"):
        raise StoreError(f"on_corrupt {on_corrupt!r} must be 'error' or 'skip'")
    source = open_store(src)
    a, b = Location.parse(src), Location.parse(dst)
    if a.url == b.url or (a.local is not None and b.local is not None and b.local.resolve() == a.local.resolve()):
        raise StoreError(f"migrate destination {b.url} is the source store; give a new path (then swap the folders)")
    layout = layout or StoreLayout()
    attrs = dict(source.attrs)
    attrs["migrated_from"] = {"path": source.path, "layout": asdict(source.config.layout)}
    labels = source.labels()
    result = MigrateResult(source.path, b.url, 0, 0)
    from tqdm import tqdm

    with create_store(dst, source.bands, source.num_dates, source.patch_size, attrs, label_names=source.label_names,
                      layout=layout, exist_ok=True, commit_every=commit_every, sensors=source.sensors) as w:
        if w.config.layout != layout:
            raise StoreError(
                f"{b.url} already holds a store with layout {w.config.layout}, not {layout}; "
                "continue it with the same options or choose a new destination"
            )
        keys = source.keys()
        clear_rules = source.meta_array("clear_rule") if source.has_clear else None  # masks travel with the data
        for i in tqdm(range(len(source)), unit="loc", desc="store migrate", disable=not progress):
            if w.has(keys[i]):
                result.already += 1
                continue
            try:
                images = source.read(i)
                s1 = None if source.s1 is None else S1Patch(source.s1.read(i), source.s1.valid(i), source.s1.meta(i))
            except StoreCorruptError:
                if on_corrupt == "error":
                    raise
                result.skipped.append(i)
                continue
            label = int(labels[i]) if labels is not None and labels[i] >= 0 else None
            try:
                w.append(keys[i], images, source.valid(i), source.meta(i), label, s1=s1, clear=source.clear_mask(i),
                         clear_rule=None if clear_rules is None else list(clear_rules[i]))
            except NotNativeError as e:
                raise NotNativeError(f"cannot migrate {source.path} to the native grid: source location {i} "
                                     f"(key {keys[i]!r}) does not fit it: {e}") from e
            result.copied += 1
    return result


def disk_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes of the image shards of a local store (every image array: ``images``, ``images_x2``, ``images_x6``, and
    the Sentinel-1 group's ``s1/images``)."""
    roots = [d for d in Path(path).iterdir() if d.is_dir() and (d.name == "images" or d.name.startswith("images_x"))]
    roots += [d for d in (Path(path) / "s1" / "images",) if d.is_dir()]
    return sum(f.stat().st_size for root in roots for f in root.rglob("*") if f.is_file() and f.name != "zarr.json")

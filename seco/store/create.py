"""Creating a seco store (and opening one to append): the empty tree, built beside its target and renamed into
place (local) or marked until its last write (object stores), so a crash leaves no store or a complete empty one.

``create_store`` / ``open_writer`` return a :class:`seco.store.writer.StoreWriter`; docs/STORE.md, "Writing".
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zarr
import zarr.core.sync as zsync
import zarr.storage

from seco.errors import ConfigError, StoreError
from seco.store import clear as CL
from seco.store import s1 as S1
from seco.store import schema as S
from seco.store.writer import StoreWriter, _create_radiometry, _manifest

__all__ = ["create_store", "open_writer"]


def _check_json(value: Any, what: str) -> Any:
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what} must be JSON-serialisable ({e}); pass plain dicts, lists, str and numbers") from e
    return value


def create_store(
    path: str | os.PathLike[str],
    bands: str | Sequence[str],
    num_dates: int = 5,
    patch_size: int = 264,
    attrs: Mapping[str, Any] | None = None,
    *,
    label_names: Sequence[str] | None = None,
    layout: S.StoreLayout | None = None,
    overwrite: bool = False,
    exist_ok: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    commit_every: int = 1,
    hist_every: int = 256,
    sensors: Sequence[str] = ("s2",),
) -> StoreWriter:
    """Create an empty store and return a writer on it.

    Args:
        path: a local folder (created) or an fsspec URL.
        bands: band names or a set name (``"all"`` = the 12 L2A bands); the channel order of the images.
        num_dates: ``T``, dates per location.
        patch_size: ``H = W`` in pixels on the 10 m grid.
        attrs: JSON-serialisable dict saved with the store (e.g. the collection or synth config).
        label_names: names of the per-location integer labels, if the store has labels.
        layout: chunking and compression of the images (default: the benchmarked choice).
        overwrite: replace an existing *seco store* at ``path`` (never any other folder).
        exist_ok: if ``path`` already holds a seco store with the same bands, dates, patch size and label
            names, continue it (as ``open_writer``) instead of failing: the idiom of a resumable run.
        storage_options: fsspec options for URLs (credentials, endpoint).
        commit_every: locations per commit (see ``StoreWriter``).
        hist_every: locations between two saves of the band histogram.
        sensors: ``("s2",)``, or ``("s2", "s1")`` for a Sentinel-1 group beside the images (``append(...,
            s1=S1Patch(...))``; schema version 3, docs/STORE.md).

    Raises:
        BandError: an unknown band name.
        ConfigError: a bad ``num_dates``, ``patch_size``, ``label_names`` or ``attrs``.
        StoreError: ``path`` already holds a store (or, with ``exist_ok``, one with other settings) or
            other files.
    """
    names = S.check_bands_spec(bands)
    for what, v in (("num_dates", num_dates), ("patch_size", patch_size)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{what} must be a positive integer, got {v!r}")
    if label_names is not None:
        label_names = tuple(label_names)
        if not label_names or not all(isinstance(n, str) and n for n in label_names):
            raise ConfigError(f"label_names {label_names!r} must be a non-empty list of non-empty strings")
        if len(set(label_names)) != len(label_names):
            raise ConfigError(f"label_names {label_names!r} has duplicates; give each class once")
    user = _check_json(dict(attrs) if attrs else {}, "attrs")
    config = S.StoreConfig(
        bands=names,
        num_dates=int(num_dates),
        patch_size=int(patch_size),
        label_names=label_names,
        layout=layout or S.StoreLayout(),
        sensors=tuple(sensors) if not isinstance(sensors, str) else (sensors,),
    )
    loc = S.Location.parse(path, storage_options)
    if exist_ok and _is_seco(loc):
        writer = StoreWriter(loc, commit_every=commit_every, hist_every=hist_every)
        _check_same(writer.config, config, loc.url)
        return writer
    _prepare_target(loc, overwrite)
    if loc.local is None:  # object stores: the root attributes (the version) are written last; until then the
        # group is marked, so a creation a crash interrupted is recognised (and redone) by the next create_store
        _build(zarr.open_group(store=loc.open(read_only=False), mode="w", attributes={_CREATING: True}),
               config, user)
    else:  # build next to the target and rename: a crash leaves either no store or a complete one
        tmp = loc.local.parent / f".{loc.local.name}.creating-{uuid.uuid4().hex}"
        loc.local.parent.mkdir(parents=True, exist_ok=True)
        try:
            _build(zarr.open_group(store=zarr.storage.LocalStore(tmp), mode="w"), config, user)
            os.rename(tmp, loc.local)  # onto a missing or empty folder
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return StoreWriter(loc, commit_every=commit_every, hist_every=hist_every)


def _build(root: zarr.Group, config: S.StoreConfig, user: dict[str, Any]) -> None:
    cap = rows = config.layout.meta_chunk
    T, C = config.num_dates, len(config.bands)
    for g in config.image_groups():  # images (10 m bands) [, images_x2 (20 m), images_x6 (60 m) on the native grid]
        root.create_array(
            g.name,
            shape=(cap, T, len(g.channels), g.side, g.side),
            dtype="uint16",
            fill_value=0,
            compressors=config.layout.compressors(),
            dimension_names=("location", "date", "band", "y", "x"),
            attributes={"bands": [config.bands[k] for k in g.channels], "grid_factor": g.factor},
            **config.layout.chunks(T, len(g.channels), g.side),  # type: ignore[arg-type]
        )
    root.create_array(S.VALID, shape=(cap, T), chunks=(rows, T), dtype="bool", fill_value=False,
                      dimension_names=("location", "date"))
    root.create_array(S.KEY, shape=(cap,), chunks=(rows,), dtype=str, dimension_names=("location",))
    root.create_array(S.LABEL, shape=(cap,), chunks=(rows,), dtype="int32", fill_value=-1,
                      dimension_names=("location",))
    meta = root.create_group(S.META)
    for f in S.DATE_FIELDS:
        meta.create_array(
            f.name,
            shape=(cap, T, *f.trailing),
            chunks=(rows, T, *f.trailing),
            dtype=str if f.dtype == "str" else f.dtype,
            fill_value=f.fill if f.dtype != "str" else None,
            dimension_names=("location", "date", *(("affine",) if f.trailing else ())),
            attributes={"description": f.doc},
        )
    for f in S.RADIOMETRY_FIELDS:
        _create_radiometry(meta, f, cap, rows, T, C)
    root.create_array(S.HIST, shape=(2, C, S.NUM_BINS), chunks=(1, C, S.NUM_BINS), dtype="uint64", fill_value=0,
                      dimension_names=("slot", "band", "value"),
                      attributes={"description": "per-band DN histograms of valid dates; the manifest names the live slot"})
    if config.has_s1:
        S1.build(root, config)
    CL.ClearWriter(root, config, 0).ensure_arrays(cap)  # clear-sky masks, records and histogram
    root.attrs.put({  # replaces every attribute: the creation mark goes in the same (atomic) write
        S.ATTR_VERSION: config.schema_version,  # 1 on the 10 m grid (older seco reads it), 2 native
        S.ATTR_SCHEMA: config.to_attrs(),
        S.ATTR_USER: user,
        S.ATTR_MANIFEST: _manifest(0, 0, 0),
    })


def _check_same(have: S.StoreConfig, want: S.StoreConfig, url: str) -> None:
    diff = [
        f"{name} {getattr(have, name)!r} (asked {getattr(want, name)!r})"
        for name in ("bands", "num_dates", "patch_size", "label_names", "sensors")
        if getattr(have, name) != getattr(want, name)
    ]
    if (have.layout.grid, have.grid_factors) != (want.layout.grid, want.grid_factors):
        diff.append(f"grid {have.layout.grid!r} (asked {want.layout.grid!r})")
    if diff:
        raise StoreError(
            f"the store at {url} was created with other settings: {'; '.join(diff)}; "
            "use a new path or the store's settings"
        )


def open_writer(
    path: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    commit_every: int = 1,
    hist_every: int = 256,
) -> StoreWriter:
    """Open an existing store to append more locations; a rerun after a crash continues where it stopped.

    Raises:
        StoreError / StoreVersionError: as ``open_store``.
    """
    return StoreWriter(S.Location.parse(path, storage_options), commit_every=commit_every, hist_every=hist_every)


def _prepare_target(loc: S.Location, overwrite: bool) -> None:
    if loc.local is None:
        store = loc.open(read_only=False)
        if not zsync.sync(store.is_empty("")):
            if (overwrite and _is_seco(loc)) or _interrupted_creation(loc):
                zsync.sync(store.clear())
                return
            raise StoreError(
                f"{loc.url} is not empty; open_writer() continues a seco store there, or choose a new URL"
            )
        return
    p = loc.local
    if p.exists() and not p.is_dir():
        raise StoreError(f"{p} exists and is a file; choose a folder path for the store")
    if p.is_dir() and any(p.iterdir()):
        if _is_seco(loc):
            if overwrite:
                shutil.rmtree(p)
                return
            raise StoreError(
                f"a seco store already exists at {p}; continue it with open_writer({str(p)!r}) or "
                "create_store(..., exist_ok=True), or pass overwrite=True / choose a new path"
            )
        raise StoreError(f"{p} is a non-empty folder that is not a seco store; choose a new or empty folder")


#: Root attribute of a store on an object store while ``create_store`` builds it (removed by its last write).
_CREATING = "seco_store_creating"


def _interrupted_creation(loc: S.Location) -> bool:
    """Whether an object-store prefix holds what an interrupted ``create_store`` left (no data can be there)."""
    try:
        attrs = dict(zarr.open_group(store=loc.open(read_only=True), mode="r").attrs)
    except Exception:
        return False
    return attrs.get(_CREATING) is True and S.ATTR_VERSION not in attrs


def _is_seco(loc: S.Location) -> bool:
    try:
        S.open_root(loc, read_only=True)
    except StoreError:
        return False
    return True

"""A simulated Sentinel-2 archive written straight into a seco store, for tests and the offline demo.

Land cover (forest, cropland, grassland, urban, water, mountain) with spectra calibrated on the real
samples in ../shared/data (``seco.synth.spectra``), smooth texture, crop parcels, urban blocks and roads,
seasonal phenology, snow, per-date illumination with terrain shading, haze and soil moisture
(``seco.synth.seasons``, sized against the real 5-date location), clouds with shadows, nodata edges, and the acquisition metadata a real
collection records (STAC-like item ids, datetimes 12 weeks apart, cloud and nodata fractions, UTM CRS and
transform, centre lat/lon). The label of a location is its dominant land-cover class.

Every band is nodata on its own grid, as in a real Sentinel-2 tile (and ``seco.synth.archive``): a 20 m or
60 m pixel that touches the swath edge is 0 as a whole 2 x 2 / 6 x 6 block. Together with the block rendering
of :mod:`seco.synth.scene` this makes each 20 m band whole 2 x 2 blocks and each 60 m band whole 6 x 6 blocks
from the patch origin, so ``make_store(grid="native")`` keeps them exactly and reads back equal to the
``grid="10m"`` store of the same arguments.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seco.bands import BY_NAME, L2A, parse_bands
from seco.errors import ConfigError, StoreError
from seco.synth.scene import STEP_DAYS, simulate_location
from seco.synth.spectra import CLASSES

if TYPE_CHECKING:
    from seco.store.writer import StoreWriter

__all__ = ["CLASSES", "S1_MISSING_PROB", "STEP_DAYS", "SynthConfig", "make_store", "simulate_location"]

#: Chance that a date of a ``make_store(s1=True)`` store has no S1 pass.
S1_MISSING_PROB = 0.15


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines a simulated store (saved in its ``attrs["synth"]``).

    Attributes:
        num_locations: locations to simulate.
        num_dates: dates per location, 12 weeks apart.
        patch_size: pixels per side on the 10 m grid.
        bands: band names (any of the 13 L1C bands).
        seed: the seed; location ``i`` depends only on (seed, i).
        cloud_prob: chance that a date has clouds (covering 3-60 % of it).
        nodata_prob: chance that a date has a nodata edge (5-50 % of it).
        missing_prob: chance that a date is missing (stored invalid); at least 3 dates stay valid.
    """

    num_locations: int = 64
    num_dates: int = 5
    patch_size: int = 264
    bands: tuple[str, ...] = L2A
    seed: int = 0
    cloud_prob: float = 0.3
    nodata_prob: float = 0.1
    missing_prob: float = 0.05

    def __post_init__(self) -> None:
        for name in ("num_locations", "num_dates", "patch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"synth {name} must be a positive integer, got {v!r}")
        if self.patch_size < 16:
            raise ConfigError(f"synth patch_size {self.patch_size} is too small; use at least 16 pixels")
        for name in ("cloud_prob", "nodata_prob", "missing_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"synth {name} {v!r} must be a probability in 0..1")


def make_store(
    out: str | os.PathLike[str],
    num_locations: int = 64,
    num_dates: int = 5,
    patch_size: int = 264,
    bands: str | Sequence[str] = L2A,
    seed: int = 0,
    progress: bool = True,
    *,
    overwrite: bool = False,
    grid: str = "10m",
    overwrite_real_data: bool = False,
    s1: bool = False,
    s1_missing_prob: float = S1_MISSING_PROB,
) -> Path:
    """Simulate an archive into a new store at ``out`` and return its path.

    Rerunning with the same arguments on an interrupted store continues it (each location is written
    exactly once); a store made with other arguments is refused unless ``overwrite``, and a store synth did not
    make (imported or collected data) unless ``overwrite_real_data`` too.

    Args:
        grid: the store grid, ``"10m"`` or ``"native"`` (20 m / 60 m bands at their own resolution,
            ``seco.store.packing``); both hold the same imagery (``Store.read`` returns equal arrays).
        s1: also write a Sentinel-1 group (``sensors=("s2", "s1")``): simulated RTC gamma0 in dB of the same
            surface and season state for every location and date (:mod:`seco.synth.sar`), with per-date
            metadata; ``False`` leaves the store exactly what it was without the option.
        s1_missing_prob: with ``s1``, the chance that a date has no S1 pass (0.15: "missing S1" is exercised;
            independent of the S2 date being missing, as the two constellations are).

    Raises:
        ConfigError / BandError: bad arguments.
        StoreError: ``out`` holds something else, or a store of the other grid, or (with ``overwrite``) a
            store of real data without ``overwrite_real_data``.
    """
    from seco.store.schema import GRIDS

    if grid not in GRIDS:
        raise ConfigError(f"--grid {grid!r} is unknown; choose one of {', '.join(GRIDS)}")
    if not 0.0 <= s1_missing_prob <= 1.0:
        raise ConfigError(f"synth s1_missing_prob {s1_missing_prob!r} must be a probability in 0..1")

    config = SynthConfig(
        num_locations=num_locations,
        num_dates=num_dates,
        patch_size=patch_size,
        bands=parse_bands(bands),
        seed=seed,
    )
    path = Path(os.fspath(out)).expanduser().absolute()
    if overwrite and not overwrite_real_data:
        _refuse_overwriting_real_data(path)
    s1_config = {"product": "RTC", "missing_prob": s1_missing_prob} if s1 else None
    writer = _writer(path, config, overwrite, grid, s1_config)
    todo = [i for i in range(config.num_locations) if not writer.has(f"synth-{seed}-{i:06d}")]

    def simulate(i: int) -> dict:
        loc = simulate_location(
            seed, i, config.num_dates, config.patch_size, config.bands,
            cloud_prob=config.cloud_prob, nodata_prob=config.nodata_prob, missing_prob=config.missing_prob,
            s1="RTC" if s1 else None, s1_missing_prob=s1_missing_prob,
        )
        nodata_on_band_grids(loc["images"], loc["valid"], loc["dates_meta"], config.bands)
        return loc

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="seco synth", unit="loc")
    with writer, ThreadPoolExecutor(max_workers=1) as pool:  # simulate the next location while writing one
        for loc in pool.map(simulate, todo):
            patch = None
            if "s1" in loc:
                from seco.store import S1Patch

                patch = S1Patch(db=loc["s1"]["db"], valid=loc["s1"]["valid"], meta=loc["s1"]["meta"])
            writer.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], label=loc["label"], s1=patch,
                          clear=loc["clear"], clear_rule="truth:synth")  # cloud, shadow, snow: the simulator's truth
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return path


def _writer(path: Path, config: SynthConfig, overwrite: bool, grid: str,
            s1: dict[str, Any] | None = None) -> StoreWriter:
    """A writer continuing the synth store of ``config`` at ``path``, or of a new store there.

    Raises:
        StoreError: ``path`` holds another store, or this one on the other grid.
    """
    from seco.store import StoreLayout, create_store, open_writer
    from seco.store.schema import Location, open_root

    attrs: dict[str, Any] = {"synth": {**asdict(config), "bands": list(config.bands)}, "source": "seco.synth"}
    if s1 is not None:  # only then: a store made without S1 keeps the attributes it always had
        attrs["synth"]["s1"] = s1
    if not overwrite and path.is_dir() and any(path.iterdir()):
        try:
            _, existing = open_root(Location.parse(path), read_only=True)
        except StoreError:
            existing = None
        if existing is not None and existing.get("user_attrs", {}).get("synth") == attrs["synth"]:
            writer = open_writer(path, commit_every=16)
            if writer.config.layout.grid != grid:
                writer.close()
                raise StoreError(f"{path} holds a synth store on the {writer.config.layout.grid!r} grid, not "
                                 f"{grid!r}; pass --grid {writer.config.layout.grid} to continue it, or choose a "
                                 "new --out (or --overwrite to replace it)")
            return writer
        if existing is not None:
            raise StoreError(
                f"{path} holds a store made with other settings; choose a new --out, or --overwrite to replace it"
            )
    return create_store(
        path, config.bands, config.num_dates, config.patch_size, attrs=attrs,
        label_names=CLASSES, overwrite=overwrite, commit_every=16, layout=StoreLayout(grid=grid),
        sensors=("s2", "s1") if s1 is not None else ("s2",),
    )


def _refuse_overwriting_real_data(path: Path) -> None:
    """Raise when ``path`` holds a seco store that synth did not make (what ``--overwrite`` would destroy)."""
    from seco.store.schema import ATTR_USER, Location, open_root

    if not (path / "zarr.json").is_file():
        return
    try:
        _, attrs = open_root(Location.parse(path), read_only=True)
    except StoreError:
        return  # not a seco store: create_store refuses to touch it
    user = attrs.get(ATTR_USER) or {}
    if user.get("source") == "seco.synth":
        return
    if isinstance(user.get("import"), dict):
        what = f"data imported from the {user['import'].get('corpus', '?')} corpus ({user['import'].get('root', '?')})"
    elif isinstance(user.get("seco_collect"), dict):
        cfg = user["seco_collect"].get("config") or {}
        what = f"data collected by `seco collect` from {cfg.get('catalog', 'a catalog')}"
    else:
        what = "a store that `seco synth` did not make"
    raise StoreError(f"{path} holds {what}; --overwrite would delete it. Choose another --out, or add "
                     "--overwrite-real-data to replace it")


def nodata_on_band_grids(images: np.ndarray, valid: np.ndarray, metas: Sequence[dict | None],
                         bands: Sequence[str]) -> None:
    """Make every band nodata on its own grid, in place: a 20 m / 60 m band is 0 on each whole 2 x 2 / 6 x 6
    block (from the patch origin) that holds a nodata pixel of any band; ``nodata_fraction`` becomes the share
    of pixels with a 0 in any band (as ``seco collect`` records it).

    Args:
        images: (T, C, P, P) uint16 of one location.
        valid: (T,) bool.
        metas: T per-date metadata dicts (``None`` for a missing date).
        bands: the C band names.
    """
    P = images.shape[-1]
    groups: dict[int, list[int]] = {}
    for c, b in enumerate(bands):
        groups.setdefault(max(1, BY_NAME[b].resolution_m // 10), []).append(c)
    for t in (int(v) for v in np.flatnonzero(valid)):
        x = images[t]  # (C, P, P)
        zero = (x == 0).any(axis=0)  # (P, P)
        if not zero.any():
            continue
        for f, chans in groups.items():
            if f == 1:
                continue
            n = -(-P // f)
            pad = np.zeros((n * f, n * f), bool)
            pad[:P, :P] = zero
            blocks = pad.reshape(n, f, n, f).any(axis=(1, 3))  # (n, n)
            mask = blocks.repeat(f, axis=0).repeat(f, axis=1)[:P, :P]  # (P, P)
            for c in chans:
                x[c][mask] = 0
        m = metas[t]
        if m is not None:
            m["nodata_fraction"] = float((x == 0).any(axis=0).mean())

"""A simulated Sentinel-2 archive written straight into a seco store, for tests and the offline demo.

Land cover (forest, cropland, grassland, urban, water, mountain) with spectra calibrated on the real
samples in ../shared/data (``seco.synth.spectra``), smooth texture, crop parcels, urban blocks and roads,
seasonal phenology, snow, clouds with shadows, nodata edges, and the acquisition metadata a real
collection records (STAC-like item ids, datetimes 12 weeks apart, cloud and nodata fractions, UTM CRS and
transform, centre lat/lon). The label of a location is its dominant land-cover class.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from seco.bands import L2A, parse_bands
from seco.errors import ConfigError, StoreError
from seco.synth.scene import STEP_DAYS, simulate_location
from seco.synth.spectra import CLASSES

__all__ = ["CLASSES", "STEP_DAYS", "SynthConfig", "make_store", "simulate_location"]


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
) -> Path:
    """Simulate an archive into a new store at ``out`` and return its path.

    Rerunning with the same arguments on an interrupted store continues it (each location is written
    exactly once); a store made with other arguments is refused unless ``overwrite``.

    Raises:
        ConfigError / BandError: bad arguments.
        StoreError: ``out`` holds something else.
    """
    from seco.store import create_store, open_writer
    from seco.store.schema import Location, open_root

    config = SynthConfig(
        num_locations=num_locations,
        num_dates=num_dates,
        patch_size=patch_size,
        bands=parse_bands(bands),
        seed=seed,
    )
    attrs = {"synth": {**asdict(config), "bands": list(config.bands)}, "source": "seco.synth"}
    path = Path(os.fspath(out)).expanduser().absolute()
    writer = None
    if not overwrite and path.is_dir() and any(path.iterdir()):
        try:
            _, existing = open_root(Location.parse(path), read_only=True)
        except StoreError:
            existing = None
        if existing is not None and existing.get("user_attrs", {}).get("synth") == attrs["synth"]:
            writer = open_writer(path, commit_every=16)
        elif existing is not None:
            raise StoreError(
                f"{path} holds a store made with other settings; choose a new --out or pass overwrite=True"
            )
    if writer is None:
        writer = create_store(
            path, config.bands, config.num_dates, config.patch_size, attrs=attrs,
            label_names=CLASSES, overwrite=overwrite, commit_every=16,
        )
    todo = [i for i in range(config.num_locations) if not writer.has(f"synth-{seed}-{i:06d}")]

    def simulate(i: int) -> dict:
        return simulate_location(
            seed, i, config.num_dates, config.patch_size, config.bands,
            cloud_prob=config.cloud_prob, nodata_prob=config.nodata_prob, missing_prob=config.missing_prob,
        )

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="seco synth", unit="loc")
    with writer, ThreadPoolExecutor(max_workers=1) as pool:  # simulate the next location while writing one
        for loc in pool.map(simulate, todo):
            writer.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], label=loc["label"])
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return path

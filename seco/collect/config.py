"""The options of ``seco collect`` (:class:`CollectConfig`, saved in the store's attributes)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seco.bands import BY_NAME, L1C, L2A
from seco.collect.retry import RetryPolicy
from seco.collect.scene import POLICIES
from seco.configio import ConfigIO
from seco.errors import ConfigError

#: Band sets ``seco collect --bands`` accepts.
BAND_CHOICES: dict[str, tuple[str, ...]] = {"l2a": L2A, "l1c": L1C}
#: Key of the collect configuration in the store's user attributes.
ATTR = "seco_collect"
#: Store grids ``seco collect --grid`` writes: every band on the 10 m grid, or 20 m / 60 m bands at their own.
GRIDS = ("10m", "native")


def _fraction(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
        raise ConfigError(f"{name}={v!r} must be a fraction in [0, 1] (e.g. 0.1 for 10 %)")


@dataclass(frozen=True)
class CollectConfig(ConfigIO):
    """Everything ``seco collect`` does (saved in the store's attributes).

    Attributes:
        locations: GeoParquet of locations with date windows (``seco sample``).
        catalog: a STAC API URL, a preset (``earth-search``, ``planetary-computer``) or a stac-geoparquet file.
        out: the store folder (created, or continued when it is a store of an earlier run with the same options).
        collection: collection id (``None``: ``sentinel-2-l2a`` for APIs, every item of a local file).
        bands: ``"l2a"`` (12 bands) or ``"l1c"`` (13 bands).
        patch_size: patch side in 10 m pixels.
        max_cloud: scene-level ``eo:cloud_cover`` limit in percent; ``None``: no scene filter (scenes of
            unknown cover allowed, e.g. a local archive without metadata).
        max_patch_cloud: patch-level cloud fraction limit (0..1) from the SCL; ``None``: ``max_cloud / 100``.
        max_nodata: patch-level nodata fraction limit (0..1).
        policy: ``"recent"`` (the paper) or ``"least-cloudy"``.
        harmonize: remove the L2A processing-baseline offset (baseline 04.00 and later).
        spares: replacement locations drawn after the file's ``n`` (``None``: ``n // 2 + 8``; 0: no replacement).
        max_scenes: candidate scenes tried per date window before the date counts as failed.
        workers: threads for the I/O (thread-pool mode).
        scheduler: address of a Dask distributed scheduler (``tcp://127.0.0.1:8786``); ``None``: threads.
        retries: retries of a search or read on timeouts, connection errors, 429 and 5xx.
        backoff_s: first retry wait in seconds (doubling, capped at ``backoff_max_s``).
        backoff_max_s: longest retry wait.
        timeout_s: seconds per HTTP request (catalog searches and GDAL's asset reads).
        progress: show a progress bar on stderr.
        journal: local folder for the journal, failures table, summary and lock (``None``: ``<out>/_collect``,
            which needs a local ``out``; required when ``out`` is an fsspec URL such as ``s3://bucket/x.zarr``).
        grid: ``"10m"`` (every band on the 10 m grid) or ``"native"`` (20 m / 60 m bands kept at their own
            resolution, ``seco.store.packing``; patch origins snapped to multiples of :attr:`align` pixels);
            ``None``: the grid of the store being continued, else ``"10m"`` (``plan_collect`` resolves it).
        s1: ``"rtc"`` adds Sentinel-1 to every S2 date (``"grd"`` is refused: not calibrated yet); ``None``: S2 only.
        s1_catalog: where S1 is searched (``None``: ``catalog``; a preset, STAC API URL or stac-geoparquet file).
        s1_collection: the S1 collection (``None``: ``sentinel-1-rtc``).
        s1_window_days: S1 within this many days of each S2 date (default 6: one orbit track's 12-day repeat,
            covered on both sides of the date).
        s1_orbit: ``same`` (one orbit state for every date of a location), ``any``, ``ascending`` or
            ``descending``.
    """

    locations: str
    catalog: str
    out: str
    collection: str | None = None
    bands: str = "l2a"
    patch_size: int = 264
    max_cloud: float | None = 10.0
    max_patch_cloud: float | None = None
    max_nodata: float = 0.0
    policy: str = "recent"
    harmonize: bool = True
    spares: int | None = None
    max_scenes: int = 8
    workers: int = 8
    scheduler: str | None = None
    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    timeout_s: float = 30.0
    progress: bool = True
    journal: str | None = None
    grid: str | None = None
    s1: str | None = None
    s1_catalog: str | None = None
    s1_collection: str | None = None
    s1_window_days: float = 6.0
    s1_orbit: str = "same"

    def __post_init__(self) -> None:
        self._check_s1()
        if self.grid is not None and self.grid not in GRIDS:
            raise ConfigError(f"--grid {self.grid!r} is unknown; choose one of {', '.join(GRIDS)}")
        if self.bands not in BAND_CHOICES:
            raise ConfigError(f"--bands {self.bands!r} is unknown; choose one of {', '.join(BAND_CHOICES)}")
        if isinstance(self.patch_size, bool) or not isinstance(self.patch_size, int) or not 8 <= self.patch_size <= 4096:
            raise ConfigError(f"--patch-size {self.patch_size!r} must be an integer in 8..4096 (SeCo: 264)")
        if self.max_cloud is not None and (isinstance(self.max_cloud, bool) or not 0 <= self.max_cloud <= 100):
            raise ConfigError(f"--max-cloud {self.max_cloud!r} must be a percentage in [0, 100] (or 'none')")
        if self.max_patch_cloud is not None:
            _fraction("--max-patch-cloud", self.max_patch_cloud)
        _fraction("--max-nodata", self.max_nodata)
        if self.policy not in POLICIES:
            raise ConfigError(f"--policy {self.policy!r} is unknown; choose one of {', '.join(POLICIES)}")
        for name, v, lo in (("--spares", self.spares, 0), ("--max-scenes", self.max_scenes, 1),
                            ("--workers", self.workers, 1)):
            if v is None and name == "--spares":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"{name} {v!r} must be an integer >= {lo}")
        if not 0 < self.timeout_s <= 3600:
            raise ConfigError(f"--timeout {self.timeout_s!r} must be in (0, 3600] seconds")
        RetryPolicy(self.retries, self.backoff_s, self.backoff_max_s)  # validates
        if not str(self.out):
            raise ConfigError("--out is empty; give a folder or an object store URL (s3://bucket/store.zarr)")
        if self.journal is not None and (not str(self.journal) or is_url(str(self.journal))):
            raise ConfigError(f"--journal {self.journal!r} must be a local folder (the journal needs appends and a "
                              "file lock, which object stores do not offer)")
        if is_url(str(self.out)) and self.journal is None:
            raise ConfigError(
                f"--out {self.out!r} is an object store: give --journal DIR too, a local folder for the collect "
                "journal, failures table and lock (object stores offer no appends or locks); rerun with the same "
                "DIR to resume")

    def _check_s1(self) -> None:
        from seco.collect.s1scene import ORBIT_POLICIES
        from seco.radiometry.s1 import S1_PRODUCTS, check_window, grd_refusal

        if self.s1 is None:
            return
        if self.s1 not in S1_PRODUCTS:
            raise ConfigError(f"--s1 {self.s1!r} is unknown; choose rtc (or leave --s1 out for Sentinel-2 only)")
        if self.s1 == "grd":
            raise grd_refusal("--s1 grd")
        check_window(self.s1_window_days)
        if self.s1_orbit not in ORBIT_POLICIES:
            raise ConfigError(f"--s1-orbit {self.s1_orbit!r} is unknown; choose one of {', '.join(ORBIT_POLICIES)}")

    @property
    def s1_target(self) -> str:
        """Where S1 is searched: ``s1_catalog``, else ``catalog``."""
        return self.s1_catalog or self.catalog

    @property
    def band_names(self) -> tuple[str, ...]:
        """The store's bands, in order."""
        return BAND_CHOICES[self.bands]

    @property
    def align(self) -> int:
        """Patch-origin alignment in 10 m pixels: 1 on the 10 m grid; for a native store the least common
        multiple of the bands' grid factors (6 with a 60 m band, 2 with 20 m bands only)."""
        if self.grid != "native":
            return 1
        return math.lcm(*(max(1, BY_NAME[b].resolution_m // 10) for b in self.band_names))

    @property
    def patch_cloud_limit(self) -> float:
        """The resolved patch-level cloud fraction limit."""
        if self.max_patch_cloud is not None:
            return float(self.max_patch_cloud)
        return 0.1 if self.max_cloud is None else float(self.max_cloud) / 100.0

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.retries, self.backoff_s, self.backoff_max_s)


#: Options that must not change between a run and its resumption (they change what the store holds).
FINGERPRINT_FIELDS = ("catalog", "collection", "bands", "patch_size", "max_cloud", "max_nodata", "policy",
                      "harmonize", "spares", "max_scenes")
#: The same for the S1 options (in the fingerprint only with ``--s1``: S2-only stores keep theirs unchanged).
S1_FINGERPRINT_FIELDS = ("s1", "s1_catalog", "s1_collection", "s1_window_days", "s1_orbit")


def is_url(target: str) -> bool:
    """Whether a store target is an fsspec URL (``s3://``, ``gs://``, ``memory://`` ...) rather than a folder."""
    return "://" in target and not target.startswith("file://")


def _local_path(out: str) -> Path:
    return Path(out[len("file://"):] if out.startswith("file://") else out).expanduser().absolute()

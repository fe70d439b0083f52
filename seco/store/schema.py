"""The on-disk schema of a seco store: names, attributes, version, metadata fields, and opening a Zarr root.

Everything a reader needs is in the store itself; docs/STORE.md describes the same schema for readers
that do not use seco.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import zarr
import zarr.storage
from zarr.abc.store import Store as ZarrStore
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

from seco.errors import ConfigError, StoreError, StoreVersionError

#: Newest version of the on-disk schema (a native-resolution store, ``StoreLayout(grid="native")``). Bump it
#: on any change a reader of the previous version would misread.
SCHEMA_VERSION = 3
#: Versions this seco reads: 1 (every band on the 10 m grid; still what a ``grid="10m"`` store is written as,
#: so older seco releases keep reading it), 2 (20 m / 60 m bands at their native resolution) and 3 (either grid,
#: with a Sentinel-1 group beside the Sentinel-2 images: ``seco.store.s1``; an older seco refuses it rather than
#: append locations without their S1 rows).
SCHEMA_VERSIONS = (1, 2, 3)
#: Sensor groups a store can hold: ``s2`` (the images at the root, always) and ``s1`` (``seco.store.s1``).
SENSORS = ("s2", "s1")
#: The S1 group's encoding: ``dB = code * S1_SCALE + S1_OFFSET``, code 0 = no data (``seco.store.s1``).
S1_SCALE = 0.01
S1_OFFSET = -327.68


def s1_group_attrs() -> dict[str, Any]:
    """What ``seco_store.s1`` records: bands, units and encoding."""
    from seco.bands import S1_BANDS

    return {"bands": list(S1_BANDS), "units": "dB", "dtype": "uint16", "nodata": 0,
            "scale_factor": S1_SCALE, "add_offset": S1_OFFSET,
            "encoding": "dB = code * 0.01 - 327.68; code 0 = no data"}
#: Digital number that marks "no data" in every band (Sentinel-2 convention); ignored by the statistics.
NODATA = 0
#: One histogram bin per uint16 value.
NUM_BINS = 65536
#: ``datetime`` value of a date without metadata (the smallest int64, like numpy's NaT).
MISSING_TIME = np.iinfo(np.int64).min

IMAGES = "images"
#: Store grids: ``"10m"`` (every band on the 10 m grid, schema version 1) or ``"native"`` (version 2).
GRIDS = ("10m", "native")
GRID_10M_TEXT = "all bands on the 10 m grid; 20 m and 60 m bands nearest-upsampled by the writer's caller"
VALID = "valid"
KEY = "key"
LABEL = "label"
META = "meta"
HIST = "stats/band_hist"

ATTR_VERSION = "seco_store_version"
ATTR_SCHEMA = "seco_store"
ATTR_MANIFEST = "seco_manifest"
ATTR_USER = "user_attrs"


def image_array(factor: int) -> str:
    """Name of the array holding the bands of grid factor ``factor``: ``images`` (1), ``images_x2``, ``images_x6``."""
    return IMAGES if factor == 1 else f"{IMAGES}_x{factor}"


class StoreIndexError(StoreError, IndexError):
    """A location or date index outside the store (also an ``IndexError``, so iteration stops on it)."""


@dataclass(frozen=True)
class StoreLayout:
    """How the images are chunked and compressed. Recorded in the store; readers need nothing from it.

    The default was chosen by ``bench/bench_store.py`` (numbers in docs/STORE.md).

    Attributes:
        codec: ``"blosc-zstd"``, ``"blosc-lz4"`` or ``"zstd"`` (all lossless).
        clevel: compression level of the codec.
        shuffle: Blosc pre-filter: ``"noshuffle"``, ``"shuffle"`` or ``"bitshuffle"`` (ignored by ``zstd``).
        inner_chunk: ``"date-band"`` (one chunk per date and band) or ``"date"`` (one per date, all bands).
        sharded: one shard file per location holding the inner chunks (``False``: one file per chunk).
        meta_chunk: locations per chunk of the per-location metadata arrays.
        checksum: append a CRC32C to every inner chunk (Zarr v3 ``crc32c`` codec), verified by
            ``seco store check`` and at the first read of each (shard, date) in a process. Stores written before
            seco recorded checksums read as ``False``.
        grid: ``"10m"`` (every band on the 10 m grid; schema version 1) or ``"native"`` (20 m and 60 m bands
            kept once per source pixel in ``images_x2`` / ``images_x6``: 2.16x fewer pixels to decode for the
            12 L2A bands; schema version 2, which seco releases before it refuse). Recorded as
            ``seco_store.grid``.
    """

    codec: str = "blosc-lz4"
    clevel: int = 5
    shuffle: str = "noshuffle"
    inner_chunk: str = "date-band"
    sharded: bool = True
    meta_chunk: int = 1024
    checksum: bool = True
    grid: str = "10m"

    def __post_init__(self) -> None:
        if self.grid not in GRIDS:
            raise ConfigError(f"unknown store grid {self.grid!r}; use '10m' (every band on the 10 m grid) or "
                              "'native' (20 m / 60 m bands at their native resolution)")
        if self.codec not in ("blosc-zstd", "blosc-lz4", "zstd"):
            raise ConfigError(f"unknown store codec {self.codec!r}; use 'blosc-zstd', 'blosc-lz4' or 'zstd'")
        if self.shuffle not in ("noshuffle", "shuffle", "bitshuffle"):
            raise ConfigError(f"unknown shuffle {self.shuffle!r}; use 'noshuffle', 'shuffle' or 'bitshuffle'")
        if self.inner_chunk not in ("date-band", "date"):
            raise ConfigError(f"unknown inner_chunk {self.inner_chunk!r}; use 'date-band' or 'date'")
        if not isinstance(self.clevel, int) or not 0 <= self.clevel <= 22:
            raise ConfigError(f"clevel {self.clevel!r} out of range; use an integer in 0..22 (0..9 for blosc)")
        if self.codec.startswith("blosc") and self.clevel > 9:
            raise ConfigError(f"blosc clevel {self.clevel} out of range; use 0..9")
        if not isinstance(self.meta_chunk, int) or self.meta_chunk < 1:
            raise ConfigError(f"meta_chunk {self.meta_chunk!r} must be a positive integer, e.g. 1024")
        if not isinstance(self.checksum, bool):
            raise ConfigError(f"checksum {self.checksum!r} must be True (CRC32C per chunk) or False")

    def compressor(self) -> BloscCodec | ZstdCodec:
        """The Zarr v3 codec for the image chunks."""
        if self.codec == "zstd":
            return ZstdCodec(level=self.clevel)
        cname = self.codec.split("-", 1)[1]
        return BloscCodec(cname=cname, clevel=self.clevel, shuffle=self.shuffle, typesize=2)  # type: ignore[arg-type]

    def compressors(self) -> tuple[Any, ...]:
        """The bytes-to-bytes codecs of the image chunks: the compressor, then ``crc32c`` when checksummed."""
        return (self.compressor(), Crc32cCodec()) if self.checksum else (self.compressor(),)

    def to_attrs(self) -> dict[str, Any]:
        """JSON form under ``seco_store.layout`` (``checksum`` and ``grid`` are recorded beside it, as
        ``seco_store.checksum`` and ``seco_store.grid``)."""
        d = asdict(self)
        d.pop("checksum")
        d.pop("grid")
        return d

    @classmethod
    def from_attrs(cls, layout: Mapping[str, Any], checksum: Any, grid: Any = None) -> StoreLayout:
        """Inverse of ``to_attrs``; keys a later seco may add to the layout are ignored (readers need none)."""
        known = {f.name for f in fields(cls)} - {"checksum", "grid"}
        kind = str(grid.get("kind")) if isinstance(grid, Mapping) else "10m"  # a 10 m store records a sentence
        return cls(**{k: v for k, v in layout.items() if k in known}, checksum=checksum == "crc32c", grid=kind)

    def chunks(self, num_dates: int, num_bands: int, patch_size: int) -> dict[str, tuple[int, ...]]:
        """``chunks`` (and ``shards``) keyword arguments of ``zarr.create_array`` for the images."""
        inner = (1, 1, 1 if self.inner_chunk == "date-band" else num_bands, patch_size, patch_size)
        if self.sharded:
            return {"chunks": inner, "shards": (1, num_dates, num_bands, patch_size, patch_size)}
        return {"chunks": inner}


@dataclass(frozen=True)
class StoreConfig:
    """The static description of a store, written once at creation.

    Attributes:
        bands: band names on the channel axis, in order.
        num_dates: ``T``, dates per location.
        patch_size: ``H = W`` in pixels on the 10 m grid.
        label_names: names of the integer labels, or ``None``.
        layout: chunking, compression and grid of the images.
        factors: grid factor per band (``seco.store.packing``), in band order; ``None``: all 1 on the 10 m
            grid, ``packing.native_factors`` on the native grid (what a new store records).
        sensors: ``("s2",)`` or ``("s2", "s1")`` (a Sentinel-1 group, schema version 3).
    """

    bands: tuple[str, ...]
    num_dates: int = 5
    patch_size: int = 264
    label_names: tuple[str, ...] | None = None
    layout: StoreLayout = field(default_factory=StoreLayout)
    factors: tuple[int, ...] | None = None
    sensors: tuple[str, ...] = ("s2",)

    def __post_init__(self) -> None:
        if not isinstance(self.sensors, tuple) or self.sensors[:1] != ("s2",) or len(set(self.sensors)) != len(
                self.sensors) or not set(self.sensors) <= set(SENSORS):
            raise ConfigError(f"sensors {self.sensors!r} must be ('s2',) or ('s2', 's1'): a store always holds the "
                              "Sentinel-2 images, and optionally a Sentinel-1 group")

    @property
    def has_s1(self) -> bool:
        """Whether the store has a Sentinel-1 group."""
        return "s1" in self.sensors

    @property
    def grid_factors(self) -> dict[str, int]:
        """Grid factor of each band: all 1 on the 10 m grid."""
        if self.factors is not None:
            return dict(zip(self.bands, self.factors, strict=True))
        if self.layout.grid == "native":
            from seco.store.packing import native_factors

            return native_factors(self.bands)
        return {b: 1 for b in self.bands}

    @property
    def schema_version(self) -> int:
        """The version a store of this configuration is written with (1 on the 10 m grid, 2 native, 3 with S1)."""
        if self.has_s1:
            return 3
        return 2 if self.layout.grid == "native" else 1

    def image_groups(self) -> list[ImageGroup]:
        """The image arrays of the store, in increasing factor (only factors that occur)."""
        from seco.store.packing import PackSpec

        # the groups of the store's full packed layout: the writer splits images with that same spec, so the
        # arrays and the split parts cannot come out in different orders
        spec = PackSpec.build(self.bands, self.patch_size, self.grid_factors)
        return [ImageGroup(image_array(g.factor), g.factor, g.side, g.channels) for g in spec.groups]

    def to_attrs(self) -> dict[str, Any]:
        """JSON form stored under the root attribute ``seco_store``."""
        from seco import __version__

        extra: dict[str, Any] = {}
        if self.has_s1:  # recorded only with S1, so S2-only stores keep the attributes older seco writes
            extra = {"sensors": list(self.sensors), "s1": s1_group_attrs()}
        return {
            "bands": list(self.bands),
            "num_dates": self.num_dates,
            "patch_size": self.patch_size,
            "label_names": list(self.label_names) if self.label_names is not None else None,
            "layout": self.layout.to_attrs(),
            "checksum": "crc32c" if self.layout.checksum else None,
            "dtype": "uint16",
            "nodata": NODATA,
            "reflectance_scale": 10000.0,
            "grid": (
                {"kind": "native", "factors": self.grid_factors} if self.layout.grid == "native" else GRID_10M_TEXT
            ),
            "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "software": f"seco {__version__}",
            **extra,
        }

    @classmethod
    def from_attrs(cls, a: Mapping[str, Any]) -> StoreConfig:
        names = a.get("label_names")
        bands = tuple(a["bands"])
        grid = a.get("grid")
        factors = None
        if isinstance(grid, Mapping) and grid.get("kind") == "native":
            rec = grid.get("factors")
            if not isinstance(rec, Mapping) or set(rec) != set(bands) or not all(
                    isinstance(rec[b], int) and not isinstance(rec[b], bool) and rec[b] >= 1 for b in bands):
                raise StoreError(f"store attribute seco_store.grid.factors {rec!r} must give a positive integer "
                                 f"grid factor for each band {list(bands)}; the store is damaged")
            factors = tuple(int(rec[b]) for b in bands)
        elif isinstance(grid, Mapping):
            raise StoreError(f"store attribute seco_store.grid {dict(grid)!r} has an unknown kind; this seco knows "
                             "'native' (and the 10 m grid); use the seco release that wrote the store")
        return cls(
            bands=bands,
            num_dates=int(a["num_dates"]),
            patch_size=int(a["patch_size"]),
            label_names=tuple(names) if names is not None else None,
            layout=StoreLayout.from_attrs(a.get("layout", {}), a.get("checksum"), grid),
            factors=factors,
            sensors=_sensors(a.get("sensors")),
        )


def _sensors(value: Any) -> tuple[str, ...]:
    if value is None:
        return ("s2",)
    if not isinstance(value, list) or value[:1] != ["s2"] or not set(value) <= set(SENSORS):
        raise StoreError(f"store attribute seco_store.sensors {value!r} is not ['s2'] or ['s2', 's1']; the store is "
                         "damaged or from a newer seco")
    return tuple(value)


@dataclass(frozen=True)
class ImageGroup:
    """One image array of a store: the bands of one grid factor, (N, T, c, side, side).

    Attributes:
        name: array name (``images``, ``images_x2``, ``images_x6``).
        factor: grid factor ``f`` of its bands.
        side: ``ceil(patch_size / f)`` pixels.
        channels: positions of its bands in the store's band order (the array's band axis, in that order).
    """

    name: str
    factor: int
    side: int
    channels: tuple[int, ...]


@dataclass(frozen=True)
class DateField:
    """One per-(location, date) metadata array under ``meta/``."""

    name: str
    dtype: str
    trailing: tuple[int, ...]
    fill: Any
    doc: str


DATE_FIELDS: tuple[DateField, ...] = (
    DateField("item_id", "str", (), "", "STAC item id of the scene the date was read from"),
    DateField("datetime", "int64", (), int(MISSING_TIME), "acquisition time, microseconds since 1970-01-01T00:00Z"),
    DateField("cloud_fraction", "float64", (), math.nan, "fraction of the patch covered by cloud or shadow, 0..1"),
    DateField("nodata_fraction", "float64", (), math.nan, "fraction of the patch without data, 0..1"),
    DateField("crs", "str", (), "", "CRS of the patch grid: 'EPSG:<code>' or WKT"),
    DateField("transform", "float64", (6,), math.nan, "affine (a, b, c, d, e, f): x = a*col + b*row + c, y = d*col + e*row + f"),
    DateField("lat", "float64", (), math.nan, "latitude of the patch centre, degrees (WGS 84)"),
    DateField("lon", "float64", (), math.nan, "longitude of the patch centre, degrees (WGS 84)"),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in DATE_FIELDS)

#: ``dn_shift`` where it is not known (stores written before seco recorded it, dates without data).
DN_SHIFT_UNKNOWN = -32768
#: Optional per-date radiometry record, never required by ``append``. Stores written before it have
#: no such arrays: readers report ``None`` (unknown) and a writer adds them, filled with unknown, at its
#: first append. ``trailing`` ``(-1,)`` means one value per band of the store.
RADIOMETRY_FIELDS: tuple[DateField, ...] = (
    DateField("dn_shift", "int16", (-1,), DN_SHIFT_UNKNOWN,
              "per band, the DN added by harmonisation when collected (-1000, 0); -32768 = unknown"),
    DateField("dn_rule", "str", (), "",
              "the seco.radiometry.providers rule(s) that decided dn_shift (';'-joined when bands differ); '' = unknown"),
    DateField("dn_warning", "str", (), "",
              "what the rule could not decide from the item's metadata (the default it took); '' = none or unknown"),
)
RADIOMETRY_NAMES: tuple[str, ...] = tuple(f.name for f in RADIOMETRY_FIELDS)


def field_shape(f: DateField, num_bands: int) -> tuple[int, ...]:
    """The trailing shape of a field's array in a store of ``num_bands`` bands."""
    return tuple(num_bands if n == -1 else n for n in f.trailing)


def normalize_radiometry(meta: Mapping[str, Any] | None, num_bands: int, where: str) -> dict[str, Any]:
    """The stored form of a date's optional ``dn_shift`` (``num_bands`` ints or ``None``), ``dn_rule`` and
    ``dn_warning`` (strings or ``None``).

    Raises:
        StoreError: a ``dn_shift`` of another length or outside int16, or a rule / warning that is not a string.
    """
    meta = meta if isinstance(meta, Mapping) else {}
    shift = np.full(num_bands, DN_SHIFT_UNKNOWN, np.int16)
    value = meta.get("dn_shift")
    if value is not None:
        try:
            a = np.asarray(value, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError):
            raise StoreError(f"{where}: dn_shift {value!r} must be {num_bands} integers (DN per band)") from None
        if a.size != num_bands or np.any(a <= DN_SHIFT_UNKNOWN) or np.any(a > 32767):
            raise StoreError(f"{where}: dn_shift {value!r} must be {num_bands} integers in -32767..32767, one per "
                             "band of the store")
        shift = a.astype(np.int16)
    out: dict[str, Any] = {"dn_shift": shift}
    for name in ("dn_rule", "dn_warning"):
        text = meta.get(name)
        if text is not None and not isinstance(text, str):
            raise StoreError(f"{where}: {name} {text!r} must be a string")
        out[name] = text or ""
    return out


# ----------------------------------------------------------------------------------------------- metadata


def _to_micros(value: Any, where: str) -> int:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise StoreError(
                f"{where}: datetime {value!r} is not ISO 8601; give e.g. '2020-06-14T10:36:29Z' or a datetime"
            ) from None
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[us]").astype(np.int64))
    if not isinstance(value, datetime):
        raise StoreError(f"{where}: datetime {value!r} must be an ISO 8601 string or a datetime")
    if value.tzinfo is None:  # STAC datetimes are UTC; a naive value is read as UTC
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def micros_to_iso(us: int) -> str | None:
    """ISO 8601 UTC string (``...Z``) of a stored ``datetime`` value; ``None`` when missing."""
    if us == MISSING_TIME:
        return None
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))
    return dt.isoformat().replace("+00:00", "Z")


def _to_fraction(value: Any, where: str, name: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise StoreError(f"{where}: {name} {value!r} is not a number; give a fraction in 0..1") from None
    if not 0.0 <= x <= 1.0:
        raise StoreError(f"{where}: {name} {x} outside 0..1; give a fraction, not a percentage")
    return x


def _to_crs(value: Any, where: str) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"EPSG:{int(value)}"
    if hasattr(value, "to_string") and not isinstance(value, str):  # rasterio / pyproj CRS objects
        value = value.to_string()
    if not isinstance(value, str) or not value.strip():
        raise StoreError(f"{where}: crs {value!r} must be 'EPSG:<code>', an EPSG integer or a WKT string")
    return value.strip()


def _to_transform(value: Any, where: str) -> np.ndarray:
    try:
        t = np.asarray(tuple(value), dtype=np.float64)
    except (TypeError, ValueError):
        raise StoreError(f"{where}: transform {value!r} must be 6 numbers (a, b, c, d, e, f)") from None
    if t.shape == (9,) and np.allclose(t[6:], (0.0, 0.0, 1.0)):  # a full rasterio Affine
        t = t[:6]
    if t.shape != (6,) or not np.all(np.isfinite(t)):
        raise StoreError(f"{where}: transform {value!r} must be 6 finite numbers (a, b, c, d, e, f)")
    return t


def _to_coord(value: Any, where: str, name: str, bound: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise StoreError(f"{where}: {name} {value!r} is not a number of degrees") from None
    if not -bound <= x <= bound:
        raise StoreError(f"{where}: {name} {x} outside -{bound}..{bound} degrees; give WGS 84 degrees")
    return x


def normalize_date_meta(meta: Mapping[str, Any] | None, valid: bool, where: str) -> dict[str, Any]:
    """Check one date's metadata and convert it to the stored representation.

    A valid date needs every field of ``DATE_FIELDS``; an invalid date may give ``None``, ``{}`` or any
    subset. Unknown keys are refused (a typo would otherwise be lost silently).

    Raises:
        StoreError: naming the date, the field and the value.
    """
    meta = {} if meta is None else meta
    if not isinstance(meta, Mapping):
        raise StoreError(f"{where}: metadata must be a dict (or None for an invalid date), got {type(meta).__name__}")
    if "valid" in meta:  # what Store.meta() hands out, so a store can be copied location by location
        if bool(meta["valid"]) != valid:
            raise StoreError(f"{where}: metadata says valid={meta['valid']!r} but the validity mask says {valid}")
        meta = {k: v for k, v in meta.items() if k != "valid"}
    unknown = sorted(set(meta) - set(FIELD_NAMES) - set(RADIOMETRY_NAMES))
    if unknown:
        raise StoreError(f"{where}: unknown metadata key(s) {', '.join(unknown)}; the fields are "
                         f"{', '.join(FIELD_NAMES + RADIOMETRY_NAMES)}")
    meta = {k: v for k, v in meta.items() if k not in RADIOMETRY_NAMES}  # normalize_radiometry's
    missing = [n for n in FIELD_NAMES if meta.get(n) is None]
    if valid and missing:
        raise StoreError(
            f"{where}: a valid date needs metadata {', '.join(missing)}; give them or mark the date invalid"
        )
    out: dict[str, Any] = {f.name: np.full(f.trailing, f.fill) if f.trailing else f.fill for f in DATE_FIELDS}
    for name, value in meta.items():
        if value is None:
            continue
        if name == "item_id":
            if not isinstance(value, str) or not value:
                raise StoreError(f"{where}: item_id {value!r} must be a non-empty string (the STAC item id)")
            out[name] = value
        elif name == "datetime":
            out[name] = _to_micros(value, where)
        elif name in ("cloud_fraction", "nodata_fraction"):
            out[name] = _to_fraction(value, where, name)
        elif name == "crs":
            out[name] = _to_crs(value, where)
        elif name == "transform":
            out[name] = _to_transform(value, where)
        elif name == "lat":
            out[name] = _to_coord(value, where, "lat", 90.0)
        elif name == "lon":
            out[name] = _to_coord(value, where, "lon", 180.0)
    return out


# ----------------------------------------------------------------------------------------------- opening


@dataclass(frozen=True)
class Location:
    """Where a store lives: a local folder or an fsspec URL (``s3://``, ``gs://``, ``memory://`` ...)."""

    url: str
    local: Path | None
    storage_options: dict[str, Any] | None = None

    @classmethod
    def parse(cls, path: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None) -> Location:
        s = os.fspath(path)
        opts = dict(storage_options) if storage_options else None
        if "://" in s and not s.startswith("file://"):
            return cls(url=s.rstrip("/"), local=None, storage_options=opts)
        local = Path(s[len("file://") :] if s.startswith("file://") else s).expanduser().absolute()
        return cls(url=str(local), local=local, storage_options=None)

    def open(self, read_only: bool) -> ZarrStore:
        """The Zarr store object (LocalStore for folders, FsspecStore for URLs)."""
        if self.local is not None:
            return zarr.storage.LocalStore(self.local, read_only=read_only)
        try:
            return zarr.storage.FsspecStore.from_url(
                self.url, storage_options=self.storage_options, read_only=read_only
            )
        except Exception as e:  # an unknown protocol, missing credentials, an unreachable host
            raise StoreError(f"cannot open store URL {self.url!r}: {e}. Check the URL and storage_options") from e


def _hint(url: str) -> str:
    return (
        f"create one with `seco synth --out {url}` (simulated archive) or `seco collect` (real Sentinel-2), "
        "or check the path"
    )


def open_root(loc: Location, read_only: bool) -> tuple[zarr.Group, dict[str, Any]]:
    """Open the root group of a seco store and check its schema version before anything else.

    Returns:
        The root group and its attributes.

    Raises:
        StoreError: the path does not exist or is not a seco store.
        StoreVersionError: the store was written with another schema version.
    """
    if loc.local is not None:
        if not loc.local.exists():
            raise StoreError(f"no seco store at {loc.url}: the path does not exist; {_hint(loc.url)}")
        if not (loc.local / "zarr.json").is_file():
            raise StoreError(f"{loc.url} is not a seco store (no Zarr v3 zarr.json in it); {_hint(loc.url)}")
    try:
        root = zarr.open_group(store=loc.open(read_only), mode="r" if read_only else "r+")
        attrs = dict(root.attrs)
    except StoreError:
        raise
    except Exception as e:
        raise StoreError(f"{loc.url} is not a seco store ({type(e).__name__}: {e}); {_hint(loc.url)}") from e
    if ATTR_VERSION not in attrs:
        raise StoreError(f"{loc.url} is a Zarr group but not a seco store (no {ATTR_VERSION!r} attribute); {_hint(loc.url)}")
    version = attrs[ATTR_VERSION]
    if version not in SCHEMA_VERSIONS or isinstance(version, bool):
        schema = attrs.get(ATTR_SCHEMA)
        software = schema.get("software", "another seco release") if isinstance(schema, dict) else "another seco release"
        raise StoreVersionError(
            f"store {loc.url} has schema version {version} (written by {software}) but this seco reads "
            f"versions {', '.join(map(str, SCHEMA_VERSIONS[:-1]))} and {SCHEMA_VERSIONS[-1]}; re-create it with this seco (`seco synth` / "
            f"`seco collect` into a new path) or use the seco release that wrote it"
        )
    if ATTR_SCHEMA not in attrs or ATTR_MANIFEST not in attrs:
        raise StoreError(f"store {loc.url} is damaged: root attributes lack {ATTR_SCHEMA!r} or {ATTR_MANIFEST!r}")
    return root, attrs


def check_bands_spec(bands: str | Sequence[str]) -> tuple[str, ...]:
    """Resolve the band list of a new store (``"all"`` = the 12 L2A bands)."""
    from seco.bands import parse_bands

    return parse_bands(bands)


class StoreFacts:
    """What a store's reader and writer both say of it, from its ``config`` (:class:`StoreConfig`) and location."""

    config: StoreConfig
    _loc: Location

    @property
    def path(self) -> str:
        return self._loc.url

    @property
    def bands(self) -> tuple[str, ...]:
        return self.config.bands

    @property
    def num_dates(self) -> int:
        return self.config.num_dates

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

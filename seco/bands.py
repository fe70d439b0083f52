"""Band registry: Sentinel-2 (``B01`` .. ``B12``, ``B8A``) and Sentinel-1 (``VV``, ``VH``).

One naming is used by every dataset, store and exported model in seco. Sentinel-2 reflectance is stored as uint16
digital numbers: ``reflectance = DN / 10000`` (after harmonising the L2A processing-baseline offset, see
``seco.collect.patches``); Sentinel-1 backscatter is in dB (a store's S1 group, ``seco.store.s1``).

Band sets for ``--bands``: ``all`` (every Sentinel-2 band of the source; the 12 L2A bands without one), ``l2a``,
``l1c``, ``rgb``, ``10m``, ``s2`` (= ``all``), ``s1`` (VV, VH) and ``s1+s2`` / ``s2+s1`` (both). A selection lists
its Sentinel-2 bands first, then its Sentinel-1 bands, each in the order given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from seco.errors import BandError


@dataclass(frozen=True)
class Band:
    """One Sentinel-2 MSI band.

    Attributes:
        name: canonical name, e.g. ``"B8A"``.
        resolution_m: native ground sampling distance in metres (10, 20 or 60).
        wavelength_nm: central wavelength in nanometres (Sentinel-2A).
        common_name: STAC ``eo:common_name``.
    """

    name: str
    resolution_m: int
    wavelength_nm: float
    common_name: str


#: All 13 bands in the L1C product order (B8A after B08).
BANDS: tuple[Band, ...] = (
    Band("B01", 60, 442.7, "coastal"),
    Band("B02", 10, 492.4, "blue"),
    Band("B03", 10, 559.8, "green"),
    Band("B04", 10, 664.6, "red"),
    Band("B05", 20, 704.1, "rededge"),
    Band("B06", 20, 740.5, "rededge"),
    Band("B07", 20, 782.8, "rededge"),
    Band("B08", 10, 832.8, "nir"),
    Band("B8A", 20, 864.7, "nir08"),
    Band("B09", 60, 945.1, "nir09"),
    Band("B10", 60, 1373.5, "cirrus"),
    Band("B11", 20, 1613.7, "swir16"),
    Band("B12", 20, 2202.4, "swir22"),
)

BY_NAME: dict[str, Band] = {b.name: b for b in BANDS}

#: Level-1C (top of atmosphere): 13 bands.
L1C: tuple[str, ...] = tuple(b.name for b in BANDS)
#: Level-2A (bottom of atmosphere): 12 bands, no B10 (cirrus is not a surface reflectance).
L2A: tuple[str, ...] = tuple(n for n in L1C if n != "B10")
#: True colour, in display order.
RGB: tuple[str, ...] = ("B04", "B03", "B02")
#: The 10 m bands.
TEN_M: tuple[str, ...] = tuple(b.name for b in BANDS if b.resolution_m == 10)

#: Named band sets accepted wherever a band list is.
BAND_SETS: dict[str, tuple[str, ...]] = {"all": L2A, "l2a": L2A, "l1c": L1C, "rgb": RGB, "10m": TEN_M}

REFLECTANCE_SCALE = 10000.0

#: Sentinel-1 polarisations a store's S1 group holds (backscatter in dB, IW mode), in channel order.
S1_BANDS: tuple[str, ...] = ("VV", "VH")
#: Units of each sensor's values once decoded (what normalisation statistics are in).
UNITS: dict[str, str] = {"s2": "reflectance", "s1": "dB"}
_MULTI_SETS = {"s1": "s1", "s2": "s2", "s1+s2": "both", "s2+s1": "both"}


def sensor_of(name: str) -> str:
    """``"s1"`` for a Sentinel-1 band (VV, VH), else ``"s2"``."""
    return "s1" if name in S1_BANDS else "s2"


def sensors_of(names: Sequence[str]) -> tuple[str, ...]:
    """The sensors a band list uses, in ``("s2", "s1")`` order."""
    have = {sensor_of(n) for n in names}
    return tuple(s for s in ("s2", "s1") if s in have)


def canonical_name(name: str) -> str:
    """``normalize_name`` for Sentinel-2 bands, plus the Sentinel-1 polarisations (``vv`` -> ``VV``).

    Raises:
        BandError: a name of neither sensor.
    """
    n = name.strip().upper()
    if n in S1_BANDS:
        return n
    try:
        return normalize_name(name)
    except BandError:
        raise BandError(f"unknown band {name!r}; valid names are {', '.join(L1C)} (Sentinel-2) and "
                        f"{', '.join(S1_BANDS)} (Sentinel-1)") from None


def normalize_name(name: str) -> str:
    """Canonical band name: ``b2``, ``B2``, ``b02`` -> ``B02``; ``b8a`` -> ``B8A``.

    Raises:
        BandError: if the name is not a Sentinel-2 band.
    """
    n = name.strip().upper()
    if n.startswith("B") and n[1:].isdigit():
        n = f"B{int(n[1:]):02d}"
    if n not in BY_NAME:
        raise BandError(f"unknown Sentinel-2 band {name!r}; valid names are {', '.join(L1C)}")
    return n


class BandSelection(tuple[str, ...]):
    """A band list resolved by :func:`parse_bands`: canonical names, no duplicates, checked against the source it
    was resolved for. A run resolves ``--bands`` once and hands this value on; code that receives one uses it as
    it is instead of parsing it again."""

    __slots__ = ()


def parse_bands(spec: str | Sequence[str], available: Iterable[str] | None = None) -> BandSelection:
    """Resolve a band specification to a tuple of canonical names.

    Args:
        spec: ``"all"``, ``"RGB"``, ``"l1c"``, ``"10m"``, ``"s1"``, ``"s2"``, ``"s1+s2"``, a comma-separated list
            ``"B02,B03"`` / ``"B04,VV"``, parts joined by ``+`` (``"rgb+s1"``, ``"B02,B03+VV"``) or a sequence. ``"all"`` (and ``"s2"``) means every Sentinel-2 band in
            ``available`` when given, else the 12 L2A bands. The result lists Sentinel-2 bands first, then
            Sentinel-1 ones.
        available: the bands a store or file holds (Sentinel-1 ones included where it has them); every requested
            band must be among them.

    Raises:
        BandError: on an unknown name, a duplicate, an empty list, or a band not in ``available``.
    """
    avail = tuple(canonical_name(b) for b in available) if available is not None else None
    if isinstance(spec, BandSelection) and (avail is None or set(spec) <= set(avail)):
        return spec  # resolved once already (by the caller that holds the run's bands): used as it is
    if isinstance(spec, str) and "+" in spec and spec.strip().lower().replace(" ", "") not in _MULTI_SETS:
        # parts joined by '+': "rgb+s1", "B02,B03+VV" -- each part as a spec of its own
        joined = [n for part in spec.split("+") for n in parse_bands(part, available)]
        return parse_bands(joined, available)
    if isinstance(spec, str):
        key = spec.strip().lower().replace(" ", "")
        avail_s2 = tuple(b for b in avail if sensor_of(b) == "s2") if avail is not None else None
        if key in ("all", "s2") and avail_s2:
            names: tuple[str, ...] = avail_s2
        elif key in _MULTI_SETS:
            s2 = (avail_s2 or L2A) if key != "s1" else ()
            names = (*s2, *(S1_BANDS if key != "s2" else ()))
        elif key in BAND_SETS:
            names = BAND_SETS[key]
        else:
            names = tuple(canonical_name(p) for p in spec.split(",") if p.strip())
    else:
        names = tuple(canonical_name(p) for p in spec)
    names = (*(n for n in names if sensor_of(n) == "s2"), *(n for n in names if sensor_of(n) == "s1"))
    if not names:
        raise BandError(f"empty band list {spec!r}; give e.g. 'all', 'RGB' or 'B02,B03,B04'")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BandError(f"band(s) {', '.join(dup)} listed twice in {spec!r}")
    if avail is not None:
        missing = [n for n in names if n not in avail]
        if missing:
            raise BandError(
                f"band(s) {', '.join(missing)} not available; this source has {', '.join(avail)}. "
                "Choose --bands among those."
            )
    return BandSelection(names)


def indices(names: Sequence[str], within: Sequence[str]) -> list[int]:
    """Positions of ``names`` in the band list ``within`` (both canonical)."""
    pos = {n: i for i, n in enumerate(within)}
    missing = [n for n in names if n not in pos]
    if missing:
        raise BandError(f"band(s) {', '.join(missing)} not in {', '.join(within)}")
    return [pos[n] for n in names]

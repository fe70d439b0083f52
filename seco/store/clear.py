"""Clear-sky pixel masks and the exact statistics over them (issue 20, item 6; docs/STORE.md "Statistics").

A store's per-band statistics over *every* valid pixel include clouds, their shadows and snow, which can be a
large share of the pixels and are far brighter than the ground: in docs/FIDELITY.md they inflated B02's std from
0.038 to 0.226 reflectance, and a model normalised with them lost half its change-detection F1. So the writer
also keeps, per location, a (T, H, W) bool mask of the *clear* pixels (``masks/clear``) and a second histogram
over them (``stats/clear_hist``), and ``Store.stats`` reports those by default.

Where the mask comes from (recorded per date as ``meta/clear_rule``, with ``meta/clear_fraction``):

- ``"scl"``: the caller's mask from the Sen2Cor scene classification (``seco collect``): not nodata (0),
  saturated (1), cloud shadow (3), cloud medium / high probability (8, 9), thin cirrus (10) or snow (11).
- ``"truth:<source>"``: a simulator's own cloud / shadow / snow maps (``seco synth``).
- ``"test:<tests>"``: no mask given; the writer tests the stored bands (:func:`band_test`):

  - ``blue>0.2``: thick cloud is bright in the blue band, B02 > 0.20 reflectance (ground rarely is: dense
    vegetation 0.02-0.05, soil and cities 0.05-0.15; the same threshold as the L1C cloud test of
    ``seco.collect.cloud``, whose false positives, bright roofs and sand, were under 5 % of the pixels of each
    clear OSCD scene);
  - ``ndsi>0.4&green>0.1``: snow and ice, NDSI = (B03 - B11) / (B03 + B11) > 0.4 (the MODIS / Sen2Cor snow
    index threshold) with green reflectance > 0.10, which keeps water (also a high NDSI, but dark) as clear;
    applied when B03 and B11 are stored;
  - ``b10>0.012``: cirrus in the 1375 nm band, when B10 is stored (L1C).

  What it misses: cloud shadow (dark, like water and terrain shadow), thin haze and semi-transparent cloud
  edges below 0.2 in the blue, and snow when B11 is not stored (bright snow still fails ``blue>0.2``).
- ``"none"``: a store without B02: every valid non-zero pixel counts (no test is possible).

Every mask leaves out nodata (a pixel where any band is 0). Stores written before this module have no mask and
no clear histogram: their statistics stay all-valid-pixel ones and say so, and a writer appending to such a store
records none (a clear histogram of only the newer locations would be partial).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from seco.errors import StoreError
from seco.store import schema as S

MASK = "masks/clear"
HIST = "stats/clear_hist"
FRACTION = f"{S.META}/clear_fraction"
RULE = f"{S.META}/clear_rule"
#: the per-location arrays (resized, trimmed and swept with the store's other per-location arrays)
ARRAYS = (MASK, FRACTION, RULE)

#: test thresholds, in DN (reflectance x 10000) and NDSI; see the module docstring
BLUE_CLOUD_DN = 2000
NDSI_SNOW = 0.4
GREEN_SNOW_DN = 1000
CIRRUS_DN = 120

PIXELS = ("clear", "valid")
#: Sen2Cor SCL classes that are not clear: no data, saturated / defective, cloud shadow, cloud medium and high
#: probability, thin cirrus, snow / ice (``seco.collect.cloud`` lists every class).
SCL_NOT_CLEAR = (0, 1, 3, 8, 9, 10, 11)
_SCL_CLEAR = np.ones(256, bool)
_SCL_CLEAR[list(SCL_NOT_CLEAR)] = False


def scl_clear(scl: np.ndarray) -> np.ndarray:
    """(H, W) bool: the clear pixels of an SCL array (uint8 class codes), for ``append(..., clear=...)``."""
    return _SCL_CLEAR[np.asarray(scl).astype(np.uint8)]


# ------------------------------------------------------------------------------------------------ masks


def band_test(images: np.ndarray, bands: Sequence[str]) -> tuple[np.ndarray, str]:
    """The clear-pixel test on stored bands.

    Args:
        images: (T, C, H, W) uint16 DN.
        bands: the band names of the channel axis.

    Returns:
        (T, H, W) bool (True = clear and not nodata) and the rule (``"test:..."``, or ``"none"`` without B02).
    """
    pos = {b: i for i, b in enumerate(bands)}
    clear = ~(images == 0).any(axis=1)  # (T, H, W)
    if "B02" not in pos:
        return clear, "none"
    tests = ["blue>0.2"]
    bad = images[:, pos["B02"]] > BLUE_CLOUD_DN
    if "B03" in pos and "B11" in pos:
        g = images[:, pos["B03"]].astype(np.float32)
        s = images[:, pos["B11"]].astype(np.float32)
        ndsi = (g - s) / np.maximum(g + s, 1.0)
        bad |= (ndsi > NDSI_SNOW) & (g > GREEN_SNOW_DN)
        tests.append("ndsi>0.4&green>0.1")
    if "B10" in pos:
        bad |= images[:, pos["B10"]] > CIRRUS_DN
        tests.append("b10>0.012")
    return clear & ~bad, "test:" + "|".join(tests)


def location_mask(
    images: np.ndarray, valid: np.ndarray, bands: Sequence[str], clear: Any, clear_rule: Any, where: str
) -> tuple[np.ndarray, list[float], list[str]]:
    """The stored mask of one location, its per-date clear fraction and rule.

    Args:
        images: (T, C, H, W) uint16, invalid dates already zero.
        valid: (T,) bool.
        bands: band names.
        clear: ``None`` (the writer tests the bands) or (T, H, W) bool, True = clear.
        clear_rule: with ``clear``: one rule for every date or T rules (default ``"scl"``).
        where: the location, for messages.

    Returns:
        (T, H, W) bool mask (False on invalid dates and nodata), T fractions (NaN for invalid dates), T rules
        ('' for invalid dates).

    Raises:
        StoreError: a mask of another shape or dtype, or a bad rule.
    """
    T, _, H, W = images.shape
    nodata = (images == 0).any(axis=1)  # (T, H, W)
    if clear is None:
        if clear_rule is not None:
            raise StoreError(f"{where}: clear_rule {clear_rule!r} given without a clear mask; pass both or neither")
        mask, rule = band_test(images, bands)
        rules = [rule] * T
    else:
        m = np.asarray(clear)
        if m.dtype != np.bool_ or m.shape != (T, H, W):
            raise StoreError(f"{where}: clear must be a bool array of shape {(T, H, W)} (True = a clear pixel), "
                             f"got {m.dtype} {m.shape}")
        mask = m & ~nodata
        rules = _rules(clear_rule, T, where)
    mask &= valid[:, None, None]
    fractions = [float(mask[t].mean()) if valid[t] else math.nan for t in range(T)]
    return mask, fractions, [r if valid[t] else "" for t, r in enumerate(rules)]


def _rules(rule: Any, T: int, where: str) -> list[str]:
    rules = [rule or "scl"] * T if rule is None or isinstance(rule, str) else list(rule)
    if len(rules) != T or not all(isinstance(r, str) for r in rules):
        raise StoreError(f"{where}: clear_rule {rule!r} must be a string such as 'scl' or 'truth:synth', or {T} "
                         "of them (one per date)")
    return [r or "scl" for r in rules]


def add_clear(hist: np.ndarray, images: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> None:
    """Add the clear pixels of one location's valid dates to ``hist`` (C, 65536) in place.

    Args:
        hist: (C, 65536) uint64.
        images: (T, C, H, W) uint16.
        mask: (T, H, W) bool.
        valid: (T,) bool.
    """
    x, m = images[valid], mask[valid]  # (t, C, H, W), (t, H, W)
    for c in range(hist.shape[0]):
        hist[c] += np.bincount(x[:, c][m], minlength=S.NUM_BINS).astype(np.uint64)


# ------------------------------------------------------------------------------------------------ writing


class ClearWriter:
    """The clear-sky part of a ``StoreWriter``: its arrays, the histogram in memory, the pending rows.

    ``enabled`` is False for a store written before clear masks existed (and with locations): nothing is
    recorded there.
    """

    def __init__(self, root: zarr.Group, config: S.StoreConfig, n: int):
        self._root, self._config = root, config
        self._made = HIST in root
        self.enabled = self._made or n == 0
        self.hist: np.ndarray | None = None

    def arrays(self) -> dict[str, zarr.Array]:
        """The per-location arrays present (empty until ``ensure_arrays`` in a new store)."""
        return {name: self._root[name] for name in ARRAYS} if self._made else {}  # type: ignore[misc]

    def ensure_arrays(self, cap: int) -> dict[str, zarr.Array]:
        """Create the arrays (capacity ``cap``) in a new store that has none yet; the per-location ones created
        (empty when there was nothing to create)."""
        if not self.enabled or self._made:
            return {}
        c = self._config
        T, P, C, rows = c.num_dates, c.patch_size, len(c.bands), c.layout.meta_chunk
        self._root.create_array(MASK, shape=(cap, T, P, P), chunks=(1, T, P, P), dtype="bool", fill_value=False,
                                compressors=(ZstdCodec(level=3), *((Crc32cCodec(),) if c.layout.checksum else ())),
                                dimension_names=("location", "date", "y", "x"),
                                attributes={"description": "clear pixels of each valid date (not cloud, shadow, "
                                            "snow or nodata); meta/clear_rule says how they were decided"})
        self._root.create_array(FRACTION, shape=(cap, T), chunks=(rows, T), dtype="float64", fill_value=math.nan,
                                dimension_names=("location", "date"),
                                attributes={"description": "fraction of the patch that is clear, 0..1"})
        self._root.create_array(RULE, shape=(cap, T), chunks=(rows, T), dtype=str,
                                dimension_names=("location", "date"),
                                attributes={"description": "how the clear mask was decided: 'scl', "
                                            "'truth:<source>', 'test:<tests>' or 'none'"})
        self._root.create_array(HIST, shape=(2, C, S.NUM_BINS), chunks=(1, C, S.NUM_BINS), dtype="uint64",
                                fill_value=0, dimension_names=("slot", "band", "value"),
                                attributes={"description": "per-band DN histograms of the clear pixels of valid "
                                            "dates; the manifest's hist_slot names the live slot"})
        self.hist = np.zeros((C, S.NUM_BINS), np.uint64)
        self._made = True
        return self.arrays()

    def load(self, slot: int, hist_locations: int, n: int, store_factory: Any) -> None:
        """The saved histogram of ``slot`` plus the committed locations after it (read back)."""
        if not self._made:
            return
        hist = np.asarray(self._root[HIST][slot], dtype=np.uint64)  # type: ignore[index]
        if hist_locations < n:
            store = store_factory()
            for i in range(hist_locations, n):
                add_clear(hist, store.read(i), store.clear_mask(i), store.valid(i))
        self.hist = hist

    def save(self, slot: int) -> None:
        """Write the histogram into ``slot`` (the one the manifest does not point at)."""
        if self.hist is not None:
            self._root[HIST][slot] = self.hist  # type: ignore[index]

    def sweep_dirs(self, local: Any, n: int) -> list[Any]:
        """Folders that may hold ``*.partial`` files of uncommitted writes (local stores)."""
        if not self._made:
            return []
        out = [local / "masks", *(x for x in (local / HIST / "c").rglob("*") if x.is_dir())]
        i = n
        while (local / MASK / "c" / str(i)).is_dir():
            out.append(local / MASK / "c" / str(i) / "0" / "0")
            i += 1
        return out

    def trim(self, n: int) -> None:
        """Delete the mask chunks of uncommitted slots (contiguous from ``n`` upward)."""
        import zarr.core.sync as zsync

        if not self._made:
            return
        store = self._root.store
        i, missing = n, 0
        while missing < 8:
            key = f"{MASK}/c/{i}/0/0/0"
            if zsync.sync(store.exists(key)):
                zsync.sync(store.delete(key))
                missing = 0
            else:
                missing += 1
            i += 1


def flush_rows(arrays: Mapping[str, Any], start: int, pending: Sequence[Mapping[str, Any]]) -> None:
    """Write the clear records of the pending locations (those that have them) at rows ``start...``."""
    if FRACTION not in arrays or not all("clear_fraction" in p for p in pending):
        return
    stop = start + len(pending)
    arrays[FRACTION][start:stop] = np.array([p["clear_fraction"] for p in pending], dtype=np.float64)
    arrays[RULE][start:stop] = np.array([p["clear_rule"] for p in pending], dtype=object)


# ------------------------------------------------------------------------------------------------ reading


def describe(rules: np.ndarray | None, valid: np.ndarray, pixels: str) -> str:
    """How a store's statistics were computed, in one line.

    Args:
        rules: (N, T) str ``clear_rule`` records, or ``None`` for a store without them.
        valid: (N, T) bool.
        pixels: ``"clear"`` or ``"valid"``.
    """
    if pixels == "valid":
        text = "valid pixels: every non-zero pixel of every valid date (cloud, shadow and snow included)"
        return text if rules is not None else text + "; the store was written before seco recorded clear-sky masks"
    counts = Counter(str(r) for r in np.asarray(rules)[valid])
    total = sum(counts.values())
    if not total:
        return "clear pixels: no valid date yet"
    parts = [f"{_rule_text(r)} on {100.0 * c / total:.1f} %" for r, c in counts.most_common()]
    return f"clear pixels (no cloud, shadow, snow or nodata) of {total} valid dates: " + ", ".join(parts)


def _rule_text(rule: str) -> str:
    if rule.startswith("test:"):
        return f"test '{rule[5:]}'"
    if rule == "none":
        return "no test possible (no B02: every non-zero pixel)"
    return "SCL" if rule == "scl" else rule

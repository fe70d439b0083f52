"""The statistics half of :class:`seco.store.reader.Store`: exact histograms (all valid pixels, and the clear
pixels where the store records clear-sky masks), the statistics computed from them, and how.

A mixin: it uses the reader's array handles and reads (``_array``, ``_group``, ``read``, ``valid_mask``,
``meta_array``, ``band_indices``) and the manifest's histogram slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from seco.errors import StoreError
from seco.store import clear as CL
from seco.store import schema as S
from seco.store.stats import add_to_histogram, stats_from_histogram

if TYPE_CHECKING:
    import zarr


class StatsReading:
    """Histograms and statistics of a store (mixed into ``Store``)."""

    bands: tuple[str, ...]
    path: str
    _n: int
    _hist: np.ndarray | None
    _clear_hist: np.ndarray | None
    _has_clear: bool | None
    _hist_slot: int
    _hist_locations: int

    if TYPE_CHECKING:  # what the mixin uses of the reader (Store defines them)
        def _array(self, name: str) -> zarr.Array: raise NotImplementedError
        def _group(self) -> zarr.Group: raise NotImplementedError
        def _index(self, i: Any) -> int: raise NotImplementedError
        def read(self, i: int, dates: Any = None, bands: Any = None, *,
                 out: np.ndarray | None = None) -> np.ndarray: raise NotImplementedError
        def valid_mask(self) -> np.ndarray: raise NotImplementedError
        def meta_array(self, name: str) -> np.ndarray: raise NotImplementedError
        def band_indices(self, bands: str | Sequence[str] | None) -> list[int]: raise NotImplementedError

    def histogram(self) -> np.ndarray:
        """(C, 65536) uint64 counts of each DN per band over the valid dates of all locations."""
        if self._hist is None:
            hist = np.asarray(self._array(S.HIST)[self._hist_slot], dtype=np.uint64)
            # locations committed after the histogram was last saved (a writer still running or killed)
            for i in range(self._hist_locations, self._n):
                add_to_histogram(hist, self.read(i), self.valid_mask()[i])
            self._hist = hist
        return self._hist

    @property
    def has_clear(self) -> bool:
        """Whether the store records clear-sky masks and their histogram (stores written before them do not)."""
        if self._has_clear is None:
            self._has_clear = CL.HIST in self._group()
        return self._has_clear

    def clear_mask(self, i: int) -> np.ndarray | None:
        """(T, H, W) bool: the clear pixels of location ``i`` (False on invalid dates and nodata), or ``None``
        when the store records none."""
        j = self._index(i)
        if not self.has_clear:
            return None
        return np.asarray(self._array(CL.MASK)[j], dtype=bool)

    def clear_histogram(self) -> np.ndarray | None:
        """(C, 65536) uint64 counts of each DN per band over the clear pixels of valid dates, or ``None`` when the
        store records no clear masks."""
        if not self.has_clear:
            return None
        if self._clear_hist is None:
            hist = np.asarray(self._array(CL.HIST)[self._hist_slot], dtype=np.uint64)
            for i in range(self._hist_locations, self._n):  # committed after the histogram was last saved
                mask = self.clear_mask(i)
                assert mask is not None
                CL.add_clear(hist, self.read(i), mask, self.valid_mask()[i])
            self._clear_hist = hist
        return self._clear_hist

    def _pixels(self, pixels: str | None, idx: list[int] | None = None) -> tuple[str, str]:
        """The pixels ``stats`` uses for bands ``idx`` (``None``: all) and why, when the default falls back."""
        if pixels is None:
            if not self.has_clear:
                return "valid", ""
            hist = self.clear_histogram() if self._n else None
            if hist is not None:
                empty = [self.bands[k] for k in (idx if idx is not None else range(len(self.bands)))
                         if not hist[k, 1:].any()]
                if empty:  # e.g. a store whose every pixel is cloud or snow: valid statistics, and say so
                    return "valid", f"; the clear-sky masks leave no pixel in band(s) {', '.join(empty)}"
            return "clear", ""
        if pixels not in CL.PIXELS:
            raise StoreError(f"pixels={pixels!r} is unknown; use 'clear' (cloud, shadow, snow and nodata left out) "
                             "or 'valid' (every non-zero pixel of valid dates)")
        if pixels == "clear" and not self.has_clear:
            raise StoreError(f"store {self.path} was written before seco recorded clear-sky masks, so it has no "
                             "clear-pixel statistics; use pixels='valid', or copy it with `seco store migrate` "
                             "(the copy tests its bands for cloud and snow)")
        return pixels, ""

    def stats(self, bands: str | Sequence[str] | None = None, pixels: str | None = None) -> dict[str, np.ndarray]:
        """Exact per-band statistics in DN, ignoring nodata zeros.

        Args:
            bands: band names or a set name (``None`` = the store's bands).
            pixels: ``"clear"`` (the clear pixels of valid dates: no cloud, shadow or snow) or ``"valid"`` (every
                pixel of valid dates). ``None``: ``"clear"`` where the store records clear masks and they leave
                pixels in every asked band, else ``"valid"``. ``stats_method`` says which and how.

        Returns:
            ``mean``, ``std`` (population), ``p2``, ``p98``: each (c,) float64, in the order of ``bands``.

        Raises:
            StoreError: the store is empty, a band has no such pixel, an unknown ``pixels``, or ``"clear"`` on a
                store without clear masks.
            BandError: a band the store does not hold.
        """
        if self._n == 0:
            raise StoreError(f"store {self.path} has no locations yet; statistics need data")
        idx = self.band_indices(bands)
        hist = self.clear_histogram() if self._pixels(pixels, idx)[0] == "clear" else self.histogram()
        assert hist is not None
        return stats_from_histogram(hist[idx], tuple(self.bands[k] for k in idx))

    def stats_method(self, pixels: str | None = None, bands: str | Sequence[str] | None = None) -> str:
        """One line saying over which pixels ``stats(bands, pixels)`` is computed (e.g. "clear pixels ... SCL on
        95.0 %, test 'blue>0.2' on 5.0 %", counted over the ``clear_rule`` records of the valid dates)."""
        p, why = self._pixels(pixels, self.band_indices(bands))
        rules = self.meta_array("clear_rule") if self.has_clear else None
        return CL.describe(rules, self.valid_mask(), p) + why

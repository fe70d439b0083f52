"""What pre-training reads from a store, stated as a type: :class:`ImageSource`.

:class:`seco.store.reader.Store` is the implementation every command uses. The protocol names its read paths
explicitly, so the data pipeline (``seco.data.pretrain``) and mypy know what a source must offer, with no
signature sniffing:

- ``read(i, dates, bands, out=)``: (t, C, H, W) uint16 DN on the 10 m grid, decoded into ``out`` when given;
- ``read_packed(i, dates, bands, out=)``: (t, L) uint16, each band at the grid the source keeps it on, in the
  layout of ``pack_spec(bands)`` (what the training ring holds; ``PackSpec.unpack`` rebuilds the 10 m grid).

A source that holds everything on the 10 m grid (an in-memory array, a test double) subclasses
:class:`GridSource` and implements ``read`` only: its packed form is the image itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from seco.bands import parse_bands
from seco.store.packing import PackSpec

__all__ = ["GridSource", "ImageSource"]

Dates = Sequence[int] | np.ndarray | None
Bands = str | Sequence[str] | None


@runtime_checkable
class ImageSource(Protocol):
    """A multi-temporal image source: ``len(source)`` locations x ``num_dates`` dates x ``bands``, square
    ``patch_size`` px patches of uint16 DN (reflectance x 10000)."""

    @property
    def bands(self) -> tuple[str, ...]: ...

    @property
    def num_dates(self) -> int: ...

    @property
    def patch_size(self) -> int: ...

    def __len__(self) -> int: ...

    def valid_mask(self) -> np.ndarray:
        """(N, T) bool: the usable dates of every location."""
        ...

    def read(self, i: int, dates: Dates = None, bands: Bands = None, *, out: np.ndarray | None = None) -> np.ndarray:
        """(t, C, H, W) uint16 of location ``i`` on the 10 m grid (into ``out`` when given)."""
        ...

    def read_packed(
        self, i: int, dates: Dates = None, bands: Bands = None, *, out: np.ndarray | None = None
    ) -> np.ndarray:
        """(t, L) uint16 of location ``i`` in the layout of ``pack_spec(bands)`` (into ``out`` when given)."""
        ...

    def pack_spec(self, bands: Bands = None) -> PackSpec:
        """The packed layout of ``bands`` (each band at its stored grid)."""
        ...

    def stats(self, bands: Bands = None) -> dict[str, np.ndarray]:
        """Per-band DN statistics: ``mean``, ``std``, ``p2``, ``p98`` (C,) each."""
        ...

    def identity(self) -> dict[str, Any]:
        """What makes these data these data (saved with a training run; a resumed run must see the same)."""
        ...


class GridSource:
    """Base of sources that keep every band on the 10 m grid: ``read_packed`` and ``pack_spec`` come from
    ``read``. Subclasses set ``bands``, ``num_dates`` and ``patch_size`` and implement ``__len__``,
    ``valid_mask``, ``read`` (honouring ``out``) and ``stats``."""

    bands: tuple[str, ...]
    num_dates: int
    patch_size: int

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, i: int, dates: Dates = None, bands: Bands = None, *, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def pack_spec(self, bands: Bands = None) -> PackSpec:
        names = parse_bands(bands if bands is not None else "all", available=self.bands)
        return PackSpec.build(names, self.patch_size, {b: 1 for b in names})

    def read_packed(
        self, i: int, dates: Dates = None, bands: Bands = None, *, out: np.ndarray | None = None
    ) -> np.ndarray:
        names = parse_bands(bands if bands is not None else "all", available=self.bands)
        t = self.num_dates if dates is None else len(dates)
        p = self.patch_size
        if out is None:
            return self.read(i, dates, list(names)).reshape(t, -1)
        self.read(i, dates, list(names), out=out.reshape(t, len(names), p, p))
        return out

    def identity(self) -> dict[str, Any]:
        valid = np.ascontiguousarray(self.valid_mask(), dtype=bool)
        return {"num_locations": len(self), "num_dates": self.num_dates, "patch_size": self.patch_size,
                "bands": list(self.bands), "valid_sha256": hashlib.sha256(valid.tobytes()).hexdigest()}

    def valid_mask(self) -> np.ndarray:
        raise NotImplementedError

"""Native-resolution band groups: which bands a store keeps on a coarser grid, and the packed sample format.

A Sentinel-2 20 m band on the 10 m grid is every source pixel repeated 2 x 2 (60 m: 6 x 6), when the patch
origin lies on the coarse grid (``seco collect`` snaps it there for native stores; ``seco.synth`` renders that
way). A *native* store keeps such a band once per source pixel: 12 bands of a 264 px patch are 2.16x fewer
pixels to decode, copy to the device and hold in the batch ring. The 10 m grid is rebuilt by nearest
upsampling, batched, on the training device (``PackSpec.unpack``), and equals the 10 m store bit for bit.

The *grid factor* of a band is ``resolution_m // 10`` (1 for 10 m bands and for names seco does not know,
2 for 20 m, 6 for 60 m). A patch of ``P`` pixels keeps a factor-``f`` band as ``n = ceil(P / f)`` pixels a
side; upsampling gives ``n * f >= P`` and the first ``P`` rows and columns are the patch.

The *packed* form of one (date of a) sample is a flat uint16 vector: the groups in increasing factor, each
``c_g x n_g x n_g`` (bands in the requested order within the group). ``PackSpec`` describes it for a band
selection; ``Store.read_packed`` decodes into it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from seco.bands import BY_NAME
from seco.errors import StoreError

if TYPE_CHECKING:  # collect and import use the store without torch; only unpack needs it, imported there
    from torch import Tensor

__all__ = ["NotNativeError", "PackGroup", "PackSpec", "band_factor", "native_factors"]


class NotNativeError(StoreError):
    """Imagery on the 10 m grid whose 20 m / 60 m bands are not whole blocks of a coarser grid."""


def band_factor(name: str) -> int:
    """Grid factor of a band on the 10 m grid: 1 (10 m, or a name seco does not know), 2 (20 m), 6 (60 m)."""
    b = BY_NAME.get(name)
    return 1 if b is None else max(1, b.resolution_m // 10)


def native_factors(bands: Sequence[str]) -> dict[str, int]:
    """The grid factor of each of ``bands`` (what a native store records in ``seco_store.grid``)."""
    return {b: band_factor(b) for b in bands}


@dataclass(frozen=True)
class PackGroup:
    """Bands of one grid factor inside the packed vector.

    Attributes:
        factor: grid factor ``f``.
        side: ``n = ceil(P / f)``, pixels a side on the coarse grid.
        channels: positions of the group's bands in the output (requested) band order.
        offset: first element of the group in the packed vector.
    """

    factor: int
    side: int
    channels: tuple[int, ...]
    offset: int

    @property
    def length(self) -> int:
        return len(self.channels) * self.side * self.side


@dataclass(frozen=True)
class PackSpec:
    """The packed layout of ``bands`` of a ``patch_size`` px patch with per-band grid ``factors``.

    Build it with ``PackSpec.build``. ``length`` elements per (sample, date); ``unpack`` turns ``(..., length)``
    into ``(..., C, P, P)`` on any device, ``pack`` goes the other way (numpy, checking the blocks).
    """

    bands: tuple[str, ...]
    patch_size: int
    groups: tuple[PackGroup, ...]

    @classmethod
    def build(cls, bands: Sequence[str], patch_size: int, factors: Mapping[str, int] | None = None) -> PackSpec:
        """Spec of ``bands`` (output order) for ``patch_size``; ``factors`` default to ``band_factor``."""
        P = int(patch_size)
        if P < 1:
            raise StoreError(f"patch_size {patch_size!r} must be a positive number of pixels")
        fac = {b: int(factors[b]) if factors is not None and b in factors else band_factor(b) for b in bands}
        bad = {b: f for b, f in fac.items() if f < 1}
        if bad:
            raise StoreError(f"grid factors must be >= 1, got {bad}")
        groups: list[PackGroup] = []
        offset = 0
        for f in sorted(set(fac.values())):
            chans = tuple(k for k, b in enumerate(bands) if fac[b] == f)
            n = math.ceil(P / f)
            groups.append(PackGroup(f, n, chans, offset))
            offset += len(chans) * n * n
        return cls(tuple(bands), P, tuple(groups))

    @property
    def length(self) -> int:
        """Elements of one packed (sample, date)."""
        return sum(g.length for g in self.groups)

    @property
    def is_identity(self) -> bool:
        """Every band on the 10 m grid: the packed vector is the (C, P, P) image, flattened."""
        return all(g.factor == 1 for g in self.groups) and (
            len(self.groups) == 0 or self.groups[0].channels == tuple(range(len(self.bands)))
        )

    def group_view(self, packed: np.ndarray, g: PackGroup) -> np.ndarray:
        """``packed[..., group]`` as ``(..., c_g, n_g, n_g)`` (a view when ``packed``'s last axis is contiguous)."""
        part = packed[..., g.offset : g.offset + g.length]
        return part.reshape(*packed.shape[:-1], len(g.channels), g.side, g.side)

    # ------------------------------------------------------------------------------------- numpy, writer side

    def split(self, grid: np.ndarray, where: str = "") -> list[np.ndarray]:
        """The coarse-grid arrays ``(..., c_g, n_g, n_g)`` of each group, from ``grid`` ``(..., C, P, P)``.

        Raises:
            NotNativeError: a band of factor ``f > 1`` is not constant on the ``f x f`` blocks of the patch
                (naming the band, the first differing pixel and the fix).
        """
        P = self.patch_size
        if grid.ndim < 3 or grid.shape[-3:] != (len(self.bands), P, P):
            raise StoreError(f"{where}imagery of shape {grid.shape} is not (..., {len(self.bands)}, {P}, {P})")
        out = []
        for g in self.groups:
            sub = grid[..., list(g.channels), :: g.factor, :: g.factor]  # (..., c, n, n), a copy
            if g.factor > 1:
                for j, k in enumerate(g.channels):
                    up = _repeat_np(sub[..., j, :, :], g.factor)[..., :P, :P]
                    diff = up != grid[..., k, :, :]
                    if diff.any():
                        pos = tuple(int(v) for v in np.argwhere(diff)[0])
                        raise NotNativeError(
                            f"{where}band {self.bands[k]} is not constant on {g.factor} x {g.factor} blocks of "
                            f"the 10 m grid (first difference at index {pos}: {int(grid[..., k, :, :][pos])} vs "
                            f"{int(up[pos])}), so a native-resolution store would lose data; write it to a store "
                            "with grid '10m' (`--grid 10m`), or read the band at its native resolution with the "
                            "patch origin on its grid"
                        )
            out.append(np.ascontiguousarray(sub))
        return out

    def pack(self, grid: np.ndarray) -> np.ndarray:
        """``grid`` ``(..., C, P, P)`` -> packed ``(..., length)`` (checks the blocks like ``split``)."""
        parts = self.split(grid)
        lead = grid.shape[:-3]
        return np.concatenate([p.reshape(*lead, -1) for p in parts], axis=-1) if parts else np.empty((*lead, 0))

    def unpack_numpy(self, packed: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Packed ``(..., length)`` -> ``(..., C, P, P)`` on the CPU (``out`` to write into)."""
        P = self.patch_size
        lead = packed.shape[:-1]
        if packed.shape[-1] != self.length:
            raise StoreError(f"a packed sample of {packed.shape[-1]} elements is not {self.length} long")
        if out is None:
            out = np.empty((*lead, len(self.bands), P, P), dtype=packed.dtype)
        for g in self.groups:
            src = self.group_view(packed, g)
            for j, k in enumerate(g.channels):
                _upsample_np(src[..., j, :, :], g.factor, out[..., k, :, :])
        return out

    # ---------------------------------------------------------------------------------- torch, device side

    def unpack(self, packed: Tensor, out: Tensor | None = None) -> Tensor:
        """Packed ``(..., length)`` -> ``(..., C, P, P)``, nearest-upsampled, same dtype and device.

        Only copies (no arithmetic), so it works for uint16 on any device and commutes with elementwise ops:
        ``unpack(to_reflectance(p)) == to_reflectance(unpack(p))`` bit for bit.
        """
        P = self.patch_size
        if packed.shape[-1] != self.length:
            raise StoreError(
                f"a packed batch with last axis {packed.shape[-1]} does not match the store's packed length "
                f"{self.length} ({len(self.bands)} bands, {P} px)"
            )
        lead = tuple(packed.shape[:-1])
        if out is None and self.is_identity and packed.is_contiguous():
            return packed.view(*lead, len(self.bands), P, P)  # a 10 m grid store: no copy
        if out is None:
            import torch

            out = torch.empty((*lead, len(self.bands), P, P), dtype=packed.dtype, device=packed.device)
        for g in self.groups:
            f, n = g.factor, g.side
            src = packed[..., g.offset : g.offset + g.length].reshape(*lead, len(g.channels), n, n)
            for j, k in enumerate(g.channels):
                s = src[..., j, :, :]  # (..., n, n)
                dst = out[..., k, :, :]  # (..., P, P)
                if f == 1:
                    dst.copy_(s)
                elif n * f == P:
                    dst.view(*lead, n, f, n, f).copy_(s[..., :, None, :, None].expand(*lead, n, f, n, f))
                else:
                    up = s[..., :, None, :, None].expand(*lead, n, f, n, f).reshape(*lead, n * f, n * f)
                    dst.copy_(up[..., :P, :P])
        return out


def _repeat_np(x: np.ndarray, f: int) -> np.ndarray:
    return np.repeat(np.repeat(x, f, axis=-2), f, axis=-1) if f > 1 else x


def _upsample_np(src: np.ndarray, f: int, dst: np.ndarray) -> None:
    """Nearest-upsample ``src`` (..., n, n) by ``f`` into ``dst`` (..., P, P), cropping at the far edges.

    Columns first (for ``f == 2`` one uint32 multiply: each value twice), then whole rows: an inner loop of
    ``P`` contiguous values instead of ``f`` (6-18x faster than a 4-d broadcast assignment, bench_decode).
    """
    P, n = dst.shape[-1], src.shape[-1]
    if f == 1:
        dst[...] = src
        return
    if f == 2:  # (v, v) as one uint32: v * 0x10001 (either byte order)
        cols = (src.astype(np.uint32) * np.uint32(0x10001)).view(np.uint16)[..., :P]  # (..., n, P)
    else:
        cols = np.repeat(src, f, axis=-1)[..., :P]
    if n * f == P and dst.strides[-1] == dst.itemsize and dst.strides[-2] == P * dst.itemsize:
        v = dst.view()
        v.shape = (*dst.shape[:-2], n, f, P)  # splitting the row axis of contiguous (P, P) planes is a view
        v[...] = cols[..., :, None, :]
    else:
        dst[...] = np.repeat(cols, f, axis=-2)[..., :P, :]

"""Direct reading and writing of one location's shard file, for local stores (the hot paths).

zarr-python spends most of a small read or write in its async machinery (milliseconds per call plus
per-chunk task overhead, measured in docs/STORE.md). A pre-training sample reads a few inner chunks of
one shard, and an append writes one whole shard, so both are done here with plain file calls and the
numcodecs codec the array's metadata names, following the Zarr v3 ``sharding_indexed`` specification:
the chunks are concatenated, then the shard index, little-endian (offset, nbytes) uint64 pairs in C order
of the inner-chunk grid, followed by a CRC32C of the index; (2**64-1, 2**64-1) marks an empty chunk
(all fill value), and a shard whose chunks are all empty is not stored at all.

Only the layouts seco writes are handled (``ShardLayout.of_array`` returns ``None`` otherwise and the
caller uses zarr). tests/store check both directions against zarr itself.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google_crc32c
import numcodecs
import numpy as np

from seco.errors import StoreError

_EMPTY = 2**64 - 1
_SHUFFLE = {"noshuffle": numcodecs.Blosc.NOSHUFFLE, "shuffle": numcodecs.Blosc.SHUFFLE, "bitshuffle": numcodecs.Blosc.BITSHUFFLE}


def _codec(meta: dict[str, Any]) -> Any:
    cfg = meta.get("configuration", {})
    if meta["name"] == "blosc" and cfg.get("typesize", 2) == 2:
        return numcodecs.Blosc(
            cname=cfg["cname"], clevel=cfg["clevel"], shuffle=_SHUFFLE[cfg.get("shuffle", "noshuffle")],
            blocksize=cfg.get("blocksize", 0),
        )
    if meta["name"] == "zstd" and not cfg.get("checksum", False):
        return numcodecs.Zstd(level=cfg.get("level", 0))
    return None


@dataclass(frozen=True)
class ShardLayout:
    """A sharded ``(N, T, C, H, W)`` uint16 array with one shard per location.

    Attributes:
        array_dir: the array's folder (holding its ``zarr.json``).
        shape: ``(T, C, H, W)`` of one shard.
        bands_per_chunk: 1 (an inner chunk per date and band) or C (one per date).
        codec: numcodecs codec of the inner chunks.
        crc: whether the index ends with a CRC32C.
    """

    array_dir: Path
    shape: tuple[int, int, int, int]
    bands_per_chunk: int
    codec: Any
    crc: bool

    @property
    def grid(self) -> tuple[int, int]:
        """Inner chunks per shard along (date, band)."""
        return self.shape[0], self.shape[1] // self.bands_per_chunk

    @property
    def index_nbytes(self) -> int:
        return 16 * self.grid[0] * self.grid[1] + (4 if self.crc else 0)

    def shard_path(self, i: int) -> str:
        return os.path.join(self.array_dir, "c", str(i), "0", "0", "0", "0")

    @classmethod
    def of_array(cls, array_dir: Path) -> ShardLayout | None:
        """The layout of the array at ``array_dir``, or ``None`` when it is not one handled here."""
        if sys.byteorder != "little":
            return None
        try:
            meta = json.loads((Path(array_dir) / "zarr.json").read_text())
            shape = meta["shape"]
            if meta["data_type"] != "uint16" or len(shape) != 5 or meta.get("fill_value") != 0:
                return None
            enc = meta["chunk_key_encoding"]
            if enc["name"] != "default" or enc.get("configuration", {}).get("separator", "/") != "/":
                return None
            (sharding,) = meta["codecs"]
            if sharding["name"] != "sharding_indexed" or meta["chunk_grid"]["configuration"]["chunk_shape"] != [1, *shape[1:]]:
                return None
            cfg = sharding["configuration"]
            t, c, h, w = shape[1:]
            inner = cfg["chunk_shape"]
            if inner[:2] != [1, 1] or inner[3:] != [h, w] or inner[2] not in (1, c):
                return None
            (bytes_codec, compressor) = cfg["codecs"]
            index_codecs = cfg["index_codecs"]
            names = [x["name"] for x in index_codecs]
            if (
                bytes_codec["name"] != "bytes"
                or bytes_codec.get("configuration", {}).get("endian") != "little"
                or cfg.get("index_location", "end") != "end"
                or names not in (["bytes"], ["bytes", "crc32c"])
                or index_codecs[0].get("configuration", {}).get("endian") != "little"
            ):
                return None
            codec = _codec(compressor)
        except (OSError, KeyError, ValueError, TypeError):
            return None
        if codec is None:
            return None
        return cls(Path(array_dir), (t, c, h, w), inner[2], codec, crc=names[-1] == "crc32c")


class ShardReader:
    """Reads inner chunks of one location's shard with ``os.pread``."""

    def __init__(self, layout: ShardLayout):
        self.layout = layout

    @classmethod
    def for_array(cls, array_dir: Path) -> ShardReader | None:
        layout = ShardLayout.of_array(array_dir)
        return cls(layout) if layout is not None else None

    def read(self, i: int, dates: list[int], bands: list[int], out: np.ndarray | None = None) -> np.ndarray:
        """Pixels of location ``i``: (len(dates), len(bands), H, W) uint16, zeros where nothing is stored.

        Args:
            i: location (shard) index.
            dates, bands: inner-chunk positions, any order, repeats allowed.
            out: decode into this (len(dates), len(bands), H, W) uint16 array instead of a new one (e.g. one
                sample of a preallocated batch); each (H, W) plane must be C-contiguous. Returned.
        """
        L = self.layout
        _, _, h, w = L.shape
        if out is None:
            out = np.empty((len(dates), len(bands), h, w), dtype=np.uint16)  # (t, c, H, W)
        else:
            check_out(out, (len(dates), len(bands), h, w))
        path = L.shard_path(i)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # a location whose every chunk equals the fill value
            out.fill(0)
            return out
        try:
            size = os.fstat(fd).st_size
            if size < L.index_nbytes:
                raise StoreError(f"shard {path} is truncated ({size} bytes); the store is damaged")
            raw = os.pread(fd, L.index_nbytes, size - L.index_nbytes)
            if L.crc and google_crc32c.value(raw[:-4]) != int.from_bytes(raw[-4:], "little"):
                raise StoreError(f"shard {path} has a corrupt index (CRC mismatch); the store is damaged")
            index = np.frombuffer(raw, dtype="<u8", count=2 * L.grid[0] * L.grid[1]).reshape(*L.grid, 2).tolist()
            if L.bands_per_chunk == 1:
                for j, d in enumerate(dates):
                    for k, b in enumerate(bands):
                        off, n = index[d][b]
                        if off == _EMPTY:
                            out[j, k].fill(0)
                        else:
                            L.codec.decode(os.pread(fd, n, off), out=out[j, k])
            else:
                full = np.empty(L.shape[1:], dtype=np.uint16)  # (C, H, W)
                for j, d in enumerate(dates):
                    off, n = index[d][0]
                    if off == _EMPTY:
                        out[j].fill(0)
                    else:
                        L.codec.decode(os.pread(fd, n, off), out=full)
                        out[j] = full[bands]
        finally:
            os.close(fd)
        return out


def check_out(out: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise ``StoreError`` unless ``out`` can receive a read of ``shape``: uint16, that shape, contiguous planes."""
    if not isinstance(out, np.ndarray) or out.dtype != np.uint16 or out.shape != shape:
        got = (type(out).__name__, getattr(out, "dtype", None), getattr(out, "shape", None))
        raise StoreError(f"read out= must be a uint16 numpy array of shape {shape}, got {got[0]} {got[1]} {got[2]}")
    if out.size and (out.strides[-1] != out.itemsize or out.strides[-2] != out.itemsize * shape[-1]):
        raise StoreError(f"read out= needs C-contiguous (H, W) planes, got strides {out.strides}; pass np.empty(...) "
                         "or a slice of one along the leading axes")
    if not out.flags.writeable:
        raise StoreError("read out= is read-only; pass a writable array")


class ShardWriter:
    """Encodes one location and writes its shard atomically (temporary file, then rename)."""

    def __init__(self, layout: ShardLayout):
        self.layout = layout

    @classmethod
    def for_array(cls, array_dir: Path) -> ShardWriter | None:
        layout = ShardLayout.of_array(array_dir)
        return cls(layout) if layout is not None else None

    def encode(self, images: np.ndarray) -> bytes | None:
        """The shard bytes of ``images`` (T, C, H, W) uint16, or ``None`` when every chunk is empty."""
        L = self.layout
        nt, nb = L.grid
        index = np.full((nt, nb, 2), _EMPTY, dtype="<u8")
        parts: list[bytes] = []
        offset = 0
        for t in range(nt):
            for b in range(nb):
                chunk = images[t, b * L.bands_per_chunk : (b + 1) * L.bands_per_chunk]
                if not chunk.any():  # zarr's write_empty_chunks=False: an all-zero chunk is not stored
                    continue
                data = L.codec.encode(np.ascontiguousarray(chunk))
                index[t, b] = (offset, len(data))
                parts.append(bytes(data))
                offset += len(data)
        if not parts:
            return None
        raw = index.tobytes()
        parts.append(raw)
        if L.crc:
            parts.append(google_crc32c.value(raw).to_bytes(4, "little"))
        return b"".join(parts)

    def write(self, i: int, images: np.ndarray) -> None:
        """Replace location ``i``'s shard with ``images`` (T, C, H, W) uint16, all-or-nothing."""
        path = self.layout.shard_path(i)
        data = self.encode(images)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if data is None:
            Path(path).unlink(missing_ok=True)
            return
        tmp = f"{path}.{uuid.uuid4().hex}.partial"  # the name zarr's LocalStore uses; swept on reopen
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

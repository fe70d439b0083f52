"""Direct reading and writing of one location's shard file, for local stores (the hot paths).

zarr-python spends most of a small read or write in its async machinery (milliseconds per call plus
per-chunk task overhead, measured in docs/STORE.md). A pre-training sample reads a few inner chunks of
one shard, and an append writes one whole shard, so both are done here with plain file calls and the
numcodecs codec the array's metadata names, following the Zarr v3 ``sharding_indexed`` specification:
the chunks are concatenated, then the shard index, little-endian (offset, nbytes) uint64 pairs in C order
of the inner-chunk grid, followed by a CRC32C of the index; (2**64-1, 2**64-1) marks an empty chunk
(all fill value). With the ``crc32c`` chunk codec (stores written since seco recorded checksums) every
chunk ends with the little-endian CRC32C of its compressed bytes. seco writes a shard for every location,
even one whose chunks are all empty (zarr itself would store no file), so a missing shard is damage.

Only the layouts seco writes are handled (``ShardLayout.of_array`` returns ``None`` otherwise and the
caller uses zarr). tests/store check both directions against zarr itself.
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import struct
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import google_crc32c
import numcodecs
import numcodecs.blosc
import numpy as np

from seco.errors import StoreCorruptError, StoreError

_EMPTY = 2**64 - 1
#: Shards up to this size are read with one ``pread`` instead of memory-mapped (bench_decode --native).
_SMALL = 256 << 10
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
        checksum: whether every inner chunk ends with a CRC32C (the Zarr v3 ``crc32c`` codec).
    """

    array_dir: Path
    shape: tuple[int, int, int, int]
    bands_per_chunk: int
    codec: Any
    crc: bool
    checksum: bool = False

    @property
    def grid(self) -> tuple[int, int]:
        """Inner chunks per shard along (date, band)."""
        return self.shape[0], self.shape[1] // self.bands_per_chunk

    @property
    def index_nbytes(self) -> int:
        return 16 * self.grid[0] * self.grid[1] + (4 if self.crc else 0)

    def shard_path(self, i: int) -> str:
        return f"{self._chunk_dir}{i}{os.sep}0{os.sep}0{os.sep}0{os.sep}0"

    @cached_property
    def _chunk_dir(self) -> str:
        return os.path.join(self.array_dir, "c", "")  # ".../c/"

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
            (bytes_codec, compressor, *rest) = cfg["codecs"]
            if [x["name"] for x in rest] not in ([], ["crc32c"]):
                return None
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
        return cls(Path(array_dir), (t, c, h, w), inner[2], codec, crc=names[-1] == "crc32c", checksum=bool(rest))

    def parse_index(self, raw: bytes | np.ndarray, size: int, i: int, path: str) -> np.ndarray:
        """The (dates, chunks, 2) uint64 (offset, nbytes) index of a shard of ``size`` bytes, checked.

        Raises:
            StoreCorruptError: the file is shorter than its index, the index CRC fails, or an entry points
                outside the data (a truncated or overwritten shard).
        """
        n = self.index_nbytes
        if len(raw) < n:
            raise _corrupt(i, path, f"its shard is truncated ({size} bytes, shorter than its {n}-byte index)")
        raw = bytes(raw[len(raw) - n :])
        if self.crc and google_crc32c.value(raw[:-4]) != int.from_bytes(raw[-4:], "little"):
            raise _corrupt(i, path, "its shard index fails its CRC32C (the shard is truncated or overwritten)")
        index = np.frombuffer(raw, dtype="<u8", count=2 * self.grid[0] * self.grid[1]).reshape(*self.grid, 2)
        off, nb = index[..., 0], index[..., 1]
        least, limit = (5 if self.checksum else 1), size - n  # limit: bytes of chunk data
        stored = off != _EMPTY
        if stored.all():  # the usual shard: few numpy calls (this runs once per image array and sample)
            o, k = off, nb
        else:
            if (nb[~stored] != _EMPTY).any():
                raise _corrupt(i, path, "its shard index has a half-empty entry (the shard is overwritten)")
            o, k = off[stored], nb[stored]
        # o <= limit first, so limit - o cannot wrap around
        if o.size and (int(o.max()) > limit or int(k.min()) < least or (k > limit - o).any()):
            raise _corrupt(i, path, f"its shard index points outside the {size - n} data bytes (truncated shard)")
        return index

    def bad_checksums(self, data: np.ndarray, index: np.ndarray, dates: list[int] | None = None) -> list[tuple[int, int]]:
        """(date, chunk) of every stored chunk of ``dates`` (default all) whose CRC32C does not match.

        Args:
            data: the whole shard, (size,) uint8.
            index: its ``parse_index``.
            dates: the dates whose chunks to check.
        """
        if not self.checksum:
            return []
        arr = data  # google_crc32c takes numpy slices without a copy
        bad = []
        for t in range(self.grid[0]) if dates is None else dates:
            for b in range(self.grid[1]):
                off, nb = int(index[t, b, 0]), int(index[t, b, 1])
                if off == _EMPTY:
                    continue
                end = off + nb - 4
                if google_crc32c.value(arr[off:end]) != int.from_bytes(arr[end : end + 4].tobytes(), "little"):
                    bad.append((t, b))
        return bad

    def decoder(self) -> Callable[[memoryview, np.ndarray], None]:
        """``decode(src, dst)``: one chunk's compressed bytes (without its checksum) into ``dst`` (contiguous uint16).

        It raises ``ValueError`` / ``RuntimeError`` when the bytes are not a chunk of ``dst``'s size and codec.
        """
        if isinstance(self.codec, numcodecs.Blosc):
            return _blosc_decode
        codec = self.codec

        def decode(src: memoryview, dst: np.ndarray) -> None:
            codec.decode(src, out=dst)

        return decode


def _blosc_c() -> Any:
    """c-blosc's ``blosc_decompress_ctx`` from the library numcodecs bundles, or ``None`` when not exported.

    Calling it directly (ctypes) saves numcodecs' per-call argument handling, ~8 % of a 12-band read of 36
    chunks in a same-process A/B; the result is identical (tests/store compare both paths).
    """
    try:
        f = ctypes.CDLL(numcodecs.blosc.__file__).blosc_decompress_ctx
    except (OSError, AttributeError):
        return None
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    f.restype = ctypes.c_int
    return f


_BLOSC_C = _blosc_c()
_BLOSC_HEAD = struct.Struct("<4xIII")  # after version, versionlz, flags, typesize: nbytes, blocksize, cbytes


def _blosc_decode(src: memoryview, dst: np.ndarray) -> None:
    # The Blosc header records the decoded and compressed sizes: refuse a chunk whose sizes disagree (blosc
    # would otherwise fill only part of dst, or read past src).
    head = src[4:16].cast("I") if len(src) >= 16 else None
    if head is None or head[0] != dst.nbytes or head[2] != len(src):
        got = f"{head[0]} bytes from {head[2]}" if head is not None else f"{len(src)} bytes (no header)"
        raise ValueError(f"the Blosc header says {got}, expected {dst.nbytes} bytes from {len(src)}")
    numcodecs.blosc.decompress(src, dst)


class ShardReader:
    """Reads inner chunks of one location's shard, decoding straight into the caller's array.

    The shard file is memory-mapped (read-only) and every asked chunk is decoded from the page cache into its
    (H, W) plane of ``out``: no copy of the compressed bytes and no intermediate array. With ``verify``
    (default; stores with checksums) the first read of each (shard, date) in this process checks the CRC32C of
    that date's chunks before decoding them; later reads skip the check (checking every read would add ~45 %
    to it, docs/BENCHMARKS.md).

    Damage (a missing or truncated shard, a bad index, a checksum mismatch, a chunk that does not decode) raises
    ``StoreCorruptError`` with ``location`` and ``path`` set (the ``Store`` adds the key).
    """

    def __init__(self, layout: ShardLayout, *, verify: bool = True):
        self.layout = layout
        self.verify = verify
        self._verified = np.zeros((0, layout.shape[0]), dtype=bool)  # (N, T): (shard, date) checked in this process

    @classmethod
    def for_array(cls, array_dir: Path, *, verify: bool = True) -> ShardReader | None:
        layout = ShardLayout.of_array(array_dir)
        return cls(layout, verify=verify) if layout is not None else None

    def read(self, i: int, dates: list[int], bands: list[int], out: np.ndarray | None = None) -> np.ndarray:
        """Pixels of location ``i``: (len(dates), len(bands), H, W) uint16, zeros for chunks not stored.

        Args:
            i: location (shard) index.
            dates, bands: inner-chunk positions, any order, repeats allowed.
            out: decode into this (len(dates), len(bands), H, W) uint16 array instead of a new one (e.g. one
                sample of a preallocated batch); each (H, W) plane must be C-contiguous. Returned.

        Raises:
            StoreCorruptError: the shard is missing, truncated, fails a checksum or does not decode.
        """
        L = self.layout
        _, _, h, w = L.shape
        if out is None:
            out = np.empty((len(dates), len(bands), h, w), dtype=np.uint16)  # (t, c, H, W)
        else:
            check_out(out, (len(dates), len(bands), h, w))
        path = L.shard_path(i)
        data = self.map(i)  # (size,) uint8 over the page cache
        index = L.parse_index(data, data.size, i, path)
        if self.verify and L.checksum:
            if i >= len(self._verified):  # grown by doubling: one bool per (location, date), ~5 MB per 1M locations
                grown = np.zeros((max(i + 1, 2 * len(self._verified), 1024), L.shape[0]), dtype=bool)
                grown[: len(self._verified)] = self._verified
                self._verified = grown
            todo = [d for d in set(dates) if not self._verified[i, d]]
            if todo:
                bad = L.bad_checksums(data, index, sorted(todo))
                if bad:
                    raise _corrupt(i, path, f"checksum mismatch in {_chunks(bad)}")
                self._verified[i, todo] = True
        if _BLOSC_C is not None and isinstance(L.codec, numcodecs.Blosc) and L.bands_per_chunk == 1:
            self._decode_blosc(data, index, i, path, dates, bands, out)
        else:
            self._decode(memoryview(data), index, i, path, dates, bands, out)  # type: ignore[arg-type]
        return out

    def _decode_blosc(self, data: np.ndarray, index: np.ndarray, i: int, path: str,
                      dates: list[int], bands: list[int], out: np.ndarray) -> None:
        """``_decode`` for one chunk per (date, band) and Blosc, calling c-blosc on raw addresses."""
        crc = 4 if self.layout.checksum else 0
        plane = out.shape[-1] * out.shape[-2] * 2  # bytes of one (H, W) uint16 plane
        src0, dst0 = data.ctypes.data, out.ctypes.data
        s0, s1 = out.strides[0], out.strides[1]  # check_out: every (H, W) plane is C-contiguous
        head = _BLOSC_HEAD.unpack_from
        for j, d in enumerate(dates):
            offs = index[d, bands, 0].tolist()  # (c,) python ints: cheaper per chunk than numpy scalars
            sizes = index[d, bands, 1].tolist()
            for k, o in enumerate(offs):
                if o == _EMPTY:
                    out[j, k].fill(0)
                    continue
                n = sizes[k] - crc  # parse_index checked that the chunk lies inside the file
                nbytes, _, cbytes = head(data, o) if n >= 16 else (-1, -1, -1)  # type: ignore[arg-type]
                # the header's sizes must match the chunk and the plane, or blosc would read or write past them
                got = _BLOSC_C(src0 + o, dst0 + j * s0 + k * s1, plane, 1) if nbytes == plane and cbytes == n else -1
                if got != plane:
                    raise _corrupt(i, path, f"chunk (date {d}, band {bands[k]}) cannot be decoded (Blosc header "
                                   f"says {nbytes} bytes from {cbytes}, expected {plane} from {n}; blosc: {got})")

    def map(self, i: int) -> np.ndarray:
        """Shard ``i``'s bytes, memory-mapped read-only: (size,) uint8 (unmapped when the array is freed).

        Raises:
            StoreCorruptError: the shard is missing or shorter than its index.
        """
        path = self.layout.shard_path(i)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise _corrupt(i, path, "its shard file is missing") from None
        try:
            size = os.fstat(fd).st_size
            if size < self.layout.index_nbytes:
                n = self.layout.index_nbytes
                raise _corrupt(i, path, f"its shard is truncated ({size} bytes, shorter than its {n}-byte index)")
            if size <= _SMALL:  # e.g. a 60 m band array: a read costs less than a mapping and its page faults
                return np.frombuffer(os.pread(fd, size, 0), dtype=np.uint8)
            # shards are replaced by rename, never rewritten in place, so the mapped file cannot shrink under us
            try:
                return np.frombuffer(mmap.mmap(fd, size, access=mmap.ACCESS_READ), dtype=np.uint8)
            except (OSError, ValueError):  # a file system without mmap: read it (slower, same result)
                return np.frombuffer(os.pread(fd, size, 0), dtype=np.uint8)
        finally:
            os.close(fd)

    def _decode(self, mv: memoryview, index: np.ndarray, i: int, path: str,
                dates: list[int], bands: list[int], out: np.ndarray) -> None:
        L = self.layout
        crc = 4 if L.checksum else 0
        decode = L.decoder()
        per_band = L.bands_per_chunk == 1
        cols = bands if per_band else [0]
        full = None if per_band or bands == list(range(L.shape[1])) else np.empty(L.shape[1:], np.uint16)
        for j, d in enumerate(dates):
            offs = index[d, cols, 0].tolist()  # (c,) python ints: cheaper per chunk than numpy scalars
            sizes = index[d, cols, 1].tolist()
            planes = out[j]  # (c, H, W)
            for k, o in enumerate(offs):
                dst = (planes[k] if per_band else planes) if full is None else full
                if o == _EMPTY:
                    dst.fill(0)
                else:  # parse_index checked that every chunk lies inside the file
                    try:
                        decode(mv[o : o + sizes[k] - crc], dst)
                    except (RuntimeError, ValueError, TypeError) as e:
                        where = f"date {d}, band {cols[k]}" if per_band else f"date {d}"
                        raise _corrupt(i, path, f"chunk ({where}) cannot be decoded ({e})") from e
                if full is not None:
                    planes[...] = full[bands]


def _chunks(bad: list[tuple[int, int]]) -> str:
    shown = ", ".join(f"(date {t}, chunk {b})" for t, b in bad[:4])
    return f"{len(bad)} chunk(s): {shown}" + (" ..." if len(bad) > 4 else "")


class ShardCorruptError(StoreCorruptError):
    """A damaged shard, as the shard reader sees it; ``problem`` says what is wrong without the location."""

    def __init__(self, i: int, path: str, problem: str):
        super().__init__(f"location {i}: {problem} ({path})", location=i, path=path)
        self.problem = problem


def _corrupt(i: int, path: str, what: str) -> ShardCorruptError:
    return ShardCorruptError(i, path, what)


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

    def encode(self, images: np.ndarray) -> bytes:
        """The shard bytes of ``images`` (T, C, H, W) uint16 (only the index when every chunk is empty)."""
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
                data = bytes(L.codec.encode(np.ascontiguousarray(chunk)))
                if L.checksum:  # the zarr crc32c codec: CRC32C of the compressed bytes, little-endian
                    data += google_crc32c.value(data).to_bytes(4, "little")
                index[t, b] = (offset, len(data))
                parts.append(data)
                offset += len(data)
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
        tmp = f"{path}.{uuid.uuid4().hex}.partial"  # the name zarr's LocalStore uses; swept on reopen
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

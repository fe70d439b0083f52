"""A direct reader of one location's shard file, for local stores (the pre-training hot path).

zarr-python spends most of a small read in its async machinery (~0.5 ms per call plus per-chunk task
overhead). A pre-training sample reads a few inner chunks of one shard, so this reader does it with
plain ``os.pread`` calls and the numcodecs decoder the array's metadata names, following the Zarr v3
``sharding_indexed`` specification: the shard index sits at the end of the file as little-endian
(offset, nbytes) uint64 pairs in C order of the inner-chunk grid, followed by a CRC32C of the index;
an (offset, nbytes) of 2**64-1 marks an empty chunk (all fill value).

Only the layouts seco writes are supported (``ShardReader.for_array`` returns ``None`` otherwise and the
caller falls back to zarr). tests/store check that both paths return identical arrays.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np

from seco.errors import StoreError

_EMPTY = np.uint64(2**64 - 1)


def _decoder(codec: dict[str, Any]) -> Any:
    cfg = codec.get("configuration", {})
    if codec["name"] == "blosc":
        shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[cfg.get("shuffle", "noshuffle")]
        return numcodecs.Blosc(cname=cfg["cname"], clevel=cfg["clevel"], shuffle=shuffle)
    if codec["name"] == "zstd" and not cfg.get("checksum", False):
        return numcodecs.Zstd(level=cfg.get("level", 0))
    return None


class ShardReader:
    """Reads inner chunks of a sharded ``(N, T, C, H, W)`` uint16 array, one shard per location.

    Args:
        array_dir: the array's folder (holding its ``zarr.json``).
        shape: ``(T, C, H, W)`` of one shard.
        bands_per_chunk: 1 (one inner chunk per date and band) or C (one per date).
        decoder: numcodecs codec of the inner chunks.
        crc: whether the index ends with a CRC32C.
    """

    def __init__(self, array_dir: Path, shape: tuple[int, int, int, int], bands_per_chunk: int, decoder: Any, crc: bool):
        self.array_dir = Path(array_dir)
        self.shape = shape
        self.bands_per_chunk = bands_per_chunk
        self.decoder = decoder
        self.crc = crc
        t, c, _, _ = shape
        self.grid = (t, c // bands_per_chunk)  # inner chunks per shard along (date, band)
        self.index_nbytes = 16 * self.grid[0] * self.grid[1] + (4 if crc else 0)

    @classmethod
    def for_array(cls, array_dir: Path) -> ShardReader | None:
        """A reader for the array at ``array_dir``, or ``None`` when its layout is not one this reads."""
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
            outer = meta["chunk_grid"]["configuration"]["chunk_shape"]
            (codec,) = meta["codecs"]
            if codec["name"] != "sharding_indexed" or outer != [1, *shape[1:]]:
                return None
            cfg = codec["configuration"]
            inner = cfg["chunk_shape"]
            t, c, h, w = shape[1:]
            if inner[0] != 1 or inner[1] != 1 or inner[3:] != [h, w] or inner[2] not in (1, c):
                return None
            bytes_codec, *compressors = cfg["codecs"]
            if bytes_codec["name"] != "bytes" or bytes_codec.get("configuration", {}).get("endian") != "little":
                return None
            if len(compressors) != 1:
                return None
            decoder = _decoder(compressors[0])
            index_codecs = [x["name"] for x in cfg["index_codecs"]]
            if decoder is None or cfg.get("index_location", "end") != "end":
                return None
            if index_codecs not in (["bytes"], ["bytes", "crc32c"]):
                return None
            if cfg["index_codecs"][0].get("configuration", {}).get("endian") != "little":
                return None
        except (OSError, KeyError, ValueError, TypeError):
            return None
        return cls(Path(array_dir), (t, c, h, w), inner[2], decoder, crc=index_codecs[-1] == "crc32c")

    def shard_path(self, i: int) -> str:
        return os.path.join(self.array_dir, "c", str(i), "0", "0", "0", "0")

    def read(self, i: int, dates: list[int], bands: list[int]) -> np.ndarray:
        """Pixels of location ``i``: (len(dates), len(bands), H, W) uint16, zeros where nothing is stored."""
        _, _, h, w = self.shape
        out = np.empty((len(dates), len(bands), h, w), dtype=np.uint16)  # (t, c, H, W)
        try:
            fd = os.open(self.shard_path(i), os.O_RDONLY)
        except FileNotFoundError:  # a location whose every chunk equals the fill value
            out.fill(0)
            return out
        try:
            size = os.fstat(fd).st_size
            if size < self.index_nbytes:
                raise StoreError(f"shard {self.shard_path(i)} is truncated ({size} bytes); the store is damaged")
            raw = os.pread(fd, self.index_nbytes, size - self.index_nbytes)
            if self.crc:
                import google_crc32c

                if google_crc32c.value(raw[:-4]) != int.from_bytes(raw[-4:], "little"):
                    raise StoreError(f"shard {self.shard_path(i)} has a corrupt index (CRC mismatch); the store is damaged")
            index = np.frombuffer(raw, dtype="<u8", count=2 * self.grid[0] * self.grid[1]).reshape(*self.grid, 2)
            if self.bands_per_chunk == 1:
                for j, d in enumerate(dates):
                    for k, b in enumerate(bands):
                        off, n = index[d, b]
                        if off == _EMPTY:
                            out[j, k].fill(0)
                        else:
                            self.decoder.decode(os.pread(fd, int(n), int(off)), out=out[j, k])
            else:
                full = np.empty(self.shape[1:], dtype=np.uint16)  # (C, H, W)
                for j, d in enumerate(dates):
                    off, n = index[d, 0]
                    if off == _EMPTY:
                        out[j].fill(0)
                    else:
                        self.decoder.decode(os.pread(fd, int(n), int(off)), out=full)
                        out[j] = full[bands]
        finally:
            os.close(fd)
        return out

"""Typed errors. Every message names the offending value and says what to do about it."""

from __future__ import annotations


class SecoError(Exception):
    """Base class of every error seco raises on purpose."""


class ConfigError(SecoError, ValueError):
    """An invalid option or combination of options."""


class BandError(ConfigError):
    """An unknown band name, or a band the data does not have."""


class StoreError(SecoError):
    """A store that does not exist, is not a seco store, or is damaged."""


class StoreVersionError(StoreError):
    """A store written with another schema version."""


class CheckpointError(SecoError):
    """A checkpoint that is missing, corrupt, or from an incompatible model."""


class DatasetError(SecoError):
    """A dataset root with the wrong layout, a missing band, an unexpected shape or an unknown label."""


class CatalogError(SecoError):
    """A STAC catalog that cannot be reached or lacks what collection needs."""


class CollectError(SecoError):
    """A problem found before or during collection that stops it."""


class ReadError(SecoError):
    """A raster asset that cannot be read (corrupt, truncated, missing): recorded and skipped by collect."""


class StoreCorruptError(StoreError):
    """Image data of one location that fails its checksum or cannot be decoded (flipped bytes, truncated or
    missing shard file).

    Attributes:
        location: index of the damaged location in the store, ``None`` when unknown.
        key: the location's key, ``None`` when unknown.
        path: the damaged file (shard), ``None`` when unknown.
    """

    def __init__(self, message: str, *, location: int | None = None, key: str | None = None,
                 path: str | None = None):
        super().__init__(message)
        self.location = location
        self.key = key
        self.path = path


class CorpusError(SecoError):
    """A published corpus (SeCo 100k/1M, SSL4EO-S12) whose root or files do not have the expected layout."""


class OutputError(SecoError):
    """An output that cannot be written where it was asked for (read-only, no permission, a file where a
    folder is expected, a full disk)."""


class OutputBusyError(OutputError):
    """Another seco process is writing the same output."""
